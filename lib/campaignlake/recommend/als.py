"""ALS recommendations with fallbacks, the popularity baseline, and similar products.

Every customer gets exactly k distinct, active products they have not excluded (bought):
ALS's top products where the model knows the customer, then the most popular products of their
favourite category, then the most popular products overall. Candidates from the three sources
are merged per customer in that priority, so a list is completed from the next source when an
earlier one runs short.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.frames import fit_layout

ALS_SOURCE = "als"
CATEGORY_SOURCE = "popular_in_category"
POPULAR_SOURCE = "popular"
_PRIORITY = "__priority"
_POSITION = "__position"


@dataclass(frozen=True)
class AlsParams:
    """One point of the ALS grid (with the fixed iterations, block size and seed)."""

    rank: int
    reg_param: float
    alpha: float
    max_iter: int
    block_size: int
    seed: int

    def label(self) -> str:
        """``rank=…,reg_param=…,alpha=…``: the point's name in metrics and reports."""
        return f"rank={self.rank},reg_param={self.reg_param},alpha={self.alpha}"


def fit_als(interactions: DataFrame, params: AlsParams) -> ALSModel:
    """Implicit-feedback ALS on ``customer_index``, ``product_index``, ``strength``.

    The input gets a fixed layout first (:func:`~campaignlake.frames.fit_layout`): ALS's
    documentation warns that non-deterministic input partitions can break fitting, and the
    layout must not depend on the cluster for a laptop and a cluster to fit the same model.
    """
    rows = fit_layout(
        interactions.select(c.CUSTOMER_INDEX, c.PRODUCT_INDEX, c.STRENGTH),
        [c.CUSTOMER_INDEX, c.PRODUCT_INDEX],
    )
    als = ALS(
        userCol=c.CUSTOMER_INDEX,
        itemCol=c.PRODUCT_INDEX,
        ratingCol=c.STRENGTH,
        implicitPrefs=True,
        rank=params.rank,
        regParam=params.reg_param,
        alpha=params.alpha,
        maxIter=params.max_iter,
        seed=params.seed,
        coldStartStrategy="drop",
    )
    als.setBlockSize(params.block_size)
    return als.fit(rows)


def popularity(interactions: DataFrame, catalog: DataFrame) -> DataFrame:
    """Active products ranked by total interaction strength (products without any follow,
    by id): ``product_id``, ``category``, ``popularity``, ``position`` overall and
    ``category_position`` within the category (1 = most popular)."""
    totals = interactions.groupBy(c.PRODUCT_ID).agg(F.sum(c.STRENGTH).alias("popularity"))
    active = catalog.where(F.col(c.ACTIVE)).select(c.PRODUCT_ID, c.CATEGORY)
    ranked = active.join(totals, on=c.PRODUCT_ID, how="left").withColumn(
        "popularity", F.coalesce(F.col("popularity"), F.lit(0.0))
    )
    order = [F.desc("popularity"), F.asc(c.PRODUCT_ID)]
    # A catalog is small: one window over it is cheaper than any distributed scheme.
    return ranked.withColumn(_POSITION, F.row_number().over(Window.orderBy(*order))).withColumn(
        "category_position", F.row_number().over(Window.partitionBy(c.CATEGORY).orderBy(*order))
    )


def favourite_categories(interactions: DataFrame, catalog: DataFrame) -> DataFrame:
    """``customer_id`` → ``category`` with the highest total strength (ties: alphabetical)."""
    per_category = (
        interactions.join(F.broadcast(catalog.select(c.PRODUCT_ID, c.CATEGORY)), c.PRODUCT_ID)
        .groupBy(c.CUSTOMER_ID, c.CATEGORY)
        .agg(F.sum(c.STRENGTH).alias("__strength"))
    )
    return per_category.groupBy(c.CUSTOMER_ID).agg(
        F.min_by(c.CATEGORY, F.struct(-F.col("__strength"), F.col(c.CATEGORY))).alias(c.CATEGORY)
    )


def als_candidates(
    model: ALSModel, customers: DataFrame, product_index: DataFrame, depth: int
) -> DataFrame:
    """The model's top ``depth`` products for the ``customers`` it knows (blocked
    ``recommendForUserSubset``): ``customer_id``, ``product_id``, ``score``, position."""
    known = customers.join(
        model.userFactors.select(F.col("id").alias(c.CUSTOMER_INDEX)), c.CUSTOMER_INDEX, "inner"
    )
    recs = model.recommendForUserSubset(known.select(c.CUSTOMER_INDEX), depth)
    exploded = recs.select(
        c.CUSTOMER_INDEX, F.posexplode("recommendations").alias(_POSITION, "__rec")
    ).select(
        c.CUSTOMER_INDEX,
        F.col(f"__rec.{c.PRODUCT_INDEX}").alias(c.PRODUCT_INDEX),
        F.col("__rec.rating").cast("double").alias(c.SCORE),
        (F.col(_POSITION) + 1).alias(_POSITION),
    )
    return (
        exploded.join(known.select(c.CUSTOMER_ID, c.CUSTOMER_INDEX), c.CUSTOMER_INDEX, "inner")
        .join(F.broadcast(product_index.select(c.PRODUCT_ID, c.PRODUCT_INDEX)), c.PRODUCT_INDEX)
        .select(c.CUSTOMER_ID, c.PRODUCT_ID, c.SCORE, _POSITION)
    )


def complete_lists(
    customers: DataFrame,
    *,
    als: DataFrame | None,
    popular: DataFrame,
    favourites: DataFrame | None,
    excluded: DataFrame,
    k: int,
    depth: int,
) -> DataFrame:
    """Exactly ``k`` distinct recommendations per customer, by source priority.

    Parameters
    ----------
    customers
        ``customer_id`` of everyone who needs a list.
    als
        :func:`als_candidates` (None: no model candidates).
    popular
        :func:`popularity` of the active catalog.
    favourites
        :func:`favourite_categories` (None: no category fallback, as for the baseline).
    excluded
        ``customer_id``, ``product_id`` pairs never to recommend.
    depth
        How many fallback candidates each source offers; at least k plus the most products
        any customer excludes.

    Returns
    -------
    DataFrame
        ``customer_id``, ``rank`` (1..k), ``product_id``, ``score``, ``source``.
    """
    top = popular.where(F.col(_POSITION) <= depth)
    overall = customers.crossJoin(F.broadcast(top.select(c.PRODUCT_ID, "popularity", _POSITION)))
    sources = [
        overall.select(
            c.CUSTOMER_ID, c.PRODUCT_ID, F.col("popularity").alias(c.SCORE), _POSITION,
            F.lit(2).alias(_PRIORITY), F.lit(POPULAR_SOURCE).alias(c.SOURCE),
        )
    ]  # fmt: skip
    if favourites is not None:
        in_category = customers.join(favourites, c.CUSTOMER_ID, "inner").join(
            F.broadcast(
                popular.where(F.col("category_position") <= depth).select(
                    c.CATEGORY, c.PRODUCT_ID, "popularity",
                    F.col("category_position").alias(_POSITION),
                )
            ),
            c.CATEGORY,
            "inner",
        )  # fmt: skip
        sources.insert(
            0,
            in_category.select(
                c.CUSTOMER_ID, c.PRODUCT_ID, F.col("popularity").alias(c.SCORE), _POSITION,
                F.lit(1).alias(_PRIORITY), F.lit(CATEGORY_SOURCE).alias(c.SOURCE),
            ),
        )  # fmt: skip
    if als is not None:
        active = popular.select(c.PRODUCT_ID)
        sources.insert(
            0,
            als.join(F.broadcast(active), c.PRODUCT_ID, "left_semi").select(
                c.CUSTOMER_ID, c.PRODUCT_ID, c.SCORE, _POSITION,
                F.lit(0).alias(_PRIORITY), F.lit(ALS_SOURCE).alias(c.SOURCE),
            ),
        )  # fmt: skip
    candidates = sources[0]
    for source in sources[1:]:
        candidates = candidates.unionByName(source)
    order = [F.col(_PRIORITY), F.col(_POSITION), F.col(c.PRODUCT_ID)]
    best_per_product = Window.partitionBy(c.CUSTOMER_ID, c.PRODUCT_ID).orderBy(*order)
    per_customer = Window.partitionBy(c.CUSTOMER_ID).orderBy(*order)
    return (
        candidates.join(excluded, [c.CUSTOMER_ID, c.PRODUCT_ID], "left_anti")
        .withColumn("__first", F.row_number().over(best_per_product))
        .where(F.col("__first") == 1)
        .withColumn(c.RANK, F.row_number().over(per_customer))
        .where(F.col(c.RANK) <= k)
        .select(c.CUSTOMER_ID, F.col(c.RANK).cast("int"), c.PRODUCT_ID, c.SCORE, c.SOURCE)
    )


def similar_products(
    model: ALSModel, product_index: DataFrame, active: DataFrame, n: int
) -> DataFrame:
    """For each product the model knows, the ``n`` active products with the most similar item
    factors (cosine): ``product_id``, ``rank``, ``similar_product_id``, ``similarity``."""
    factors = model.itemFactors.select(
        F.col("id").alias(c.PRODUCT_INDEX), F.col("features").alias("__f")
    ).withColumn("__norm", F.sqrt(F.aggregate("__f", F.lit(0.0), lambda acc, x: acc + x * x)))
    named = factors.join(F.broadcast(product_index), c.PRODUCT_INDEX, "inner").select(
        c.PRODUCT_ID, "__f", "__norm"
    )
    targets = named.join(F.broadcast(active), c.PRODUCT_ID, "left_semi").select(
        F.col(c.PRODUCT_ID).alias(c.SIMILAR_PRODUCT_ID),
        F.col("__f").alias("__g"),
        F.col("__norm").alias("__gnorm"),
    )
    dot = F.aggregate(
        F.zip_with("__f", "__g", lambda x, y: x * y), F.lit(0.0), lambda acc, x: acc + x
    )
    pairs = (
        named.crossJoin(targets)
        .where(F.col(c.PRODUCT_ID) != F.col(c.SIMILAR_PRODUCT_ID))
        .select(
            c.PRODUCT_ID,
            c.SIMILAR_PRODUCT_ID,
            F.when(
                (F.col("__norm") > 0) & (F.col("__gnorm") > 0),
                dot / (F.col("__norm") * F.col("__gnorm")),
            ).alias(c.SIMILARITY),
        )
        .where(F.col(c.SIMILARITY).isNotNull())
    )
    order = Window.partitionBy(c.PRODUCT_ID).orderBy(
        F.desc(c.SIMILARITY), F.asc(c.SIMILAR_PRODUCT_ID)
    )
    return (
        pairs.withColumn(c.RANK, F.row_number().over(order))
        .where(F.col(c.RANK) <= n)
        .select(c.PRODUCT_ID, F.col(c.RANK).cast("int"), c.SIMILAR_PRODUCT_ID, c.SIMILARITY)
    )

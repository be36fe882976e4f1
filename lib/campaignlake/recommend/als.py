"""ALS recommendations with fallbacks, the popularity baseline, and similar products.

Every customer gets exactly k distinct, active products they have not excluded (bought):
ALS's top products where the model knows the customer, a few places for products ALS cannot
score yet (cold-start products, by text similarity to what the customer interacted with),
then the most popular products of their favourite category, then the most popular products
overall. Candidates from the sources are merged per customer in that priority, so a list is
completed from the next source when an earlier one runs short.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pyspark.ml.recommendation import ALS, ALSModel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.frames import fit_layout, with_row_numbers

ALS_SOURCE = "als"
CONTENT_SOURCE = "content_cold_start"
CATEGORY_SOURCE = "popular_in_category"
POPULAR_SOURCE = "popular"
_PRIORITY = "__priority"
_POSITION = "__position"
_NEEDED = "__needed"
#: The priority of an exclusion row: before every source's.
_EXCLUDED = -1


@dataclass(frozen=True)
class AlsParams:
    """One point of the ALS grid (with the fixed iterations, block size and seed)."""

    rank: int
    reg_param: float
    alpha: float
    max_iter: int
    block_size: int
    seed: int
    #: Spark's default: what versions saved before the setting existed were fitted with.
    num_blocks: int = 10

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
        numUserBlocks=params.num_blocks,
        numItemBlocks=params.num_blocks,
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
    # Numbered without a global window, which would move the whole catalogue into one
    # partition.
    return (
        with_row_numbers(ranked, order, _POSITION)
        .withColumn(_POSITION, F.col(_POSITION).cast("int"))
        .withColumn(
            "category_position", F.row_number().over(Window.partitionBy(c.CATEGORY).orderBy(*order))
        )
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


def content_candidates(
    interactions: DataFrame, similar: DataFrame, cold: DataFrame, slots: int
) -> DataFrame:
    """For each customer, up to ``slots`` cold-start products most like what they interacted
    with: a cold product's score is the sum, over its text neighbours the customer interacted
    with, of interaction strength × similarity.

    Parameters
    ----------
    interactions
        ``customer_id``, ``product_id``, ``strength``.
    similar
        Text neighbours (``gold/similar_products``, method content): ``product_id``,
        ``similar_product_id``, ``similarity``. A cold product's own neighbour list is read, so
        it is found however crowded its neighbours' lists are.
    cold
        ``product_id`` of the products ALS cannot score (no item factors).

    Returns
    -------
    DataFrame
        ``customer_id``, ``product_id``, ``score`` and the position per customer (1 = best).
    """
    neighbours = similar.join(F.broadcast(cold), c.PRODUCT_ID, "left_semi").select(
        c.PRODUCT_ID, F.col(c.SIMILAR_PRODUCT_ID).alias("__seen"), c.SIMILARITY
    )
    seen = interactions.select(c.CUSTOMER_ID, F.col(c.PRODUCT_ID).alias("__seen"), c.STRENGTH)
    scores = (
        seen.join(F.broadcast(neighbours), "__seen", "inner")
        .groupBy(c.CUSTOMER_ID, c.PRODUCT_ID)
        .agg(F.sum(F.col(c.STRENGTH) * F.col(c.SIMILARITY)).alias(c.SCORE))
        .where(F.col(c.SCORE) > 0)
    )
    order = Window.partitionBy(c.CUSTOMER_ID).orderBy(F.desc(c.SCORE), c.PRODUCT_ID)
    return (
        scores.withColumn(_POSITION, F.row_number().over(order))
        .where(F.col(_POSITION) <= slots)
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
    content: DataFrame | None = None,
    content_slots: int = 0,
) -> DataFrame:
    """Exactly ``k`` distinct recommendations per customer, by source priority: ALS's first
    ``k - content_slots`` products, the cold-start products of ``content``, the rest of ALS's,
    then the favourite category's and the overall most popular products.

    Parameters
    ----------
    customers
        ``customer_id`` of everyone who needs a list.
    als
        :func:`als_candidates` (None: no model candidates).
    content
        :func:`content_candidates` (None: no cold-start source); at most ``content_slots``
        of them per customer enter a list.
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
    # A customer who excluded n products needs at most k + n candidates from a fallback (their
    # positions count active products only): the global depth is the most any customer needs.
    needed = customers.join(
        excluded.groupBy(c.CUSTOMER_ID).agg(F.count(F.lit(1)).alias("__excluded")),
        c.CUSTOMER_ID,
        "left",
    ).select(c.CUSTOMER_ID, (F.lit(k) + F.coalesce("__excluded", F.lit(0))).alias(_NEEDED))
    reserved = content_slots if content is not None else 0
    top = popular.where(F.col(_POSITION) <= depth).select(c.PRODUCT_ID, "popularity", _POSITION)
    overall = needed.join(F.broadcast(top), F.col(_POSITION) <= F.col(_NEEDED), "inner")
    sources = [
        overall.select(
            c.CUSTOMER_ID, c.PRODUCT_ID, F.col("popularity").alias(c.SCORE), _POSITION,
            F.lit(4).alias(_PRIORITY), F.lit(POPULAR_SOURCE).alias(c.SOURCE),
        )
    ]  # fmt: skip
    if favourites is not None:
        in_category = (
            needed.join(favourites, c.CUSTOMER_ID, "inner")
            .join(
                F.broadcast(
                    popular.where(F.col("category_position") <= depth).select(
                        c.CATEGORY, c.PRODUCT_ID, "popularity",
                        F.col("category_position").alias(_POSITION),
                    )
                ),
                c.CATEGORY,
                "inner",
            )
            .where(F.col(_POSITION) <= F.col(_NEEDED))
        )  # fmt: skip
        sources.insert(
            0,
            in_category.select(
                c.CUSTOMER_ID, c.PRODUCT_ID, F.col("popularity").alias(c.SCORE), _POSITION,
                F.lit(3).alias(_PRIORITY), F.lit(CATEGORY_SOURCE).alias(c.SOURCE),
            ),
        )  # fmt: skip
    if content is not None and content_slots > 0:
        sources.insert(
            0,
            content.where(F.col(_POSITION) <= content_slots).select(
                c.CUSTOMER_ID, c.PRODUCT_ID, c.SCORE, _POSITION,
                F.lit(1).alias(_PRIORITY), F.lit(CONTENT_SOURCE).alias(c.SOURCE),
            ),
        )  # fmt: skip
    if als is not None:
        active = popular.select(c.PRODUCT_ID)
        sources.insert(
            0,
            # Not cut at k + n: the model's positions count inactive products too.
            # ALS's head comes before the cold-start places, its tail after them.
            als.join(F.broadcast(active), c.PRODUCT_ID, "left_semi").select(
                c.CUSTOMER_ID, c.PRODUCT_ID, c.SCORE, _POSITION,
                F.when(F.col(_POSITION) <= k - reserved, 0).otherwise(2).alias(_PRIORITY),
                F.lit(ALS_SOURCE).alias(c.SOURCE),
            ),
        )  # fmt: skip
    # The exclusions travel with the candidates as rows of their own that sort before any
    # source's row for the product: with everything partitioned by customer once, dropping a
    # product's later rows drops excluded products and duplicates alike, in one shuffle
    # (a join on customer and product would shuffle the candidates a second time).
    sources.append(
        excluded.select(
            c.CUSTOMER_ID, c.PRODUCT_ID, F.lit(None).cast("double").alias(c.SCORE),
            F.lit(0).alias(_POSITION), F.lit(_EXCLUDED).alias(_PRIORITY),
            F.lit(None).cast("string").alias(c.SOURCE),
        )
    )  # fmt: skip
    candidates = sources[0]
    for source in sources[1:]:
        candidates = candidates.unionByName(source)
    by_product = Window.partitionBy(c.CUSTOMER_ID).orderBy(c.PRODUCT_ID, _PRIORITY, _POSITION)
    per_customer = Window.partitionBy(c.CUSTOMER_ID).orderBy(_PRIORITY, _POSITION, c.PRODUCT_ID)
    first_of_product = F.lag(c.PRODUCT_ID).over(by_product).eqNullSafe(F.col(c.PRODUCT_ID))
    return (
        candidates.withColumn("__repeat", first_of_product)
        .where(~F.col("__repeat") & (F.col(_PRIORITY) != _EXCLUDED))
        .withColumn(c.RANK, F.row_number().over(per_customer))
        .where(F.col(c.RANK) <= k)
        .select(c.CUSTOMER_ID, F.col(c.RANK).cast("int"), c.PRODUCT_ID, c.SCORE, c.SOURCE)
    )


def similar_products(
    item_factors: DataFrame,
    product_index: DataFrame,
    active: DataFrame,
    n: int,
    block_size: int,
) -> DataFrame:
    """For each product with factors, the ``n`` active products with the most similar item
    factors (cosine; ties by product id): ``product_id``, ``rank``, ``similar_product_id``,
    ``similarity``. Products whose factors are all zero have no neighbours.

    Exact, without a cross join of products: the unit-length factors are grouped into blocks
    of ``block_size`` products by index; each task takes one block and every block of active
    products, and keeps each product's top ``n`` of the matrix product as it goes. The work is
    blocks × catalogue × rank multiply-adds in BLAS and the shuffle is the factor matrix once
    per block, where the cross join shuffled and sorted catalogue² rows. A matrix product has
    no Spark SQL built-in, so this one step runs in pandas (``applyInPandas``).

    Parameters
    ----------
    item_factors
        ``id`` (the product index) and ``features`` (ALS's ``itemFactors``).
    product_index
        ``product_id`` and ``product_index``.
    active
        ``product_id`` of the products that may be recommended as similar.
    """
    vectors = item_factors.join(
        F.broadcast(product_index), F.col("id") == F.col(c.PRODUCT_INDEX), "inner"
    ).select(
        c.PRODUCT_ID,
        F.col("features").alias(_VECTOR),
        F.floor(F.col(c.PRODUCT_INDEX) / block_size).alias(_BLOCK),
    )
    return _nearest(vectors, active, n)


def similar_by_vectors(
    vectors: DataFrame, active: DataFrame, n: int, block_size: int, *, column: str
) -> DataFrame:
    """:func:`similar_products` for any product vectors (text embeddings): for each product of
    ``vectors`` (``product_id`` and the array ``column``), the ``n`` active products with the
    most similar vector by cosine. Blocks are ``block_size`` products in id order."""
    numbered = with_row_numbers(vectors, [F.col(c.PRODUCT_ID)], _POSITION).select(
        c.PRODUCT_ID,
        F.col(column).alias(_VECTOR),
        F.floor((F.col(_POSITION) - 1) / block_size).alias(_BLOCK),
    )
    return _nearest(numbered, active, n)


def _nearest(vectors: DataFrame, active: DataFrame, n: int) -> DataFrame:
    """The blocked top-``n`` cosine neighbours of ``product_id``, ``__vector``, ``__block``."""
    norm = F.sqrt(F.aggregate("__f", F.lit(0.0), lambda acc, x: acc + x * x))
    units = (
        vectors.withColumn("__f", F.transform(_VECTOR, lambda x: x.cast("double")))
        .withColumn("__norm", norm)
        .where(F.col("__norm") > 0)
        .select(
            c.PRODUCT_ID,
            _BLOCK,
            F.transform("__f", lambda x: x / F.col("__norm")).alias("__unit"),
        )
    )

    def blocks(rows: DataFrame, role: str) -> DataFrame:
        items = F.collect_list(F.struct(c.PRODUCT_ID, "__unit"))
        grouped = rows.groupBy(_BLOCK).agg(items.alias("__items"))
        return grouped.select(
            F.col(_BLOCK).alias(f"__{role}_block"),
            F.col(f"__items.{c.PRODUCT_ID}").alias(f"__{role}_ids"),
            F.flatten(F.col("__items.__unit")).alias(f"__{role}_vectors"),
        )

    queries = blocks(units, "query")
    targets = blocks(units.join(F.broadcast(active), c.PRODUCT_ID, "left_semi"), "target")
    return (
        queries.crossJoin(targets)
        .groupBy("__query_block")
        .applyInPandas(lambda rows: _neighbours_of_block(rows, n), _SIMILAR_SCHEMA)
    )


_BLOCK = "__block"
_VECTOR = "__vector"
_SIMILAR_SCHEMA = (
    f"{c.PRODUCT_ID} string, {c.RANK} int, {c.SIMILAR_PRODUCT_ID} string, {c.SIMILARITY} double"
)
#: Similarities computed at once per task (query rows × catalogue): about 128 MB of doubles.
_CHUNK_CELLS = 1 << 24


def _neighbours_of_block(rows: pd.DataFrame, n: int) -> pd.DataFrame:
    """One query block against every target block (one row each): the top ``n`` targets of
    each query product, by cosine and then by product id."""
    query_ids = np.asarray(rows["__query_ids"].iat[0], dtype=object)
    queries = np.asarray(rows["__query_vectors"].iat[0], dtype=np.float64)
    queries = queries.reshape(len(query_ids), -1)
    target_ids = np.concatenate([np.asarray(ids, dtype=object) for ids in rows["__target_ids"]])
    targets = np.concatenate(
        [np.asarray(v, dtype=np.float64) for v in rows["__target_vectors"]]
    ).reshape(len(target_ids), -1)
    # Targets in id order: a stable sort then breaks equal similarities by product id.
    in_id_order = np.argsort(target_ids.astype(str), kind="stable")
    target_ids, targets = target_ids[in_id_order], targets[in_id_order]
    target_keys = target_ids.astype(str)
    step = max(1, _CHUNK_CELLS // max(1, len(target_ids)))
    parts = []
    for first in range(0, len(query_ids), step):
        ids = query_ids[first : first + step]
        sims = queries[first : first + step] @ targets.T
        # A product is not its own neighbour.
        at = np.searchsorted(target_keys, ids.astype(str))
        at_clipped = np.minimum(at, len(target_ids) - 1)
        own = (at < len(target_ids)) & (target_ids[at_clipped] == ids)
        sims[np.nonzero(own)[0], at_clipped[own]] = -np.inf
        columns, values = top_n_columns(sims, n)
        kept = np.isfinite(values)
        parts.append(
            pd.DataFrame(
                {
                    c.PRODUCT_ID: np.repeat(ids, columns.shape[1])[kept.ravel()],
                    c.RANK: np.tile(np.arange(1, columns.shape[1] + 1), len(ids))[kept.ravel()],
                    c.SIMILAR_PRODUCT_ID: target_ids[columns.ravel()][kept.ravel()],
                    c.SIMILARITY: values.ravel()[kept.ravel()],
                }
            )
        )
    # A group has at least one query product (it is grouped by the query block): parts is
    # never empty.
    return pd.concat(parts, ignore_index=True).astype({c.RANK: "int32"})


def top_n_columns(values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``values``, the columns of its ``n`` largest values in descending order,
    equal values by column, and those values: exactly what a stable descending sort of each
    row would give, at the cost of a partition (only rows with ties across the n-th place
    are sorted in full)."""
    k = min(n, values.shape[1])
    if k == 0:
        empty = np.empty((values.shape[0], 0))
        return empty.astype(np.int64), empty
    if values.shape[1] > k:
        columns = np.argpartition(-values, k - 1, axis=1)[:, :k]
    else:
        columns = np.tile(np.arange(k), (values.shape[0], 1))
    chosen = np.take_along_axis(values, columns, axis=1)
    order = np.lexsort((columns, -chosen), axis=-1)
    columns = np.take_along_axis(columns, order, axis=1)
    chosen = np.take_along_axis(chosen, order, axis=1)
    # The partition picks any of the values equal to the n-th; a stable sort picks the first.
    last = chosen[:, -1:]
    tied = (values == last).sum(axis=1) > (chosen == last).sum(axis=1)
    if tied.any():
        columns[tied] = np.argsort(-values[tied], axis=1, kind="stable")[:, :k]
        chosen[tied] = np.take_along_axis(values[tied], columns[tied], axis=1)
    return columns, chosen

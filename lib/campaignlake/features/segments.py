"""Customer segments: RFM quintile scores with named segments, and a behavioural KMeans.

RFM looks at the longest feature window: recency is ``days_since_last_purchase``, frequency
``orders_<horizon>d`` and monetary ``revenue_<horizon>d``. Scores are quintiles (1–5, 5 best)
among the customers who purchased in the window; the cut points come from one distributed
``percentile_approx`` aggregation, never from a global sort. Customers without a purchase in
the window have no scores and the segment ``prospect``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import SQLTransformer, StandardScaler, VectorAssembler
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import SegmentsConf
from campaignlake.errors import TrainingDataError
from campaignlake.feature_set import (
    DAYS_SINCE_LAST_PURCHASE,
    DAYS_SINCE_LAST_VISIT,
    FeatureSet,
    windowed,
)
from campaignlake.frames import fit_layout, fit_partitions_for

#: Named RFM segments, first matching rule wins. R, F and M are the 1–5 scores and FM is the
#: mean of F and M rounded down. Documented in README, "Segments".
RFM_RULES: tuple[tuple[str, str], ...] = (
    ("champions", "R >= 4 and FM >= 4"),
    ("new_customers", "R >= 4 and F = 1"),
    ("loyal", "R >= 3 and FM >= 3"),
    ("promising", "R >= 4"),
    ("at_risk", "R <= 2 and FM >= 3"),
    ("hibernating", "R <= 2"),
    ("need_attention", "any other buyer"),
)
PROSPECT = "prospect"
QUINTILES = [0.2, 0.4, 0.6, 0.8]
_FEATURES = "__features"
_SCALED = "__scaled"
_CLUSTER = "__cluster"


def quantile_score(value: Column, cuts: Column, *, higher_is_better: bool) -> Column:
    """1–5 from the four quintile cut points: one plus the number of cuts the value is above
    (five minus that number when lower is better, as for recency). Null stays null."""
    above = F.lit(0)
    for i in range(len(QUINTILES)):
        above = above + (value > cuts.getItem(i)).cast("int")
    score = F.lit(1) + above if higher_is_better else F.lit(5) - above
    return F.when(value.isNotNull(), score)


def rfm_segments(features: DataFrame, feature_set: FeatureSet) -> DataFrame:
    """RFM scores and the named segment of every customer in ``features``.

    Parameters
    ----------
    features
        One row per customer: ``customer_id`` and the columns of :class:`FeatureSet`.

    Returns
    -------
    DataFrame
        ``customer_id``, ``recency_score``, ``frequency_score``, ``monetary_score``,
        ``rfm_segment``.
    """
    horizon = feature_set.horizon
    recency = F.col(DAYS_SINCE_LAST_PURCHASE)
    frequency = F.col(windowed("orders", horizon))
    monetary = F.col(windowed("revenue", horizon)).cast("double")
    buyers = features.where(frequency > 0)
    cuts = buyers.agg(
        F.percentile_approx(recency, QUINTILES, 10_000).alias("__r"),
        F.percentile_approx(frequency, QUINTILES, 10_000).alias("__f"),
        F.percentile_approx(monetary, QUINTILES, 10_000).alias("__m"),
    )
    bought = frequency > 0
    scored = features.crossJoin(F.broadcast(cuts)).select(
        c.CUSTOMER_ID,
        F.when(bought, quantile_score(recency, F.col("__r"), higher_is_better=False)).alias(
            c.RECENCY_SCORE
        ),
        F.when(bought, quantile_score(frequency, F.col("__f"), higher_is_better=True)).alias(
            c.FREQUENCY_SCORE
        ),
        F.when(bought, quantile_score(monetary, F.col("__m"), higher_is_better=True)).alias(
            c.MONETARY_SCORE
        ),
    )
    return scored.withColumn(c.RFM_SEGMENT, rfm_segment_name())


def rfm_segment_name() -> Column:
    """The named segment (:data:`RFM_RULES`) from the three scores; ``prospect`` without."""
    r, f, m = F.col(c.RECENCY_SCORE), F.col(c.FREQUENCY_SCORE), F.col(c.MONETARY_SCORE)
    fm = F.floor((f + m) / 2)
    conditions = {
        "champions": (r >= 4) & (fm >= 4),
        "new_customers": (r >= 4) & (f == 1),
        "loyal": (r >= 3) & (fm >= 3),
        "promising": r >= 4,
        "at_risk": (r <= 2) & (fm >= 3),
        "hibernating": r <= 2,
        "need_attention": F.lit(True),
    }
    name = F.when(r.isNull(), F.lit(PROSPECT))
    for segment, _ in RFM_RULES:
        name = name.when(conditions[segment], F.lit(segment))
    return name


def behaviour_inputs(feature_set: FeatureSet) -> list[Column]:
    """What KMeans clusters on: log-scaled engagement over the middle window, days since the
    last visit (capped at the horizon) and the category affinities."""
    window = sorted(feature_set.windows)[len(feature_set.windows) // 2]
    counts = ["sessions", "product_views", "searches", "add_to_carts", "orders"]
    engagement = [
        F.log1p(F.col(windowed(name, window)).cast("double")).alias(f"log_{name}")
        for name in counts
    ]
    visit = F.coalesce(F.col(DAYS_SINCE_LAST_VISIT), F.lit(feature_set.horizon)).cast("double")
    affinity = [
        F.coalesce(F.col(f"affinity_{cat}"), F.lit(0.0)).alias(f"affinity_{cat}")
        for cat in feature_set.top_categories
    ]
    return [*engagement, F.log1p(visit).alias("log_days_since_visit"), *affinity]


@dataclass(frozen=True)
class BehaviourSegmentation:
    """The chosen KMeans model and the silhouette of every k tried."""

    model: PipelineModel
    k: int
    silhouettes: dict[int, float]


def fit_behaviour_segments(
    features: DataFrame, feature_set: FeatureSet, conf: SegmentsConf
) -> BehaviourSegmentation:
    """Fit KMeans on standardised behaviour inputs for every k in the configured range (up to
    the number of distinct behaviours) and keep the k with the best silhouette (the smaller k
    on a tie); with fewer than two distinct behaviours everyone is segment 0 (k = 1, no
    silhouettes). Cache ``features`` first.

    k-means|| seeds its sampling per partition and sums per partition, so the fit depends on
    how the rows are partitioned and ordered. The inputs are laid out the same way everywhere
    (hash-partitioned by customer into as many partitions as the row count asks for, sorted
    within each), so a laptop and a cluster find the same segments.
    """
    inputs = fit_layout(
        features.select(c.CUSTOMER_ID, *behaviour_inputs(feature_set)),
        [c.CUSTOMER_ID],
        fit_partitions_for(features.count()),
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        return _fit_best_k(inputs, conf)
    finally:
        inputs.unpersist()


def _fit_best_k(inputs: DataFrame, conf: SegmentsConf) -> BehaviourSegmentation:
    names = [n for n in inputs.columns if n != c.CUSTOMER_ID]
    # k clusters need k different behaviours: a company without clickstream (everyone's
    # behaviour inputs are zeros) or a handful of customers has fewer.
    distinct = inputs.select(*names).distinct().limit(conf.kmeans_k_max + 1).count()
    if distinct < 2:
        single = SQLTransformer(statement=f"SELECT *, 0 AS {_CLUSTER} FROM __THIS__")
        return BehaviourSegmentation(
            model=Pipeline(stages=[single]).fit(inputs), k=1, silhouettes={}
        )
    # The scaling does not depend on k: fitted once, and its output (the same rows in the same
    # partitions as the pipeline of each k would compute) cached for every k's fit.
    prepare = Pipeline(
        stages=[
            VectorAssembler(inputCols=names, outputCol=_FEATURES),
            StandardScaler(inputCol=_FEATURES, outputCol=_SCALED, withMean=True, withStd=True),
        ]
    ).fit(inputs)
    scaled = prepare.transform(inputs).persist(StorageLevel.MEMORY_AND_DISK)
    evaluator = ClusteringEvaluator(featuresCol=_SCALED, predictionCol=_CLUSTER)
    silhouettes: dict[int, float] = {}
    best: tuple[float, int, PipelineModel] | None = None
    # Fewer distinct behaviours than kmeans_k_min (a small development extract) still get
    # segments: as many as there are behaviours, up to the configured minimum.
    k_min = min(conf.kmeans_k_min, distinct)
    try:
        for k in range(k_min, min(conf.kmeans_k_max, distinct) + 1):
            kmeans = KMeans(
                k=k,
                seed=conf.seed,
                maxIter=conf.kmeans_max_iter,
                featuresCol=_SCALED,
                predictionCol=_CLUSTER,
            ).fit(scaled)
            score = evaluator.evaluate(kmeans.transform(scaled))
            silhouettes[k] = score if math.isfinite(score) else float("nan")
            if math.isfinite(score) and (best is None or score > best[0]):
                best = (score, k, PipelineModel(stages=[*prepare.stages, kmeans]))
    finally:
        scaled.unpersist()
    if best is None:
        raise TrainingDataError(
            f"gold/customer_segments: k-means found no usable segmentation for k = {k_min} … "
            f"{min(conf.kmeans_k_max, distinct)} on {distinct} distinct behaviours (every "
            "silhouette was undefined); lower segments.kmeans_k_min or build features for "
            "more customers"
        )
    return BehaviourSegmentation(model=best[2], k=best[1], silhouettes=silhouettes)


def assign_behaviour_segments(
    features: DataFrame, feature_set: FeatureSet, segmentation: BehaviourSegmentation
) -> DataFrame:
    """``customer_id`` and ``behaviour_segment`` (the cluster index, 0 … k-1)."""
    inputs = features.select(c.CUSTOMER_ID, *behaviour_inputs(feature_set))
    return segmentation.model.transform(inputs).select(
        c.CUSTOMER_ID, F.col(_CLUSTER).cast("int").alias(c.BEHAVIOUR_SEGMENT)
    )

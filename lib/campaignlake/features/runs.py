"""The feature job's work: ``gold/customer_features`` and ``gold/customer_segments`` for one
as-of date, plus the segmentation's silhouette scores in ``gold/model_metrics``.

Each output is a slice per as-of date that a rerun replaces only when its content differs, so
rerunning a date whose inputs did not change commits nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.feature_set import FeatureSet, cutoff_of
from campaignlake.features.customer import customers_as_of, daily_features
from campaignlake.features.inputs import (
    FEATURE_INPUTS,
    REQUIRED_FEATURE_INPUTS,
    check_as_of,
    features_for,
    text_as_of,
)
from campaignlake.features.segments import (
    assign_behaviour_segments,
    fit_behaviour_segments,
    rfm_segments,
)
from campaignlake.frames import metrics_rows
from campaignlake.tables import Tables, WriteResult, describe_writes

log = logging.getLogger(__name__)

SEGMENTATION_MODEL = "behaviour_segments"


@dataclass
class FeatureReport:
    """What one ``build_features`` run computed and wrote."""

    as_of: date
    customers: int = 0
    chosen_k: int = 0
    silhouettes: dict[int, float] = field(default_factory=dict)
    segment_sizes: dict[str, int] = field(default_factory=dict)
    writes: dict[str, WriteResult] = field(default_factory=dict)

    def describe(self) -> str:
        """Customers, segment sizes, the chosen k and the writes, in one line."""
        tables = describe_writes(self.writes)
        sizes = ", ".join(f"{k}={v}" for k, v in sorted(self.segment_sizes.items()))
        scores = ", ".join(f"k={k}: {s:.3f}" for k, s in self.silhouettes.items())
        return (
            f"build_features {self.as_of}: {self.customers} customers; RFM segments: {sizes}; "
            f"KMeans k={self.chosen_k} (silhouette {scores}); tables: {tables}"
        )


def build_features(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    now: datetime | None = None,
) -> FeatureReport:
    """Compute and write the features and segments of every customer known on ``as_of``.

    Raises
    ------
    MissingInputError
        When the CRM tables do not exist yet, or ``as_of`` is after the newest ingested data.
    """
    feature_set = FeatureSet.from_conf(conf)
    tables.require(REQUIRED_FEATURE_INPUTS, "features")
    inputs = text_as_of({key: tables.read_or_empty(key) for key in FEATURE_INPUTS}, as_of)
    check_as_of(inputs, as_of)
    cutoffs = customers_as_of(inputs[catalog.CUSTOMER_HISTORY], cutoff_of(as_of))
    features = daily_features(features_for(cutoffs, inputs, feature_set), as_of).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    report = FeatureReport(as_of=as_of)
    try:
        report.customers = features.count()
        # Everything is computed before anything is written, so a failing step (a
        # segmentation that cannot fit) leaves no table half-updated for the date.
        segmentation = fit_behaviour_segments(features, feature_set, conf.segments)
        report.chosen_k, report.silhouettes = segmentation.k, segmentation.silhouettes
        segments = (
            rfm_segments(features, feature_set)
            .join(
                assign_behaviour_segments(features, feature_set, segmentation),
                on=c.CUSTOMER_ID,
                how="inner",
            )
            .withColumn(c.AS_OF_DATE, F.lit(as_of).cast("date"))
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        try:
            report.segment_sizes = {
                r[c.RFM_SEGMENT]: r["count"]
                for r in segments.groupBy(c.RFM_SEGMENT).count().collect()  # a few segments
            }
            slice_of_date = f"{c.AS_OF_DATE} = DATE'{as_of.isoformat()}'"
            report.writes[catalog.CUSTOMER_FEATURES] = tables.replace_slice(
                catalog.CUSTOMER_FEATURES, features, slice_of_date
            )
            report.writes[catalog.CUSTOMER_SEGMENTS] = tables.replace_slice(
                catalog.CUSTOMER_SEGMENTS, segments, slice_of_date
            )
        finally:
            segments.unpersist()
        metrics = segmentation_metrics(spark, segmentation.k, segmentation.silhouettes, as_of, now)
        report.writes[catalog.MODEL_METRICS] = tables.replace_slice(
            catalog.MODEL_METRICS,
            metrics,
            f"{c.MODEL_NAME} = '{SEGMENTATION_MODEL}' AND {c.MODEL_VERSION} = '{as_of}'",
            ignore=(c.CREATED_AT,),
        )
    finally:
        features.unpersist()
    return report


def segmentation_metrics(
    spark: SparkSession,
    k: int,
    silhouettes: dict[int, float],
    as_of: date,
    now: datetime | None,
) -> DataFrame:
    """Rows for ``gold/model_metrics``: the chosen k and the silhouette of every k tried; the
    model version is the as-of date."""
    created = now or datetime.now(timezone.utc)
    rows = [("chosen_k", float(k))] + [(f"silhouette_k{kk}", s) for kk, s in silhouettes.items()]
    return metrics_rows(
        spark, str(as_of), created, [(SEGMENTATION_MODEL, "all", m, v) for m, v in rows]
    )

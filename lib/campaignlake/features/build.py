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

from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.errors import MissingInputError
from campaignlake.features.customer import (
    FeatureSet,
    customer_features,
    customers_as_of,
    cutoff_of,
    daily_features,
)
from campaignlake.features.segments import (
    assign_behaviour_segments,
    fit_behaviour_segments,
    rfm_segments,
)
from campaignlake.models.evaluation import metrics_rows
from campaignlake.tables import Tables, WriteResult, describe_writes

log = logging.getLogger(__name__)

SEGMENTATION_MODEL = "behaviour_segments"
#: Tables the features read, and the job that writes each.
FEATURE_INPUTS = {
    "clickstream_events": "ingest_clickstream",
    "products": "ingest_products",
    "campaign_contacts": "ingest_campaigns",
    "customer_history": "ingest_crm",
    "deletion_requests": "ingest_crm",
}


@dataclass
class FeatureReport:
    as_of: date
    customers: int = 0
    chosen_k: int = 0
    silhouettes: dict[int, float] = field(default_factory=dict)
    segment_sizes: dict[str, int] = field(default_factory=dict)
    writes: dict[str, WriteResult] = field(default_factory=dict)

    def describe(self) -> str:
        tables = describe_writes(self.writes)
        sizes = ", ".join(f"{k}={v}" for k, v in sorted(self.segment_sizes.items()))
        scores = ", ".join(f"k={k}: {s:.3f}" for k, s in self.silhouettes.items())
        return (
            f"build_features {self.as_of}: {self.customers} customers; RFM segments: {sizes}; "
            f"KMeans k={self.chosen_k} (silhouette {scores}); tables: {tables}"
        )


def read_inputs(tables: Tables) -> dict[str, DataFrame]:
    """The feature inputs by table key; a missing table names the job that writes it."""
    tables.require(FEATURE_INPUTS, "features")
    return {key: tables.read(key) for key in FEATURE_INPUTS}


def features_for(
    cutoffs: DataFrame, inputs: dict[str, DataFrame], feature_set: FeatureSet
) -> DataFrame:
    """:func:`customer_features` over the tables read by :func:`read_inputs`."""
    return customer_features(
        cutoffs,
        events=inputs["clickstream_events"],
        products=inputs["products"],
        contacts=inputs["campaign_contacts"],
        history=inputs["customer_history"],
        deletion_requests=inputs["deletion_requests"],
        feature_set=feature_set,
    )


def features_of(tables: Tables, as_of: date) -> DataFrame:
    """The ``gold/customer_features`` rows of ``as_of``, for the jobs that use them.

    Raises
    ------
    MissingInputError
        When the table does not exist or has no rows for that date; the message says which
        job to run.
    """
    if tables.exists("customer_features"):
        features = tables.read("customer_features").where(F.col(c.AS_OF_DATE) == F.lit(as_of))
        if not features.isEmpty():
            return features
    raise MissingInputError(
        f"gold/customer_features has no rows for {as_of}: run jobs/build_features.py "
        f"--date {as_of} first"
    )


def build_features(
    spark: SparkSession,
    conf: Conf,
    tables: Tables | None = None,
    *,
    as_of: date,
    now: datetime | None = None,
) -> FeatureReport:
    """Compute and write the features and segments of every customer known on ``as_of``."""
    tables = tables or Tables(spark, conf)
    feature_set = FeatureSet.from_conf(conf)
    inputs = read_inputs(tables)
    cutoffs = customers_as_of(inputs["customer_history"], cutoff_of(as_of))
    features = daily_features(features_for(cutoffs, inputs, feature_set), as_of).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    report = FeatureReport(as_of=as_of)
    try:
        report.customers = features.count()
        slice_of_date = f"{c.AS_OF_DATE} = DATE'{as_of.isoformat()}'"
        report.writes["customer_features"] = tables.replace_slice(
            "customer_features", features, slice_of_date
        )
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
            report.writes["customer_segments"] = tables.replace_slice(
                "customer_segments", segments, slice_of_date
            )
        finally:
            segments.unpersist()
        metrics = segmentation_metrics(spark, segmentation.k, segmentation.silhouettes, as_of, now)
        report.writes["model_metrics"] = tables.replace_slice(
            "model_metrics",
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

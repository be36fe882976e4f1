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
#: The inputs without which there are no customers: CRM. A company without clickstream,
#: catalogue or campaign history still gets features (those parts are zeros and nulls).
REQUIRED_FEATURE_INPUTS = {
    key: FEATURE_INPUTS[key] for key in ("customer_history", "deletion_requests")
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


def read_inputs(tables: Tables, required: dict[str, str] | None = None) -> dict[str, DataFrame]:
    """The feature inputs by table key. The ``required`` ones (default: the CRM tables,
    :data:`REQUIRED_FEATURE_INPUTS`) must exist; an optional input that does not exist reads
    as empty.

    Raises
    ------
    MissingInputError
        When ``required`` tables do not exist; the message names every missing one and the
        job that writes it.
    """
    tables.require(REQUIRED_FEATURE_INPUTS if required is None else required, "features")
    return {
        key: tables.read(key)
        if tables.exists(key)
        else tables.spark.createDataFrame([], tables.spec(key).schema)
        for key in FEATURE_INPUTS
    }


def input_versions(tables: Tables) -> dict[str, int | None]:
    """The version of each feature input (``None`` for one that does not exist)."""
    return {key: tables.version(key) if tables.exists(key) else None for key in FEATURE_INPUTS}


def newest_data_date(inputs: dict[str, DataFrame]) -> date | None:
    """The day of the newest ingested record among events, CRM versions and contacts."""
    days = [
        inputs["clickstream_events"].agg(F.max(c.EVENT_DATE)),
        inputs["customer_history"].agg(F.to_date(F.max(c.UPDATED_AT))),
        inputs["campaign_contacts"].agg(F.to_date(F.max(c.SENT_AT))),
    ]
    found = [row[0] for frame in days for row in frame.collect() if row[0] is not None]
    return max(found) if found else None


def check_as_of(inputs: dict[str, DataFrame], as_of: date) -> None:
    """Refuse an as-of date after the newest ingested data: its features would describe a
    day nobody has data for (and a typo such as 2099 would write them).

    Raises
    ------
    MissingInputError
        Naming the date, the newest data and what to do.
    """
    newest = newest_data_date(inputs)
    if newest is None or as_of > newest:
        raise MissingInputError(
            f"--date {as_of} is after the newest ingested data "
            f"({newest or 'none'}): ingest that day's landing files first, or pass a date "
            f"on or before {newest or 'the first ingested day'}"
        )


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
    check_as_of(inputs, as_of)
    cutoffs = customers_as_of(inputs["customer_history"], cutoff_of(as_of))
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
            report.writes["customer_features"] = tables.replace_slice(
                "customer_features", features, slice_of_date
            )
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

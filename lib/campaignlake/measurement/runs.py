"""The measurement's table I/O: ``measure_campaigns`` reads every campaign whose attribution
window has closed, its treatment and control groups' behaviour in that window, and writes the
lift per campaign and breakdown cell to ``gold/campaign_results`` (one slice per date)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.feature_set import cutoff_of
from campaignlake.measurement.lift import ALL, MEASURED, group_totals, result_rows
from campaignlake.measurement.outcomes import (
    WINDOW_START,
    behaviour_outcomes,
    campaign_assignments,
)
from campaignlake.schemas import CAMPAIGN_RESULTS
from campaignlake.tables import Tables, WriteResult, describe_writes

#: The campaign history, the clickstream and the catalogue (purchases' categories); the
#: audiences add the campaigns built here.
MEASUREMENT_INPUTS = (catalog.CAMPAIGN_CONTACTS, catalog.CLICKSTREAM_EVENTS, catalog.PRODUCTS)


@dataclass
class MeasurementReport:
    """What one ``measure_campaigns`` run measured and wrote."""

    as_of: date
    #: The whole-campaign rows (breakdown ``all``), as dicts of ``gold/campaign_results``.
    campaigns: list[dict[str, Any]] = field(default_factory=list)
    cells: int = 0
    writes: dict[str, WriteResult] = field(default_factory=dict)

    def describe(self) -> str:
        """Each measured campaign's conversion lift with its interval, one line each."""
        lines = [
            f"measure_campaigns {self.as_of}: {len(self.campaigns)} campaigns with a closed "
            f"window, {self.cells} result rows; {describe_writes(self.writes)}"
        ]
        lines += [describe_result(r) for r in self.campaigns]
        return "\n".join(lines)


def describe_result(row: dict[str, Any]) -> str:
    """One campaign's lift in one line: sizes, rates, lift, interval, p-value."""
    head = (
        f"   {row[c.CAMPAIGN_ID]}: treatment {row[c.TREATMENT_CUSTOMERS]}, "
        f"control {row[c.CONTROL_CUSTOMERS]}"
    )
    if row[c.STATUS] != MEASURED:
        return f"{head}: not measured ({row[c.STATUS]})"
    verdict = "significant" if row[c.SIGNIFICANT] else "not significant"
    return (
        f"{head}; conversion {row[c.TREATMENT_RATE]:.2%} vs {row[c.CONTROL_RATE]:.2%}: "
        f"lift {row[c.CONVERSION_LIFT] * 100:+.2f} pp "
        f"[{row[c.CONVERSION_CI_LOW] * 100:+.2f}, {row[c.CONVERSION_CI_HIGH] * 100:+.2f}], "
        f"p={row[c.CONVERSION_P_VALUE]:.3f} ({verdict}); revenue/customer "
        f"{row[c.REVENUE_LIFT]:+.2f} "
        f"[{row[c.REVENUE_CI_LOW]:+.2f}, {row[c.REVENUE_CI_HIGH]:+.2f}]; "
        f"smallest detectable lift {row[c.MIN_DETECTABLE_LIFT] * 100:.2f} pp"
    )


def campaign_outcomes(conf: Conf, tables: Tables, as_of: date) -> DataFrame:
    """Every audience member of the campaigns whose window closed by the end of ``as_of``
    (and not more than ``measurement.max_age_days`` before), with the segment at the send."""
    tables.require(MEASUREMENT_INPUTS, "measuring campaigns")
    closed_by = cutoff_of(as_of)
    audiences = (
        tables.read(catalog.CAMPAIGN_AUDIENCES)
        if tables.exists(catalog.CAMPAIGN_AUDIENCES)
        else None
    )
    oldest = closed_by - timedelta(days=conf.measurement.max_age_days)
    assignments = campaign_assignments(
        tables.read(catalog.CAMPAIGN_CONTACTS),
        audiences,
        attribution_days=conf.response_model.attribution_days,
        closed_by=closed_by,
        category_pattern=conf.response_model.campaign_category_pattern,
    ).where(F.col(c.WINDOW_END) > F.lit(oldest))
    return with_segments_at_send(assignments, tables)


def with_segments_at_send(assignments: DataFrame, tables: Tables) -> DataFrame:
    """Fill a missing ``rfm_segment`` with the customer's segment of the latest
    ``gold/customer_segments`` date before the campaign's window started (never one after:
    the campaign itself moves customers between segments)."""
    if not tables.exists(catalog.CUSTOMER_SEGMENTS):
        return assignments
    segments = tables.read(catalog.CUSTOMER_SEGMENTS).select(
        F.col(c.CUSTOMER_ID).alias("__customer"),
        F.col(c.RFM_SEGMENT).alias("__segment"),
        F.col(c.AS_OF_DATE).alias("__day"),
    )
    before = (F.col("__customer") == F.col(c.CUSTOMER_ID)) & (
        F.col("__day") < F.to_date(WINDOW_START)
    )
    keys = [c.CAMPAIGN_ID, c.CUSTOMER_ID]
    latest = (
        assignments.select(*keys, WINDOW_START)
        .join(segments, before, "inner")
        .groupBy(*keys)
        .agg(F.max_by("__segment", "__day").alias("__segment"))
    )
    return (
        assignments.join(latest, keys, "left")
        .withColumn(c.RFM_SEGMENT, F.coalesce(F.col(c.RFM_SEGMENT), F.col("__segment")))
        .drop("__segment")
    )


def measure_campaigns(
    spark: SparkSession, conf: Conf, tables: Tables, *, as_of: date
) -> MeasurementReport:
    """Measure every campaign whose attribution window closed by ``as_of`` into the
    ``as_of`` slice of ``gold/campaign_results`` (a rerun with the same inputs commits
    nothing).

    Raises
    ------
    MissingInputError
        When the campaign history or the clickstream has not been ingested.
    """
    settings = conf.measurement
    outcomes = behaviour_outcomes(
        campaign_outcomes(conf, tables, as_of),
        tables.read(catalog.CLICKSTREAM_EVENTS),
        tables.read(catalog.PRODUCTS),
        category_only=settings.outcome == "category_purchase",
    )
    totals = [
        r.asDict()
        # A handful of rows per campaign: two groups per breakdown cell.
        for r in group_totals(outcomes, tuple(settings.breakdowns)).collect()
    ]
    rows = result_rows(
        totals,
        min_group_size=settings.min_group_size,
        confidence=settings.confidence,
        power=settings.power,
    )
    results = results_frame(spark, rows, as_of).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        report = MeasurementReport(as_of=as_of, cells=len(rows))
        report.campaigns = [r for r in rows if r[c.BREAKDOWN] == ALL]
        report.writes[catalog.CAMPAIGN_RESULTS] = tables.replace_slice(
            catalog.CAMPAIGN_RESULTS, results, f"{c.AS_OF_DATE} = DATE'{as_of.isoformat()}'"
        )
        return report
    finally:
        results.unpersist()


def results_frame(spark: SparkSession, rows: list[dict[str, Any]], as_of: date) -> DataFrame:
    """``gold/campaign_results`` rows of ``as_of`` (NaN statistics stored as null)."""

    def value(row: dict[str, Any], name: str) -> Any:
        v = row.get(name)
        return None if isinstance(v, float) and math.isnan(v) else v

    names = CAMPAIGN_RESULTS.fieldNames()
    data = [tuple(value({**r, c.AS_OF_DATE: as_of}, n) for n in names) for r in rows]
    return spark.createDataFrame(data, CAMPAIGN_RESULTS)

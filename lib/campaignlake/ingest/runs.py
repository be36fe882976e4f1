"""One function per ingestion job: landing files → checked rows → Delta tables.

They share one shape (:func:`_ingest`): open the batch of new files, parse and check them,
write the quarantine first (so a failing batch can be inspected), stop if too many records
were rejected, write the target table, close the batch. Every write is idempotent per batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.errors import RejectRateExceededError
from campaignlake.ingest import clickstream as cs
from campaignlake.ingest import csv_sources as csv
from campaignlake.ingest.batch import Batch, close_batch, list_landing_files, open_batch
from campaignlake.ingest.quarantine import DUPLICATE, FIELD_NULLED, REJECTED, SUPERSEDED
from campaignlake.pii import resolve_hmac_key
from campaignlake.tables import Tables, WriteResult, describe_writes

log = logging.getLogger(__name__)


@contextmanager
def _step(job: str, name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    log.info("%s: %s took %.1fs", job, name, time.perf_counter() - started)


@dataclass
class IngestReport:
    """What one ingestion run did, for people and for the pipeline's run report."""

    job: str
    batch_id: str | None = None
    files: int = 0
    records: int = 0
    accepted: int = 0
    by_disposition: dict[str, int] = field(default_factory=dict)
    by_reason: dict[str, int] = field(default_factory=dict)
    writes: dict[str, WriteResult] = field(default_factory=dict)

    @property
    def rejected(self) -> int:
        return self.by_disposition.get(REJECTED, 0)

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.records if self.records else 0.0

    def describe(self) -> str:
        if self.batch_id is None:
            return f"{self.job}: no new landing files, nothing written"
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.by_reason.items())) or "none"
        versions = describe_writes(self.writes)
        return (
            f"{self.job} {self.batch_id}: {self.files} files, {self.records} records, "
            f"{self.accepted} accepted, {self.rejected} rejected "
            f"({self.reject_rate:.2%}), duplicates {self.by_disposition.get(DUPLICATE, 0)}, "
            f"superseded {self.by_disposition.get(SUPERSEDED, 0)}, "
            f"fields nulled {self.by_disposition.get(FIELD_NULLED, 0)}; reasons: {reasons}; "
            f"tables: {versions}"
        )


@dataclass(frozen=True)
class _Plan:
    """How one job turns a batch into rows."""

    job: str
    subdir: str
    pattern: str
    target: str
    quarantine: str
    #: batch → parsed rows with ``reason``.
    parse: Callable[[Batch], DataFrame]
    #: (parsed rows, materialise) → rows with duplicate or superseded reasons added;
    #: ``materialise`` caches a frame for the rest of the run.
    refine: Callable[[DataFrame, Callable[[DataFrame], DataFrame]], DataFrame]
    to_target: Callable[[DataFrame, Batch], DataFrame]
    to_quarantine: Callable[[DataFrame, Batch], DataFrame]
    write: Callable[[Tables, DataFrame, Batch], WriteResult]
    #: An append-only table of every valid version (point-in-time reads), and its rows.
    history: str | None = None
    to_history: Callable[[DataFrame, Batch], DataFrame] | None = None


def _ingest(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    plan: _Plan,
    as_of: date | None,
    now: datetime | None,
) -> IngestReport:
    report = IngestReport(job=plan.job)
    landing = f"{conf.paths.landing.rstrip('/')}/{plan.subdir}"
    with _step(plan.job, "open batch"):
        listed = list_landing_files(spark, landing, plan.pattern, as_of)
        batch = open_batch(tables, plan.job, listed, now)
    if batch is None:
        return report
    report.batch_id, report.files = batch.batch_id, len(batch.files)
    tables.ensure(plan.target)
    tables.ensure(plan.quarantine)
    cached: list[DataFrame] = []

    def keep(df: DataFrame) -> DataFrame:
        """Cache ``df`` for this run, filled by the first job that reads it."""
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(df)
        return df

    def materialise(df: DataFrame) -> DataFrame:
        """Cache ``df`` for this run and compute it now; released when the run ends."""
        df = keep(df)
        df.count()
        return df

    try:
        # The cache is a barrier: without it the optimizer pushes every later filter on
        # `reason` into the parsing projection and parses each line once per consumer. It is
        # filled by the first job that needs the parsed rows (the duplicate search or the
        # quarantine), not by a pass of its own.
        parsed = keep(plan.parse(batch))
        with _step(plan.job, "parse and refine"):
            refined = plan.refine(parsed, materialise)
        with _step(plan.job, "quarantine rows"):
            # Rejects are few: kept in memory, they are counted and written without another
            # pass over the batch.
            quarantine = materialise(plan.to_quarantine(refined, batch))
        with _step(plan.job, "count"):
            _count(report, parsed, quarantine)
        with _step(plan.job, "write quarantine"):
            report.writes[plan.quarantine] = tables.append(
                plan.quarantine, quarantine, txn=batch.txn(plan.quarantine)
            )
        limit = conf.ingest.max_reject_rate
        if report.reject_rate > limit:
            raise RejectRateExceededError(_reject_message(report, quarantine, limit))
        with _step(plan.job, f"write {plan.target}"):
            report.writes[plan.target] = plan.write(tables, plan.to_target(refined, batch), batch)
        if plan.history and plan.to_history:
            with _step(plan.job, f"write {plan.history}"):
                report.writes[plan.history] = tables.append(
                    plan.history, plan.to_history(refined, batch), txn=batch.txn(plan.history)
                )
        with _step(plan.job, "close batch"):
            close_batch(tables, batch)
    finally:
        for df in cached:
            df.unpersist()
    return report


def _count(report: IngestReport, parsed: DataFrame, quarantine: DataFrame) -> None:
    """Fill the report's counts. Every record that was not accepted has exactly one quarantine
    row; a ``field_nulled`` row belongs to a record that was accepted without that field."""
    report.records = parsed.count()
    for row in quarantine.groupBy(c.DISPOSITION, c.REASON).count().collect():  # a few reasons
        report.by_disposition[row[c.DISPOSITION]] = (
            report.by_disposition.get(row[c.DISPOSITION], 0) + row["count"]
        )
        report.by_reason[row[c.REASON]] = report.by_reason.get(row[c.REASON], 0) + row["count"]
    not_accepted = sum(n for d, n in report.by_disposition.items() if d != FIELD_NULLED)
    report.accepted = report.records - not_accepted


def _reject_message(report: IngestReport, quarantine: DataFrame, limit: float) -> str:
    worst = (
        quarantine.where(F.col(c.DISPOSITION) == REJECTED)
        .groupBy(c.SOURCE_FILE, c.REASON)
        .count()
        .orderBy(F.desc("count"), c.SOURCE_FILE)
        .limit(5)
        .collect()
    )
    detail = "; ".join(f"{r[c.SOURCE_FILE]}: {r['count']} x {r[c.REASON]}" for r in worst)
    return (
        f"{report.job} {report.batch_id}: {report.rejected} of {report.records} records rejected "
        f"({report.reject_rate:.2%}) which is above ingest.max_reject_rate {limit:.2%}; "
        f"nothing was written to the target table, the rejects are in quarantine. Worst: {detail}"
    )


def ingest_clickstream(
    spark: SparkSession,
    conf: Conf,
    tables: Tables | None = None,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Clickstream JSON lines (``landing/clickstream/**.jsonl``) → ``bronze/clickstream_events``,
    deduplicated by event_id within the batch and against the table."""
    tables = tables or Tables(spark, conf)
    min_ts = datetime.fromisoformat(conf.ingest.min_event_ts.replace("Z", "+00:00"))
    pattern = "*.jsonl"

    def parse(batch: Batch) -> DataFrame:
        rules = cs.ClickstreamRules(batch.ingested_at, conf.ingest.max_future_skew_hours, min_ts)
        lines = cs.read_lines(spark, list(batch.files))
        return cs.parse_events(lines, rules)

    def refine(parsed: DataFrame, materialise: Callable[[DataFrame], DataFrame]) -> DataFrame:
        existing = tables.read("clickstream_events").select(c.EVENT_ID)
        # Materialised, their real (small) sizes let Spark broadcast them instead of
        # shuffling every event to join them.
        repeated = materialise(cs.repeated_ids(parsed))
        duplicates = materialise(cs.duplicate_ids(parsed, repeated, existing))
        return cs.mark_duplicates(parsed, duplicates)

    return _ingest(
        spark,
        conf,
        tables,
        _Plan(
            job="ingest_clickstream",
            subdir="clickstream",
            pattern=pattern,
            target="clickstream_events",
            quarantine="clickstream_quarantine",
            parse=parse,
            refine=refine,
            to_target=lambda p, b: cs.to_bronze(p, b.batch_id, b.ingested_at),
            to_quarantine=lambda p, b: cs.to_clickstream_quarantine(p, b.batch_id, b.ingested_at),
            write=lambda t, df, b: t.append(
                "clickstream_events", df, txn=b.txn("clickstream_events")
            ),
        ),
        as_of,
        now,
    )


@dataclass(frozen=True)
class CsvSource:
    """One CSV export and the silver table it feeds: the data that makes a CSV ingestion job."""

    job: str
    subdir: str
    pattern: str
    target: str
    quarantine: str
    fields: tuple[str, ...]
    parse: Callable[[DataFrame, csv.CsvRules], DataFrame]
    keys: tuple[str, ...]
    #: Among rows sharing a key within a batch, the row first by these columns wins: the
    #: highest values when ``latest_wins``, else the lowest.
    winner_order: tuple[str, ...]
    latest_wins: bool
    #: When a row replaces the table's row for the same key (aliases s and t).
    update_condition: str
    #: The append-only table that keeps every valid version, if any.
    history: str | None = None

    def winner_first(self) -> list[Column]:
        return [
            F.col(n).desc_nulls_last() if self.latest_wins else F.col(n).asc_nulls_last()
            for n in self.winner_order
        ]


PRODUCTS_SOURCE = CsvSource(
    job="ingest_products",
    subdir="products",
    pattern="products_*.csv",
    target="products",
    quarantine="products_quarantine",
    fields=csv.PRODUCT_FIELDS,
    parse=csv.parse_products,
    keys=(c.PRODUCT_ID,),
    winner_order=(c.EXPORT_DATE, c.SOURCE_FILE),
    latest_wins=True,
    update_condition=f"s.{c.EXPORT_DATE} > t.{c.EXPORT_DATE}",
)
CAMPAIGN_HISTORY_SOURCE = CsvSource(
    job="ingest_campaigns",
    subdir="campaigns",
    pattern="campaign_history_*.csv",
    target="campaign_contacts",
    quarantine="campaign_contacts_quarantine",
    fields=csv.CAMPAIGN_FIELDS,
    parse=csv.parse_campaign_contacts,
    keys=(c.CAMPAIGN_ID, c.CUSTOMER_ID),
    winner_order=(c.EXPORT_DATE, c.SOURCE_FILE),
    latest_wins=True,
    update_condition=f"s.{c.EXPORT_DATE} > t.{c.EXPORT_DATE}",
)
DELETION_REQUESTS_SOURCE = CsvSource(
    job="ingest_deletion_requests",
    subdir="crm",
    pattern="deletion_requests_*.csv",
    target="deletion_requests",
    quarantine="customers_quarantine",
    fields=csv.DELETION_FIELDS,
    parse=csv.parse_deletion_requests,
    keys=(c.CUSTOMER_ID,),
    # The earliest request per customer counts: erasure deadlines run from it.
    winner_order=(c.REQUESTED_AT, c.SOURCE_FILE),
    latest_wins=False,
    update_condition=f"s.{c.REQUESTED_AT} < t.{c.REQUESTED_AT}",
)


def customers_source(hmac_key: bytes, attributes: tuple[tuple[str, str], ...] = ()) -> CsvSource:
    """CRM customer exports, with the declared extra ``attributes`` columns after the
    contract's; the pseudonymisation key is bound at run time, never stored."""
    return CsvSource(
        job="ingest_crm",
        subdir="crm",
        pattern="customers_*.csv",
        target="customers",
        quarantine="customers_quarantine",
        fields=csv.CUSTOMER_FIELDS + tuple(name for name, _ in attributes),
        parse=lambda raw, rules: csv.parse_customers(raw, rules, hmac_key, attributes),
        history="customer_history",
        keys=(c.CUSTOMER_ID,),
        winner_order=(c.UPDATED_AT, c.SOURCE_FILE),
        latest_wins=True,
        update_condition=f"s.{c.UPDATED_AT} > t.{c.UPDATED_AT}",
    )


def _csv_rules(conf: Conf, batch: Batch) -> csv.CsvRules:
    return csv.CsvRules(
        ingested_at=batch.ingested_at,
        max_future_skew_hours=conf.ingest.max_future_skew_hours,
        loyalty_tiers=tuple(conf.ingest.loyalty_tiers),
        channels=tuple(conf.ingest.channels),
        countries=tuple(conf.ingest.valid_countries),
    )


def ingest_csv(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    source: CsvSource,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Ingest the new files of one CSV export into its silver table (upsert by key)."""
    schema = tables.spec(source.target).schema
    keys = list(source.keys)

    def parse_batch(batch: Batch) -> DataFrame:
        raw = csv.read_csv_records(spark, list(batch.files), source.fields)
        return source.parse(raw, _csv_rules(conf, batch))

    plan = _Plan(
        job=source.job,
        subdir=source.subdir,
        pattern=source.pattern,
        target=source.target,
        quarantine=source.quarantine,
        parse=parse_batch,
        refine=lambda parsed, _: csv.mark_superseded(parsed, keys, source.winner_first()),
        to_target=lambda p, b: csv.to_silver(p, schema, b.batch_id, b.ingested_at),
        to_quarantine=lambda p, b: csv.to_csv_quarantine(
            p, F.concat_ws("|", *[F.col(k) for k in keys]), b.batch_id, b.ingested_at
        ),
        write=lambda t, df, b: t.upsert(
            source.target,
            df,
            keys,
            update_condition=source.update_condition,
            txn=b.txn(source.target),
        ),
        history=source.history,
        to_history=lambda p, b: csv.to_history(p, schema, b.batch_id, b.ingested_at),
    )
    return _ingest(spark, conf, tables, plan, as_of, now)


def ingest_crm(
    spark: SparkSession,
    conf: Conf,
    tables: Tables | None = None,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> list[IngestReport]:
    """CRM exports (``landing/crm/customers_*.csv``) → ``silver/customers`` (newest
    ``updated_at`` wins, emails pseudonymised), and deletion requests
    (``landing/crm/deletion_requests_*.csv``) → ``silver/deletion_requests`` (the earliest
    request per customer is kept, for the erasure job). Every valid customer version, older
    ones included, is appended to ``silver/customer_history`` for point-in-time features."""
    tables = tables or Tables(spark, conf)
    attributes = tuple((a.name, a.kind) for a in conf.ingest.crm_attributes)
    customers = customers_source(resolve_hmac_key(conf.pii), attributes)
    return [
        ingest_csv(spark, conf, tables, source, as_of=as_of, now=now)
        for source in (customers, DELETION_REQUESTS_SOURCE)
    ]


def ingest_products(
    spark: SparkSession,
    conf: Conf,
    tables: Tables | None = None,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Products catalog exports (``landing/products/products_*.csv``) → ``silver/products``;
    a later export date wins."""
    tables = tables or Tables(spark, conf)
    return ingest_csv(spark, conf, tables, PRODUCTS_SOURCE, as_of=as_of, now=now)


def ingest_campaigns(
    spark: SparkSession,
    conf: Conf,
    tables: Tables | None = None,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Campaign history exports (``landing/campaigns/campaign_history_*.csv``) →
    ``silver/campaign_contacts``, one row per (campaign, customer); a later export wins."""
    tables = tables or Tables(spark, conf)
    return ingest_csv(spark, conf, tables, CAMPAIGN_HISTORY_SOURCE, as_of=as_of, now=now)

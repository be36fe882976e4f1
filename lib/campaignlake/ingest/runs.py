"""One function per ingestion job: landing files → checked rows → Delta tables.

They share one shape (:func:`_ingest`): open the batch of new files, parse and check them,
write the quarantine first (so a failing batch can be inspected), stop if too many records
were rejected, write the target table, close the batch. Every write is idempotent per batch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.errors import RejectRateExceededError
from campaignlake.ingest import clickstream as cs
from campaignlake.ingest import csv_sources as csv
from campaignlake.ingest.batch import (
    BAD_HEADER,
    COMMITTED,
    FILE_MISSING,
    MISSING_SIZE,
    PLANNED,
    UNRECOGNISED_FILE_NAME,
    Batch,
    LandingFile,
    classify,
    file_date,
    landing_root,
    list_landing_files,
    relative_to,
)
from campaignlake.ingest.quarantine import (
    DUPLICATE,
    FIELD_NULLED,
    REJECTED,
    SUPERSEDED,
    drop_erased,
    erased_customer_ids,
    file_quarantine,
)
from campaignlake.pii import hmac_key_frame, resolve_hmac_key
from campaignlake.schemas import INGEST_BATCHES
from campaignlake.tables import Tables, Txn, WriteResult, describe_writes

log = logging.getLogger(__name__)


@contextmanager
def _step(job: str, name: str) -> Iterator[None]:
    started = time.perf_counter()
    yield
    log.info("%s: %s took %.1fs", job, name, time.perf_counter() - started)


def open_batch(
    tables: Tables,
    job: str,
    root: str,
    candidates: Sequence[LandingFile],
    as_of: date | None = None,
    now: datetime | None = None,
) -> Batch | None:
    """The batch this run must ingest: an unfinished one, else the ``candidates`` (paths
    relative to ``root``) that are new or whose size changed since they were recorded;
    ``None`` when there is nothing to do (and nothing is written). With ``as_of``, files whose
    path carries a later date wait."""
    tables.ensure(catalog.INGEST_BATCHES)
    log = tables.read(catalog.INGEST_BATCHES).where(F.col(c.JOB) == job)
    committed = log.where(F.col(c.STATUS) == COMMITTED).select(c.BATCH_SEQ).distinct()
    unfinished = (
        log.where(F.col(c.STATUS) == PLANNED)
        .join(committed, on=c.BATCH_SEQ, how="left_anti")
        .orderBy(c.BATCH_SEQ, c.SOURCE_FILE)
        .select(c.BATCH_SEQ, c.SOURCE_FILE, c.FILE_SIZE, c.FILE_REASON, c.RECORDED_AT)
        .collect()  # file names of one batch: metadata, not data
    )
    recorded = {
        r[c.SOURCE_FILE]: r[c.FILE_SIZE]
        for r in (
            log.where(F.col(c.STATUS) == COMMITTED)
            .groupBy(c.SOURCE_FILE)
            .agg(F.max_by(c.FILE_SIZE, F.struct(c.BATCH_SEQ, c.RECORDED_AT)).alias(c.FILE_SIZE))
            .collect()  # one row per landing file: metadata
        )
    }
    if unfinished:
        seq = unfinished[0][c.BATCH_SEQ]
        entries = tuple(
            LandingFile(r[c.SOURCE_FILE], r[c.FILE_SIZE], reason=r[c.FILE_REASON])
            for r in unfinished
            if r[c.BATCH_SEQ] == seq
        )
        started = unfinished[0][c.RECORDED_AT].astimezone(timezone.utc)
        retaken = tuple(e.path for e in entries if e.reason is None and e.path in recorded)
        return Batch(job, seq, root, entries, started, retaken)
    due = [
        entry
        for entry in sorted(candidates, key=lambda e: e.path)
        if recorded.get(entry.path) != entry.size
        and (as_of is None or entry.reason or (file_date(entry.path) or as_of) <= as_of)
    ]
    if not due:
        return None
    last = log.agg(F.max(c.BATCH_SEQ)).first()[0]
    seq = (last or 0) + 1
    ingested_at = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    retaken = tuple(e.path for e in due if e.reason is None and e.path in recorded)
    batch = Batch(job, seq, root, tuple(due), ingested_at, retaken)
    planned = tables.spark.createDataFrame(
        [(job, seq, e.path, e.size, e.modified_at, e.reason, PLANNED, ingested_at) for e in due],
        INGEST_BATCHES,
    )
    tables.append(catalog.INGEST_BATCHES, planned, txn=Txn(f"campaignlake.{job}.plan", seq))
    return batch


def batch_txn(batch: Batch, table_key: str) -> Txn:
    """The idempotency token for ``batch``'s write to ``table_key``."""
    return Txn(app_id=f"campaignlake.{batch.job}.{table_key}", version=batch.seq)


def close_batch(tables: Tables, batch: Batch, missing: Sequence[str] = ()) -> None:
    """Record ``batch`` as committed: its files count as ingested from now on, except the
    ``missing`` ones (full paths), recorded with no size so that they are taken again if they
    reappear."""
    gone = [batch.relative(path) for path in missing]
    done = (
        tables.read(catalog.INGEST_BATCHES)
        .where((F.col(c.JOB) == batch.job) & (F.col(c.BATCH_SEQ) == batch.seq))
        .where(F.col(c.STATUS) == PLANNED)
        .withColumn(c.STATUS, F.lit(COMMITTED))
        .withColumn(
            c.FILE_SIZE,
            F.when(F.col(c.SOURCE_FILE).isin(gone), F.lit(MISSING_SIZE)).otherwise(
                F.col(c.FILE_SIZE)
            ),
        )
        .withColumn(
            c.FILE_REASON,
            F.when(F.col(c.SOURCE_FILE).isin(gone), F.lit(FILE_MISSING)).otherwise(
                F.col(c.FILE_REASON)
            ),
        )
        .withColumn(c.RECORDED_AT, F.lit(datetime.now(timezone.utc)).cast("timestamp"))
    )
    tables.append(
        catalog.INGEST_BATCHES, done, txn=Txn(f"campaignlake.{batch.job}.commit", batch.seq)
    )


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
    #: (landing file, reason) of the files recorded but not read: unrecognised names, missing
    #: files, bad headers. Each also has a quarantine row.
    file_issues: list[tuple[str, str]] = field(default_factory=list)
    #: Files taken again because their size changed after they were ingested.
    changed_files: list[str] = field(default_factory=list)
    #: Anything else a person should know (an absent landing folder).
    notes: list[str] = field(default_factory=list)

    @property
    def rejected(self) -> int:
        """Records not accepted."""
        return self.by_disposition.get(REJECTED, 0)

    @property
    def reject_rate(self) -> float:
        """The share of the batch's records that were not accepted."""
        return self.rejected / self.records if self.records else 0.0

    def describe(self) -> str:
        """Counts, reasons, file issues and writes, for the job's output."""
        notes = "".join(f"; {note}" for note in self.notes)
        if self.batch_id is None:
            return f"{self.job}: no new landing files, nothing written{notes}"
        reasons = ", ".join(f"{k}={v}" for k, v in sorted(self.by_reason.items())) or "none"
        versions = describe_writes(self.writes)
        return (
            f"{self.job} {self.batch_id}: {self.files} files, {self.records} records, "
            f"{self.accepted} accepted, {self.rejected} rejected "
            f"({self.reject_rate:.2%}), duplicates {self.by_disposition.get(DUPLICATE, 0)}, "
            f"superseded {self.by_disposition.get(SUPERSEDED, 0)}, "
            f"fields nulled {self.by_disposition.get(FIELD_NULLED, 0)}; reasons: {reasons}; "
            f"tables: {versions}{notes}{self._files_line()}"
        )

    def _files_line(self) -> str:
        lines = [f"\n   changed since ingested, taken again: {path}" for path in self.changed_files]
        for path, reason in self.file_issues:
            hint = _FILE_HINTS.get(reason, "")
            lines.append(f"\n   file not read ({reason}): {path}{hint}")
        return "".join(lines)


_FILE_HINTS = {
    UNRECOGNISED_FILE_NAME: " (rename it to a name the source expects to have it ingested)",
    FILE_MISSING: " (it was listed but has gone; put it back and the next run ingests it)",
    BAD_HEADER: " (fix the header line; a corrected file is ingested by the next run)",
}


@dataclass(frozen=True)
class _Plan:
    """How one job turns a batch into rows."""

    job: str
    subdir: str
    #: Regular expressions of the file names this job takes (``.gz`` variants included).
    patterns: tuple[str, ...]
    target: str
    quarantine: str
    #: (batch, readable files) → parsed rows with ``reason``, and the files that were not
    #: read because their header is wrong.
    parse: Callable[[Batch, list[str]], tuple[DataFrame, list[str]]]
    #: (parsed rows, materialise, batch) → rows with duplicate or superseded reasons added;
    #: ``materialise`` caches a frame for the rest of the run.
    refine: Callable[[DataFrame, Callable[[DataFrame], DataFrame], Batch], DataFrame]
    to_target: Callable[[DataFrame, Batch], DataFrame]
    to_quarantine: Callable[[DataFrame, Batch], DataFrame]
    write: Callable[[Tables, DataFrame, Batch], WriteResult]
    #: A table of every valid version (point-in-time reads), its rows and their key.
    history: str | None = None
    to_history: Callable[[DataFrame, Batch], DataFrame] | None = None
    history_keys: tuple[str, ...] = ()


class _RunCache:
    """The DataFrames one ingestion run caches, released together when it ends."""

    def __init__(self) -> None:
        self._frames: list[DataFrame] = []

    def keep(self, df: DataFrame) -> DataFrame:
        """Cache ``df`` for this run, filled by the first job that reads it."""
        df = df.persist(StorageLevel.MEMORY_AND_DISK)
        self._frames.append(df)
        return df

    def materialise(self, df: DataFrame) -> DataFrame:
        """Cache ``df`` for this run and compute it now."""
        df = self.keep(df)
        df.count()
        return df

    def release(self) -> None:
        """Unpersist everything this run cached."""
        for df in self._frames:
            df.unpersist()


def _ingest(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    plan: _Plan,
    as_of: date | None,
    now: datetime | None,
) -> IngestReport:
    report = IngestReport(job=plan.job)
    root = landing_root(spark, conf.paths.landing)
    folder = f"{conf.paths.landing.rstrip('/')}/{plan.subdir}"
    tables.ensure(plan.target)
    tables.ensure(plan.quarantine)
    if plan.history:
        tables.ensure(plan.history)
    with _step(plan.job, "open batch"):
        listed = [
            LandingFile(relative_to(root, r[c.SOURCE_FILE]), r[c.FILE_SIZE], r[c.FILE_MODIFIED_AT])
            for r in list_landing_files(spark, folder).collect()  # file metadata, not data
        ]
        if not listed:
            report.notes.append(f"no landing files under {folder}")
        siblings = LANDING_FOLDERS.get(plan.subdir, plan.patterns)
        candidates = classify(
            listed,
            plan.patterns,
            [p for p in siblings if p not in plan.patterns],
            reports_unrecognised=plan.patterns[0] == siblings[0],
        )
        batch = open_batch(tables, plan.job, root, candidates, as_of, now)
    if batch is None:
        return report
    report.batch_id, report.files = batch.batch_id, len(batch.entries)
    present = {entry.path for entry in listed}
    missing = [f for f in batch.files if batch.relative(f) not in present]
    report.changed_files = sorted(batch.retaken)
    cache = _RunCache()
    keep, materialise = cache.keep, cache.materialise

    try:
        # The cache is a barrier: without it the optimizer pushes every later filter on
        # `reason` into the parsing projection and parses each line once per consumer. It is
        # filled by the first job that needs the parsed rows (the duplicate search or the
        # quarantine), not by a pass of its own.
        readable = [f for f in batch.files if f not in missing]
        parsed_rows, bad_headers = plan.parse(batch, readable)
        parsed = keep(parsed_rows)
        report.file_issues = sorted(
            [(batch.relative(f), reason) for f, reason in batch.rejected_files]
            + [(batch.relative(f), FILE_MISSING) for f in missing]
            + [(batch.relative(f), BAD_HEADER) for f in bad_headers]
        )
        with _step(plan.job, "parse and refine"):
            refined = plan.refine(parsed, materialise, batch)
        with _step(plan.job, "quarantine rows"):
            # Rejects are few: kept in memory, they are counted and written without another
            # pass over the batch.
            quarantine = materialise(plan.to_quarantine(refined, batch))
        with _step(plan.job, "count"):
            _count(report, parsed, quarantine)
        with _step(plan.job, "write quarantine"):
            if report.by_disposition or report.file_issues:
                files = file_quarantine(
                    spark, report.file_issues, batch.batch_id, batch.ingested_at
                )
                report.writes[plan.quarantine] = tables.append(
                    plan.quarantine,
                    quarantine.unionByName(files),
                    txn=batch_txn(batch, plan.quarantine),
                )
            else:
                report.writes[plan.quarantine] = _nothing_quarantined(tables, plan.quarantine)
        limit = conf.ingest.max_reject_rate
        if report.reject_rate > limit:
            raise RejectRateExceededError(_reject_message(report, quarantine, limit))
        with _step(plan.job, f"write {plan.target}"):
            report.writes[plan.target] = plan.write(tables, plan.to_target(refined, batch), batch)
        if plan.history and plan.to_history and plan.history_keys:
            with _step(plan.job, f"write {plan.history}"):
                # Insert-only by key: a version already recorded is never recorded twice.
                report.writes[plan.history] = tables.upsert(
                    plan.history,
                    plan.to_history(refined, batch),
                    list(plan.history_keys),
                    update_condition="false",
                    txn=batch_txn(batch, plan.history),
                )
        with _step(plan.job, "close batch"):
            close_batch(tables, batch, missing)
    finally:
        cache.release()
    return report


def _nothing_quarantined(tables: Tables, key: str) -> WriteResult:
    """No commit for a batch without a quarantine row: an empty commit per job and table is
    a fixed cost of every daily run and every micro-batch, and moves the table's version
    (which readers such as the erasure's re-check take for new data)."""
    ensured = tables.ensure(key)
    return WriteResult(
        committed=False, version=ensured.version, skipped_reason="nothing to quarantine"
    )


def _has_erasures(tables: Tables) -> bool:
    """Whether any customer was erased (so that incoming records must be checked)."""
    return tables.exists(catalog.ERASURES) and not tables.read(catalog.ERASURES).isEmpty()


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
    tables: Tables,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Clickstream JSON lines (``landing/clickstream/**.jsonl``) → ``bronze/clickstream_events``,
    deduplicated by event_id within the batch and against the table."""

    def parse(batch: Batch, files: list[str]) -> tuple[DataFrame, list[str]]:
        rules = _clickstream_rules(conf, batch.ingested_at)
        lines = cs.read_lines(spark, files, batch.root)
        return cs.parse_events(lines, rules), []

    def refine(
        parsed: DataFrame, materialise: Callable[[DataFrame], DataFrame], batch: Batch
    ) -> DataFrame:
        return _refine_clickstream(spark, conf, tables, parsed, materialise, batch.batch_id)

    return _ingest(
        spark,
        conf,
        tables,
        _Plan(
            job="ingest_clickstream",
            subdir="clickstream",
            patterns=LANDING_FOLDERS["clickstream"],
            target=catalog.CLICKSTREAM_EVENTS,
            quarantine=catalog.CLICKSTREAM_QUARANTINE,
            parse=parse,
            refine=refine,
            to_target=lambda p, b: cs.to_bronze(p, b.batch_id, b.ingested_at),
            to_quarantine=lambda p, b: cs.to_clickstream_quarantine(p, b.batch_id, b.ingested_at),
            write=lambda t, df, b: t.append(
                catalog.CLICKSTREAM_EVENTS, df, txn=batch_txn(b, catalog.CLICKSTREAM_EVENTS)
            ),
        ),
        as_of,
        now,
    )


def _clickstream_rules(conf: Conf, ingested_at: datetime) -> cs.ClickstreamRules:
    """The time bounds of a valid event for a batch or micro-batch ingested at ``ingested_at``."""
    min_ts = datetime.fromisoformat(conf.ingest.min_event_ts.replace("Z", "+00:00"))
    return cs.ClickstreamRules(ingested_at, conf.ingest.max_future_skew_hours, min_ts)


def _refine_clickstream(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    parsed: DataFrame,
    materialise: Callable[[DataFrame], DataFrame],
    batch_id: str,
) -> DataFrame:
    """Mark duplicates (within the batch and against bronze) and drop erased customers' events,
    the same for a landing batch and a streaming micro-batch."""
    # What this batch wrote itself before a crash is not "already ingested": a resumed
    # batch reports what the batch did.
    existing = (
        tables.read(catalog.CLICKSTREAM_EVENTS)
        .where(F.col(c.BATCH_ID) != F.lit(batch_id))
        .select(c.EVENT_ID)
    )
    # Materialised, their real (small) sizes let Spark broadcast them instead of
    # shuffling every event to join them.
    repeated = materialise(cs.repeated_ids(parsed))
    duplicates = materialise(cs.duplicate_ids(parsed, repeated, existing))
    marked = cs.mark_duplicates(parsed, duplicates)
    if not _has_erasures(tables):
        return marked
    key = hmac_key_frame(spark, resolve_hmac_key(conf.pii))
    erased = materialise(erased_customer_ids(parsed, tables.read(catalog.ERASURES), key))
    return drop_erased(marked, erased)


def ingest_clickstream_lines(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    lines: DataFrame,
    *,
    stream: str,
    micro_batch: int,
    ingested_at: datetime,
) -> IngestReport:
    """One streaming micro-batch of clickstream lines (``value``, ``source_file``) →
    ``bronze/clickstream_events`` and its quarantine, with the batch job's parsing, checks,
    duplicate rules and erasure filter.

    Exactly once: both writes carry the token (``stream``, ``micro_batch``), so a micro-batch
    that Spark replays after a crash commits nothing twice, and events it wrote itself before
    the crash are not reported as already ingested. The reject-rate limit does not stop a
    stream: every rejected line is in quarantine with its reason.
    """
    report = IngestReport(job=stream, batch_id=f"{stream}-{micro_batch:06d}", files=0)
    tables.ensure(catalog.CLICKSTREAM_EVENTS)
    tables.ensure(catalog.CLICKSTREAM_QUARANTINE)
    rules = _clickstream_rules(conf, ingested_at)
    cache = _RunCache()
    try:
        parsed = cache.keep(cs.parse_events(lines, rules))
        refined = _refine_clickstream(
            spark, conf, tables, parsed, cache.materialise, report.batch_id
        )
        quarantine = cache.materialise(
            cs.to_clickstream_quarantine(refined, report.batch_id, ingested_at)
        )
        _count(report, parsed, quarantine)
        for key, rows in (
            (catalog.CLICKSTREAM_QUARANTINE, quarantine),
            (catalog.CLICKSTREAM_EVENTS, cs.to_bronze(refined, report.batch_id, ingested_at)),
        ):
            if key == catalog.CLICKSTREAM_QUARANTINE and not report.by_disposition:
                report.writes[key] = _nothing_quarantined(tables, key)
                continue
            report.writes[key] = tables.append(
                key, rows, txn=Txn(f"campaignlake.{stream}.{key}", micro_batch)
            )
    finally:
        cache.release()
    return report


@dataclass(frozen=True)
class CsvSource:
    """One CSV export and the silver table it feeds: the data that makes a CSV ingestion job."""

    job: str
    subdir: str
    #: Regular expression of the file names (a ``.gz`` variant is taken too).
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
    #: The table that keeps every valid version, if any, and the key of a version there.
    history: str | None = None
    history_keys: tuple[str, ...] = ()
    #: Trailing ``fields`` older exports do not have (read as null).
    optional_fields: tuple[str, ...] = ()
    #: Customer-specific rules after the newest row per key is chosen: within the batch
    #: (parsed rows → rows) and against the table (source, table rows → source).
    within_batch: Callable[[DataFrame], DataFrame] | None = None
    against_table: Callable[[DataFrame, DataFrame], DataFrame] | None = None

    def winner_first(self) -> list[Column]:
        """The order in which a source's versions of one key win (first wins)."""
        return [
            F.col(n).desc_nulls_last() if self.latest_wins else F.col(n).asc_nulls_last()
            for n in self.winner_order
        ]


def _dated_csv(prefix: str) -> str:
    """``<prefix>_YYYY-MM-DD.csv``, optionally gzipped: the export date orders the files."""
    return rf"{prefix}_\d{{4}}-\d{{2}}-\d{{2}}\.csv(\.gz)?"


def _later_export_wins(
    job: str,
    subdir: str,
    prefix: str,
    target: str,
    quarantine: str,
    fields: tuple[str, ...],
    parse: Callable[[DataFrame, csv.CsvRules], DataFrame],
    keys: tuple[str, ...],
    optional_fields: tuple[str, ...] = (),
) -> CsvSource:
    """An export ``landing/<subdir>/<prefix>_YYYY-MM-DD.csv`` whose later export date wins: a
    row exported again (an edit, a late response) replaces the earlier one."""
    return CsvSource(
        job=job,
        subdir=subdir,
        pattern=_dated_csv(prefix),
        target=target,
        quarantine=quarantine,
        fields=fields,
        optional_fields=optional_fields,
        parse=parse,
        keys=keys,
        winner_order=(c.EXPORT_DATE, c.SOURCE_FILE),
        latest_wins=True,
        update_condition=f"s.{c.EXPORT_DATE} > t.{c.EXPORT_DATE}",
    )


PRODUCTS_SOURCE = _later_export_wins(
    "ingest_products", "products", "products", catalog.PRODUCTS, catalog.PRODUCTS_QUARANTINE,
    csv.PRODUCT_FIELDS, csv.parse_products, (c.PRODUCT_ID,),
    optional_fields=csv.PRODUCT_OPTIONAL_FIELDS,
)  # fmt: skip
CAMPAIGN_HISTORY_SOURCE = _later_export_wins(
    "ingest_campaigns", "campaigns", "campaign_history", catalog.CAMPAIGN_CONTACTS,
    catalog.CAMPAIGN_CONTACTS_QUARANTINE, csv.CAMPAIGN_FIELDS, csv.parse_campaign_contacts,
    (c.CAMPAIGN_ID, c.CUSTOMER_ID), optional_fields=csv.CAMPAIGN_OPTIONAL_FIELDS,
)  # fmt: skip
REVIEWS_SOURCE = _later_export_wins(
    "ingest_reviews", "reviews", "reviews", catalog.REVIEWS, catalog.REVIEWS_QUARANTINE,
    csv.REVIEW_FIELDS, csv.parse_reviews, (c.REVIEW_ID,),
)  # fmt: skip
DELETION_REQUESTS_SOURCE = CsvSource(
    job="ingest_deletion_requests",
    subdir="crm",
    pattern=_dated_csv("deletion_requests"),
    target=catalog.DELETION_REQUESTS,
    quarantine=catalog.CUSTOMERS_QUARANTINE,
    fields=csv.DELETION_FIELDS,
    parse=csv.parse_deletion_requests,
    keys=(c.CUSTOMER_ID,),
    # The earliest request per customer counts: erasure deadlines run from it.
    winner_order=(c.REQUESTED_AT, c.SOURCE_FILE),
    latest_wins=False,
    update_condition=f"s.{c.REQUESTED_AT} < t.{c.REQUESTED_AT}",
)


def customers_source(
    hmac_key: DataFrame, attributes: tuple[tuple[str, str], ...] = ()
) -> CsvSource:
    """CRM customer exports, with the declared extra ``attributes`` columns after the
    contract's; the pseudonymisation key is bound at run time, never stored."""
    return CsvSource(
        job="ingest_crm",
        subdir="crm",
        pattern=_dated_csv("customers"),
        target=catalog.CUSTOMERS,
        quarantine=catalog.CUSTOMERS_QUARANTINE,
        fields=csv.CUSTOMER_FIELDS + tuple(name for name, _ in attributes),
        parse=lambda raw, rules: csv.parse_customers(raw, rules, hmac_key, attributes),
        history=catalog.CUSTOMER_HISTORY,
        history_keys=(c.CUSTOMER_ID, c.UPDATED_AT, c.SOURCE_FILE),
        keys=(c.CUSTOMER_ID,),
        # A later export wins a tie of updated_at (file names carry the export date).
        winner_order=(c.UPDATED_AT, c.SOURCE_FILE),
        latest_wins=True,
        update_condition=csv.CUSTOMER_UPDATE_CONDITION,
        within_batch=csv.withdrawn_consent_in_ties,
        against_table=csv.resolve_ties_with_table,
    )


#: Every landing folder and the file names its sources take, first source first: the first
#: one reports the files that match none of them.
LANDING_FOLDERS: dict[str, tuple[str, ...]] = {
    "clickstream": (r".*\.jsonl", r".*\.jsonl\.gz"),
    "crm": (_dated_csv("customers"), DELETION_REQUESTS_SOURCE.pattern),
    "products": (PRODUCTS_SOURCE.pattern,),
    "campaigns": (CAMPAIGN_HISTORY_SOURCE.pattern,),
    "reviews": (REVIEWS_SOURCE.pattern,),
}


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

    def parse_batch(batch: Batch, files: list[str]) -> tuple[DataFrame, list[str]]:
        raw, bad_headers = csv.read_csv_records(
            spark, files, source.fields, batch.root, optional=source.optional_fields
        )
        parsed = source.parse(raw, _csv_rules(conf, batch))
        if c.CUSTOMER_ID in source.fields and _has_erasures(tables):
            key = hmac_key_frame(spark, resolve_hmac_key(conf.pii))
            parsed = drop_erased(
                parsed, erased_customer_ids(parsed, tables.read(catalog.ERASURES), key)
            )
        return parsed, bad_headers

    def refine(parsed: DataFrame, _: Callable[[DataFrame], DataFrame], __: Batch) -> DataFrame:
        newest = csv.mark_superseded(parsed, keys, source.winner_first())
        return source.within_batch(newest) if source.within_batch else newest

    def write(t: Tables, rows: DataFrame, batch: Batch) -> WriteResult:
        if source.against_table:
            rows = source.against_table(rows, t.read(source.target))
        return t.upsert(
            source.target,
            rows,
            keys,
            update_condition=source.update_condition,
            txn=batch_txn(batch, source.target),
        )

    plan = _Plan(
        job=source.job,
        subdir=source.subdir,
        patterns=(source.pattern,),
        target=source.target,
        quarantine=source.quarantine,
        parse=parse_batch,
        refine=refine,
        to_target=lambda p, b: csv.to_silver(p, schema, b.batch_id, b.ingested_at),
        to_quarantine=lambda p, b: csv.to_csv_quarantine(
            p, F.concat_ws("|", *[F.col(k) for k in keys]), b.batch_id, b.ingested_at
        ),
        write=write,
        history=source.history,
        to_history=lambda p, b: csv.to_history(p, schema, b.batch_id, b.ingested_at),
        history_keys=source.history_keys,
    )
    return _ingest(spark, conf, tables, plan, as_of, now)


def ingest_crm(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> list[IngestReport]:
    """CRM exports (``landing/crm/customers_*.csv``) → ``silver/customers`` (newest
    ``updated_at`` wins, emails pseudonymised), and deletion requests
    (``landing/crm/deletion_requests_*.csv``) → ``silver/deletion_requests`` (the earliest
    request per customer is kept, for the erasure job). Every valid customer version, older
    ones included, is appended to ``silver/customer_history`` for point-in-time features."""
    attributes = tuple((a.name, a.kind) for a in conf.ingest.crm_attributes)
    customers = customers_source(hmac_key_frame(spark, resolve_hmac_key(conf.pii)), attributes)
    return [
        ingest_csv(spark, conf, tables, source, as_of=as_of, now=now)
        for source in (customers, DELETION_REQUESTS_SOURCE)
    ]


def ingest_products(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Products catalog exports (``landing/products/products_*.csv``) → ``silver/products``;
    a later export date wins."""
    return ingest_csv(spark, conf, tables, PRODUCTS_SOURCE, as_of=as_of, now=now)


def ingest_campaigns(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Campaign history exports (``landing/campaigns/campaign_history_*.csv``) →
    ``silver/campaign_contacts``, one row per (campaign, customer); a later export wins."""
    return ingest_csv(spark, conf, tables, CAMPAIGN_HISTORY_SOURCE, as_of=as_of, now=now)


def ingest_reviews(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date | None = None,
    now: datetime | None = None,
) -> IngestReport:
    """Product review exports (``landing/reviews/reviews_*.csv``) → ``silver/reviews``, one
    row per review, contact details in the text masked; a later export wins."""
    return ingest_csv(spark, conf, tables, REVIEWS_SOURCE, as_of=as_of, now=now)

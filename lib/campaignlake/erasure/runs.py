"""The erasure job: carry out due deletion requests in every table, export and older version.

For every request past its grace period (``erasure.grace_days``) the customer's rows are
deleted from each table whose spec says how to find them (``TableSpec.erase_by``: the customer
id column, or the raw records of a quarantine table), the export files on disk are rewritten
without them, the files in which a deletion vector only marks the rows deleted are rewritten
without them (``REORG … APPLY (PURGE)``: Unity Catalog turns deletion vectors on by default),
the touched tables are vacuumed past ``erasure.vacuum_retention_hours`` so older versions no
longer hold the data, and ``meta/erasures`` records the erasure by the customer's
key hash (never the id). The deletion request itself goes last, so a run that dies half way is
finished by the next one: every step is idempotent.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.audiences.exports import write_single_csv
from campaignlake.config import Conf
from campaignlake.erasure.requests import (
    ERASED_VALUE,
    QUARANTINE_ROWS,
    due_requests,
    identities,
    quarantine_pattern_frame,
    rows_of,
    values_frame,
    without_recipients,
)
from campaignlake.hadoop_fs import HadoopFs
from campaignlake.pii import hmac_key_frame, resolve_hmac_key
from campaignlake.tables import Tables, WriteResult, describe_writes
from campaignlake.tables.merge import rows_matching

log = logging.getLogger(__name__)

#: Ids per delete statement.
_CHUNK = 1000
_ORDER = "__order"


@dataclass
class ErasureReport:
    """What one erasure run did; no customer id appears in it."""

    run_date: date
    due: int = 0
    rows_by_table: dict[str, int] = field(default_factory=dict)
    exports_rewritten: list[str] = field(default_factory=list)
    #: Files rewritten because a deletion vector only hid the erased rows in them.
    purged_files: int = 0
    vacuumed_files: int = 0
    writes: dict[str, WriteResult] = field(default_factory=dict)

    def describe(self) -> str:
        """Counts per table and the files rewritten; never a customer id."""
        if not self.due:
            return f"erase_customers {self.run_date}: no deletion request is due"
        rows = ", ".join(f"{k}={v}" for k, v in sorted(self.rows_by_table.items()) if v) or "none"
        return (
            f"erase_customers {self.run_date}: {self.due} customers erased; rows deleted: "
            f"{rows}; exports rewritten: {len(self.exports_rewritten)}; files purged of rows "
            f"marked deleted: {self.purged_files}; old files vacuumed: {self.vacuumed_files}; "
            f"tables: {describe_writes(self.writes)}"
        )


def erase_customers(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    now: datetime | None = None,
) -> ErasureReport:
    """Erase every customer whose deletion request is due on ``as_of``."""
    report = ErasureReport(run_date=as_of)
    tables.ensure(catalog.ERASURES)
    if not tables.exists(catalog.DELETION_REQUESTS):
        return report
    key = hmac_key_frame(spark, resolve_hmac_key(conf.pii))
    due = (
        due_requests(
            tables.read(catalog.DELETION_REQUESTS),
            tables.read(catalog.ERASURES),
            key,
            run_date=as_of,
            grace_days=conf.erasure.grace_days,
        )
        .orderBy(c.REQUESTED_AT, c.CUSTOMER_KEY_HASH)
        .limit(conf.erasure.max_per_run)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        # The due customers' ids and contact values: a bounded handful per run (at most
        # erasure.max_per_run requests), needed as literals by the delete statements.
        people = due.select(c.CUSTOMER_ID, c.CUSTOMER_KEY_HASH, c.REQUESTED_AT).collect()
        report.due = len(people)
        if not people:
            return report
        ids = sorted(r[c.CUSTOMER_ID] for r in people)
        values = sorted(
            r["value"]
            for r in identities(
                tables.read_or_empty(catalog.CUSTOMERS),
                tables.read_or_empty(catalog.CUSTOMER_HISTORY),
                due,
            ).collect()
        )
        per_customer = _erase_tables(spark, tables, ids, values, report)
        report.exports_rewritten = _rewrite_exports(spark, conf, due)
        report.exports_rewritten += _rewrite_outbox(spark, conf, ids)
        _vacuum(tables, conf, report)
        erased_at = (now or datetime.now(timezone.utc)).replace(microsecond=0)
        audit = spark.createDataFrame(
            [
                (
                    r[c.CUSTOMER_KEY_HASH],
                    r[c.REQUESTED_AT],
                    erased_at,
                    sorted(per_customer.get(r[c.CUSTOMER_ID], {})),
                    sum(per_customer.get(r[c.CUSTOMER_ID], {}).values()),
                    as_of,
                )
                for r in people
            ],
            tables.spec(catalog.ERASURES).schema,
        )
        report.writes[catalog.ERASURES] = tables.upsert(
            catalog.ERASURES, audit, [c.CUSTOMER_KEY_HASH], update_condition="false"
        )
        # Last: until here a crashed run leaves the requests for the next run to finish.
        for chunk in _chunks(ids):
            report.writes[catalog.DELETION_REQUESTS] = tables.delete_matching(
                catalog.DELETION_REQUESTS, values_frame(spark, chunk), rows_of(c.CUSTOMER_ID)
            )
        # The requests name the customers too: their older versions go the same way.
        _purge_and_vacuum(tables, catalog.DELETION_REQUESTS, conf, report)
    finally:
        due.unpersist()
    return report


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + _CHUNK] for i in range(0, len(values), _CHUNK)]


def _erasable(tables: Tables) -> dict[str, str]:
    """Every existing table that holds customers' data, and how their rows are found:
    quarantine tables first, because finding their rows needs the emails and phone numbers
    that the CRM tables still hold until they are erased too (a run that dies in between is
    resumed with what is left)."""
    found = {}
    for key in catalog.TABLE_KEYS:
        spec = tables.spec(key)
        if spec.erase_by and key != catalog.DELETION_REQUESTS and tables.exists(key):
            found[key] = spec.erase_by
    return dict(sorted(found.items(), key=lambda item: item[1] != c.RAW_RECORD))


def _erase_tables(
    spark: SparkSession, tables: Tables, ids: list[str], values: list[str], report: ErasureReport
) -> dict[str, dict[str, int]]:
    """Delete the customers' rows everywhere; rows deleted per customer and table. The ids,
    e-mails and phone numbers are matched as data (a small source joined to each table), so
    neither the tables' histories nor Spark's plans spell them out."""
    per_customer: dict[str, dict[str, int]] = {}
    for key, erase_by in _erasable(tables).items():
        deleted = 0
        chunks = _chunks(values) if erase_by == c.RAW_RECORD else _chunks(ids)
        for chunk in chunks:
            if erase_by == c.RAW_RECORD:
                source, condition = quarantine_pattern_frame(spark, chunk), QUARANTINE_ROWS
                matched = rows_matching(tables.read(key), source, condition).count()
            else:
                source, condition = values_frame(spark, chunk), rows_of(erase_by)
                counts = (
                    rows_matching(tables.read(key), source, condition)
                    .groupBy(erase_by)
                    .count()
                    .collect()
                )
                for row in counts:  # one row per due customer at most
                    per_customer.setdefault(row[erase_by], {})[key] = row["count"]
                matched = sum(row["count"] for row in counts)
            if matched:
                report.writes[key] = _erase_rows(tables, key, source, condition)
            deleted += matched
        report.rows_by_table[key] = deleted
    return per_customer


def _erase_rows(tables: Tables, key: str, source: DataFrame, condition: str) -> WriteResult:
    """Delete the rows ``source`` matches, or blank their customer column where the table
    keeps its rows (:attr:`~campaignlake.catalog.TableSpec.erase_keeping_row`)."""
    spec = tables.spec(key)
    if spec.erase_keeping_row is None or spec.erase_by is None:
        return tables.delete_matching(key, source, condition)
    blanked = (
        rows_matching(tables.read(key), source, condition)
        .withColumn(spec.erase_by, F.lit(None).cast("string"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        blanked.count()  # read before the table changes under it
        return tables.upsert(key, blanked, [spec.erase_keeping_row])
    finally:
        blanked.unpersist()


def _rewrite_exports(spark: SparkSession, conf: Conf, due: DataFrame) -> list[str]:
    """Rewrite every export CSV under ``paths.exports`` that has a due customer; the paths."""
    fs = HadoopFs(spark)
    root = conf.paths.exports.rstrip("/")
    rewritten = []
    for campaign in fs.list(root):
        for day in fs.list(f"{root}/{campaign}"):
            for name in fs.list(f"{root}/{campaign}/{day}"):
                path = f"{root}/{campaign}/{day}/{name}"
                if name.endswith(".csv") and _rewrite_export(spark, fs, path, due):
                    rewritten.append(path)
    return rewritten


def _rewrite_export(spark: SparkSession, fs: HadoopFs, path: str, due: DataFrame) -> bool:
    rows = (
        spark.read.option("header", "true")
        .option("escape", '"')
        .option("multiLine", "true")
        .csv(path)
        .withColumn(_ORDER, F.monotonically_increasing_id())
    )
    if c.RECIPIENT_ID not in rows.columns:
        return False
    kept = without_recipients(rows, due).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        if kept.count() == rows.count():
            return False
        write_single_csv(kept.select(*rows.columns), path, fs, order_by=_ORDER)
        return True
    finally:
        kept.unpersist()


def _rewrite_outbox(spark: SparkSession, conf: Conf, ids: list[str]) -> list[str]:
    """Rewrite every trigger outbox folder (``<outbox>/<channel>/<micro-batch>/``, JSON lines
    with ``customer_id``) that holds a message to a due customer; the folders."""
    fs = HadoopFs(spark)
    root = conf.paths.outbox_root.rstrip("/")
    erased = values_frame(spark, ids)
    rewritten = []
    for channel in fs.list(root):
        for batch in fs.list(f"{root}/{channel}"):
            folder = f"{root}/{channel}/{batch}"
            if not any(name.endswith(".json") for name in fs.list(folder)):
                continue
            messages = spark.read.json(folder)
            if c.CUSTOMER_ID not in messages.columns:
                continue
            kept = messages.join(
                erased, F.col(c.CUSTOMER_ID) == F.col(ERASED_VALUE), "left_anti"
            ).persist(StorageLevel.MEMORY_AND_DISK)
            try:
                if kept.count() == messages.count():
                    continue
                staging = f"{folder}.{uuid.uuid4().hex}.tmp"
                kept.coalesce(1).write.json(staging)
                fs.delete(folder)
                fs.move(staging, folder)
                rewritten.append(folder)
            finally:
                kept.unpersist()
    return rewritten


def _vacuum(tables: Tables, conf: Conf, report: ErasureReport) -> None:
    """Remove the files that still hold the erased rows from every table they were deleted in."""
    for key, deleted in report.rows_by_table.items():
        if deleted:
            _purge_and_vacuum(tables, key, conf, report)


def _purge_and_vacuum(tables: Tables, key: str, conf: Conf, report: ErasureReport) -> None:
    """Rewrite the files whose erased rows a deletion vector only hides, then vacuum the
    files no version within the retention needs (among them the ones just rewritten, once
    the retention is over)."""
    report.purged_files += tables.purge_deleted_rows(key)
    retention = conf.erasure.vacuum_retention_hours
    report.vacuumed_files += len(tables.vacuum(key, retention, full=True))

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
from campaignlake.errors import CommitConflictError
from campaignlake.hadoop_fs import HadoopFs
from campaignlake.pii import hmac_key_frame, resolve_hmac_key
from campaignlake.tables import Tables, WriteResult, describe_writes
from campaignlake.tables.merge import rows_matching

log = logging.getLogger(__name__)

#: Ids per delete statement.
_CHUNK = 1000
#: Commits the erasure itself makes to a table after deleting from it: no new rows.
_OWN_OPERATIONS = frozenset({"VACUUM START", "VACUUM END", "REORG", "OPTIMIZE"})
#: Tables whose rows of the customers' devices (anonymous ids) are erased with them.
_LINKED_DEVICES = {catalog.CLICKSTREAM_EVENTS: c.ANONYMOUS_ID}
#: An ALS model's saved user factors (``id``: the customer's index, ``features``).
_USER_FACTORS = "userFactors"
_FACTOR_ID = "id"
_ERASING = ".erasing"
#: Passes over the tables that got new commits while the erasure ran, before it gives up
#: (the requests then stay open, and the next run starts over).
_RECHECKS = 3
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
    #: Each erasable table's version once the customers' rows were deleted from it.
    erased_at_version: dict[str, int] = field(default_factory=dict)
    #: Saved recommender models (model store and MLflow copies) whose user factors of the
    #: erased customers were dropped.
    models_rewritten: list[str] = field(default_factory=list)
    #: Tables erased again because a writer (an ingestion, a stream) committed while the
    #: erasure ran.
    erased_again: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """Counts per table and the files rewritten; never a customer id."""
        if not self.due:
            return f"erase_customers {self.run_date}: no deletion request is due"
        rows = ", ".join(f"{k}={v}" for k, v in sorted(self.rows_by_table.items()) if v) or "none"
        return (
            f"erase_customers {self.run_date}: {self.due} customers erased; rows deleted: "
            f"{rows}; exports rewritten: {len(self.exports_rewritten)}; recommender models "
            f"rewritten: {len(self.models_rewritten)}; files purged of rows "
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
        devices = _anonymous_ids(spark, tables, ids)
        # The anonymous ids are searched for in raw records like an e-mail address.
        values = sorted(
            {
                r["value"]
                for r in identities(
                    tables.read_or_empty(catalog.CUSTOMERS),
                    tables.read_or_empty(catalog.CUSTOMER_HISTORY),
                    due,
                ).collect()
            }
            | set(devices)
        )
        # Read before the erasure blanks their ids in gold/customer_index.
        indices = _model_indices(spark, tables, ids)
        per_customer: dict[str, dict[str, int]] = {}
        _erase_tables(spark, tables, ids, values, report, per_customer, devices=devices)
        report.models_rewritten = _erase_model_factors(spark, conf, indices)
        report.exports_rewritten = _rewrite_exports(spark, conf, due)
        report.exports_rewritten += _rewrite_outbox(spark, conf, ids)
        # Every erasable table: one where no row was deleted today may still hold the
        # customers in older versions (a job replaced its rows since).
        _vacuum(tables, conf, report, report.rows_by_table, every_table=True)
        _erase_what_landed_meanwhile(
            spark, conf, tables, ids, values, report, per_customer, devices
        )
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
    spark: SparkSession,
    tables: Tables,
    ids: list[str],
    values: list[str],
    report: ErasureReport,
    per_customer: dict[str, dict[str, int]],
    only: list[str] | None = None,
    devices: tuple[str, ...] | list[str] = (),
) -> None:
    """Delete the customers' rows everywhere (or in the tables ``only``), adding the rows
    deleted per customer and table to ``per_customer`` and ``report``. The ids, e-mails and
    phone numbers are matched as data (a small source joined to each table), so neither the
    tables' histories nor Spark's plans spell them out."""
    for key, erase_by in _erasable(tables).items():
        if only is not None and key not in only:
            continue
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
                    by_table = per_customer.setdefault(row[erase_by], {})
                    by_table[key] = by_table.get(key, 0) + row["count"]
                matched = sum(row["count"] for row in counts)
            if matched:
                report.writes[key] = _erase_rows(tables, key, source, condition)
            deleted += matched
        if key in _LINKED_DEVICES and devices:
            # The customers' devices before they logged in: their URLs and fields can carry
            # the e-mail and phone the customer typed. A shared device's events of other
            # customers (logged in) stay.
            column = _LINKED_DEVICES[key]
            condition = f"{rows_of(column)} AND t.`{c.CUSTOMER_ID}` IS NULL"
            for chunk in _chunks(list(devices)):
                source = values_frame(spark, chunk)
                matched = rows_matching(tables.read(key), source, condition).count()
                if matched:
                    report.writes[key] = tables.delete_matching(key, source, condition)
                deleted += matched
        report.rows_by_table[key] = report.rows_by_table.get(key, 0) + deleted
        report.erased_at_version[key] = tables.version(key)


def _anonymous_ids(spark: SparkSession, tables: Tables, ids: list[str]) -> list[str]:
    """The anonymous ids (devices, browsers) the customers were seen with in bronze: their
    events before logging in belong to them too. A bounded handful per customer."""
    if not tables.exists(catalog.CLICKSTREAM_EVENTS):
        return []
    seen = rows_matching(
        tables.read(catalog.CLICKSTREAM_EVENTS), values_frame(spark, ids), rows_of(c.CUSTOMER_ID)
    )
    return sorted(
        r[0]
        for r in seen.where(F.col(c.ANONYMOUS_ID).isNotNull())
        .select(c.ANONYMOUS_ID)
        .distinct()
        .collect()
    )


def _model_indices(spark: SparkSession, tables: Tables, ids: list[str]) -> DataFrame:
    """The erased customers' ALS indices (``gold/customer_index``), materialised: the erasure
    blanks the ids beside them next."""
    if not tables.exists(catalog.CUSTOMER_INDEX):
        return spark.createDataFrame([], f"{_FACTOR_ID} int")
    found = rows_matching(
        tables.read(catalog.CUSTOMER_INDEX), values_frame(spark, ids), rows_of(c.CUSTOMER_ID)
    ).select(F.col(c.CUSTOMER_INDEX).cast("int").alias(_FACTOR_ID))
    rows = found.collect()  # one small int per due customer (at most erasure.max_per_run)
    return spark.createDataFrame(rows, f"{_FACTOR_ID} int")


def _erase_model_factors(spark: SparkSession, conf: Conf, indices: DataFrame) -> list[str]:
    """Drop the erased customers' rows from the user factors of every saved ALS model under
    ``paths.models`` (the model store, and the local MLflow store's copies) and under
    ``tracking.artifact_location``: a model keeps a vector per customer it was fitted on, and
    one that is served again (or the champion's copy in MLflow) would still hold theirs.
    Each ``userFactors`` folder is rewritten beside itself and swapped in; a run that died
    half way is finished by the next one. The folders rewritten."""
    if indices.isEmpty():
        return []
    fs = HadoopFs(spark)
    folders = sorted(
        folder
        for root in (conf.paths.models, conf.tracking.artifact_location)
        if root
        for folder in _factor_folders(fs, root)
    )
    rewritten = []
    for folder in folders:
        staging = f"{folder}{_ERASING}"
        if fs.exists(staging):  # left by a run that died: finish or redo its swap
            if fs.exists(folder):
                fs.delete(staging)
            else:
                fs.move(staging, folder)
        factors = spark.read.parquet(folder)
        if factors.join(indices, _FACTOR_ID, "left_semi").isEmpty():
            continue
        factors.join(indices, _FACTOR_ID, "left_anti").write.parquet(staging)
        fs.delete(folder)
        fs.move(staging, folder)
        rewritten.append(folder)
    return rewritten


def _factor_folders(fs: HadoopFs, root: str) -> set[str]:
    """Every ALS ``userFactors`` folder below ``root`` (or its staging copy's target)."""
    found = set()
    for relative, _, _ in fs.files(root):
        parts = relative.split("/")
        for depth, part in enumerate(parts):
            if part in (_USER_FACTORS, f"{_USER_FACTORS}{_ERASING}"):
                found.add("/".join([root.rstrip("/"), *parts[:depth], _USER_FACTORS]))
                break
    return found


def _erase_what_landed_meanwhile(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    ids: list[str],
    values: list[str],
    report: ErasureReport,
    per_customer: dict[str, dict[str, int]],
    devices: list[str],
) -> None:
    """Erase again in every table that another writer committed to after its deletes: an
    ingestion or the clickstream stream that read ``meta/erasures`` before this erasure
    recorded the customers would otherwise bring them back once the requests are closed.

    Raises
    ------
    CommitConflictError
        When the tables still change after a few passes: the requests stay open, and the next
        run erases them again.
    """
    for _ in range(_RECHECKS):
        erased = list(report.erased_at_version)
        changed = [key for key in erased if _committed_by_others(tables, report, key)]
        if not changed:
            return
        log.warning(
            "erase_customers: %s changed while the erasure ran; erasing there again",
            ", ".join(changed),
        )
        report.erased_again += [key for key in changed if key not in report.erased_again]
        before = {key: report.rows_by_table.get(key, 0) for key in changed}
        _erase_tables(
            spark, tables, ids, values, report, per_customer, only=changed, devices=devices
        )
        _vacuum(
            tables,
            conf,
            report,
            {key: report.rows_by_table.get(key, 0) - before[key] for key in changed},
        )
    raise CommitConflictError(
        f"erase_customers: {', '.join(changed)} kept getting new commits while the erasure "
        f"ran ({_RECHECKS} passes); the deletion requests stay open and the next run erases "
        "them again"
    )


def _committed_by_others(tables: Tables, report: ErasureReport, key: str) -> bool:
    """Whether ``key`` got a commit since it was last erased or checked that is not the
    erasure's own maintenance (purge, vacuum); the check moves past what it read."""
    seen = report.erased_at_version[key]
    operations = tables.operations(key, seen)
    report.erased_at_version[key] = seen + len(operations)
    return any(operation not in _OWN_OPERATIONS for operation in operations)


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


def _vacuum(
    tables: Tables,
    conf: Conf,
    report: ErasureReport,
    deleted_rows: dict[str, int],
    *,
    every_table: bool = False,
) -> None:
    """Remove the files that still hold the erased rows from every table they were deleted
    in (``deleted_rows``: rows deleted per table), and with ``every_table`` the files of
    older versions of the others too."""
    for key, deleted in deleted_rows.items():
        if deleted:
            _purge_and_vacuum(tables, key, conf, report)
        elif every_table:
            _vacuum_old_files(tables, key, conf, report)


def _purge_and_vacuum(tables: Tables, key: str, conf: Conf, report: ErasureReport) -> None:
    """Rewrite the files whose erased rows a deletion vector only hides, then vacuum the
    files no version within the retention needs (among them the ones just rewritten, once
    the retention is over)."""
    report.purged_files += tables.purge_deleted_rows(key)
    _vacuum_old_files(tables, key, conf, report)


def _vacuum_old_files(tables: Tables, key: str, conf: Conf, report: ErasureReport) -> None:
    """Vacuum the files of ``key`` that no version within ``erasure.vacuum_retention_hours``
    needs. Without a dry run first: the erasure's vacuums are recorded in the tables'
    histories even when they remove nothing, and take a quarter less time (one listing of
    the table instead of two; BENCHMARKS.md)."""
    retention = conf.erasure.vacuum_retention_hours
    report.vacuumed_files += tables.vacuum(key, retention, full=True, look_first=False)

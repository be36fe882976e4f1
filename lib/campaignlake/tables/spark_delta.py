"""The native delta-spark engine (Databricks, EMR with Delta enabled, any session with Delta's
JVM classes). Same operations and meanings as :mod:`campaignlake.tables.delta_rs`.

A table is addressed by path, or by name in the session's catalog (``schema.table``, Unity
Catalog's ``catalog.schema.table``): named tables are created with ``CREATE TABLE`` (their
schema first, when missing), written with ``saveAsTable`` and read with ``DeltaTable.forName``.

Every write is tagged with a unique ``userMetadata`` in its commit, so whether *this* write
committed, and at which version, is read from the commit itself rather than guessed from
versions (another writer may commit in between). For a table addressed by path that costs no
Spark job: the ``_delta_log`` folder is listed before and after the write and the new commit
files (normally one) are read for the tag; a table addressed by name (whose files Unity Catalog
may not let the driver read) is looked up in its history instead.

Delta's own failures are mapped to the named errors the jobs handle: a commit that keeps losing
to concurrent writers is retried ``commit_retries`` times and then raises
:class:`CommitConflictError`; rows outside a ``replaceWhere`` raise
:class:`ReplaceWhereViolationError`.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from campaignlake.catalog import TableSpec
from campaignlake.config import is_table_name
from campaignlake.errors import (
    CommitConflictError,
    ReplaceWhereViolationError,
    TableError,
    TableNotFoundError,
)
from campaignlake.hadoop_fs import HadoopFs
from campaignlake.tables import files
from campaignlake.tables.merge import (
    FILE_NAME_COLUMN,
    REPEATS_COLUMN,
    effective_changes,
    raise_on_repeated_key,
    rows_matching,
)
from campaignlake.tables.spec import (
    STATS_COLUMNS_PROPERTY,
    Txn,
    WriteResult,
    check_schema,
    creation_properties,
)

TXN_APP_ID_CONF = "spark.databricks.delta.write.txnAppId"
TXN_VERSION_CONF = "spark.databricks.delta.write.txnVersion"
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
RETENTION_CHECK_CONF = "spark.databricks.delta.retentionDurationCheck.enabled"
#: VACUUM records its START and END (with the files deleted) in the table's history while
#: this is on; Delta's default depends on the storage.
VACUUM_LOGGING_CONF = "spark.databricks.delta.vacuum.logging.enabled"
#: A table writes deletion vectors while this property is true; once a table had them, its
#: protocol lists the feature (and older files may still carry them).
DELETION_VECTORS_PROPERTY = "delta.enableDeletionVectors"
DELETION_VECTORS_FEATURE = "delta.feature.deletionVectors"
#: A commit file of the ``_delta_log`` folder (checkpoints and CRC files are not).
_COMMIT_FILE = re.compile(r"\d{20}\.json")
#: How many of the newest commits are searched first for a write's own commit.
_RECENT = 20
#: Delta's default retention: asking for less is deliberate here (erasure, maintenance).
DEFAULT_RETENTION_HOURS = 168
#: Names of Delta's concurrent-modification exceptions (io.delta.exceptions.*) and error classes.
_CONFLICTS = (
    "ConcurrentAppendException",
    "ConcurrentDeleteReadException",
    "ConcurrentDeleteDeleteException",
    "ConcurrentTransactionException",
    "MetadataChangedException",
    "ProtocolChangedException",
    "DELTA_CONCURRENT_",
)
_REPLACE_WHERE_VIOLATIONS = (
    "DELTA_REPLACE_WHERE_MISMATCH",
    "does not conform to partial table overwrite condition",
)


def _quoted(name: str) -> str:
    """A dotted catalog name with each part quoted for SQL."""
    return ".".join(f"`{part}`" for part in name.split("."))


def _sql_table(path: str) -> str:
    """How SQL names the table: its quoted catalog name, or ``delta.`<path>```."""
    return _quoted(path) if is_table_name(path) else f"delta.`{path}`"


def delta_classes_available(spark: SparkSession) -> bool:
    """Whether Delta's JVM classes are on this session's classpath."""
    try:
        spark._jvm.java.lang.Class.forName("io.delta.tables.DeltaTable")  # type: ignore[union-attr]
        return True
    except Exception:
        # Spark Connect has no py4j gateway; there the platform decides, so ask its extensions.
        extensions = spark.conf.get("spark.sql.extensions", "") or ""
        return "DeltaSparkSessionExtension" in extensions


class SparkDeltaEngine:
    """Delta operations through delta-spark.

    Parameters
    ----------
    spark
        A session with Delta's extension and catalog.
    commit_retries
        How many times a write that lost to a concurrent writer is planned again.
    stats_columns
        How many leading columns get file statistics (PII columns never do).
    """

    name = "spark"

    def __init__(self, spark: SparkSession, *, commit_retries: int = 5, stats_columns: int = 32):
        self.spark = spark
        self.commit_retries = commit_retries
        self.stats_columns = stats_columns
        #: Tables this engine created or checked against their spec: checked once per run.
        self._checked: set[str] = set()
        #: Where each table addressed by name keeps its files (its commit log is read there).
        self._locations: dict[str, str] = {}

    def _delta(self, path: str) -> Any:
        from delta.tables import DeltaTable

        try:
            if is_table_name(path):
                return DeltaTable.forName(self.spark, path)
            return DeltaTable.forPath(self.spark, path)
        except Exception as exc:
            text = str(exc)
            if any(
                m in text
                for m in (
                    "DELTA_MISSING_DELTA_TABLE",
                    "is not a Delta table",
                    "TABLE_OR_VIEW_NOT_FOUND",
                    "DELTA_TABLE_NOT_FOUND",
                )
            ):
                raise TableNotFoundError(f"no Delta table at {path}") from None
            raise

    def exists(self, path: str) -> bool:
        """Whether a Delta table exists at ``path`` (or by that name)."""
        from delta.tables import DeltaTable

        if is_table_name(path):
            if not self.spark.catalog.tableExists(path):
                return False
            try:
                self._delta(path)
            except TableNotFoundError:
                return False
            return True
        return bool(DeltaTable.isDeltaTable(self.spark, path))

    def create(self, path: str, spec: TableSpec) -> WriteResult:
        """Create the table if it does not exist; check its schema if it does (and give a table
        made before PII was kept out of statistics the statistics columns it should have)."""
        from delta.tables import DeltaTable

        if path in self._checked:
            return WriteResult(committed=False, version=None, skipped_reason="exists")
        properties = creation_properties(spec, self._stats_columns(spec))
        self._checked.add(path)
        if self.exists(path):
            check_schema(self.schema(path), spec.schema, path)
            current = self._properties(path)
            if STATS_COLUMNS_PROPERTY in properties and STATS_COLUMNS_PROPERTY not in current:
                self.spark.sql(
                    f"ALTER TABLE {_sql_table(path)} SET TBLPROPERTIES "
                    f"('{STATS_COLUMNS_PROPERTY}' = '{properties[STATS_COLUMNS_PROPERTY]}')"
                )
                return WriteResult(committed=True, version=self.version(path))
            return WriteResult(committed=False, version=self.version(path), skipped_reason="exists")
        if is_table_name(path):
            schema = path.rsplit(".", 1)[0]
            self.spark.sql(f"CREATE SCHEMA IF NOT EXISTS {_quoted(schema)}")
            builder = DeltaTable.createIfNotExists(self.spark).tableName(path)
        else:
            builder = DeltaTable.createIfNotExists(self.spark).location(path)
        builder = builder.addColumns(spec.schema)
        if spec.partition_by:
            builder = builder.partitionedBy(*spec.partition_by)
        for key, value in properties.items():
            builder = builder.property(key, value)
        builder.execute()
        return WriteResult(committed=True, version=self.version(path))

    def _properties(self, path: str) -> dict[str, str]:
        """The table's properties and protocol features. SHOW TBLPROPERTIES reads the metadata
        only; DESCRIBE DETAIL also counts the table's files (three Spark jobs)."""
        return {
            r[0]: r[1] for r in self.spark.sql(f"SHOW TBLPROPERTIES {_sql_table(path)}").collect()
        }

    def _stats_columns(self, spec: TableSpec) -> list[str]:
        return files.stats_columns_for(
            spec.schema, list(spec.partition_by), spec.pii_columns, self.stats_columns
        )

    def version(self, path: str) -> int:
        """The table's current version."""
        if not is_table_name(path):
            head = self._head(path)
            if head is None:
                raise TableNotFoundError(f"no Delta table at {path}")
            return head
        return int(self._delta(path).history(1).select("version").first()[0])

    def _head(self, path: str) -> int | None:
        """The newest commit in the ``_delta_log`` of the table at ``path`` (``None`` without
        one), from a listing of the folder: Delta never removes its newest commit file, and a
        listing runs no Spark job where ``history(1)`` runs one."""
        versions = [
            int(name[:20])
            for name in HadoopFs(self.spark).list(_log_folder(path))
            if _COMMIT_FILE.fullmatch(name)
        ]
        return max(versions, default=None)

    def schema(self, path: str) -> StructType:
        """The table's schema."""
        return self._delta(path).toDF().schema

    def operations(self, path: str, after: int) -> list[str]:
        """The operation of each commit after version ``after``, oldest first. For a path,
        from the commit files (no Spark job); for a name, from the table's history."""
        return [str(info.get("operation")) for info in self._commit_infos(path, after)]

    def _commit_infos(self, path: str, after: int) -> list[dict[str, Any]]:
        """The ``commitInfo`` of each commit after version ``after``, oldest first."""
        if is_table_name(path):
            head = self.version(path)
            if head <= after:
                return []
            return list(reversed(self.history(path, head - after)))
        head = self._head(path) or -1
        files = HadoopFs(self.spark)
        return [
            _commit_info(files.read_text(_commit_file(path, v))) for v in range(after + 1, head + 1)
        ]

    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first (at most ``limit``); ``timestamp`` in epoch
        milliseconds, as delta-rs reports it."""
        history = self._delta(path).history(limit) if limit else self._delta(path).history()
        entries = [row.asDict(recursive=True) for row in history.collect()]  # log, not data
        for entry in entries:
            if isinstance(entry.get("timestamp"), datetime):
                entry["timestamp"] = int(entry["timestamp"].timestamp() * 1000)
        return entries

    def vacuum(
        self, path: str, retention_hours: int, *, full: bool = False, look_first: bool = True
    ) -> int:
        """Delta's VACUUM: the files no version within ``retention_hours`` needs, and files no
        version ever referenced (delta-spark's VACUUM is always "full"); the number removed.

        ``look_first``: a ``DRY RUN`` first, and no VACUUM (whose ``VACUUM START``/``END``
        commits would change the table's version) when nothing is to be removed. Without it,
        one VACUUM, half the Spark jobs, logged in the table's history whatever the platform's
        default, and the count read from its ``VACUUM END`` commit."""
        self._delta(path)
        retain = f"{_sql_table(path)} RETAIN {retention_hours} HOURS"
        with self._session_conf(
            RETENTION_CHECK_CONF, "false" if retention_hours < DEFAULT_RETENTION_HOURS else None
        ):
            if look_first:
                doomed = self.spark.sql(f"VACUUM {retain} DRY RUN").count()
                if doomed:
                    self.spark.sql(f"VACUUM {retain}").collect()
                return doomed
            before = self.version(path)
            with self._session_conf(VACUUM_LOGGING_CONF, "true"):
                self.spark.sql(f"VACUUM {retain}").collect()
        ends = [
            info.get("operationMetrics") or {}
            for info in self._commit_infos(path, before)
            if info.get("operation") == "VACUUM END"
        ]
        return int(ends[-1].get("numDeletedFiles", 0)) if ends else 0

    def purge_deleted_rows(self, path: str) -> int:
        """``REORG TABLE … APPLY (PURGE)`` on a table that has deletion vectors: a DELETE or
        MERGE there only marks rows, and the files still holding them stay in the current
        version, out of VACUUM's reach. A table without them is left alone."""
        self._delta(path)
        properties = self._properties(path)
        enabled = properties.get(DELETION_VECTORS_PROPERTY, "false").lower() == "true"
        if not enabled and DELETION_VECTORS_FEATURE not in properties:
            return 0
        rows = self.spark.sql(f"REORG TABLE {_sql_table(path)} APPLY (PURGE)").collect()
        return sum(row["metrics"]["numFilesRemoved"] for row in rows if row["metrics"])

    def read(
        self,
        path: str,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
        with_file_name: bool = False,
    ) -> DataFrame:
        """The table (at a version or timestamp), optionally with each row's file name."""
        if not self.exists(path):
            raise TableNotFoundError(f"no Delta table at {path}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        if timestamp is not None:
            moment = timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp
            reader = reader.option("timestampAsOf", moment)
        try:
            df = reader.table(path) if is_table_name(path) else reader.load(path)
        except Exception as exc:
            if timestamp is not None and "before the earliest version" in str(exc):
                raise TableError(
                    f"{path}: no version was committed at or before {timestamp}"
                ) from None
            raise
        if with_file_name:
            df = df.select("*", F.col("_metadata.file_name").alias(FILE_NAME_COLUMN))
        return df

    def read_stream(
        self, path: str, *, max_files_per_trigger: int = 1000, starting_version: str = "earliest"
    ) -> DataFrame:
        """The table as a stream of its appends, at most ``max_files_per_trigger`` new files
        per micro-batch, from its first version, (``latest``) from now on, or from the
        version numbered ``starting_version``. Commits that change or delete rows (an
        erasure) are skipped rather than failing the stream: their rows were read already."""
        if not self.exists(path):
            raise TableNotFoundError(f"no Delta table at {path}")
        reader = (
            self.spark.readStream.format("delta")
            .option("skipChangeCommits", "true")
            .option("maxFilesPerTrigger", str(max_files_per_trigger))
        )
        if starting_version != "earliest":
            reader = reader.option("startingVersion", starting_version)
        return reader.table(path) if is_table_name(path) else reader.load(path)

    def append(
        self, path: str, spec: TableSpec, df: DataFrame, txn: Txn | None = None
    ) -> WriteResult:
        """Append ``df`` in one commit."""
        return self._write(path, spec, df, "append", txn)

    def overwrite(
        self, path: str, spec: TableSpec, df: DataFrame, txn: Txn | None = None
    ) -> WriteResult:
        """Replace the table's rows with ``df`` in one commit."""
        return self._write(path, spec, df, "overwrite", txn)

    def overwrite_where(
        self, path: str, spec: TableSpec, df: DataFrame, predicate: str, txn: Txn | None = None
    ) -> WriteResult:
        """Replace the rows matching ``predicate`` with ``df`` (``replaceWhere``).

        Raises
        ------
        ReplaceWhereViolationError
            When some rows of ``df`` do not match ``predicate``; nothing is committed.
        """
        return self._write(path, spec, df, "overwrite", txn, replaceWhere=predicate)

    def _write(
        self, path: str, spec: TableSpec, df: DataFrame, mode: str, txn: Txn | None, **options: str
    ) -> WriteResult:
        check_schema(df.schema, spec.schema, path)

        rows = df.select(*spec.schema.fieldNames())
        if spec.partition_by:
            # One file per partition value and task group, as delta-rs writes them: without it
            # every task writes a file into every partition it holds rows of (90 days of
            # clickstream from each task made bronze writes three times slower).
            rows = rows.repartition(*spec.partition_by)

        def write(tag: str) -> None:
            writer = rows.write.format("delta").mode(mode)
            writer = writer.option("userMetadata", tag)
            if txn is not None:
                writer = writer.option("txnAppId", txn.app_id).option(
                    "txnVersion", str(txn.version)
                )
            for key, value in options.items():
                writer = writer.option(key, value)
            if is_table_name(path):
                writer.saveAsTable(path)
            else:
                writer.save(path)

        return self._committing(path, mode, write)

    def delete(
        self, path: str, spec: TableSpec, predicate: str, txn: Txn | None = None
    ) -> WriteResult:
        """Delete the rows matching ``predicate``."""
        # No pre-check for matching rows: Delta's DELETE commits nothing when no file holds a
        # matching row, and the commit lookup then reports "no change".
        table = self._delta(path)

        def delete(tag: str) -> None:
            with self._dml_txn(txn), self._session_conf(USER_METADATA_CONF, tag):
                table.delete(predicate)

        return self._committing(path, "delete", delete)

    def delete_matching(
        self, path: str, spec: TableSpec, source: DataFrame, condition: str, txn: Txn | None = None
    ) -> WriteResult:
        """A MERGE whose only clause deletes: the rows some ``source`` row meets ``condition``
        for (Delta allows several source rows per target row for an unconditional delete);
        commits nothing if none match. (Delta 4.0's delete-only MERGE commits nothing when it
        matches nothing; the check keeps that true on every Delta the engine runs on.)"""
        table = self._delta(path)
        on = F.expr(condition)
        if rows_matching(table.toDF(), source, condition).isEmpty():
            return WriteResult(
                committed=False, version=self.version(path), skipped_reason="no change"
            )

        def delete(tag: str) -> None:
            with self._dml_txn(txn), self._session_conf(USER_METADATA_CONF, tag):
                table.alias("t").merge(source.alias("s"), on).whenMatchedDelete().execute()

        return self._committing(path, "delete", delete)

    def upsert(
        self,
        path: str,
        spec: TableSpec,
        source: DataFrame,
        keys: list[str],
        *,
        update_condition: str | None = None,
        txn: Txn | None = None,
    ) -> WriteResult:
        """Delta MERGE: insert new keys, update matched ones where ``update_condition`` holds."""
        check_schema(source.schema, spec.schema, path)
        table = self._delta(path)
        # Only rows that change something go into the merge, so a replay commits nothing.
        planned = (
            effective_changes(source, table.toDF(), keys, update_condition)
            .drop(FILE_NAME_COLUMN)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        changes = planned.drop(REPEATS_COLUMN)
        try:
            # One job finds both a repeated key and "nothing to change".
            rows, most = planned.agg(F.count(F.lit(1)), F.max(REPEATS_COLUMN)).first()  # type: ignore[misc]
            if most is not None and most > 1:
                raise_on_repeated_key(planned, keys, path)
            if rows == 0:
                return WriteResult(
                    committed=False, version=self.version(path), skipped_reason="no change"
                )
            on = " AND ".join(f"s.`{k}` <=> t.`{k}`" for k in keys)

            def merge(tag: str) -> None:
                with self._dml_txn(txn), self._session_conf(USER_METADATA_CONF, tag):
                    (
                        table.alias("t")
                        .merge(changes.alias("s"), on)
                        .whenMatchedUpdateAll(condition=update_condition)
                        .whenNotMatchedInsertAll()
                        .execute()
                    )

            return self._committing(path, "upsert", merge)
        finally:
            planned.unpersist()

    def _committing(self, path: str, operation: str, work: Callable[[str], None]) -> WriteResult:
        """Run ``work`` with a unique commit tag, again when it loses to a concurrent writer;
        the result says whether *its* commit landed, found by the tag in the history."""
        for _ in range(self.commit_retries + 1):
            tag = f"campaignlake:{uuid.uuid4().hex}"
            before = None if is_table_name(path) else self._head(path)
            try:
                work(tag)
            except Exception as exc:
                text = f"{type(exc).__name__}: {exc}"
                if any(marker in text for marker in _REPLACE_WHERE_VIOLATIONS):
                    raise ReplaceWhereViolationError(
                        f"{path}: written rows do not match the replaceWhere predicate; "
                        "nothing was committed"
                    ) from exc
                if any(marker in text for marker in _CONFLICTS):
                    continue
                raise
            return self._result(path, tag, before)
        raise CommitConflictError(
            f"{path}: {operation} lost to concurrent writers {self.commit_retries + 1} times; "
            "nothing was committed and no other writer's files were touched"
        )

    def _result(self, path: str, tag: str, before: int | None) -> WriteResult:
        """What the write tagged ``tag`` committed: for a path, from the commit files written
        since version ``before``; for a name, from the table's history."""
        if before is not None:
            return self._result_from_log(path, tag, before)
        table = self._delta(path)
        columns = ("version", "operationMetrics", "userMetadata")
        # Our commit is among the newest unless many writers committed since: look there first.
        recent = table.history(_RECENT).select(*columns).collect()  # commit metadata only
        mine = [r for r in recent if r["userMetadata"] == tag]
        if not mine and len(recent) == _RECENT:
            mine = table.history().where(F.col("userMetadata") == tag).select(*columns).collect()
        if not mine:
            return WriteResult(
                committed=False, version=int(recent[0]["version"]), skipped_reason="no change"
            )
        version = int(mine[0]["version"])
        metrics = mine[0]["operationMetrics"] or {}
        if {"numRemovedFiles", "numTargetFilesRemoved"} & metrics.keys():
            return _commit_result(version, metrics)
        # Delta 3.x reports no removed-file count for an overwrite: count its log entry.
        if path not in self._locations:
            self._locations[path] = table.detail().first()["location"]
        commit = HadoopFs(self.spark).read_text(_commit_file(self._locations[path], version))
        return _commit_result(version, metrics, commit)

    def _result_from_log(self, path: str, tag: str, before: int) -> WriteResult:
        head = self._head(path)
        assert head is not None, path  # the table existed before the write
        files = HadoopFs(self.spark)
        # Newest first: ours is the last commit unless another writer committed after it.
        for version in range(head, before, -1):
            commit = files.read_text(_commit_file(path, version))
            info = _commit_info(commit)
            if info.get("userMetadata") == tag:
                return _commit_result(version, info.get("operationMetrics"), commit)
        return WriteResult(committed=False, version=head, skipped_reason="no change")

    @contextmanager
    def _session_conf(self, key: str, value: str | None) -> Iterator[None]:
        """Set a session setting for the duration of one operation (``None``: leave it)."""
        if value is None:
            yield
            return
        previous = self.spark.conf.get(key, None)
        self.spark.conf.set(key, value)
        try:
            yield
        finally:
            if previous is None:
                self.spark.conf.unset(key)
            else:
                self.spark.conf.set(key, previous)

    @contextmanager
    def _dml_txn(self, txn: Txn | None) -> Iterator[None]:
        if txn is None:
            yield
            return
        with (
            self._session_conf(TXN_APP_ID_CONF, txn.app_id),
            self._session_conf(TXN_VERSION_CONF, str(txn.version)),
        ):
            yield


def _log_folder(path: str) -> str:
    return f"{path.rstrip('/')}/_delta_log"


def _commit_file(location: str, version: int) -> str:
    return f"{_log_folder(location)}/{version:020d}.json"


def _commit_info(commit: str) -> dict[str, Any]:
    """The ``commitInfo`` action of a commit file (Delta writes it first)."""
    for line in commit.splitlines():
        if line.startswith('{"commitInfo"'):
            return dict(json.loads(line)["commitInfo"])
    return {}


def _commit_result(version: int, operation_metrics: Any, commit: str | None = None) -> WriteResult:
    """A committed write's result from its commit's metrics and, when given, the commit file
    (its remove actions are the files it removed: Delta 3.x has no metric of them for an
    overwrite)."""
    metrics = {k: int(v) for k, v in (operation_metrics or {}).items()}

    def first(*names: str) -> int:
        return next((metrics[n] for n in names if n in metrics), 0)

    if commit is None:
        removed = first("numRemovedFiles", "numTargetFilesRemoved")
    else:
        removed = sum(1 for line in commit.splitlines() if line.startswith('{"remove"'))
    return WriteResult(
        committed=True,
        version=version,
        files_added=first("numAddedFiles", "numTargetFilesAdded", "numFiles"),
        files_removed=removed,
        rows_written=first("numOutputRows")
        or first("numTargetRowsInserted") + first("numTargetRowsUpdated"),
    )

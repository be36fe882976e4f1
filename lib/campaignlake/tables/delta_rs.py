"""The delta-rs engine: Spark writes the Parquet files, deltalake commits the transaction.

For pip-only environments (local runs, tests, CI), where Delta's JVM jars cannot be had. Every
operation has the meaning it has on delta-spark:

* the data files of a write are produced by Spark tasks (:mod:`campaignlake.tables.files`) and
  committed together in one Delta transaction with deltalake's transaction API;
* overwrite-where, delete and upsert are copy-on-write: Spark finds the files that hold affected
  rows, rewrites only those files' surviving rows, and the commit removes exactly those files;
* a write carrying a :class:`Txn` commits at most once per (app_id, version);
* a commit that loses to a concurrent writer is planned again from the new snapshot, a bounded
  number of times; only this write's own files are ever deleted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

import pyarrow as pa
import pyarrow.fs as pafs
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError
from deltalake.exceptions import TableNotFoundError as DeltaNotFound
from deltalake.transaction import (
    AddAction,
    CommitProperties,
    RemoveAction,
    Transaction,
    create_table_with_add_actions,
)
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from campaignlake.catalog import TableSpec
from campaignlake.errors import (
    CommitConflictError,
    ReplaceWhereViolationError,
    TableError,
    TableNotFoundError,
    UnsafeStorageError,
)
from campaignlake.hadoop_fs import escape_glob
from campaignlake.tables import files
from campaignlake.tables.merge import (
    FILE_NAME_COLUMN,
    REPEATS_COLUMN,
    effective_changes,
    raise_on_repeated_key,
    rows_matching,
)
from campaignlake.tables.spec import Txn, WriteResult, check_schema, creation_properties

log = logging.getLogger(__name__)

ENGINE_INFO = "campaignlake-delta-rs"
_S3_SCHEMES = ("s3://", "s3a://", "s3n://")


class _Conflict(Exception):
    """Internal: the snapshot this write was planned on is no longer the latest."""


class DeltaRsEngine:
    """Delta operations for pip-only environments.

    Parameters
    ----------
    spark
        The session whose executors write the data files.
    commit_retries
        How often a write that lost a commit race is planned and written again.
    stats_columns
        How many leading columns get file statistics.
    storage_options
        Passed to deltalake (object-store credentials and commit settings).
    max_records_per_file
        A task starts a new data file after this many rows.
    s3_safe_commit
        Whether a safe commit mode for S3 (conditional put or a lock) is configured; without
        one, ``s3://`` tables are refused.
    """

    name = "delta-rs"

    def __init__(
        self,
        spark: SparkSession,
        *,
        commit_retries: int = 5,
        stats_columns: int = 32,
        storage_options: dict[str, str] | None = None,
        s3_safe_commit: bool = False,
        max_records_per_file: int = 5_000_000,
    ) -> None:
        self.spark = spark
        self.commit_retries = commit_retries
        self.stats_columns = stats_columns
        self.storage_options = dict(storage_options or {})
        self.s3_safe_commit = s3_safe_commit
        self.max_records_per_file = max_records_per_file
        #: Called after a write's data files exist and before its commit; tests use it to
        #: simulate a crash or a concurrent writer at the most delicate moment.
        self.before_commit: Callable[[str], None] | None = None

    # ------------------------------------------------------------------ table-level

    def exists(self, path: str) -> bool:
        """Whether a Delta table exists at ``path``."""
        self._check_uri(path)
        return DeltaTable.is_deltatable(path, storage_options=self.storage_options)

    def create(self, path: str, spec: TableSpec) -> WriteResult:
        """Create an empty table; an existing table with the same schema is left alone."""
        self._check_uri(path)
        if self.exists(path):
            check_schema(self.schema(path), spec.schema, path)
            return WriteResult(committed=False, version=self.version(path), skipped_reason="exists")
        create_table_with_add_actions(
            path,
            DeltaSchema.from_arrow(files.to_arrow_schema(spec.schema)),
            [],
            mode="error",
            partition_by=list(spec.partition_by) or None,
            configuration=creation_properties(
                spec,
                files.stats_columns_for(
                    spec.schema, list(spec.partition_by), spec.pii_columns, self.stats_columns
                ),
            ),
            storage_options=self.storage_options,
            commit_properties=CommitProperties(
                custom_metadata={"campaignlake.engine": ENGINE_INFO}
            ),
        )
        return WriteResult(committed=True, version=self.version(path))

    def version(self, path: str) -> int:
        """The table's current version."""
        return self._table(path).version()

    def schema(self, path: str) -> StructType:
        """The table's schema, as Spark types."""
        return StructType.fromJson(json.loads(self._table(path).schema().to_json()))

    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first (at most ``limit``)."""
        return self._table(path).history(limit)

    def operations(self, path: str, after: int) -> list[str]:
        """The operation of each commit after version ``after``, oldest first."""
        table = self._table(path)
        head = table.version()
        if head <= after:
            return []
        return [str(e.get("operation")) for e in reversed(table.history(head - after))]

    def vacuum(
        self, path: str, retention_hours: int, *, full: bool = False, look_first: bool = True
    ) -> int:
        """Delete files no version within the retention needs; ``full`` also removes files
        no version ever referenced (left by crashed writes) once they are older than that;
        the number removed. Always a dry run first (``look_first`` or not): deltalake's
        vacuum names again the files of its log's tombstones that are already gone, and
        commits ``VACUUM START``/``END`` even then."""
        table = self._table(path)

        def vacuum(dry_run: bool) -> list[str]:
            return list(
                table.vacuum(
                    retention_hours=retention_hours,
                    dry_run=dry_run,
                    enforce_retention_duration=False,
                    full=full,
                )
            )

        filesystem, root = _filesystem(table)
        doomed = [
            info
            for info in filesystem.get_file_info([f"{root}/{name}" for name in vacuum(True)])
            if info.type != pafs.FileType.NotFound
        ]
        if doomed:
            vacuum(False)
        return len(doomed)

    def purge_deleted_rows(self, path: str) -> int:
        """Nothing to purge: this engine's deletes rewrite the files they touch (copy on
        write) and never write deletion vectors."""
        self._table(path)
        return 0

    # ------------------------------------------------------------------ reads

    def read(
        self,
        path: str,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
        with_file_name: bool = False,
    ) -> DataFrame:
        """Read the table at its latest, a given version, or as of a timestamp.

        deltalake resolves which files make up that version; Spark reads them. Partition
        values come from the Delta log, not from directory names.
        """
        table = self._table(path, version=version)
        if timestamp is not None:
            table.load_as_version(version_at(table, path, timestamp))
        return self._read_snapshot(table, with_file_name=with_file_name)

    def read_stream(
        self, path: str, *, max_files_per_trigger: int = 1000, starting_version: str = "earliest"
    ) -> DataFrame:
        """Not available: Spark reads a Delta table as a stream only through delta-spark."""
        raise TableError(
            f"{path}: reading a Delta table as a stream needs the native engine "
            "(storage.engine: spark, with Delta's jars on the session's classpath)"
        )

    def _read_snapshot(self, table: DeltaTable, *, with_file_name: bool) -> DataFrame:
        schema = StructType.fromJson(json.loads(table.schema().to_json()))
        partition_by = list(table.metadata().partition_columns)
        data_schema = StructType([f for f in schema.fields if f.name not in partition_by])
        actions = pa.table(table.get_add_actions(flatten=True))
        out_columns = schema.fieldNames() + ([FILE_NAME_COLUMN] if with_file_name else [])
        if actions.num_rows == 0:
            # The always-false filter makes it a plan Spark knows is empty, so joins and unions
            # with it are optimised away instead of shuffling the other side against nothing.
            empty = self.spark.createDataFrame([], schema).where(F.lit(False))
            if with_file_name:
                empty = empty.withColumn(FILE_NAME_COLUMN, F.lit(None).cast("string"))
            return empty.select(*out_columns)
        # deltalake gives the table's URI and the log gives file paths URI-encoded; Spark
        # wants them decoded, and treats glob characters in them as patterns.
        root = unquote(table.table_uri.rstrip("/"))
        relative_paths = [unquote(p) for p in actions.column("path").to_pylist()]
        data = (
            self.spark.read.schema(data_schema)
            .parquet(*[escape_glob(f"{root}/{p}") for p in relative_paths])
            .withColumn(FILE_NAME_COLUMN, F.col("_metadata.file_name"))
        )
        if partition_by:
            names = [p.rsplit("/", 1)[-1] for p in relative_paths]
            if len(set(names)) != len(names):
                raise TableError(f"{root}: data file names are not unique; cannot map partitions")
            rows = {FILE_NAME_COLUMN: names}
            for column in partition_by:
                rows[column] = actions.column(f"partition.{column}").cast(pa.string()).to_pylist()
            mapping = self.spark.createDataFrame(
                list(zip(*rows.values(), strict=True)),
                ", ".join(f"`{c}` string" for c in rows),
            ).select(
                FILE_NAME_COLUMN,
                *[F.col(c).cast(schema[c].dataType).alias(c) for c in partition_by],
            )
            data = data.join(F.broadcast(mapping), on=FILE_NAME_COLUMN, how="inner")
        return data.select(*out_columns)

    # ------------------------------------------------------------------ writes

    def append(
        self, path: str, spec: TableSpec, df: DataFrame, txn: Txn | None = None
    ) -> WriteResult:
        """Add the rows of ``df`` to the table."""
        return self._run(path, spec, txn, "WRITE", lambda table: (df, [], None), pure_append=True)

    def overwrite(
        self, path: str, spec: TableSpec, df: DataFrame, txn: Txn | None = None
    ) -> WriteResult:
        """Replace the whole content of the table with ``df``."""

        def plan(table: DeltaTable) -> tuple[DataFrame, list[dict[str, Any]], str | None]:
            return df, _live_files(table), None

        return self._run(path, spec, txn, "OVERWRITE", plan)

    def overwrite_where(
        self, path: str, spec: TableSpec, df: DataFrame, predicate: str, txn: Txn | None = None
    ) -> WriteResult:
        """Replace the rows matching ``predicate`` (Spark SQL) with ``df``, whose rows must all
        match it (delta-spark's ``replaceWhere``)."""

        def plan(table: DeltaTable) -> tuple[DataFrame, list[dict[str, Any]], str | None]:
            removed, survivors = self._rows_outside(table, predicate)
            new_rows = df.withColumn(files.VIOLATION_COLUMN, ~_matches(predicate))
            if survivors is not None:
                survivors = survivors.withColumn(files.VIOLATION_COLUMN, F.lit(False))
                new_rows = new_rows.unionByName(survivors)
            return new_rows, removed, predicate

        return self._run(path, spec, txn, "REPLACE WHERE", plan)

    def delete(
        self, path: str, spec: TableSpec, predicate: str, txn: Txn | None = None
    ) -> WriteResult:
        """Delete the rows matching ``predicate`` (Spark SQL); commits nothing if none match."""

        def plan(table: DeltaTable) -> tuple[DataFrame | None, list[dict[str, Any]], str | None]:
            removed, survivors = self._rows_outside(table, predicate)
            return survivors, removed, None

        return self._run(path, spec, txn, "DELETE", plan)

    def delete_matching(
        self, path: str, spec: TableSpec, source: DataFrame, condition: str, txn: Txn | None = None
    ) -> WriteResult:
        """Delete the rows some ``source`` row meets ``condition`` for (aliases ``t``, ``s``);
        commits nothing if none match. Like :meth:`delete`, the commit records no predicate."""
        on = F.expr(condition)

        def plan(table: DeltaTable) -> tuple[DataFrame | None, list[dict[str, Any]], str | None]:
            current = self._read_snapshot(table, with_file_name=True)
            hits = rows_matching(current, source, condition)
            per_file = (
                hits.groupBy(FILE_NAME_COLUMN)
                .agg(F.count(F.lit(1)).alias("matched"))
                .join(
                    current.groupBy(FILE_NAME_COLUMN).agg(F.count(F.lit(1)).alias("rows")),
                    on=FILE_NAME_COLUMN,
                )
                .collect()  # one row per affected file
            )
            removed, partial = self._affected_files(table, per_file)
            if not partial:
                return None, removed, None
            survivors = (
                current.where(F.col(FILE_NAME_COLUMN).isin(partial))
                .alias("t")
                .join(source.alias("s"), on, "left_anti")
                .drop(FILE_NAME_COLUMN)
            )
            return survivors, removed, None

        return self._run(path, spec, txn, "DELETE", plan)

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
        """Merge ``source`` into the table by ``keys``: matched rows are replaced by the source
        row (only where ``update_condition`` holds, written over aliases ``s`` and ``t``),
        unmatched source rows are inserted. Only files holding affected keys are rewritten;
        nothing is committed when no row would change."""

        def plan(table: DeltaTable) -> tuple[DataFrame | None, list[dict[str, Any]], str | None]:
            target = self._read_snapshot(table, with_file_name=True)
            planned = effective_changes(source, target, keys, update_condition)
            changes = planned.drop(REPEATS_COLUMN)
            # One row per touched file, plus one (null) for inserts.
            touched = (
                planned.groupBy(FILE_NAME_COLUMN)
                .agg(F.max(REPEATS_COLUMN).alias(REPEATS_COLUMN))
                .collect()
            )
            if any(r[REPEATS_COLUMN] > 1 for r in touched):
                raise_on_repeated_key(planned, keys, path)
            if not touched:
                return None, [], None
            touched_files = {r[FILE_NAME_COLUMN] for r in touched if r[FILE_NAME_COLUMN]}
            removed = [f for f in _live_files(table) if _file_name(f["path"]) in touched_files]
            survivors = target.where(F.col(FILE_NAME_COLUMN).isin(list(touched_files))).join(
                changes.select(*keys), on=keys, how="left_anti"
            )
            new_rows = changes.drop(FILE_NAME_COLUMN).unionByName(survivors.drop(FILE_NAME_COLUMN))
            return new_rows, removed, None

        return self._run(path, spec, txn, "MERGE", plan)

    # ------------------------------------------------------------------ machinery

    def _run(
        self,
        path: str,
        spec: TableSpec,
        txn: Txn | None,
        operation: str,
        plan: Callable[[DeltaTable], tuple[DataFrame | None, list[dict[str, Any]], str | None]],
        *,
        pure_append: bool = False,
    ) -> WriteResult:
        """Plan, write and commit, planning again when a concurrent commit got in first."""
        self._check_uri(path)
        for attempt in range(self.commit_retries + 1):
            table = self._table(path)
            if txn is not None:
                done = table.transaction_version(txn.app_id)
                if done is not None and done >= txn.version:
                    return WriteResult(
                        committed=False,
                        version=table.version(),
                        skipped_reason=f"txn {txn.app_id} version {txn.version} already committed",
                    )
            new_rows, removed, predicate = plan(table)
            written: list[files.WrittenFile] = []
            if new_rows is not None:
                check_schema(new_rows.drop(files.VIOLATION_COLUMN).schema, spec.schema, path)
                written = self._write_files(table, spec, new_rows)
            if not written and not removed:
                return WriteResult(
                    committed=False, version=table.version(), skipped_reason="no change"
                )
            violations = sum(f.violations for f in written)
            if violations:
                self._discard(table, written)
                raise ReplaceWhereViolationError(
                    f"{path}: {violations} written rows do not match the replaceWhere "
                    f"predicate {predicate!r}; nothing was committed"
                )
            try:
                if self.before_commit is not None:
                    self.before_commit(path)
                version = self._commit(table, spec, written, removed, txn, operation, pure_append)
            except _Conflict:
                self._discard(table, written)
                log.warning(
                    "%s: concurrent commit, planning %s again (attempt %d)",
                    path,
                    operation,
                    attempt + 1,
                )
                continue
            except Exception:
                self._discard(table, written)
                raise
            return WriteResult(
                committed=True,
                version=version,
                files_added=len(written),
                files_removed=len(removed),
                rows_written=sum(f.num_records for f in written),
            )
        raise CommitConflictError(
            f"{path}: {operation} lost to concurrent writers {self.commit_retries + 1} times; "
            "nothing was committed and no other writer's files were touched"
        )

    def _write_files(
        self, table: DeltaTable, spec: TableSpec, df: DataFrame
    ) -> list[files.WrittenFile]:
        partition_by = list(spec.partition_by)
        with_violations = files.VIOLATION_COLUMN in df.columns
        columns = spec.schema.fieldNames() + ([files.VIOLATION_COLUMN] if with_violations else [])
        ordered = df.select(*columns)
        if partition_by:
            # Like Delta's optimized writes: one task per partition value, so a batch adds one
            # file per partition (rolled over at max_records_per_file), not one per input task.
            ordered = ordered.repartition(*partition_by).sortWithinPartitions(*partition_by)
        writer = files.make_task_writer(
            table.table_uri.rstrip("/"),
            spec.schema,
            partition_by,
            files.stats_columns_for(
                spec.schema, partition_by, spec.pii_columns, self.stats_columns
            ),
            with_violations,
            self.max_records_per_file,
        )
        # Only per-file metadata reaches the driver: one small row for every file written.
        metadata = ordered.mapInArrow(writer, files.FILE_META_SCHEMA).collect()
        return [
            files.WrittenFile(
                path=row["path"],
                size=row["size"],
                partition_values=dict(row["partition_values"]),
                num_records=row["num_records"],
                stats=row["stats"],
                violations=row["violations"],
            )
            for row in metadata
        ]

    def _commit(
        self,
        table: DeltaTable,
        spec: TableSpec,
        written: list[files.WrittenFile],
        removed: list[dict[str, Any]],
        txn: Txn | None,
        operation: str,
        pure_append: bool,
    ) -> int:
        latest = self._table(table.table_uri)
        if not pure_append and latest.version() != table.version():
            raise _Conflict()
        now = files.now_millis()
        actions: list[AddAction | RemoveAction] = [
            AddAction(f.path, f.size, f.partition_values, now, True, f.stats) for f in written
        ]
        actions += [
            RemoveAction(f["path"], True, now, f["size"], f["partition_values"]) for f in removed
        ]
        properties = CommitProperties(
            custom_metadata={
                "campaignlake.engine": ENGINE_INFO,
                "campaignlake.operation": operation,
            },
            max_commit_retries=self.commit_retries if pure_append else 0,
            app_transactions=[Transaction(txn.app_id, txn.version)] if txn else None,
        )
        try:
            # Committing from the planned snapshot lets delta-rs detect a concurrent commit.
            table.create_write_transaction(
                actions,
                mode="append",
                schema=DeltaSchema.from_arrow(files.to_arrow_schema(spec.schema)),
                partition_by=list(spec.partition_by) or None,
                commit_properties=properties,
            )
        except CommitFailedError as exc:
            if pure_append:
                raise CommitConflictError(f"{table.table_uri}: commit failed: {exc}") from exc
            raise _Conflict() from exc
        return self._table(table.table_uri).version()

    def _rows_outside(
        self, table: DeltaTable, predicate: str
    ) -> tuple[list[dict[str, Any]], DataFrame | None]:
        """Files holding rows that match ``predicate``, and those files' other rows."""
        current = self._read_snapshot(table, with_file_name=True)
        matched = _matches(predicate)
        per_file = (
            current.groupBy(FILE_NAME_COLUMN)
            .agg(F.count(F.lit(1)).alias("rows"), F.sum(matched.cast("long")).alias("matched"))
            .where(F.col("matched") > 0)
            .collect()  # one row per affected file
        )
        removed, partial = self._affected_files(table, per_file)
        survivors = None
        if partial:
            survivors = current.where(F.col(FILE_NAME_COLUMN).isin(partial) & ~matched).drop(
                FILE_NAME_COLUMN
            )
        return removed, survivors

    @staticmethod
    def _affected_files(
        table: DeltaTable, per_file: list[Any]
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """From per-file counts of ``rows`` and ``matched`` rows: the live files to remove, and
        the names of those that keep some rows."""
        affected = {r[FILE_NAME_COLUMN] for r in per_file if r["matched"] > 0}
        if not affected:
            return [], []
        partial = [r[FILE_NAME_COLUMN] for r in per_file if 0 < r["matched"] < r["rows"]]
        removed = [f for f in _live_files(table) if _file_name(f["path"]) in affected]
        return removed, partial

    def _discard(self, table: DeltaTable, written: list[files.WrittenFile]) -> None:
        """Delete this write's own uncommitted files (never anything else)."""
        if not written:
            return
        filesystem, root = _filesystem(table)
        for f in written:
            try:
                filesystem.delete_file(f"{root}/{f.path}")
            except OSError:
                log.warning("could not delete uncommitted file %s; vacuum(full=True) will", f.path)

    def _table(self, path: str, version: int | None = None) -> DeltaTable:
        try:
            return DeltaTable(path, version=version, storage_options=self.storage_options)
        except DeltaNotFound as exc:
            raise TableNotFoundError(f"no Delta table at {path}") from exc

    def _check_uri(self, path: str) -> None:
        if path.startswith(_S3_SCHEMES) and not self.s3_safe_commit:
            raise UnsafeStorageError(
                f"{path}: the delta-rs engine will not commit to S3 without a safe commit mode; "
                "set storage.s3_commit.conditional_put: etag or "
                "storage.s3_commit.locking_provider: dynamodb in the conf, "
                "or use storage.engine: spark"
            )


def _filesystem(table: DeltaTable) -> tuple[pafs.FileSystem, str]:
    """The filesystem holding ``table`` and the table's root path on it."""
    return pafs.FileSystem.from_uri(table.table_uri.rstrip("/"))


def _matches(predicate: str) -> Column:
    """True where a row matches the Spark SQL ``predicate``; NULL counts as not matching."""
    return F.coalesce(F.expr(predicate), F.lit(False))


def _file_name(path: str) -> str:
    return unquote(path).rsplit("/", 1)[-1]


def _live_files(table: DeltaTable) -> list[dict[str, Any]]:
    """The add actions of the snapshot, as the fields a remove action needs."""
    actions = pa.table(table.get_add_actions(flatten=True))
    partition_columns = list(table.metadata().partition_columns)
    result = []
    for row in actions.to_pylist():
        result.append(
            {
                # The log stores paths URI-encoded; actions take them plain (delta-rs encodes).
                "path": unquote(row["path"]),
                "size": row["size_bytes"],
                "partition_values": {
                    c: files.partition_value_string(row[f"partition.{c}"])
                    for c in partition_columns
                },
            }
        )
    return result


def version_at(table: DeltaTable, path: str, timestamp: datetime | str) -> int:
    """The newest version committed at or before ``timestamp``, by the commit timestamps that
    ``history()`` reports. (delta-rs would use the log files' modification times, which can
    trail the commit timestamp by a few milliseconds, so a read as of a version's own
    reported time could land on the version before.)

    Raises
    ------
    TableError
        When the table has no version that old.
    """
    moment = datetime.fromisoformat(timestamp) if isinstance(timestamp, str) else timestamp
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    millis = moment.timestamp() * 1000
    committed = [
        int(entry["version"])
        for entry in table.history()
        if "version" in entry and entry.get("timestamp", float("inf")) <= millis
    ]
    if not committed:
        raise TableError(f"{path}: no version was committed at or before {moment.isoformat()}")
    return max(committed)

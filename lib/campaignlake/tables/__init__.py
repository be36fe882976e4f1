"""The one Delta table layer. Jobs read and write tables only through :class:`Tables`.

Tables are addressed by their catalogue key (:mod:`campaignlake.catalog`; ``tables.<key>`` in
``conf/<env>.yaml`` is the location); their schema, partitioning, PII columns and the job that
writes them come from the catalogue. The engine is chosen by
``storage.engine``: ``spark`` (native delta-spark), ``delta-rs`` (Spark writes the files,
deltalake commits), or ``auto`` (spark when Delta's JVM classes are on the classpath).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any, Protocol

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StructType

from campaignlake.catalog import TableSpec, table_specs, writer_of
from campaignlake.config import Conf
from campaignlake.errors import ConfigError, MissingInputError
from campaignlake.tables.spark_delta import SparkDeltaEngine, delta_classes_available
from campaignlake.tables.spec import Txn, WriteResult, describe_writes

__all__ = [
    "SLICE_UNCHANGED", "Engine", "TableSpec", "Tables", "Txn", "WriteResult", "describe_writes",
    "make_engine",
]  # fmt: skip

#: Why :meth:`Tables.replace_slice` committed nothing: the slice already held those rows.
SLICE_UNCHANGED = "slice unchanged"


class Engine(Protocol):
    """What both engines implement, path-based."""

    name: str

    def exists(self, path: str) -> bool:
        """Whether a Delta table exists at ``path``."""

    def create(self, path: str, spec: TableSpec) -> WriteResult:
        """Create the table if it does not exist; check its schema if it does."""

    def version(self, path: str) -> int:
        """The table's current version."""

    def schema(self, path: str) -> StructType:
        """The table's schema."""

    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first (at most ``limit``)."""

    def operations(self, path: str, after: int) -> list[str]:
        """The operation of each commit after version ``after``, oldest first."""

    def vacuum(
        self, path: str, retention_hours: int, *, full: bool = False, look_first: bool = True
    ) -> int:
        """Delete files no version within ``retention_hours`` needs (``full``: and files no
        version ever referenced); the number removed. ``look_first``: commit nothing when
        there is nothing to remove, at the cost of a dry run; without it the engine may
        record an empty vacuum in the table's history."""

    def purge_deleted_rows(self, path: str) -> int:
        """Rewrite the data files in which deletion vectors only mark rows as deleted, so the
        rows leave the files the current version reads; the number of files rewritten (the
        old ones go with the next vacuum past its retention)."""

    def read(
        self,
        path: str,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
        with_file_name: bool = False,
    ) -> DataFrame:
        """The table (at a version or timestamp), optionally with each row's file name."""

    def read_stream(
        self, path: str, *, max_files_per_trigger: int = 1000, starting_version: str = "earliest"
    ) -> DataFrame:
        """The table as a stream of its appends, at most ``max_files_per_trigger`` new files
        per micro-batch, from its first version or (``latest``) from now on."""

    def append(
        self, path: str, spec: TableSpec, df: DataFrame, txn: Txn | None = None
    ) -> WriteResult:
        """Append ``df`` in one commit."""

    def overwrite(
        self, path: str, spec: TableSpec, df: DataFrame, txn: Txn | None = None
    ) -> WriteResult:
        """Replace the table's rows with ``df`` in one commit."""

    def overwrite_where(
        self, path: str, spec: TableSpec, df: DataFrame, predicate: str, txn: Txn | None = None
    ) -> WriteResult:
        """Replace the rows matching ``predicate`` with ``df``, which must all match it."""

    def delete(
        self, path: str, spec: TableSpec, predicate: str, txn: Txn | None = None
    ) -> WriteResult:
        """Delete the rows matching ``predicate``."""

    def delete_matching(
        self, path: str, spec: TableSpec, source: DataFrame, condition: str, txn: Txn | None = None
    ) -> WriteResult:
        """Delete the rows for which some ``source`` row meets ``condition`` (over aliases
        ``t``, the table, and ``s``, the source); the log records the condition, not the
        source's values."""

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
        """Insert ``source``'s new keys; update matched keys where ``update_condition`` holds."""


def make_engine(spark: SparkSession, conf: Conf) -> Engine:
    """The engine ``storage.engine`` asks for (``auto``: spark if Delta's classes are loaded)."""
    storage = conf.storage
    engine = storage.engine
    if engine == "auto":
        engine = "spark" if delta_classes_available(spark) else "delta-rs"
    named = conf.named_tables()
    if engine == "delta-rs" and named:
        raise ConfigError(
            f"{conf.source_file}: tables.{named[0]}: {getattr(conf.tables, named[0])} is a "
            "catalog table name, which needs Delta's JVM classes (storage.engine: spark); this "
            "session has none, so the delta-rs engine, which writes paths only, was selected"
        )
    if engine == "spark":
        return SparkDeltaEngine(
            spark, commit_retries=storage.commit_retries, stats_columns=storage.stats_columns
        )
    options = dict(storage.storage_options)
    s3 = storage.s3_commit
    safe = False
    if s3 is not None and s3.conditional_put:
        options.setdefault("conditional_put", s3.conditional_put)
        safe = True
    if s3 is not None and s3.locking_provider:
        options.setdefault("AWS_S3_LOCKING_PROVIDER", s3.locking_provider)
        options.setdefault("DELTA_DYNAMO_TABLE_NAME", s3.dynamodb_table or "")
        safe = True
    try:
        # Imported here: only the fallback engine needs deltalake (the `delta-rs` extra).
        from campaignlake.tables.delta_rs import DeltaRsEngine
    except ImportError as exc:
        raise ConfigError(
            f"{conf.source_file}: storage.engine: the delta-rs engine was selected "
            f"({storage.engine!r}, and Delta's JVM classes are "
            f"{'loaded' if delta_classes_available(spark) else 'not loaded'}) but the "
            f"deltalake package is not installed ({exc}); install campaignlake[delta-rs], or "
            "add Delta's jars to the session (storage.engine: spark)"
        ) from exc
    return DeltaRsEngine(
        spark,
        commit_retries=storage.commit_retries,
        stats_columns=storage.stats_columns,
        storage_options=options,
        s3_safe_commit=safe,
    )


class Tables:
    """Read and write campaignlake's tables by conf key.

    Examples
    --------
    >>> tables = Tables(spark, conf)                      # doctest: +SKIP
    >>> tables.append("clickstream_events", events, txn=Txn("ingest", 7))  # doctest: +SKIP
    """

    def __init__(self, spark: SparkSession, conf: Conf, engine: Engine | None = None) -> None:
        self.spark = spark
        self.conf = conf
        self.engine = engine or make_engine(spark, conf)
        self._specs: dict[str, TableSpec] | None = None

    def path(self, key: str) -> str:
        """The table's location: ``tables.<key>`` under ``paths.warehouse``."""
        return self.conf.table_path(key)

    def spec(self, key: str) -> TableSpec:
        """The table's contract, from the catalogue."""
        if self._specs is None:
            self._specs = table_specs(self.conf)
        return self._specs[key]

    def exists(self, key: str) -> bool:
        """Whether the table has been created."""
        return self.engine.exists(self.path(key))

    def require(self, keys: Iterable[str], purpose: str) -> None:
        """Fail unless every table of ``keys`` exists; the message names each missing table
        and the job that writes it (from the catalogue).

        Raises
        ------
        MissingInputError
            When one or more tables do not exist yet.
        """
        missing = [key for key in keys if not self.exists(key)]
        if missing:
            jobs = ", ".join(f"{key} (run {writer_of(key)})" for key in missing)
            raise MissingInputError(f"{purpose} need tables that do not exist yet: {jobs}")

    def read_or_empty(self, key: str) -> DataFrame:
        """The table, or an empty frame of its schema when it does not exist yet (for the
        optional inputs of a job)."""
        if self.exists(key):
            return self.read(key)
        return self.spark.createDataFrame([], self.spec(key).schema)

    def read_day(self, key: str, day_column: str, day: date) -> DataFrame:
        """The table's rows of one day (``day_column == day``).

        Raises
        ------
        MissingInputError
            When the table does not exist or has no rows for that day; the message names the
            job to run for it.
        """
        if self.exists(key):
            rows = self.read(key).where(F.col(day_column) == F.lit(day))
            if not rows.isEmpty():
                return rows
        raise MissingInputError(
            f"{key} has no rows for {day}: run {writer_of(key)} --date {day} first"
        )

    def versions(self, keys: Iterable[str]) -> dict[str, int | None]:
        """The current version of each table (``None`` for one that does not exist)."""
        return {key: self.version(key) if self.exists(key) else None for key in keys}

    def ensure(self, key: str) -> WriteResult:
        """Create the table if it does not exist (checking the schema if it does)."""
        return self.engine.create(self.path(key), self.spec(key))

    def read(
        self, key: str, *, version: int | None = None, timestamp: datetime | str | None = None
    ) -> DataFrame:
        """The table, or one of its versions (``version`` or ``timestamp``)."""
        return self.engine.read(self.path(key), version=version, timestamp=timestamp)

    def read_stream(
        self, key: str, *, max_files_per_trigger: int = 1000, starting_version: str = "earliest"
    ) -> DataFrame:
        """The table as a stream of its appends (the native engine only)."""
        return self.engine.read_stream(
            self.path(key),
            max_files_per_trigger=max_files_per_trigger,
            starting_version=starting_version,
        )

    def version(self, key: str) -> int:
        """The table's current version."""
        return self.engine.version(self.path(key))

    def operations(self, key: str, after: int) -> list[str]:
        """The operation of each commit after version ``after`` (``WRITE``, ``MERGE``,
        ``VACUUM END`` …), oldest first: what changed a table since a version, cheaply."""
        return self.engine.operations(self.path(key), after)

    def history(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first (at most ``limit``)."""
        return self.engine.history(self.path(key), limit)

    def append(self, key: str, df: DataFrame, txn: Txn | None = None) -> WriteResult:
        """Append ``df`` (creating the table if needed); ``txn`` makes it commit at most once."""
        self.ensure(key)
        return self.engine.append(self.path(key), self.spec(key), df, txn)

    def overwrite(self, key: str, df: DataFrame, txn: Txn | None = None) -> WriteResult:
        """Replace every row with ``df`` (creating the table if needed)."""
        self.ensure(key)
        return self.engine.overwrite(self.path(key), self.spec(key), df, txn)

    def overwrite_where(
        self, key: str, df: DataFrame, predicate: str, txn: Txn | None = None
    ) -> WriteResult:
        """Replace the rows matching ``predicate`` with ``df``, which must all match it."""
        self.ensure(key)
        return self.engine.overwrite_where(self.path(key), self.spec(key), df, predicate, txn)

    def replace_slice(
        self,
        key: str,
        df: DataFrame,
        predicate: str,
        *,
        ignore: tuple[str, ...] = (),
        txn: Txn | None = None,
    ) -> WriteResult:
        """Replace the rows matching ``predicate`` with ``df`` unless they already hold exactly
        ``df``'s rows (compared without the ``ignore`` columns, e.g. creation times): a rerun
        that computes the same slice commits nothing and leaves the version as it was.

        Cache ``df`` first when it is costly: it is read once to compare and once to write.
        """
        self.ensure(key)
        # Set operations cannot compare maps: compare their sorted entries instead.
        kept = [
            F.array_sort(F.map_entries(F.col(f.name))).alias(f.name)
            if isinstance(f.dataType, MapType)
            else F.col(f.name)
            for f in df.schema.fields
            if f.name not in ignore
        ]
        current = self.read(key).where(predicate).select(*kept)
        new = df.select(*kept)
        same = current.exceptAll(new).isEmpty() and new.exceptAll(current).isEmpty()
        if same:
            return WriteResult(
                committed=False, version=self.version(key), skipped_reason=SLICE_UNCHANGED
            )
        return self.overwrite_where(key, df, predicate, txn=txn)

    def upsert(
        self,
        key: str,
        df: DataFrame,
        keys: list[str],
        *,
        update_condition: str | None = None,
        txn: Txn | None = None,
    ) -> WriteResult:
        """Insert ``df``'s new ``keys``; update matched ones where ``update_condition`` holds."""
        self.ensure(key)
        return self.engine.upsert(
            self.path(key), self.spec(key), df, keys, update_condition=update_condition, txn=txn
        )

    def delete(self, key: str, predicate: str, txn: Txn | None = None) -> WriteResult:
        """Delete the rows matching ``predicate`` (Delta records it in the table's history:
        no personal data in it; see :meth:`delete_matching`)."""
        return self.engine.delete(self.path(key), self.spec(key), predicate, txn)

    def delete_matching(
        self, key: str, source: DataFrame, condition: str, txn: Txn | None = None
    ) -> WriteResult:
        """Delete the rows for which some ``source`` row meets ``condition`` (Spark SQL over
        aliases ``t`` and ``s``). The values to delete by travel as data: the table's history
        records the condition only, where a predicate would keep them for
        ``delta.logRetentionDuration`` in plain text."""
        return self.engine.delete_matching(self.path(key), self.spec(key), source, condition, txn)

    def vacuum(
        self,
        key: str,
        retention_hours: int = 168,
        *,
        full: bool = False,
        look_first: bool = True,
    ) -> int:
        """Delete files no version within ``retention_hours`` needs; the number removed
        (``look_first``: see :meth:`Engine.vacuum`)."""
        return self.engine.vacuum(self.path(key), retention_hours, full=full, look_first=look_first)

    def purge_deleted_rows(self, key: str) -> int:
        """Rewrite the files whose deleted rows only a deletion vector hides (Unity Catalog
        turns deletion vectors on by default); the number of files rewritten."""
        return self.engine.purge_deleted_rows(self.path(key))

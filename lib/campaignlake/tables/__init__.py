"""The one Delta table layer. Jobs read and write tables only through :class:`Tables`.

Tables are addressed by their conf key (``tables.<key>`` in ``conf/<env>.yaml``); their schema,
partitioning and PII columns come from :mod:`campaignlake.schemas`. The engine is chosen by
``storage.engine``: ``spark`` (native delta-spark), ``delta-rs`` (Spark writes the files,
deltalake commits), or ``auto`` (spark when Delta's JVM classes are on the classpath).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import MapType, StructType

from campaignlake.config import Conf
from campaignlake.errors import MissingInputError
from campaignlake.tables.delta_rs import DeltaRsEngine
from campaignlake.tables.spark_delta import SparkDeltaEngine, delta_classes_available
from campaignlake.tables.spec import TableSpec, Txn, WriteResult, describe_writes

__all__ = [
    "Engine", "TableSpec", "Tables", "Txn", "WriteResult", "describe_writes", "make_engine",
]  # fmt: skip


class Engine(Protocol):
    """What both engines implement, path-based."""

    name: str

    def exists(self, path: str) -> bool: ...
    def create(self, path: str, spec: TableSpec) -> WriteResult: ...
    def version(self, path: str) -> int: ...
    def schema(self, path: str) -> StructType: ...
    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]: ...
    def vacuum(self, path: str, retention_hours: int, *, full: bool = False) -> list[str]: ...
    def read(
        self,
        path: str,
        *,
        version: int | None = None,
        timestamp: datetime | str | None = None,
        with_file_name: bool = False,
    ) -> DataFrame: ...
    def append(
        self, path: str, spec: TableSpec, df: DataFrame, txn: Txn | None = None
    ) -> WriteResult: ...
    def overwrite(
        self, path: str, spec: TableSpec, df: DataFrame, txn: Txn | None = None
    ) -> WriteResult: ...
    def overwrite_where(
        self, path: str, spec: TableSpec, df: DataFrame, predicate: str, txn: Txn | None = None
    ) -> WriteResult: ...
    def delete(
        self, path: str, spec: TableSpec, predicate: str, txn: Txn | None = None
    ) -> WriteResult: ...
    def upsert(
        self,
        path: str,
        spec: TableSpec,
        source: DataFrame,
        keys: list[str],
        *,
        update_condition: str | None = None,
        txn: Txn | None = None,
    ) -> WriteResult: ...


def make_engine(spark: SparkSession, conf: Conf) -> Engine:
    """The engine ``storage.engine`` asks for (``auto``: spark if Delta's classes are loaded)."""
    storage = conf.storage
    engine = storage.engine
    if engine == "auto":
        engine = "spark" if delta_classes_available(spark) else "delta-rs"
    if engine == "spark":
        return SparkDeltaEngine(spark)
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
        return self.conf.table_path(key)

    def spec(self, key: str) -> TableSpec:
        if self._specs is None:
            from campaignlake.schemas import table_specs

            self._specs = table_specs(self.conf)
        return self._specs[key]

    def exists(self, key: str) -> bool:
        return self.engine.exists(self.path(key))

    def require(self, writers: dict[str, str], purpose: str) -> None:
        """Fail unless every table in ``writers`` (table key → the job that writes it) exists;
        the message names each missing table and the job to run.

        Raises
        ------
        MissingInputError
            When one or more tables do not exist yet.
        """
        missing = [key for key in writers if not self.exists(key)]
        if missing:
            jobs = ", ".join(f"{key} (run {writers[key]})" for key in missing)
            raise MissingInputError(f"{purpose} need tables that do not exist yet: {jobs}")

    def ensure(self, key: str) -> WriteResult:
        """Create the table if it does not exist (checking the schema if it does)."""
        return self.engine.create(self.path(key), self.spec(key))

    def read(
        self, key: str, *, version: int | None = None, timestamp: datetime | str | None = None
    ) -> DataFrame:
        return self.engine.read(self.path(key), version=version, timestamp=timestamp)

    def version(self, key: str) -> int:
        return self.engine.version(self.path(key))

    def history(self, key: str, limit: int | None = None) -> list[dict[str, Any]]:
        return self.engine.history(self.path(key), limit)

    def append(self, key: str, df: DataFrame, txn: Txn | None = None) -> WriteResult:
        self.ensure(key)
        return self.engine.append(self.path(key), self.spec(key), df, txn)

    def overwrite(self, key: str, df: DataFrame, txn: Txn | None = None) -> WriteResult:
        self.ensure(key)
        return self.engine.overwrite(self.path(key), self.spec(key), df, txn)

    def overwrite_where(
        self, key: str, df: DataFrame, predicate: str, txn: Txn | None = None
    ) -> WriteResult:
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
                committed=False, version=self.version(key), skipped_reason="slice unchanged"
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
        self.ensure(key)
        return self.engine.upsert(
            self.path(key), self.spec(key), df, keys, update_condition=update_condition, txn=txn
        )

    def delete(self, key: str, predicate: str, txn: Txn | None = None) -> WriteResult:
        return self.engine.delete(self.path(key), self.spec(key), predicate, txn)

    def vacuum(self, key: str, retention_hours: int = 168, *, full: bool = False) -> list[str]:
        return self.engine.vacuum(self.path(key), retention_hours, full=full)

"""The native delta-spark engine (Databricks, EMR with Delta enabled, any session with Delta's
JVM classes). Same operations and meanings as :mod:`campaignlake.tables.delta_rs`."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StructType

from campaignlake.catalog import TableSpec
from campaignlake.errors import TableNotFoundError
from campaignlake.tables.merge import check_unique_keys, effective_changes
from campaignlake.tables.spec import Txn, WriteResult, check_schema

TXN_APP_ID_CONF = "spark.databricks.delta.write.txnAppId"
TXN_VERSION_CONF = "spark.databricks.delta.write.txnVersion"


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
    """Delta operations through delta-spark."""

    name = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def _delta(self, path: str) -> Any:
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self.spark, path):
            raise TableNotFoundError(f"no Delta table at {path}")
        return DeltaTable.forPath(self.spark, path)

    def exists(self, path: str) -> bool:
        """Whether a Delta table exists at ``path``."""
        from delta.tables import DeltaTable

        return bool(DeltaTable.isDeltaTable(self.spark, path))

    def create(self, path: str, spec: TableSpec) -> WriteResult:
        """Create the table if it does not exist; check its schema if it does."""
        from delta.tables import DeltaTable

        if self.exists(path):
            check_schema(self.schema(path), spec.schema, path)
            return WriteResult(committed=False, version=self.version(path), skipped_reason="exists")
        builder = DeltaTable.createIfNotExists(self.spark).location(path).addColumns(spec.schema)
        if spec.partition_by:
            builder = builder.partitionedBy(*spec.partition_by)
        for key, value in spec.properties.items():
            builder = builder.property(key, value)
        builder.execute()
        return WriteResult(committed=True, version=self.version(path))

    def version(self, path: str) -> int:
        """The table's current version."""
        return int(self._delta(path).history(1).select("version").first()[0])

    def schema(self, path: str) -> StructType:
        """The table's schema."""
        return self._delta(path).toDF().schema

    def history(self, path: str, limit: int | None = None) -> list[dict[str, Any]]:
        """The table's commits, newest first (at most ``limit``)."""
        history = self._delta(path).history(limit) if limit else self._delta(path).history()
        return [row.asDict(recursive=True) for row in history.collect()]  # log entries, not data

    def vacuum(self, path: str, retention_hours: int, *, full: bool = False) -> list[str]:
        """Delta's VACUUM (FULL when ``full``); the paths removed."""
        # delta-spark's VACUUM always removes unreferenced files past the retention ("full").
        self._delta(path).vacuum(retention_hours)
        return []

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
            reader = reader.option("timestampAsOf", str(timestamp))
        return reader.load(path)

    def _write(
        self, path: str, spec: TableSpec, df: DataFrame, mode: str, txn: Txn | None, **options: str
    ) -> WriteResult:
        check_schema(df.schema, spec.schema, path)
        before = self.version(path)
        writer = df.select(*spec.schema.fieldNames()).write.format("delta").mode(mode)
        if txn is not None:
            writer = writer.option("txnAppId", txn.app_id).option("txnVersion", str(txn.version))
        for key, value in options.items():
            writer = writer.option(key, value)
        writer.save(path)
        after = self.version(path)
        return WriteResult(committed=after != before, version=after)

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
        """Replace the rows matching ``predicate`` with ``df`` (``replaceWhere``)."""
        return self._write(path, spec, df, "overwrite", txn, replaceWhere=predicate)

    @contextmanager
    def _dml_txn(self, txn: Txn | None) -> Iterator[None]:
        if txn is None:
            yield
            return
        self.spark.conf.set(TXN_APP_ID_CONF, txn.app_id)
        self.spark.conf.set(TXN_VERSION_CONF, str(txn.version))
        try:
            yield
        finally:
            self.spark.conf.unset(TXN_APP_ID_CONF)
            self.spark.conf.unset(TXN_VERSION_CONF)

    def delete(
        self, path: str, spec: TableSpec, predicate: str, txn: Txn | None = None
    ) -> WriteResult:
        """Delete the rows matching ``predicate``."""
        table = self._delta(path)
        if table.toDF().where(F.coalesce(F.expr(predicate), F.lit(False))).limit(1).count() == 0:
            return WriteResult(
                committed=False, version=self.version(path), skipped_reason="no change"
            )
        before = self.version(path)
        with self._dml_txn(txn):
            table.delete(predicate)
        after = self.version(path)
        return WriteResult(committed=after != before, version=after)

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
        check_unique_keys(source, keys, path)
        table = self._delta(path)
        # Only rows that change something go into the merge, so a replay commits nothing.
        changes = effective_changes(source, table.toDF(), keys, update_condition).drop(
            "__campaignlake_file"
        )
        if changes.limit(1).count() == 0:
            return WriteResult(
                committed=False, version=self.version(path), skipped_reason="no change"
            )
        before = self.version(path)
        on = " AND ".join(f"s.`{k}` <=> t.`{k}`" for k in keys)
        with self._dml_txn(txn):
            (
                table.alias("t")
                .merge(changes.alias("s"), on)
                .whenMatchedUpdateAll(condition=update_condition)
                .whenNotMatchedInsertAll()
                .execute()
            )
        after = self.version(path)
        return WriteResult(committed=after != before, version=after)

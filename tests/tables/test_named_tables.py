"""Tables addressed by catalog name (``schema.table``, as Unity Catalog's ``catalog.schema.table``)
on the native engine: the same operations and meanings as by path, in the session's catalog;
the path-only delta-rs engine refuses names when the configuration loads."""

from __future__ import annotations

import dataclasses
import json
import uuid
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession

from campaignlake import catalog
from campaignlake.config import Conf, load_conf_file
from campaignlake.errors import ConfigError, ReplaceWhereViolationError, TableNotFoundError
from campaignlake.tables import Tables, Txn, make_engine
from campaignlake.tables.spark_delta import SparkDeltaEngine
from tests.literals import assert_frames_equal
from tests.tables.literals import D1, D2, SPEC, rows_df, ts

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def name() -> str:
    """A table in a schema of its own (created by the engine)."""
    return f"campaignlake_test_{uuid.uuid4().hex[:8]}.events"


def location(spark: SparkSession, name: str) -> str:
    """Where the catalog keeps the named table's files."""
    return spark.sql(f"DESCRIBE DETAIL {name}").first()["location"].removeprefix("file:")


# Every operation on one table in one test (~30 s): in make test, to keep test-fast within 5 min.
@pytest.mark.system
def test_a_named_table_is_created_written_and_read_like_a_path(
    engine: SparkDeltaEngine, spark: SparkSession, name: str
) -> None:
    assert not engine.exists(name)
    with pytest.raises(TableNotFoundError, match=f"no Delta table at {name}"):
        engine.read(name)
    assert engine.create(name, SPEC).committed
    rows = [(1, "a@x.io", Decimal("10.00"), ts(1), D1), (2, "b@x.io", Decimal("20.00"), ts(2), D2)]
    first = engine.append(name, SPEC, rows_df(spark, rows), txn=Txn("test.named", 1))
    assert (first.committed, first.version, first.rows_written) == (True, 1, 2)
    # The same batch again commits nothing.
    assert not engine.append(name, SPEC, rows_df(spark, rows), txn=Txn("test.named", 1)).committed
    assert_frames_equal(engine.read(name), rows_df(spark, rows))
    assert engine.exists(name) and spark.catalog.tableExists(name)

    engine.upsert(name, SPEC, rows_df(spark, [(2, "b@x.io", Decimal("25.00"), ts(2), D2)]), ["id"])
    replay = engine.upsert(
        name, SPEC, rows_df(spark, [(2, "b@x.io", Decimal("25.00"), ts(5), D2)]), ["id"],
        update_condition="s.ts > t.ts AND false",
    )  # fmt: skip
    assert not replay.committed and replay.skipped_reason == "no change"
    with pytest.raises(ReplaceWhereViolationError):
        engine.overwrite_where(
            name, SPEC, rows_df(spark, [(9, None, None, ts(9), D2)]), "day = '2026-10-01'"
        )
    engine.overwrite_where(
        name, SPEC, rows_df(spark, [(3, None, Decimal("3.00"), ts(3), D1)]), "day = '2026-10-01'"
    )
    engine.delete(name, SPEC, "id = 2")
    assert [r.id for r in engine.read(name).collect()] == [3]
    assert engine.read(name, version=1).count() == 2
    at_v1 = datetime.fromtimestamp(engine.history(name)[-2]["timestamp"] / 1000, timezone.utc)
    assert engine.read(name, timestamp=at_v1).count() == 2
    assert [h["version"] for h in engine.history(name)] == [4, 3, 2, 1, 0]
    files = {
        r[0] for r in engine.read(name, with_file_name=True).select("__campaignlake_file").collect()
    }
    assert len(files) == 1 and next(iter(files)).endswith(".parquet")

    # The catalog's table is a Delta table like any other: deltalake opens its location, and
    # its log keeps the PII column out of file statistics.
    where = location(spark, name)
    assert DeltaTable(where).version() == 4
    metadata = [
        json.loads(line)["metaData"]
        for line in Path(where, "_delta_log", f"{0:020d}.json").read_text().splitlines()
        if line.startswith('{"metaData"')
    ]
    stats_columns = metadata[0]["configuration"]["delta.dataSkippingStatsColumns"].split(",")
    assert "email" not in stats_columns and "id" in stats_columns

    engine.overwrite(name, SPEC, rows_df(spark, [(7, None, None, ts(7), D2)]))
    assert engine.vacuum(name, retention_hours=0) >= 1
    assert [r.id for r in engine.read(name).collect()] == [7]


def named_conf(conf: Conf, schema: str) -> Conf:
    """``conf`` with every table as ``<schema>.<key>`` in the session catalog."""
    return dataclasses.replace(
        conf, tables=type(conf.tables)(**{k: f"{schema}.{k}" for k in catalog.TABLE_KEYS})
    )


def test_tables_by_name_through_the_table_layer(spark: SparkSession, conf: Conf) -> None:
    named = named_conf(conf, f"campaignlake_test_{uuid.uuid4().hex[:8]}")
    tables = Tables(spark, named, engine=SparkDeltaEngine(spark))
    assert tables.path(catalog.CUSTOMERS) == named.tables.customers
    tables.ensure(catalog.ERASURES)
    assert tables.exists(catalog.ERASURES) and tables.version(catalog.ERASURES) == 0
    assert tables.read_or_empty(catalog.ERASURES).count() == 0


def test_the_delta_rs_engine_refuses_table_names_when_the_conf_loads(tmp_path: Path) -> None:
    local = (REPO_ROOT / "conf" / "local.yaml").read_text()
    text = local.replace("  engine: auto", "  engine: delta-rs", 1)
    text = text.replace("  customers: silver/customers", "  customers: main.marketing.customers", 1)
    assert "main.marketing.customers" in text and "engine: delta-rs" in text
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "test.yaml"
    path.write_text(text)
    with pytest.raises(
        ConfigError, match=r"test\.yaml: tables\.customers: the delta-rs engine writes paths only"
    ):
        load_conf_file(path)


def test_an_engine_resolved_to_delta_rs_refuses_table_names(
    spark: SparkSession, conf: Conf
) -> None:
    # `auto` resolves to delta-rs in a session without Delta's JVM classes; the same guard
    # applies to a conf built in code, which skips the load-time check.
    named = named_conf(conf, "marketing")
    delta_rs = dataclasses.replace(
        named, storage=dataclasses.replace(named.storage, engine="delta-rs")
    )
    with pytest.raises(ConfigError, match=r"tables\.\w+: marketing\.\w+ is a catalog table name"):
        make_engine(spark, delta_rs)

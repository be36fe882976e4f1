"""Which engine runs where, and the session factory's settings."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import tempfile
from pathlib import Path

import pyspark
import pytest
from pyspark.sql import SparkSession

from campaignlake.config import Conf, KafkaConf, S3CommitConf
from campaignlake.errors import UnsafeStorageError
from campaignlake.session import (
    get_spark,
    local_defaults,
    remember_resolved_jars,
    with_resolved_jars,
)
from campaignlake.tables import Tables, make_engine
from campaignlake.tables.delta_rs import DeltaRsEngine
from campaignlake.tables.spark_delta import SparkDeltaEngine, delta_classes_available


def with_storage(conf: Conf, **changes: object) -> Conf:
    return dataclasses.replace(conf, storage=dataclasses.replace(conf.storage, **changes))


def test_auto_uses_the_native_engine_when_delta_jars_are_loaded(
    spark: SparkSession, conf: Conf
) -> None:
    assert delta_classes_available(spark)  # the suite's session loads Delta's jars
    native = make_engine(spark, with_storage(conf, commit_retries=3))
    assert isinstance(native, SparkDeltaEngine) and native.commit_retries == 3
    assert isinstance(make_engine(spark, with_storage(conf, engine="delta-rs")), DeltaRsEngine)


def test_delta_rs_on_s3_needs_a_safe_commit_mode(spark: SparkSession, conf: Conf) -> None:
    s3 = dataclasses.replace(conf, paths=dataclasses.replace(conf.paths, warehouse="s3://lake/wh"))
    with pytest.raises(UnsafeStorageError, match=r"s3://lake/wh/silver/customers"):
        Tables(spark, with_storage(s3, engine="delta-rs")).exists("customers")
    locked = make_engine(
        spark,
        with_storage(
            s3,
            engine="delta-rs",
            s3_commit=S3CommitConf(locking_provider="dynamodb", dynamodb_table="delta_log"),
        ),
    )
    assert isinstance(locked, DeltaRsEngine) and locked.s3_safe_commit
    assert locked.storage_options["DELTA_DYNAMO_TABLE_NAME"] == "delta_log"
    put = make_engine(
        spark, with_storage(s3, engine="delta-rs", s3_commit=S3CommitConf(conditional_put="etag"))
    )
    assert put.storage_options["conditional_put"] == "etag"  # type: ignore[attr-defined]


def test_a_start_reuses_the_jar_files_an_earlier_start_resolved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    jars = [tmp_path / "io.delta_delta-spark_2.13-4.0.0.jar", tmp_path / "antlr4.jar"]
    for jar in jars:
        jar.write_bytes(b"")
    settings = {"spark.jars.packages": "io.delta:delta-spark_2.13:4.0.0", "spark.x": "1"}
    # Nothing recorded yet: Ivy resolves the packages.
    assert with_resolved_jars(settings) == settings
    remember_resolved_jars(settings["spark.jars.packages"], ",".join(f"file://{j}" for j in jars))
    assert with_resolved_jars(settings) == {
        "spark.x": "1",
        "spark.jars": ",".join(f"file://{j}" for j in jars),
    }
    # Other packages are resolved afresh; a jar that is gone sends the start back to Ivy.
    other = {**settings, "spark.jars.packages": "org.example:x:1"}
    assert with_resolved_jars(other) == other
    jars[1].unlink()
    assert with_resolved_jars(settings) == settings


def test_local_session_settings(conf: Conf) -> None:
    settings = local_defaults(conf)
    assert settings["spark.sql.session.timeZone"] == "UTC"
    assert settings["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"
    assert settings["spark.ui.enabled"] == "false"
    assert settings["spark.sql.shuffle.partitions"] == "8"
    # Spark's warnings stay off a job's console unless it runs with --verbose.
    options = settings["spark.driver.extraJavaOptions"]
    assert options.startswith("-Dlog4j2.configurationFile=") and options.endswith(
        "error.properties"
    )
    verbose = local_defaults(conf, verbose=True)["spark.driver.extraJavaOptions"]
    assert verbose.endswith("log4j2-warn.properties")
    # Delta's jars match the delta-spark pip package and Spark's Scala; a package the conf
    # adds is kept beside them.
    version = importlib.metadata.version("delta-spark")
    scala = "2.13" if pyspark.__version__.startswith("4.") else "2.12"  # PyPI's builds
    assert settings["spark.jars.packages"] == f"io.delta:delta-spark_{scala}:{version}"
    assert settings["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    extra = dataclasses.replace(conf.spark, extra={"spark.jars.packages": "org.example:x:1"})
    with_extra = local_defaults(dataclasses.replace(conf, spark=extra))
    assert (
        with_extra["spark.jars.packages"]
        == f"io.delta:delta-spark_{scala}:{version},org.example:x:1"
    )
    # The pip-only engine needs no jars.
    assert "spark.jars.packages" not in local_defaults(with_storage(conf, engine="delta-rs"))
    # A Kafka source adds Spark's connector for the installed Spark, unless one is pinned.
    kafka = dataclasses.replace(
        conf, streaming=dataclasses.replace(conf.streaming, kafka=KafkaConf("h:9092", "t"))
    )
    connector = f"org.apache.spark:spark-sql-kafka-0-10_{scala}:{pyspark.__version__}"
    assert local_defaults(kafka)["spark.jars.packages"].split(",")[1:] == [connector]
    pinned = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0"
    pinned_conf = dataclasses.replace(
        kafka, spark=dataclasses.replace(conf.spark, extra={"spark.jars.packages": pinned})
    )
    assert local_defaults(pinned_conf)["spark.jars.packages"].split(",")[1:] == [pinned]


def test_get_spark_takes_the_active_session(spark: SparkSession, conf: Conf) -> None:
    assert get_spark(conf) is spark

"""The clickstream as a stream, from the landing folder and from a real Kafka broker: each
micro-batch goes through the batch job's checks into bronze and quarantine, what was read is
not read again, and a micro-batch replayed after a crash commits nothing twice."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf, load_conf
from campaignlake.ingest.runs import ingest_clickstream_lines
from campaignlake.streaming.runs import stream_clickstream
from campaignlake.tables import Tables
from tests.kafka_broker import REPO_ROOT, consume, kafka_broker, publish
from tests.literals import NOW, event_line, seed_trigger_inputs, with_only_rule, write

pytestmark = pytest.mark.system


@pytest.fixture
def stream_conf(conf: Conf, tmp_path: Path) -> Conf:
    paths = dataclasses.replace(conf.paths, checkpoints=str(tmp_path / "checkpoints"))
    return dataclasses.replace(conf, paths=paths)


def ids(tables: Tables, key: str, column: str = c.EVENT_ID) -> list[str]:
    return sorted(r[0] for r in tables.read(key).select(column).collect())


def reasons(tables: Tables) -> list[tuple[str, str]]:
    rows = tables.read(catalog.CLICKSTREAM_QUARANTINE).select(c.RECORD_KEY, c.REASON).collect()
    return sorted((r[0] or "", r[1]) for r in rows)


def test_the_stream_ingests_each_file_once_with_the_batch_checks_and_replays_commit_nothing(
    spark: SparkSession, stream_conf: Conf, tables: Tables
) -> None:
    conf = stream_conf
    landing = conf.paths.landing
    write(
        landing,
        "clickstream/date=2026-10-30/hour=10/a.jsonl",
        "\n".join(
            [
                event_line("e1"),
                event_line("e2", event_ts="2026-10-30T10:05:00Z"),
                event_line("e2", event_ts="2026-10-30T10:06:00Z"),  # the later one is the dup
                "{not json",
                event_line("e3", event_type="teleport"),
            ]
        )
        + "\n",
    )
    first = stream_clickstream(spark, conf, tables, now=NOW)
    assert [(r.records, r.accepted) for r in first.micro_batches] == [(5, 2)]
    assert ids(tables, catalog.CLICKSTREAM_EVENTS) == ["e1", "e2"]
    kept = tables.read(catalog.CLICKSTREAM_EVENTS).where(F.col(c.EVENT_ID) == "e2").first()
    assert kept is not None and kept[c.EVENT_TS].minute == 5
    assert reasons(tables) == [
        ("", "malformed_json"),
        ("e2", "duplicate_event_id"),
        ("e3", "unknown_event_type"),
    ]
    assert "1 micro-batches, 5 records, 2 accepted" in first.describe()

    # A new file: only it is read; an event bronze already holds is reported, not appended.
    write(
        landing,
        "clickstream/date=2026-10-31/hour=09/b.jsonl",
        event_line("e1") + "\n" + event_line("e4", event_ts="2026-10-31T09:00:00Z") + "\n",
    )
    second = stream_clickstream(spark, conf, tables, now=NOW)
    assert [(r.records, r.accepted) for r in second.micro_batches] == [(2, 1)]
    assert ids(tables, catalog.CLICKSTREAM_EVENTS) == ["e1", "e2", "e4"]
    assert ("e1", "already_ingested") in reasons(tables)
    # Nothing new: no micro-batch at all.
    assert stream_clickstream(spark, conf, tables, now=NOW).micro_batches == []

    # The second micro-batch replayed, as Spark replays one whose commit it did not record.
    done = second.micro_batches[0]
    stream_name, number = done.job, int(done.batch_id.rsplit("-", 1)[1])
    lines = spark.read.text(f"{landing}/clickstream/date=2026-10-31").select(
        "value", F.lit("clickstream/date=2026-10-31/hour=09/b.jsonl").alias(c.SOURCE_FILE)
    )
    bronze_version = tables.version(catalog.CLICKSTREAM_EVENTS)
    quarantine_rows = tables.read(catalog.CLICKSTREAM_QUARANTINE).count()
    replay = ingest_clickstream_lines(
        spark, conf, tables, lines, stream=stream_name, micro_batch=number, ingested_at=NOW
    )
    assert not any(w.committed for w in replay.writes.values())
    # What the micro-batch wrote itself is not "already ingested": the replay reports as it did.
    assert (replay.records, replay.accepted) == (2, 1)
    assert tables.version(catalog.CLICKSTREAM_EVENTS) == bronze_version
    assert tables.read(catalog.CLICKSTREAM_QUARANTINE).count() == quarantine_rows
    assert ids(tables, catalog.CLICKSTREAM_EVENTS) == ["e1", "e2", "e4"]


@pytest.fixture(scope="module")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real broker on loopback for this module's tests: its bootstrap servers."""
    with kafka_broker(tmp_path_factory.mktemp("kafka")) as servers:
        yield servers


#: Spark's Kafka connector for the job process. Pinned to 4.0.0, whose jars (with its token
#: provider) Maven Central's mirror here serves; the connector of the installed Spark (4.0.1,
#: what campaignlake asks for by default) needs a token-provider release the mirror lacks.
CONNECTOR = "org.apache.spark:spark-sql-kafka-0-10_2.13:4.0.0"


def kafka_conf_dir(
    tmp_path: Path, servers: str, topic: str, outbox_topic: str | None = None
) -> Path:
    """conf/local.yaml with its data under ``tmp_path/data`` and the clickstream on ``topic``
    (and the triggers' messages on ``outbox_topic``)."""
    conf_dir = tmp_path / "conf"
    shutil.copytree(REPO_ROOT / "conf", conf_dir)
    raw = yaml.safe_load((conf_dir / "local.yaml").read_text())
    raw["paths"] = {k: f"data/{k}" for k in raw["paths"]}
    raw["streaming"]["triggers_start"] = "earliest"
    raw["streaming"]["max_trigger_age_minutes"] = None  # events of a fixed past day, decided now
    raw["streaming"]["kafka"] = {
        "bootstrap_servers": servers, "topic": topic, "outbox_topic": outbox_topic,
    }  # fmt: skip
    raw["spark"].setdefault("extra", {})["spark.jars.packages"] = CONNECTOR
    (conf_dir / "local.yaml").write_text(yaml.safe_dump(raw))
    return conf_dir


def run_stream(conf_dir: Path, job: str = "stream_clickstream", *flags: str) -> str:
    """A streaming job in its own process, as a scheduler runs it; its output."""
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "jobs" / "run.py"), job,
         "--env", "local", "--conf-dir", str(conf_dir), *flags],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_the_stream_reads_a_kafka_topic_exactly_once_with_the_batch_checks(
    spark: SparkSession, tmp_path: Path, kafka: str
) -> None:
    topic = "clickstream"
    conf_dir = kafka_conf_dir(tmp_path, kafka, topic)
    conf = load_conf("local", conf_dir=str(conf_dir))
    tables = Tables(spark, conf)
    publish(kafka, topic, [event_line("k1"), "{not json", event_line("k1")])
    out = run_stream(conf_dir)
    assert "3 records, 1 accepted" in out, out
    assert ids(tables, catalog.CLICKSTREAM_EVENTS) == ["k1"]
    assert reasons(tables) == [("", "malformed_json"), ("k1", "duplicate_event_id")]
    # Each quarantined record names where it was read: topic, partition and offset.
    quarantined = tables.read(catalog.CLICKSTREAM_QUARANTINE).select(c.SOURCE_FILE).collect()
    assert all(re.fullmatch(rf"kafka:{topic}/[01]@[0-2]", r[0]) for r in quarantined), quarantined

    # Restarted from its checkpoint: only what was published since is read.
    publish(kafka, topic, [event_line("k2", event_ts="2026-10-31T09:00:00Z")])
    assert "1 records, 1 accepted" in run_stream(conf_dir)
    assert ids(tables, catalog.CLICKSTREAM_EVENTS) == ["k1", "k2"]


def test_triggers_from_a_kafka_clickstream_reach_the_kafka_outbox_once(
    spark: SparkSession, tmp_path: Path, kafka: str
) -> None:
    conf_dir = kafka_conf_dir(tmp_path, kafka, "clicks", outbox_topic="messages")
    with_only_rule(conf_dir)
    conf = load_conf("local", conf_dir=str(conf_dir))
    seed_trigger_inputs(spark, Tables(spark, conf), ["C1"], [("P1", "books")])
    publish(
        kafka,
        "clicks",
        [
            event_line("k-c1", event_type="add_to_cart", event_ts="2026-10-30T10:00:00Z"),
            event_line("k-c2", customer_id="C2", event_ts="2026-10-30T12:00:00Z"),
        ],
    )
    run_stream(conf_dir)
    out = run_stream(conf_dir, "stream_triggers", "--available-now")
    assert "cart: candidates 1 → cancelled 0 → suppressed 0 → control 0, sent 1" in out, out
    messages = consume(kafka, "messages", 1)
    assert [key for key, _ in messages] == ["cart:k-c1"]
    assert json.loads(messages[0][1])["customer_id"] == "C1"
    # Restarted with nothing new: nothing more is sent.
    again = run_stream(conf_dir, "stream_triggers", "--available-now")
    assert "0 micro-batches with triggers" in again, again
    assert [key for key, _ in consume(kafka, "messages", 2, timeout_ms=10000)] == ["cart:k-c1"]

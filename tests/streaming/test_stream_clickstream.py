"""The clickstream landing folder as a file stream: each micro-batch goes through the batch
job's checks into bronze and quarantine, files already read are not read again, and a
micro-batch replayed after a crash commits nothing twice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.ingest.runs import ingest_clickstream_lines
from campaignlake.streaming.runs import stream_clickstream
from campaignlake.tables import Tables
from tests.literals import NOW, event_line, write

pytestmark = pytest.mark.slow


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

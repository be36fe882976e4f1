"""The streaming jobs' I/O: the clickstream as a stream (a Kafka topic, or the landing folder as
a file source), each micro-batch ingested with the batch job's parsing, checks and duplicate
rules (``ingest_clickstream_lines``).

Exactly once end to end: the checkpoint (``paths.checkpoints``) records which files or offsets
each micro-batch read, and both Delta writes of a micro-batch carry the stream's query id and the
batch number as their idempotency token, so a micro-batch replayed after a crash commits
nothing twice. A new checkpoint is a new query id: its batch numbers restart without being
mistaken for ones already committed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.hadoop_fs import relative_source_file
from campaignlake.ingest.batch import landing_root
from campaignlake.ingest.clickstream import LINE
from campaignlake.ingest.runs import IngestReport, ingest_clickstream_lines
from campaignlake.tables import Tables

log = logging.getLogger(__name__)

#: The stream's name: its checkpoint folder under ``paths.checkpoints``.
CLICKSTREAM_STREAM = "stream_clickstream"


@dataclass
class StreamReport:
    """What the micro-batches of one run of a stream did."""

    stream: str
    micro_batches: list[IngestReport] = field(default_factory=list)

    def describe(self) -> str:
        """Micro-batches, records, accepted and rejected by reason, in one line."""
        records = sum(r.records for r in self.micro_batches)
        accepted = sum(r.accepted for r in self.micro_batches)
        reasons: dict[str, int] = {}
        for report in self.micro_batches:
            for reason, n in report.by_reason.items():
                reasons[reason] = reasons.get(reason, 0) + n
        by_reason = ", ".join(f"{k}={v}" for k, v in sorted(reasons.items())) or "none"
        return (
            f"{self.stream}: {len(self.micro_batches)} micro-batches, {records} records, "
            f"{accepted} accepted; quarantined by reason: {by_reason}"
        )


def checkpoint_of(conf: Conf, stream: str) -> str:
    """The checkpoint folder of ``stream``: ``paths.checkpoints/<stream>``."""
    return f"{conf.paths.checkpoint_root.rstrip('/')}/{stream}"


def clickstream_lines(spark: SparkSession, conf: Conf) -> DataFrame:
    """The clickstream as a stream of lines with their ``source_file``: the Kafka topic of
    ``streaming.kafka`` when configured, else the landing folder."""
    kafka = conf.streaming.kafka
    if kafka is None:
        return landing_lines(spark, conf)
    records = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", kafka.bootstrap_servers)
        .option("subscribe", kafka.topic)
        .option("startingOffsets", kafka.starting_offsets)
        .option("maxOffsetsPerTrigger", str(kafka.max_offsets_per_trigger))
        # Records the topic no longer retains, unread, are an error, not a silent gap.
        .option("failOnDataLoss", "true")
        .load()
    )
    return kafka_records_as_lines(records)


def kafka_records_as_lines(records: DataFrame) -> DataFrame:
    """Kafka records as clickstream lines: the value as the line, and ``kafka:<topic>/
    <partition>@<offset>`` as its ``source_file`` (where a quarantined record came from)."""
    origin = F.concat(
        F.lit("kafka:"), F.col("topic"), F.lit("/"), F.col("partition").cast("string"),
        F.lit("@"), F.col("offset").cast("string"),
    )  # fmt: skip
    return records.select(F.col("value").cast("string").alias(LINE), origin.alias(c.SOURCE_FILE))


def landing_lines(spark: SparkSession, conf: Conf) -> DataFrame:
    """The landing folder's clickstream files (``.jsonl``, ``.jsonl.gz``, in any subfolder) as
    a stream of lines with their ``source_file``, as the batch job reads them."""
    folder = f"{conf.paths.landing.rstrip('/')}/clickstream"
    root = landing_root(spark, conf.paths.landing)
    return (
        spark.readStream.format("text")
        .option("recursiveFileLookup", "true")
        # The names the batch job takes (LANDING_FOLDERS); it reports any other file.
        .option("pathGlobFilter", "*.{jsonl,jsonl.gz}")
        .option("maxFilesPerTrigger", str(conf.streaming.max_files_per_trigger))
        .load(folder)
        .select(F.col(LINE), relative_source_file(root).alias(c.SOURCE_FILE))
    )


def stream_clickstream(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    continuous: bool = False,
    now: datetime | None = None,
) -> StreamReport:
    """Ingest the clickstream (``streaming.kafka``'s topic, or the landing folder) as a stream
    into ``bronze/clickstream_events``.

    By default every file not yet in the checkpoint is processed and the stream stops (Spark's
    available-now trigger: tests, a scheduled job); ``continuous`` runs until stopped, one
    micro-batch every ``streaming.trigger_seconds``.
    """
    report = StreamReport(CLICKSTREAM_STREAM)
    # A checkpoint belongs to one source: switching to Kafka starts a checkpoint of its own.
    source = "files" if conf.streaming.kafka is None else "kafka"
    checkpoint = checkpoint_of(conf, f"{CLICKSTREAM_STREAM}/{source}")

    def ingest(lines: DataFrame, micro_batch: int) -> None:
        query_id = lines.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId")
        if not query_id:
            raise RuntimeError(
                f"{CLICKSTREAM_STREAM}: no streaming query id for batch {micro_batch}"
            )
        result = ingest_clickstream_lines(
            spark,
            conf,
            tables,
            lines,
            stream=f"{CLICKSTREAM_STREAM}.{query_id}",
            micro_batch=micro_batch,
            ingested_at=now or datetime.now(timezone.utc),
        )
        report.micro_batches.append(result)
        log.info("%s batch %d: %s", CLICKSTREAM_STREAM, micro_batch, result.describe())

    writer = (
        clickstream_lines(spark, conf)
        .writeStream.queryName(CLICKSTREAM_STREAM)
        .option("checkpointLocation", checkpoint)
        .foreachBatch(ingest)
    )
    if continuous:
        writer = writer.trigger(processingTime=f"{conf.streaming.trigger_seconds} seconds")
    else:
        writer = writer.trigger(availableNow=True)
    query = writer.start()
    query.awaitTermination()
    return report

"""The streaming jobs' I/O: the clickstream as a stream (a Kafka topic, or the landing folder as
a file source), each micro-batch ingested with the batch job's parsing, checks and duplicate
rules (``ingest_clickstream_lines``); and the real-time triggers, which read
``bronze/clickstream_events`` as a Delta stream and write ``gold/trigger_events`` and the
outbox (:mod:`campaignlake.streaming.triggers`).

Exactly once end to end: the checkpoint (``paths.checkpoints``) records which files or offsets
each micro-batch read, and both Delta writes of a micro-batch carry the stream's query id and the
batch number as their idempotency token, so a micro-batch replayed after a crash commits
nothing twice. A new checkpoint is a new query id: its batch numbers restart without being
mistaken for ones already committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.streaming import DataStreamWriter, StreamingQuery, StreamingQueryListener

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.audiences.build import CAP_WINDOW_DAYS, contact_history
from campaignlake.config import Conf
from campaignlake.errors import MissingInputError
from campaignlake.hadoop_fs import HadoopFs, relative_source_file
from campaignlake.ingest.batch import landing_root
from campaignlake.ingest.clickstream import LINE
from campaignlake.ingest.runs import IngestReport, ingest_clickstream_lines
from campaignlake.streaming import triggers
from campaignlake.streaming.rules import TriggerRule, load_rules
from campaignlake.tables import Tables, Txn, WriteResult

log = logging.getLogger(__name__)

#: The streams' names: their checkpoint folders under ``paths.checkpoints``.
CLICKSTREAM_STREAM = "stream_clickstream"
TRIGGERS_STREAM = "stream_triggers"
#: The tables every trigger needs; the others (contacts, audiences, recommendations) are
#: optional: without them there is less to cap against or to offer.
TRIGGER_INPUTS = (
    catalog.CLICKSTREAM_EVENTS, catalog.CUSTOMERS, catalog.DELETION_REQUESTS, catalog.PRODUCTS,
)  # fmt: skip


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


def landing_lines(spark: SparkSession, conf: Conf, folder: str | None = None) -> DataFrame:
    """The landing folder's clickstream files (``.jsonl``, ``.jsonl.gz``, in any subfolder) as
    a stream of lines with their ``source_file``, as the batch job reads them (``folder``:
    another folder of such files)."""
    folder = folder or f"{conf.paths.landing.rstrip('/')}/clickstream"
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
    writer = _clickstream_writer(
        spark, conf, tables, clickstream_lines(spark, conf), report,
        checkpoint_of(conf, f"{CLICKSTREAM_STREAM}/{source}"), now,
    )  # fmt: skip
    _run(spark, writer, conf, continuous=continuous)
    return report


def _clickstream_writer(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    clickstream: DataFrame,
    report: StreamReport,
    checkpoint: str,
    now: datetime | None,
) -> DataStreamWriter:
    """The stream of clickstream lines, each micro-batch ingested into bronze and noted in
    ``report``."""

    def ingest(lines: DataFrame, micro_batch: int) -> None:
        query_id = _query_id(lines, CLICKSTREAM_STREAM, micro_batch)
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
        clickstream.writeStream.queryName(CLICKSTREAM_STREAM)
        .option("checkpointLocation", checkpoint)
        .foreachBatch(ingest)
    )
    return writer


def _query_id(df: DataFrame, stream: str, micro_batch: int) -> str:
    query_id = df.sparkSession.sparkContext.getLocalProperty("sql.streaming.queryId")
    if not query_id:
        raise RuntimeError(f"{stream}: no streaming query id for batch {micro_batch}")
    return query_id


class _ProgressLog(StreamingQueryListener):
    """Logs each micro-batch's progress: input rows and rate, duration, state rows and the
    rows dropped as later than the watermark."""

    def onQueryStarted(self, event: Any) -> None:
        log.info("stream %s started (query %s)", event.name, event.id)

    def onQueryProgress(self, event: Any) -> None:
        log.info("%s", describe_progress(event.progress))

    def onQueryIdle(self, event: Any) -> None:
        pass

    def onQueryTerminated(self, event: Any) -> None:
        log.info(
            "stream query %s stopped%s", event.id, f": {event.exception}" if event.exception else ""
        )


def describe_progress(progress: Any) -> str:
    """One micro-batch's progress in one line (no record contents)."""
    state_rows = sum(op.numRowsTotal for op in progress.stateOperators)
    late = sum(op.numRowsDroppedByWatermark for op in progress.stateOperators)
    return (
        f"{progress.name} batch {progress.batchId}: {progress.numInputRows} rows in, "
        f"{progress.inputRowsPerSecond:.0f} rows/s arriving, "
        f"{progress.processedRowsPerSecond:.0f} rows/s processed, "
        f"{progress.batchDuration} ms; state rows {state_rows}; late rows dropped {late}"
    )


def _run(
    spark: SparkSession,
    writer: DataStreamWriter,
    conf: Conf,
    *,
    continuous: bool,
    skip_missing_files: bool = False,
) -> StreamingQuery:
    """Start a stream (available-now, or every ``streaming.trigger_seconds``) with its progress
    logged per micro-batch, and wait for it to end. ``skip_missing_files``: see
    :func:`_skipping_missing_files`."""
    if continuous:
        writer = writer.trigger(processingTime=f"{conf.streaming.trigger_seconds} seconds")
    else:
        writer = writer.trigger(availableNow=True)
    listener = _ProgressLog()
    spark.streams.addListener(listener)
    try:
        if skip_missing_files:
            with _skipping_missing_files(spark):
                query = writer.start()
        else:
            query = writer.start()
        query.awaitTermination()
    finally:
        spark.streams.removeListener(listener)
    return query


@dataclass
class TriggerBatch:
    """One micro-batch of the trigger stream: its funnel per rule and its table write."""

    micro_batch: int
    funnel: dict[str, dict[str, int]]
    write: WriteResult | None


@dataclass
class TriggerReport:
    """What one run of the trigger stream did."""

    rules: list[str]
    batches: list[TriggerBatch] = field(default_factory=list)
    #: Events later than the watermark, dropped by the state machine and counted here.
    late_rows: int = 0

    def funnel(self) -> dict[str, dict[str, int]]:
        """Per rule, the run's counts summed over its micro-batches."""
        total: dict[str, dict[str, int]] = {rule: {} for rule in self.rules}
        for batch in self.batches:
            for rule, counts in batch.funnel.items():
                for name, n in counts.items():
                    total[rule][name] = total[rule].get(name, 0) + n
        return total

    def describe(self) -> str:
        """The run's micro-batches, late rows and per-rule funnel."""
        lines = [
            f"{TRIGGERS_STREAM}: {len(self.batches)} micro-batches with triggers, "
            f"{self.late_rows} late rows dropped",
            *describe_funnel(self.funnel()),
        ]
        return "\n".join(lines)


def describe_funnel(funnel: dict[str, dict[str, int]]) -> list[str]:
    """One line per rule: candidates → cancelled → suppressed (by reason) → control, sent."""
    lines = []
    for rule, counts in funnel.items():
        suppressed = ", ".join(
            f"{k.removeprefix('suppressed_')} {v}"
            for k, v in counts.items()
            if k.startswith("suppressed_") and v
        )
        lines.append(
            f"  {rule}: candidates {counts.get('candidates', 0)} → cancelled "
            f"{counts.get(triggers.CANCELLED, 0)} → suppressed {counts.get('suppressed', 0)}"
            f"{f' ({suppressed})' if suppressed else ''} → control "
            f"{counts.get('control', 0)}, sent {counts.get('sent', 0)}"
        )
    return lines


def stream_triggers(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    available_now: bool = False,
    now: datetime | None = None,
) -> TriggerReport:
    """Run the trigger rules (``conf/triggers/*.yaml``) over ``bronze/clickstream_events`` as
    a stream: fired and cancelled triggers, suppressed and split as the batch audiences are,
    go to ``gold/trigger_events`` exactly once, and the sent ones to the outbox (Kafka's
    ``streaming.kafka.outbox_topic``, else JSON files under ``paths.outbox/<channel>/``).

    By default it runs until stopped, one micro-batch every ``streaming.trigger_seconds``;
    ``available_now`` processes what bronze holds that the checkpoint has not seen, then stops
    (tests, a scheduled job). ``now`` fixes ``committed_at`` (tests).

    Raises
    ------
    ConfigError
        When a rule file is invalid.
    MissingInputError
        When bronze, the CRM tables or the products do not exist yet.
    """
    rules = load_rules(conf)
    tables.require(TRIGGER_INPUTS, "real-time triggers")
    report = TriggerReport(rules=[r.id for r in rules])
    checkpoint = checkpoint_of(conf, TRIGGERS_STREAM)
    start = triggers_start(spark, conf, tables, checkpoint)
    if start is None and available_now:
        return report  # nothing appended to bronze since the first run's starting point
    writer = _triggers_writer(
        spark, conf, tables, rules, report, checkpoint,
        starting_version=start or LATEST, now=now,
    )  # fmt: skip
    with _stream_partitions(spark, conf):
        query = _run(spark, writer, conf, continuous=not available_now, skip_missing_files=True)
    report.late_rows = sum(
        op.numRowsDroppedByWatermark for p in query.recentProgress for op in p.stateOperators
    )
    return report


LATEST = "latest"
#: Beside a stream's checkpoint folder: the bronze version a ``latest`` start resolved to.
START_VERSION_SUFFIX = ".start_version"


def triggers_start(spark: SparkSession, conf: Conf, tables: Tables, checkpoint: str) -> str | None:
    """Where the trigger stream starts reading bronze: ``earliest``, or for a ``latest`` start
    the bronze version after the one current when this checkpoint was first used, recorded
    beside it, so that a scheduled ``--available-now`` run whose first run found nothing new
    (and so wrote no offsets) still reads everything appended since; ``None`` while bronze has
    no version past it. Once the checkpoint has offsets, Spark resumes from them and the
    starting point no longer matters."""
    if conf.streaming.triggers_start != LATEST:
        return conf.streaming.triggers_start
    fs = HadoopFs(spark)
    if fs.list(f"{checkpoint}/offsets"):
        return LATEST
    marker = f"{checkpoint.rstrip('/')}{START_VERSION_SUFFIX}"
    current = tables.version(catalog.CLICKSTREAM_EVENTS)
    if fs.exists(marker):
        first = int(fs.read_text(marker).strip())
    else:
        first = current + 1
        fs.write_text(marker, str(first))
    # Delta refuses a starting version the table does not have yet.
    return str(first) if current >= first else None


def _triggers_writer(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    rules: list[TriggerRule],
    report: TriggerReport,
    checkpoint: str,
    *,
    starting_version: str,
    now: datetime | None,
    replay: bool = False,
) -> DataStreamWriter:
    """The trigger stream over bronze, each micro-batch written and noted in ``report``.
    ``replay``: old events replayed as a live feed, each trigger decided as at its due time
    (quiet hours and age), not at the wall clock's."""
    inputs = triggers.with_deletion_signals(
        triggers.trigger_inputs(
            tables.read_stream(
                catalog.CLICKSTREAM_EVENTS,
                max_files_per_trigger=conf.streaming.max_files_per_trigger,
                starting_version=starting_version,
            ),
            tables.read(catalog.PRODUCTS),
            conf.streaming.max_ahead_of_arrival_minutes,
        ),
        # Every request, also those made before the stream started: their customers' state.
        tables.read_stream(catalog.DELETION_REQUESTS),
    )
    found = triggers.candidates(inputs, rules, conf.streaming.watermark_minutes)

    def handle(batch: DataFrame, micro_batch: int) -> None:
        query_id = _query_id(batch, TRIGGERS_STREAM, micro_batch)
        result = _write_triggers(
            spark, conf, tables, rules, batch,
            stream=f"{TRIGGERS_STREAM}.{query_id}", micro_batch=micro_batch,
            committed_at=now or datetime.now(timezone.utc), replay=replay,
        )  # fmt: skip
        if result is not None:
            report.batches.append(result)
            log.info("%s batch %d: %s", TRIGGERS_STREAM, micro_batch, result.funnel)

    writer = (
        found.writeStream.queryName(TRIGGERS_STREAM)
        .option("checkpointLocation", checkpoint)
        .outputMode("append")
        .foreachBatch(handle)
    )
    return writer


@contextmanager
def _skipping_missing_files(spark: SparkSession) -> Iterator[None]:
    """``spark.sql.files.ignoreMissingFiles`` on while a stream starts: the query runs in a
    copy of the session made at its start, so the setting holds for its source only, not for
    the reads of each micro-batch. For the trigger stream over bronze: an erasure rewrites the
    files that held the customer's events and vacuums the old ones at once, and a stream that
    had not read such a file yet would otherwise fail on it at every restart. Its rows are
    skipped (the rewrite's commit changes rows, which the stream skips): the erased customer's
    events, and those of the others in the same file, which bronze keeps but no trigger sees."""
    setting = "spark.sql.files.ignoreMissingFiles"
    before = spark.conf.get(setting, None)
    spark.conf.set(setting, "true")
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(setting)
        else:
            spark.conf.set(setting, before)


@contextmanager
def _stream_partitions(spark: SparkSession, conf: Conf) -> Iterator[None]:
    """The session's shuffle partitions set to ``streaming.shuffle_partitions`` while the
    trigger stream starts and runs (its state takes them on its first run)."""
    shuffle = "spark.sql.shuffle.partitions"
    batch_partitions = spark.conf.get(shuffle)
    spark.conf.set(shuffle, str(conf.streaming.shuffle_partitions))
    try:
        yield
    finally:
        spark.conf.set(shuffle, batch_partitions)


def _latest_day(df: DataFrame) -> DataFrame:
    latest = df.agg(F.max(c.AS_OF_DATE)).first()
    return df.where(F.col(c.AS_OF_DATE) == F.lit(latest[0] if latest else None))


def _contact_history(tables: Tables, since: date) -> DataFrame:
    """Every contact since ``since``: campaign sends, batch audiences' treatment rows and
    triggers sent."""
    contacts = tables.read_or_empty(catalog.CAMPAIGN_CONTACTS).where(
        F.to_date(c.SENT_AT) >= F.lit(since)
    )
    audiences = None
    if tables.exists(catalog.CAMPAIGN_AUDIENCES):
        audiences = tables.read(catalog.CAMPAIGN_AUDIENCES).where(
            F.col(c.SEND_DATE) >= F.lit(since)
        )
    history = contact_history(contacts, audiences)
    if tables.exists(catalog.TRIGGER_EVENTS):
        sent = tables.read(catalog.TRIGGER_EVENTS).where(F.col(c.FIRED_DATE) >= F.lit(since))
        history = history.unionByName(triggers.trigger_contacts(sent))
    return history


def _write_triggers(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    rules: list[TriggerRule],
    batch: DataFrame,
    *,
    stream: str,
    micro_batch: int,
    committed_at: datetime,
    replay: bool = False,
) -> TriggerBatch | None:
    """One micro-batch's candidates: products, suppression and groups, then
    ``gold/trigger_events`` (whose append carries the micro-batch as its idempotency token) and
    the outbox of exactly the rows committed, so that a replay after a crash sends what the
    table says was sent."""
    found = triggers.with_trigger_ids(batch, triggers.rule_frame(spark, rules)).persist(
        StorageLevel.MEMORY_AND_DISK
    )
    try:
        first = found.agg(F.min(c.FIRED_DATE)).first()
        if first is None or first[0] is None:
            return None
        longest = max(
            [CAP_WINDOW_DAYS, *[r.frequency_cap.min_days_since_last_contact or 0 for r in rules]]
        )
        products = tables.read(catalog.PRODUCTS)
        offered = triggers.with_offered_products(
            found,
            _latest_day(tables.read_or_empty(catalog.RECOMMENDATIONS)),
            triggers.offer_neighbours(_latest_day(tables.read_or_empty(catalog.SIMILAR_PRODUCTS))),
            products,
        )
        annotated = triggers.with_trigger_suppression(
            offered,
            tables.read(catalog.CUSTOMERS),
            tables.read(catalog.DELETION_REQUESTS),
            triggers.contact_pressure_at(
                found, _contact_history(tables, first[0] - timedelta(days=longest))
            ),
            phone_pattern=conf.audiences.phone_pattern,
            sending_at=F.col(c.FIRED_AT) if replay else F.lit(committed_at),
            max_age_minutes=conf.streaming.max_trigger_age_minutes,
        )
        write = tables.append(
            catalog.TRIGGER_EVENTS,
            triggers.trigger_event_rows(annotated, F.lit(committed_at)),
            Txn(f"campaignlake.{stream}", micro_batch),
        )
        committed = _committed_rows(tables, found, first[0]).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            funnel = triggers.funnel_by_rule(committed)
            _send(spark, conf, triggers.outbox_messages(committed), stream, micro_batch)
        finally:
            committed.unpersist()
    finally:
        found.unpersist()
    return TriggerBatch(micro_batch=micro_batch, funnel=funnel, write=write)


def _committed_rows(tables: Tables, found: DataFrame, since: date) -> DataFrame:
    """The rows of ``gold/trigger_events`` holding the triggers ``found``: what this
    micro-batch committed, or, replayed after a crash, what it committed before. Computed
    again after the commit, the rows would differ (the batch's own contacts would cap it), so
    the funnel and the outbox come from the table."""
    return (
        tables.read(catalog.TRIGGER_EVENTS)
        .where(F.col(c.FIRED_DATE) >= F.lit(since))
        .join(found.select(c.TRIGGER_ID), on=c.TRIGGER_ID, how="left_semi")
    )


def _send(
    spark: SparkSession, conf: Conf, messages: DataFrame, stream: str, micro_batch: int
) -> None:
    """The micro-batch's messages to the outbox. Files: one folder per channel and
    micro-batch, overwritten when a micro-batch is replayed. Kafka: at least once, keyed by
    ``trigger_id`` so that a consumer drops a replayed message."""
    kafka = conf.streaming.kafka
    if kafka is not None and kafka.outbox_topic:
        (
            messages.select(
                F.col(c.TRIGGER_ID).alias("key"),
                F.to_json(F.struct(*messages.columns)).alias("value"),
            )
            .write.format("kafka")
            .option("kafka.bootstrap.servers", kafka.bootstrap_servers)
            .option("topic", kafka.outbox_topic)
            .save()
        )
        return
    messages = messages.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        channels = [r[0] for r in messages.select(c.CHANNEL).distinct().collect()]
        root = conf.paths.outbox_root.rstrip("/")
        for channel in sorted(channels):
            (
                messages.where(F.col(c.CHANNEL) == F.lit(channel))
                .coalesce(1)
                .write.mode("overwrite")
                .json(f"{root}/{channel}/{stream.replace('.', '-')}-{micro_batch:08d}")
            )
    finally:
        messages.unpersist()


#: The landing contract's fields, in the order a replayed line carries them.
_LANDING_FIELDS = (
    c.EVENT_ID, c.EVENT_TYPE, c.EVENT_TS, c.CUSTOMER_ID, c.ANONYMOUS_ID, c.SESSION_ID,
    c.PRODUCT_ID, c.QUANTITY, c.PRICE, c.AMOUNT, c.PAGE_URL, c.REFERRER, c.UTM_SOURCE,
    c.UTM_MEDIUM, c.UTM_CAMPAIGN, c.DEVICE, c.USER_AGENT,
)  # fmt: skip


@dataclass
class DemoReport:
    """What the replayed feed produced: the triggers' funnel per rule, and a few triggers."""

    tag: str
    events: int
    funnel: dict[str, dict[str, int]]
    examples: list[str]

    def describe(self) -> str:
        """The funnel per rule and example triggers."""
        lines = [
            f"stream_demo {self.tag}: {self.events} events replayed",
            *describe_funnel(self.funnel),
        ]
        lines += ["  examples:", *[f"    {e}" for e in self.examples]]
        return "\n".join(lines)


def stream_demo(
    spark: SparkSession, conf: Conf, tables: Tables, *, seconds: int = 60, slices: int = 12
) -> DemoReport:
    """Replay bronze's last day of clickstream into the landing folder as a live feed: the
    day's events, under new ids, cut by event time into ``slices`` files written over
    ``seconds``, while ``stream_clickstream`` and ``stream_triggers`` run (fresh checkpoints,
    triggers from bronze's latest version). Returns the triggers' funnel once both streams
    have caught up."""
    rules = load_rules(conf)
    tables.require(TRIGGER_INPUTS, "the streaming demo")
    tag = datetime.now(timezone.utc).strftime("demo%Y%m%d%H%M%S")
    bronze = tables.read(catalog.CLICKSTREAM_EVENTS)
    last = bronze.agg(F.max(c.EVENT_DATE)).first()
    if last is None or last[0] is None:
        raise MissingInputError("bronze/clickstream_events is empty: run `make run` first")
    # The day as the sample has it: not the copies earlier demos appended.
    day = bronze.where(
        (F.col(c.EVENT_DATE) == F.lit(last[0])) & ~F.col(c.EVENT_ID).rlike(r"^demo[0-9]{14}-")
    )
    seconds_of_day = F.col(c.EVENT_TS).cast("long") - F.unix_timestamp(
        F.lit(last[0]).cast("timestamp")
    )
    lines = (
        day.withColumn(
            "__slice", F.least(F.floor(seconds_of_day * slices / 86400), F.lit(slices - 1))
        )
        .withColumn(c.EVENT_ID, F.concat(F.lit(f"{tag}-"), F.col(c.EVENT_ID)))
        .withColumn(c.EVENT_TS, F.date_format(c.EVENT_TS, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"))
        .select("__slice", F.to_json(F.struct(*_LANDING_FIELDS)).alias("value"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    fs = HadoopFs(spark)
    # Its own folder: the landing folder's history would be read again by a new checkpoint.
    feed = checkpoint_of(conf, f"stream_demo/{tag}/feed")
    fs.write_text(f"{feed}/.started", tag)
    clicks, fired = StreamReport(CLICKSTREAM_STREAM), TriggerReport(rules=[r.id for r in rules])
    queries: list[StreamingQuery] = []
    listener = _ProgressLog()
    spark.streams.addListener(listener)
    with _stream_partitions(spark, conf):
        try:
            events = lines.count()
            for writer in (
                _clickstream_writer(
                    spark,
                    conf,
                    tables,
                    landing_lines(spark, conf, feed),
                    clicks,
                    checkpoint_of(conf, f"stream_demo/{tag}/clickstream"),
                    None,
                ),
                _triggers_writer(
                    spark,
                    conf,
                    tables,
                    rules,
                    fired,
                    checkpoint_of(conf, f"stream_demo/{tag}/triggers"),
                    starting_version=LATEST,
                    now=None,
                    replay=True,
                ),
            ):
                queries.append(writer.trigger(processingTime="2 seconds").start())
            for n in range(slices):
                staging = f"{feed}/.{tag}-{n:02d}.tmp"
                lines.where(F.col("__slice") == n).select("value").coalesce(1).write.text(staging)
                part = next(p for p in fs.list(staging) if p.startswith("part-"))
                fs.move(f"{staging}/{part}", f"{feed}/{tag}-{n:02d}.jsonl")
                fs.delete(staging)
                log.info("stream_demo: slice %d of %d landed", n + 1, slices)
                time.sleep(seconds / slices)
            for query in queries:
                query.processAllAvailable()
        finally:
            for query in queries:
                query.stop()
            spark.streams.removeListener(listener)
            lines.unpersist()
    mine = tables.read(catalog.TRIGGER_EVENTS).where(F.col(c.CAUSE_EVENT_ID).startswith(f"{tag}-"))
    funnel = triggers.funnel_by_rule(mine)
    examples = [
        f"{r[c.TRIGGER_ID]} {r[c.CHANNEL]} at {r[c.FIRED_AT]:%H:%M}: {', '.join(r[c.PRODUCT_IDS])}"
        for r in mine.where(F.col(c.GROUP) == F.lit("treatment"))
        .orderBy(c.FIRED_AT)
        .limit(5)
        .collect()
    ]
    return DemoReport(tag=tag, events=events, funnel=funnel, examples=examples)

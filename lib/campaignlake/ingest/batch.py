"""Which landing files an ingestion run takes, recorded ahead of the writes.

``meta/ingest_batches`` is a write-ahead manifest. A run first records the files it is about to
ingest as a *planned* batch, then writes its tables with idempotent transactions
(``Txn(<job>.<table>, batch_seq)``), and finally records the batch as *committed*. A run that
finds a planned but uncommitted batch finishes that batch first, with the same files, the same
batch id and the same ingestion time, and any table it had already written skips its commit.
So a crash at any point neither loses nor duplicates records, and a run with no new files
commits nothing at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.errors import InputError
from campaignlake.schemas import INGEST_BATCHES
from campaignlake.tables import Tables, Txn

PLANNED = "planned"
COMMITTED = "committed"
BATCHES_TABLE = "ingest_batches"


@dataclass(frozen=True)
class Batch:
    """One ingestion run's unit of work."""

    job: str
    seq: int
    files: tuple[str, ...]
    ingested_at: datetime

    @property
    def batch_id(self) -> str:
        return f"{self.job}-{self.seq:06d}"

    def txn(self, table_key: str) -> Txn:
        """The idempotency token for this batch's write to ``table_key``."""
        return Txn(app_id=f"campaignlake.{self.job}.{table_key}", version=self.seq)


def list_landing_files(
    spark: SparkSession, directory: str, pattern: str, as_of: date | None = None
) -> DataFrame:
    """Files under ``directory`` (recursively) whose name matches the glob ``pattern``:
    ``source_file``, ``file_size``, ``file_modified_at``. With ``as_of``, only files whose
    path carries a date (``YYYY-MM-DD``) at or before it.

    Only file metadata is read: the binaryFile source does not load content unless asked.
    """
    try:
        listed = (
            spark.read.format("binaryFile")
            .option("recursiveFileLookup", "true")
            .option("pathGlobFilter", pattern)
            .load(directory)
            .select(
                F.col("path").alias(c.SOURCE_FILE),
                F.col("length").alias(c.FILE_SIZE),
                F.col("modificationTime").alias(c.FILE_MODIFIED_AT),
            )
        )
    except Exception as exc:
        if "PATH_NOT_FOUND" in str(exc) or "does not exist" in str(exc):
            raise InputError(f"landing directory {directory} does not exist") from exc
        raise
    if as_of is not None:
        # The last date in the path: date=YYYY-MM-DD directories or *_YYYY-MM-DD.csv names.
        text = F.regexp_extract(F.col(c.SOURCE_FILE), r".*(\d{4}-\d{2}-\d{2})", 1)
        file_date = F.when(text == "", None).otherwise(F.to_date(text))
        listed = listed.where(file_date.isNull() | (file_date <= F.lit(as_of)))
    return listed


def open_batch(
    tables: Tables, job: str, landing_files: DataFrame, now: datetime | None = None
) -> Batch | None:
    """The batch this run must ingest: an unfinished one, else the landing files not yet
    recorded for ``job``; ``None`` when there is nothing to do (and nothing is written)."""
    tables.ensure(BATCHES_TABLE)
    log = tables.read(BATCHES_TABLE).where(F.col(c.JOB) == job)
    committed = log.where(F.col(c.STATUS) == COMMITTED).select(c.BATCH_SEQ).distinct()
    unfinished = (
        log.where(F.col(c.STATUS) == PLANNED)
        .join(committed, on=c.BATCH_SEQ, how="left_anti")
        .orderBy(c.BATCH_SEQ, c.SOURCE_FILE)
        .select(c.BATCH_SEQ, c.SOURCE_FILE, c.RECORDED_AT)
        .collect()  # file names of one batch: metadata, not data
    )
    if unfinished:
        seq = unfinished[0][c.BATCH_SEQ]
        files = tuple(r[c.SOURCE_FILE] for r in unfinished if r[c.BATCH_SEQ] == seq)
        return Batch(job, seq, files, unfinished[0][c.RECORDED_AT].astimezone(timezone.utc))
    known = log.select(c.SOURCE_FILE).distinct()
    new_files = landing_files.join(known, on=c.SOURCE_FILE, how="left_anti").orderBy(c.SOURCE_FILE)
    rows = new_files.collect()  # file names and sizes only
    if not rows:
        return None
    last = log.agg(F.max(c.BATCH_SEQ)).first()[0]
    seq = (last or 0) + 1
    ingested_at = (now or datetime.now(timezone.utc)).replace(microsecond=0)
    batch = Batch(job, seq, tuple(r[c.SOURCE_FILE] for r in rows), ingested_at)
    planned = tables.spark.createDataFrame(
        [
            (
                job,
                seq,
                r[c.SOURCE_FILE],
                r[c.FILE_SIZE],
                r[c.FILE_MODIFIED_AT],
                PLANNED,
                ingested_at,
            )
            for r in rows
        ],
        INGEST_BATCHES,
    )
    tables.append(BATCHES_TABLE, planned, txn=Txn(f"campaignlake.{job}.plan", seq))
    return batch


def close_batch(tables: Tables, batch: Batch) -> None:
    """Record ``batch`` as committed: its files count as ingested from now on."""
    done = (
        tables.read(BATCHES_TABLE)
        .where((F.col(c.JOB) == batch.job) & (F.col(c.BATCH_SEQ) == batch.seq))
        .where(F.col(c.STATUS) == PLANNED)
        .withColumn(c.STATUS, F.lit(COMMITTED))
        .withColumn(c.RECORDED_AT, F.lit(datetime.now(timezone.utc)).cast("timestamp"))
    )
    tables.append(BATCHES_TABLE, done, txn=Txn(f"campaignlake.{batch.job}.commit", batch.seq))

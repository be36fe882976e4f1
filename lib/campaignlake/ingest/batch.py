"""Which landing files an ingestion run takes, recorded ahead of the writes (the batch's
files and their classification here; the manifest's reads and writes in
:mod:`campaignlake.ingest.runs`).

``meta/ingest_batches`` is a write-ahead manifest. A run first records the files it is about to
ingest as a *planned* batch, then writes its tables with idempotent transactions
(``Txn(<job>.<table>, batch_seq)``), and finally records the batch as *committed*. A run that
finds a planned but uncommitted batch finishes that batch first, with the same files, the same
batch id and the same ingestion time, and any table it had already written skips its commit.
So a crash at any point neither loses nor duplicates records, and a run with no new files
commits nothing at all.

Every file under a source's landing folder is accounted for. The manifest records each file by
its path relative to ``paths.landing`` (so a moved or restored data folder is not new) with the
size it had when it was taken. A file whose name matches no source of its folder is recorded
with the reason ``unrecognised_file_name`` and reported once; a file whose size changed after
it was ingested (lines appended to it) is taken again, its records deduplicated against the
table; a planned file that has gone by the time it is read is reported as ``file_missing`` and
taken again if it reappears.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.hadoop_fs import HadoopFs

PLANNED = "planned"
COMMITTED = "committed"
#: Reasons a whole landing file is not read (file-level quarantine rows).
UNRECOGNISED_FILE_NAME = "unrecognised_file_name"
FILE_MISSING = "file_missing"
BAD_HEADER = "bad_header"
#: The size recorded for a file that was missing when its batch read it: any size it has when
#: it reappears differs, so it is taken again.
MISSING_SIZE = -1
_DATE_IN_PATH = re.compile(r".*(\d{4}-\d{2}-\d{2})")


@dataclass(frozen=True)
class LandingFile:
    """One file under a landing folder, by its path relative to ``paths.landing``."""

    path: str
    size: int
    modified_at: datetime | None = None
    #: Why the file is not read (``unrecognised_file_name``), or ``None``.
    reason: str | None = None


@dataclass(frozen=True)
class Batch:
    """One ingestion run's unit of work."""

    job: str
    seq: int
    #: ``paths.landing``, qualified (``file:/…``, ``s3://…``): the root of every file path.
    root: str
    entries: tuple[LandingFile, ...]
    ingested_at: datetime
    #: Paths (relative) of the files to read that an earlier batch committed: taken again
    #: because they changed, or came back after going missing.
    retaken: tuple[str, ...] = ()

    @property
    def batch_id(self) -> str:
        """The batch's id in ``batch_id`` columns: ``<job>-<seq>``, the sequence in six digits."""
        return f"{self.job}-{self.seq:06d}"

    @property
    def files(self) -> tuple[str, ...]:
        """Full paths of the files to read (those without a file-level reason)."""
        return tuple(self.full_path(e.path) for e in self.entries if e.reason is None)

    @property
    def rejected_files(self) -> tuple[tuple[str, str], ...]:
        """(full path, reason) of the files the batch records but does not read."""
        return tuple((self.full_path(e.path), e.reason) for e in self.entries if e.reason)

    def full_path(self, relative: str) -> str:
        """The full path of a file recorded relative to the landing root."""
        return f"{self.root}/{relative}"

    def relative(self, full_path: str) -> str:
        """A full path as recorded in the manifest: relative to the landing root."""
        return relative_to(self.root, full_path)


def relative_to(root: str, full_path: str) -> str:
    """``full_path`` relative to ``root`` (unchanged when it is not below it)."""
    prefix = root.rstrip("/") + "/"
    return full_path[len(prefix) :] if full_path.startswith(prefix) else full_path


def landing_root(spark: SparkSession, landing: str) -> str:
    """``paths.landing`` as the file system names it (``file:/data/landing``), the prefix of
    every path a listing returns."""
    return HadoopFs(spark).qualify(landing).rstrip("/")


def file_date(path: str) -> date | None:
    """The last ``YYYY-MM-DD`` in a path (``date=…`` folders, ``*_YYYY-MM-DD.csv`` names)."""
    match = _DATE_IN_PATH.match(path)
    if not match:
        return None
    try:
        return date.fromisoformat(match.group(1))
    except ValueError:
        return None


def list_landing_files(spark: SparkSession, directory: str) -> DataFrame:
    """Every file under ``directory`` (recursively): ``source_file`` (full path),
    ``file_size``, ``file_modified_at``; empty when the directory does not exist.

    Only file metadata is read: the binaryFile source does not load content unless asked.
    Names starting with ``.`` or ``_`` are hidden files by Hadoop's convention and not listed.
    """
    if not HadoopFs(spark).exists(directory):
        return spark.createDataFrame(
            [], f"{c.SOURCE_FILE} string, {c.FILE_SIZE} long, {c.FILE_MODIFIED_AT} timestamp"
        )
    return (
        spark.read.format("binaryFile")
        .option("recursiveFileLookup", "true")
        .load(directory)
        .select(
            F.col("path").alias(c.SOURCE_FILE),
            F.col("length").alias(c.FILE_SIZE),
            F.col("modificationTime").alias(c.FILE_MODIFIED_AT),
        )
    )


def classify(
    listed: Sequence[LandingFile],
    patterns: Sequence[str],
    sibling_patterns: Sequence[str],
    *,
    reports_unrecognised: bool,
) -> list[LandingFile]:
    """The listed files this job answers for: those whose name matches one of ``patterns``
    (regular expressions over the file name), and, when it ``reports_unrecognised``, those
    that match neither its patterns nor a sibling source's in the same folder (with the
    reason ``unrecognised_file_name``)."""
    mine = [re.compile(p) for p in patterns]
    others = [re.compile(p) for p in sibling_patterns]
    kept = []
    for entry in listed:
        name = entry.path.rsplit("/", 1)[-1]
        if any(p.fullmatch(name) for p in mine):
            kept.append(entry)
        elif reports_unrecognised and not any(p.fullmatch(name) for p in others):
            kept.append(
                LandingFile(entry.path, entry.size, entry.modified_at, UNRECOGNISED_FILE_NAME)
            )
    return kept

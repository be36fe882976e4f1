"""Small files (model metadata, export files, audit summaries, reports) through Hadoop's
FileSystem API, so the same code writes to local disk, DBFS and S3 from the driver."""

from __future__ import annotations

import re
from typing import Any

from pyspark.sql import Column, SparkSession
from pyspark.sql import functions as F


def escape_glob(path: str) -> str:
    """``path`` with Hadoop's glob characters escaped: Spark's readers expand globs in the
    paths they are given, and a landing file name may contain ``[`` or ``{``."""
    return re.sub(r"([\\*?\[\]{}])", r"\\\1", path)


def source_file() -> Column:
    """The path of the file a row was read from, as the file system names it (the form file
    listings and the ingest manifest use). Spark reports it URL-encoded; a literal ``+`` is
    protected from ``url_decode``, which would read it as a space."""
    encoded = F.col("_metadata.file_path")
    decoded = F.url_decode(F.replace(encoded, F.lit("+"), F.lit("%2B")))
    return F.when(encoded.contains("%"), decoded).otherwise(encoded)


def relative_source_file(root: str) -> Column:
    """:func:`source_file` relative to ``root`` (``paths.landing``, qualified): rows name their
    landing file the way the ingest manifest does, whatever folder the data lives in."""
    full = source_file()
    prefix = root.rstrip("/") + "/"
    return F.when(full.startswith(prefix), F.substring(full, len(prefix) + 1, 1 << 30)).otherwise(
        full
    )


class HadoopFs:
    """Driver-side file operations on any Hadoop-supported path or URI."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def _resolve(self, path: str) -> tuple[Any, Any]:
        jvm = self.spark.sparkContext._jvm
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
        conf = self.spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
        fs = hadoop_path.getFileSystem(conf)
        if fs.getScheme() == "file":
            # The checksummed local FS leaves a .crc file beside every file it writes; the
            # files written here are read by people and other tools, not by Hadoop.
            fs = fs.getRawFileSystem()
        return fs, hadoop_path

    def qualify(self, path: str) -> str:
        """``path`` with its file system's scheme and authority (``file:/data``, ``s3://b/x``),
        as listings name the files below it."""
        fs, target = self._resolve(path)
        return str(fs.makeQualified(target).toString())

    def exists(self, path: str) -> bool:
        """Whether ``path`` exists."""
        fs, target = self._resolve(path)
        return bool(fs.exists(target))

    def list(self, path: str) -> list[str]:
        """Names of the entries directly below ``path`` (empty when it does not exist)."""
        fs, directory = self._resolve(path)
        if not fs.exists(directory):
            return []
        return sorted(status.getPath().getName() for status in fs.listStatus(directory))

    def files(self, path: str) -> list[tuple[str, int, int]]:
        """Every file below ``path`` (recursively): its path relative to ``path``, its size
        and its modification time in epoch milliseconds, sorted by path (empty when ``path``
        does not exist)."""
        fs, directory = self._resolve(path)
        if not fs.exists(directory):
            return []
        prefix = str(fs.makeQualified(directory).toString()).rstrip("/") + "/"
        found = []
        listed = fs.listFiles(directory, True)
        while listed.hasNext():
            status = listed.next()
            name = str(status.getPath().toString())
            relative = name[len(prefix) :] if name.startswith(prefix) else name
            found.append((relative, int(status.getLen()), int(status.getModificationTime())))
        return sorted(found)

    def write_bytes(self, path: str, data: bytes) -> None:
        """Create or replace ``path`` with ``data`` (parent directories are created)."""
        fs, target = self._resolve(path)
        stream = fs.create(target, True)
        try:
            stream.write(bytearray(data))
        finally:
            stream.close()

    def write_text(self, path: str, text: str) -> None:
        """Write ``text`` (UTF-8) to ``path``, replacing it."""
        self.write_bytes(path, text.encode("utf-8"))

    def read_text(self, path: str) -> str:
        """The UTF-8 text of ``path``."""
        fs, source = self._resolve(path)
        stream = fs.open(source)
        try:
            jvm = self.spark.sparkContext._jvm
            data = jvm.org.apache.commons.io.IOUtils.toByteArray(stream)  # type: ignore[union-attr]
        finally:
            stream.close()
        return bytes(data).decode("utf-8")

    def delete(self, path: str) -> None:
        """Delete a file or a directory tree; nothing happens when it does not exist."""
        fs, target = self._resolve(path)
        if fs.exists(target):
            fs.delete(target, True)

    def move(self, source: str, target: str) -> None:
        """Move ``source`` to ``target``, replacing it (parent directories are created)."""
        fs, src = self._resolve(source)
        _, dst = self._resolve(target)
        if fs.exists(dst):
            fs.delete(dst, True)
        fs.mkdirs(dst.getParent())
        if not fs.rename(src, dst):
            raise OSError(f"could not move {source} to {target}")

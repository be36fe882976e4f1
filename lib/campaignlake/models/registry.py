"""Versioned model storage under ``paths.models``: ``<models>/<name>/v<N>/``.

Each version holds the fitted Spark ``PipelineModel`` (``pipeline/``) and ``metadata.json``
(params, feature list, training table versions, metrics). ``metadata.json`` is written last,
so a version without it is an interrupted save and is ignored. Paths go through Hadoop's
FileSystem API, so the same code works on local disk, DBFS and S3.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession

from campaignlake.errors import ModelNotFoundError

METADATA = "metadata.json"
PIPELINE = "pipeline"
_VERSION_DIR = re.compile(r"^v(\d+)$")


@dataclass(frozen=True)
class StoredModel:
    """A loaded model version."""

    name: str
    version: str
    path: str
    pipeline: PipelineModel
    metadata: dict[str, Any]


class ModelStore:
    """Save and load versions of named models below one root directory."""

    def __init__(self, spark: SparkSession, root: str) -> None:
        self.spark = spark
        self.root = root.rstrip("/")

    def _fs(self, path: str) -> tuple[Any, Any]:
        jvm = self.spark.sparkContext._jvm
        hadoop_path = jvm.org.apache.hadoop.fs.Path(path)  # type: ignore[union-attr]
        conf = self.spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[union-attr]
        return hadoop_path.getFileSystem(conf), hadoop_path

    def _version_dirs(self, name: str) -> dict[int, bool]:
        """Every ``vN`` directory of ``name``: N → whether its metadata (completeness) exists."""
        fs, directory = self._fs(f"{self.root}/{name}")
        if not fs.exists(directory):
            return {}
        found = {}
        for status in fs.listStatus(directory):
            match = _VERSION_DIR.match(status.getPath().getName())
            if match:
                found[int(match.group(1))] = fs.exists(status.getPath().suffix(f"/{METADATA}"))
        return found

    def versions(self, name: str) -> list[int]:
        """Complete versions of ``name`` (those with metadata), oldest first."""
        return sorted(n for n, complete in self._version_dirs(name).items() if complete)

    def next_version(self, name: str) -> str:
        """The version a new save of ``name`` gets: one above every directory, complete or not."""
        return f"v{max(self._version_dirs(name), default=0) + 1}"

    def path(self, name: str, version: str) -> str:
        return f"{self.root}/{name}/{version}"

    def save(
        self, name: str, version: str, pipeline: PipelineModel, metadata: dict[str, Any]
    ) -> str:
        """Save the pipeline, then the metadata that marks the version complete."""
        path = self.path(name, version)
        pipeline.write().overwrite().save(f"{path}/{PIPELINE}")
        text = json.dumps({**metadata, "name": name, "version": version}, indent=2, default=str)
        fs, target = self._fs(f"{path}/{METADATA}")
        stream = fs.create(target, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
        finally:
            stream.close()
        return path

    def load(self, name: str, version: str | None = None) -> StoredModel:
        """Load ``version`` of ``name``, or its latest complete version.

        Raises
        ------
        ModelNotFoundError
            When no complete version exists (or the pinned one does not).
        """
        versions = self.versions(name)
        if version is None:
            if not versions:
                raise ModelNotFoundError(
                    f"no trained model '{name}' under {self.root}/{name}: run "
                    "jobs/train_response_model.py (or make run) first"
                )
            version = f"v{versions[-1]}"
        elif int(version.lstrip("v")) not in versions:
            available = ", ".join(f"v{v}" for v in versions) or "none"
            raise ModelNotFoundError(
                f"model '{name}' has no complete version {version} under {self.root}/{name} "
                f"(available: {available})"
            )
        path = self.path(name, version)
        metadata = json.loads(
            self.spark.read.text(f"{path}/{METADATA}", wholetext=True).first()[0]  # type: ignore[index]
        )
        return StoredModel(
            name=name,
            version=version,
            path=path,
            pipeline=PipelineModel.load(f"{path}/{PIPELINE}"),
            metadata=metadata,
        )

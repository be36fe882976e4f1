"""Versioned model storage under ``paths.models``: ``<models>/<name>/v<N>/``. Which version
serves is the MLflow registry's ``champion`` (:mod:`campaignlake.models.tracking`); without a
registry, the latest complete one.

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
from campaignlake.hadoop_fs import HadoopFs

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
        self.fs = HadoopFs(spark)

    def _version_dirs(self, name: str) -> dict[int, bool]:
        """Every ``vN`` directory of ``name``: N → whether its metadata (completeness) exists."""
        directory = f"{self.root}/{name}"
        found = {}
        for entry in self.fs.list(directory):
            match = _VERSION_DIR.match(entry)
            if match:
                found[int(match.group(1))] = self.fs.exists(f"{directory}/{entry}/{METADATA}")
        return found

    def versions(self, name: str) -> list[int]:
        """Complete versions of ``name`` (those with metadata), oldest first."""
        return sorted(n for n, complete in self._version_dirs(name).items() if complete)

    def next_version(self, name: str) -> str:
        """The version a new save of ``name`` gets: one above every directory, complete or not."""
        return f"v{max(self._version_dirs(name), default=0) + 1}"

    def path(self, name: str, version: str) -> str:
        """The directory of a model version."""
        return f"{self.root}/{name}/{version}"

    def save(
        self, name: str, version: str, pipeline: PipelineModel, metadata: dict[str, Any]
    ) -> str:
        """Save the pipeline, then the metadata that marks the version complete."""
        path = self.path(name, version)
        pipeline.write().overwrite().save(f"{path}/{PIPELINE}")
        text = json.dumps({**metadata, "name": name, "version": version}, indent=2, default=str)
        self.fs.write_text(f"{path}/{METADATA}", text)
        return path

    def metadata(self, name: str, version: str) -> dict[str, Any]:
        """The metadata of a complete version, without loading its model.

        Raises
        ------
        ModelNotFoundError
            When ``version`` is not a complete version of ``name``.
        """
        if int(version.lstrip("v")) not in self.versions(name):
            raise ModelNotFoundError(f"model '{name}' has no complete version {version}")
        return json.loads(self.fs.read_text(f"{self.path(name, version)}/{METADATA}"))

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
                    f"no trained model '{name}' under {self.root}/{name}: run its training "
                    "job (campaignlake train_response_model or train_recommender, or make run) "
                    "first"
                )
            version = f"v{versions[-1]}"
        elif int(version.lstrip("v")) not in versions:
            available = ", ".join(f"v{v}" for v in versions) or "none"
            raise ModelNotFoundError(
                f"model '{name}' has no complete version {version} under {self.root}/{name} "
                f"(available: {available})"
            )
        path = self.path(name, version)
        metadata = json.loads(self.fs.read_text(f"{path}/{METADATA}"))
        return StoredModel(
            name=name,
            version=version,
            path=path,
            pipeline=PipelineModel.load(f"{path}/{PIPELINE}"),
            metadata=metadata,
        )

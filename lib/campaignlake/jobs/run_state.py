"""What a complete pipeline run for a date left behind, so that a rerun can tell that nothing
has changed since and skip the stages that would only compute the same results again.

A run's state is everything its results depend on or consist of: the version of every table,
the model versions in the model store, the files of the exports and of the date's report
(their sizes and modification times), the configuration (the loaded values and every YAML
file beside the environment's, campaigns and trigger rules included) and campaignlake's own
code. The pipeline writes it after its last stage (``<paths.reports>/<date>/run_state.json``).
A rerun for the same date first runs the intake stages (ingestion and erasure: they are the
ones that look for new landing files and due deletion requests); when the state is then the
same as the one recorded, every later stage would read the same inputs and write the same
rows, so none of them runs. Anything different — a new landing file ingested, a deletion
carried out, a table written by another job, a retrained model, an edited campaign or line of
code, an export deleted — and every stage runs as usual.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

import campaignlake
from campaignlake.catalog import TABLE_KEYS
from campaignlake.config import Conf
from campaignlake.hadoop_fs import HadoopFs
from campaignlake.tables import Tables

STATE_FILE = "run_state.json"


@dataclass(frozen=True)
class RunState:
    """The state a pipeline run for ``run_date`` left (see the module docstring)."""

    run_date: date
    #: Table key → version (None: the table does not exist).
    tables: dict[str, int | None]
    #: Everything else, each part as a digest or a listing.
    inputs: dict[str, Any]

    def differences(self, other: RunState) -> list[str]:
        """What differs from ``other``, for the console: table keys and input names."""
        tables = [
            f"table {key}" for key in TABLE_KEYS if self.tables.get(key) != other.tables.get(key)
        ]
        inputs = [name for name in self.inputs if self.inputs[name] != other.inputs.get(name)]
        return tables + inputs


@dataclass(frozen=True)
class Recorded:
    """A recorded state with when it was recorded and where the run left its outputs."""

    state: RunState
    recorded_at: str
    exports: list[str]
    report: str | None


def state_file(conf: Conf, run_date: date) -> str:
    """Where the run of ``run_date`` records its state."""
    return f"{conf.paths.reports.rstrip('/')}/{run_date.isoformat()}/{STATE_FILE}"


def current_state(spark: SparkSession, conf: Conf, tables: Tables, run_date: date) -> RunState:
    """The state of the warehouse, models, outputs, configuration and code now."""
    files = HadoopFs(spark)
    report_folder = f"{conf.paths.reports.rstrip('/')}/{run_date.isoformat()}"
    return RunState(
        run_date=run_date,
        tables=tables.versions(TABLE_KEYS),
        inputs={
            "models": _model_versions(files, conf.paths.models),
            "exports": files.files(conf.paths.exports),
            "report": [f for f in files.files(report_folder) if f[0] != STATE_FILE],
            "configuration": _configuration_digest(conf),
            "code": _code_digest(),
        },
    )


def read_recorded(spark: SparkSession, conf: Conf, run_date: date) -> Recorded | None:
    """The state the last complete run of ``run_date`` recorded, if there was one."""
    files = HadoopFs(spark)
    path = state_file(conf, run_date)
    if not files.exists(path):
        return None
    raw = json.loads(files.read_text(path))
    state = RunState(
        run_date=date.fromisoformat(raw["run_date"]),
        tables=raw["tables"],
        inputs=_from_json(raw["inputs"]),
    )
    return Recorded(state, raw["recorded_at"], raw["exports"], raw["report"])


def record(
    spark: SparkSession, conf: Conf, state: RunState, exports: list[str], report: str | None
) -> None:
    """Write ``state`` as the state of the complete run of its date."""
    raw = {
        "run_date": state.run_date.isoformat(),
        "recorded_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tables": state.tables,
        "inputs": state.inputs,
        "exports": exports,
        "report": report,
    }
    text = json.dumps(raw, indent=1, sort_keys=True)
    HadoopFs(spark).write_text(state_file(conf, state.run_date), text)


def _from_json(inputs: dict[str, Any]) -> dict[str, Any]:
    """Listings come back from JSON as lists of lists: as tuples, like the fresh ones."""
    return {
        name: [tuple(entry) for entry in value] if isinstance(value, list) else value
        for name, value in inputs.items()
    }


def _model_versions(files: HadoopFs, models: str) -> list[tuple[str, ...]]:
    """``(model, version)`` of every version folder in the model store."""
    return [
        (name, version)
        for name in files.list(models)
        for version in files.list(f"{models.rstrip('/')}/{name}")
        if version.startswith("v") and version[1:].isdigit()
    ]


def _configuration_digest(conf: Conf) -> str:
    """The loaded configuration and every YAML file in its folder (campaigns, triggers)."""
    digest = hashlib.sha256(repr(conf).encode("utf-8"))
    folder = Path(conf.source_file).resolve().parent if conf.source_file else None
    if folder is not None and folder.is_dir():
        _add_files(digest, folder, sorted(folder.rglob("*.yaml")))
    return digest.hexdigest()


def _code_digest() -> str:
    """The version of campaignlake and, where the package is a folder of sources (a checkout or
    a wheel install), every module's source."""
    try:
        version = importlib.metadata.version("campaignlake")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    digest = hashlib.sha256(version.encode("utf-8"))
    package = Path(campaignlake.__file__).parent
    if package.is_dir():
        _add_files(digest, package, sorted(package.rglob("*.py")))
    return digest.hexdigest()


def _add_files(digest: Any, root: Path, paths: Iterable[Path]) -> None:
    for path in paths:
        digest.update(str(path.relative_to(root)).encode("utf-8"))
        digest.update(path.read_bytes())

"""MLflow: run tracking and the model registry that decides which version is in service.

Locally the tracking store is a directory under ``paths.models`` (``mlruns/``); MLflow keeps
its file store in maintenance mode, so campaignlake opts in to it explicitly rather than
requiring a tracking server. The registry is a SQLite file beside it
(``paths.models/registry.db``). On Databricks ``tracking.tracking_uri: databricks`` logs to the
workspace and ``tracking.registry_uri: databricks-uc`` registers in Unity Catalog
(``<catalog>.<schema>.<model>``). ``tracking.enabled: false`` turns both off; scoring then uses
the latest saved version.

Each trained version is logged as an MLflow Spark model with a signature (the input columns'
names and types, and the ``prediction`` column it returns; no data) and registered by its
model URI as a version of the registered model; the registry's ``champion`` alias names the
version that scoring and recommending load (the model files they load are those of
:class:`campaignlake.models.registry.ModelStore`, tagged on the version).
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import date
from typing import Any

from pyspark.ml import PipelineModel
from pyspark.sql.types import (
    BooleanType,
    ByteType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IntegerType,
    LongType,
    ShortType,
    StringType,
    StructType,
    TimestampType,
)

from campaignlake.config import Conf
from campaignlake.models.promotion import CHAMPION, Promotion

log = logging.getLogger(__name__)

#: The registry tag holding the model store's version (``vN``) of a registered version.
STORE_VERSION_TAG = "campaignlake_version"
#: The artifact path of the logged Spark model within its run.
MODEL_ARTIFACT = "model"


@dataclass(frozen=True)
class TrackedRun:
    """A logged training run: its id and its logged model's URI (None without a model)."""

    run_id: str
    model_uri: str | None
    #: MLflow 3's id of the logged model (``m-…``); None with MLflow 2.x.
    model_id: str | None = None


def tracking_uri(conf: Conf) -> str:
    """The configured URI, or ``file:<paths.models>/mlruns``."""
    if conf.tracking.tracking_uri:
        return conf.tracking.tracking_uri
    models = conf.paths.models.rstrip("/")
    return models if "://" in models else f"file:{models}/mlruns"


def registry_uri(conf: Conf) -> str | None:
    """The configured registry, a SQLite file under ``paths.models`` for a local file store,
    else ``None`` (MLflow's registry for the tracking URI)."""
    if conf.tracking.registry_uri:
        return conf.tracking.registry_uri
    if conf.tracking.tracking_uri is None:
        return f"sqlite:///{conf.paths.models.rstrip('/')}/registry.db"
    return None


def registered_name(conf: Conf, model: str) -> str:
    """The registered model's name: ``<namespace>.<model>`` (Unity Catalog's three levels)."""
    namespace = conf.tracking.registry_namespace
    return f"{namespace}.{model}" if namespace else model


def _connect(conf: Conf) -> Any:
    """Point MLflow at this configuration's tracking store and registry; the client."""
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri(conf)
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        os.makedirs(uri[len("file:") :], exist_ok=True)
    registry = registry_uri(conf)
    if registry and registry.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(registry[len("sqlite:///") :]) or ".", exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(registry or uri)
    return MlflowClient(tracking_uri=uri, registry_uri=registry or uri)


#: MLflow's column types by Spark type; MLflow has no decimal, so amounts are declared double.
_MLFLOW_TYPES: dict[type[DataType], str] = {
    DoubleType: "double", FloatType: "float", DecimalType: "double", IntegerType: "integer",
    ShortType: "integer", ByteType: "integer", LongType: "long",
    StringType: "string", BooleanType: "boolean", DateType: "datetime",
    TimestampType: "datetime",
}  # fmt: skip


#: The column MLflow's pyfunc wrapper of a Spark model returns.
PREDICTION = "prediction"


def model_signature(inputs: StructType, outputs: StructType) -> Any:
    """An MLflow signature of a model's input and output columns, from their Spark types (no
    rows read): Unity Catalog's registry takes no model whose signature lacks either.

    Raises
    ------
    TypeError
        For a column type MLflow signatures have no equivalent of.
    """
    from mlflow.models.signature import ModelSignature
    from mlflow.types.schema import ColSpec, Schema

    def columns(schema: StructType, role: str) -> Any:
        specs = []
        for f in schema.fields:
            kind = _MLFLOW_TYPES.get(type(f.dataType))
            if kind is None:
                raise TypeError(
                    f"model {role} {f.name}: no MLflow type for {f.dataType.simpleString()}"
                )
            specs.append(ColSpec(kind, f.name))
        return Schema(specs)

    return ModelSignature(inputs=columns(inputs, "input"), outputs=columns(outputs, "output"))


def prediction_schema(model: PipelineModel, inputs: StructType) -> StructType:
    """The ``prediction`` column the model's pyfunc returns, typed as its transform types it
    (planned on an empty frame of ``inputs``)."""
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    assert spark is not None, "a model is logged from a Spark job"
    planned = model.transform(spark.createDataFrame([], inputs)).schema
    return StructType([planned[PREDICTION]])


def log_training_run(
    conf: Conf,
    *,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    metadata: dict[str, Any],
    model: PipelineModel | None = None,
    model_inputs: StructType | None = None,
) -> TrackedRun | None:
    """Log one training run, with the fitted model and its signature (``model_inputs`` in, the
    prediction out) when given; the run and its model's URI (None when tracking is off)."""
    if not conf.tracking.enabled:
        return None
    import mlflow
    import mlflow.spark

    _connect(conf)
    _use_experiment(conf)
    model_uri = model_id = None
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})  # drop NaN
        mlflow.set_tags(tags)
        mlflow.log_dict(metadata, "metadata.json")
        if model is not None:
            signature = (
                model_signature(model_inputs, prediction_schema(model, model_inputs))
                if model_inputs is not None
                else None
            )
            with tempfile.TemporaryDirectory(prefix="campaignlake-mlflow-") as scratch:
                logged = mlflow.spark.log_model(
                    model,
                    artifact_path=MODEL_ARTIFACT,
                    signature=signature,
                    dfs_tmpdir=_dfs_scratch(conf, scratch),
                    # Said, not inferred: MLflow infers a Spark model's requirements by loading
                    # it again in a new Python process with a Spark session of its own (about
                    # 20 s per training run on a laptop); a Spark model needs pyspark only.
                    pip_requirements=mlflow.spark.get_default_pip_requirements(),
                )
            # MLflow 3 names a logged model models:/<model id>; 2.x, runs:/<run>/<path>.
            model_uri = str(logged.model_uri)
            model_id = getattr(logged, "model_id", None)
    log.info(
        "MLflow run %s in %s (%s)", run.info.run_id, tracking_uri(conf), conf.tracking.experiment
    )
    return TrackedRun(run_id=str(run.info.run_id), model_uri=model_uri, model_id=model_id)


def log_report(conf: Conf, as_of: date, html: str) -> str | None:
    """Log the run report as the artifact ``report.html`` of a pipeline run for ``as_of``, where
    Databricks users look for a job's outputs; its run id (None with tracking off)."""
    if not conf.tracking.enabled:
        return None
    import mlflow

    _connect(conf)
    _use_experiment(conf)
    with mlflow.start_run(run_name=f"pipeline-{as_of.isoformat()}") as run:
        mlflow.set_tags({"as_of": as_of.isoformat(), "kind": "run_report"})
        mlflow.log_text(html, "report.html")
    return str(run.info.run_id)


def _use_experiment(conf: Conf) -> None:
    """Make ``tracking.experiment`` the active experiment, creating it with
    ``tracking.artifact_location`` when it does not exist yet."""
    import mlflow
    from mlflow.exceptions import MlflowException

    name, location = conf.tracking.experiment, conf.tracking.artifact_location
    if location is not None and mlflow.get_experiment_by_name(name) is None:
        try:
            mlflow.create_experiment(name, artifact_location=location)
        except MlflowException:
            # Another job created it in between; set_experiment below finds it.
            if mlflow.get_experiment_by_name(name) is None:
                raise
    mlflow.set_experiment(name)


def _dfs_scratch(conf: Conf, local: str) -> str:
    """Where Spark writes the model before MLflow copies it: a local folder in local mode, the
    models location on a cluster (whose executors cannot write the driver's disk)."""
    master = conf.spark.master or ""
    return local if master.startswith("local") else f"{conf.paths.models.rstrip('/')}/_mlflow_tmp"


def champion_version(conf: Conf, model: str) -> str | None:
    """The model store version (``vN``) the registry's ``champion`` alias points at; ``None``
    with tracking off, or when no version of ``model`` was registered as champion."""
    if not conf.tracking.enabled:
        return None
    from mlflow.exceptions import MlflowException

    client = _connect(conf)
    try:
        version = client.get_model_version_by_alias(registered_name(conf, model), CHAMPION)
    except MlflowException:
        return None
    return version.tags.get(STORE_VERSION_TAG)


def register_version(
    conf: Conf, model: str, store_version: str, run: TrackedRun, promotion: Promotion
) -> str | None:
    """Register the run's logged model (by its URI) as a version of ``model``, tagged with its
    store version and the gate's decision, and move ``champion`` to it when it was promoted;
    the registry's version number (None with tracking off)."""
    if not conf.tracking.enabled:
        return None
    from mlflow.exceptions import MlflowException

    client = _connect(conf)
    name = registered_name(conf, model)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    # The client, not mlflow.register_model, which prints its progress to the console.
    linked = {"model_id": run.model_id} if run.model_id else {}  # MLflow 3's logged model
    registered = client.create_model_version(
        name,
        source=run.model_uri or f"runs:/{run.run_id}/{MODEL_ARTIFACT}",
        run_id=run.run_id,
        tags={
            STORE_VERSION_TAG: store_version,
            "gate": "champion" if promotion.promoted else "challenger",
            "gate_reason": promotion.describe()[:500],
        },
        **linked,
    )
    if promotion.promoted:
        client.set_registered_model_alias(name, CHAMPION, registered.version)
    log.info("registered %s version %s (%s)", name, registered.version, store_version)
    return str(registered.version)

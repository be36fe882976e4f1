"""MLflow run tracking for trained models.

Locally the tracking store is a directory under ``paths.models`` (``mlruns/``); MLflow keeps
its file store in maintenance mode, so campaignlake opts in to it explicitly rather than
requiring a tracking server. On Databricks ``tracking.tracking_uri: databricks`` logs to the
workspace. ``tracking.enabled: false`` turns tracking off.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from campaignlake.config import Conf

log = logging.getLogger(__name__)


def tracking_uri(conf: Conf) -> str:
    """The configured URI, or ``file:<paths.models>/mlruns``."""
    if conf.tracking.tracking_uri:
        return conf.tracking.tracking_uri
    models = conf.paths.models.rstrip("/")
    return models if "://" in models else f"file:{models}/mlruns"


def log_training_run(
    conf: Conf,
    *,
    run_name: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    tags: dict[str, str],
    metadata: dict[str, Any],
) -> str | None:
    """Log one training run; returns its MLflow run id (None when tracking is off)."""
    if not conf.tracking.enabled:
        return None
    import mlflow

    uri = tracking_uri(conf)
    if uri.startswith("file:"):
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(conf.tracking.experiment)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        mlflow.log_metrics({k: v for k, v in metrics.items() if v == v})  # drop NaN
        mlflow.set_tags(tags)
        mlflow.log_dict(metadata, "metadata.json")
    log.info("MLflow run %s in %s (%s)", run.info.run_id, uri, conf.tracking.experiment)
    return str(run.info.run_id)

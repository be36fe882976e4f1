"""The models' table I/O: the response model's training and the customers' scoring.

Training: examples from the campaign history → GBT search → evaluation against the baselines on
the validation split → a new model version, its metrics in ``gold/model_metrics``, an MLflow
run with the model, and a registered version that becomes the champion if the gate lets it
(:mod:`campaignlake.models.promotion`). Scoring: the champion (or a pinned version; the latest
with tracking off) scores every customer's features
as of a date, once per configured offer, into ``gold/propensity_scores``; a rerun replaces
the (model, date) slice only when its content differs."""

from __future__ import annotations

import logging
import platform
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyspark
from pyspark import StorageLevel
from pyspark.errors import AnalysisException
from pyspark.sql import DataFrame, SparkSession

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.errors import ConfigError, ModelNotFoundError
from campaignlake.feature_set import FeatureSet, cutoff_of
from campaignlake.features.inputs import FEATURE_INPUTS, REQUIRED_FEATURE_INPUTS, features_for
from campaignlake.frames import fit_layout, metrics_rows
from campaignlake.models import response
from campaignlake.models.evaluation import (
    LOGISTIC_BASELINE,
    MODEL,
    RECENCY_RULE,
    TRAIN,
    VALIDATION,
    XGBOOST,
    binary_metrics,
)
from campaignlake.models.promotion import Promotion, describe_promotion
from campaignlake.models.registry import ModelStore
from campaignlake.models.scoring import propensity_scores
from campaignlake.models.tracking import champion_version, log_training_run, register_version
from campaignlake.models.training import (
    class_counts,
    labelled_contacts,
    split_examples,
    with_campaign_context,
    with_class_weights,
)
from campaignlake.tables import Tables, Txn, WriteResult, describe_writes

log = logging.getLogger(__name__)


#: Training needs the CRM and the campaign history (its labels); other inputs may be absent.
TRAINING_INPUTS = (*REQUIRED_FEATURE_INPUTS, catalog.CAMPAIGN_CONTACTS)


@dataclass
class TrainingReport:
    """What one ``train_response_model`` run trained, measured and saved."""

    model_name: str
    model_version: str
    path: str
    split_method: str
    train_rows: int
    validation_rows: int
    validation_campaigns: tuple[str, ...] = ()
    #: model → metric → value, on the validation split.
    validation: dict[str, dict[str, float]] = field(default_factory=dict)
    importances: dict[str, float] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    #: The champion gate's decision (None with tracking off: the latest version serves).
    promotion: Promotion | None = None

    def describe(self) -> str:
        """The version, the split, the validation metrics against the baselines and the
        champion gate's decision."""
        lines = [
            f"train_response_model: {self.model_name} {self.model_version} saved to {self.path}",
            f"   split {self.split_method}: {self.train_rows} training, "
            f"{self.validation_rows} validation contacts; chosen params {self.params}",
        ]
        for model, m in self.validation.items():
            lines.append(
                f"   {model:<20} ROC AUC {m['roc_auc']:.3f}  PR AUC {m['pr_auc']:.3f}  "
                f"Brier {m['brier']:.3f}  top-decile lift {m['lift_d01']:.2f}"
            )
        top = ", ".join(f"{k} {v:.3f}" for k, v in list(self.importances.items())[:5])
        lines.append(f"   top features: {top}")
        lines.append(f"   champion gate: {describe_promotion(self.promotion)}")
        return "\n".join(lines)


@dataclass
class ScoringReport:
    """What one ``score_customers`` run scored and wrote."""

    model_name: str
    model_version: str
    as_of: date
    rows: int = 0
    writes: dict[str, WriteResult] = field(default_factory=dict)

    def describe(self) -> str:
        """The model version, the rows and the write, in one line."""
        return (
            f"score_customers {self.as_of}: {self.model_name} {self.model_version} → "
            f"{self.rows} scores; {describe_writes(self.writes)}"
        )


def training_examples(
    spark: SparkSession, conf: Conf, tables: Tables, as_of: date
) -> tuple[DataFrame, FeatureSet]:
    """One row per labelled contact: features as of its send time, context and label."""
    model_conf = conf.response_model
    feature_set = FeatureSet.from_conf(conf)
    tables.require(TRAINING_INPUTS, "training the response model")
    inputs = {key: tables.read_or_empty(key) for key in FEATURE_INPUTS}
    contacts = labelled_contacts(
        inputs[catalog.CAMPAIGN_CONTACTS],
        cutoff=cutoff_of(as_of),
        attribution_days=model_conf.attribution_days,
        label=model_conf.label,
        category_pattern=model_conf.campaign_category_pattern,
    )
    return with_campaign_context(features_for(contacts, inputs, feature_set)), feature_set


def train_response_model(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    now: datetime | None = None,
) -> TrainingReport:
    """Train, evaluate and save a new version of the response model on the contacts whose
    attribution window closed by ``as_of``.

    Raises
    ------
    MissingInputError
        When the CRM tables or the campaign history do not exist yet.
    TrainingDataError
        When the history has too few labelled contacts of either class.
    """
    model_conf = conf.response_model
    created = now or datetime.now(timezone.utc)
    tables.require(TRAINING_INPUTS, "training the response model")
    versions = tables.versions(FEATURE_INPUTS)
    examples, feature_set = training_examples(spark, conf, tables, as_of)
    examples = examples.persist(StorageLevel.MEMORY_AND_DISK)
    cached = [examples]
    try:
        split = split_examples(
            examples,
            attribution_days=model_conf.attribution_days,
            validation_fraction=model_conf.validation_fraction,
            seed=model_conf.seed,
        )
        negatives, positives = class_counts(split.train)
        # A fixed layout, not the joins' (or the core count's): GBT's split candidates and
        # the search's random split are drawn per partition, so the same examples must reach
        # MLlib the same way on a laptop and on a cluster to give the same model.
        keys, parts = [c.CAMPAIGN_ID, c.CUSTOMER_ID], model_conf.fit_partitions
        train = fit_layout(with_class_weights(split.train, negatives, positives), keys, parts)
        validation = fit_layout(split.validation, keys, parts)
        train = train.persist(StorageLevel.MEMORY_AND_DISK)
        validation = validation.persist(StorageLevel.MEMORY_AND_DISK)
        cached += [train, validation]
        inputs = response.ModelInputs.for_features(feature_set)
        empty = response.all_null_columns(train, inputs)
        inputs = inputs.without(empty)

        search = response.gbt_search(inputs, model_conf).fit(train)
        gbt = search.bestModel
        baseline = response.logistic_baseline(inputs).fit(train)
        keep = [c.LABEL]
        scored = {
            model_conf.name: response.score(gbt, validation, keep=keep),
            f"{model_conf.name}.{LOGISTIC_BASELINE}": response.score(
                baseline, validation, keep=keep
            ),
            f"{model_conf.name}.{RECENCY_RULE}": response.recency_rule(validation, keep=keep),
        }
        if model_conf.engine == XGBOOST:
            scored[f"{model_conf.name}.{XGBOOST}"] = _xgboost_scores(train, validation, inputs)
        validation_metrics = {name: binary_metrics(df) for name, df in scored.items()}
        train_metrics = binary_metrics(response.score(gbt, train, keep=keep))
        importances = response.feature_importances(gbt, inputs)
        params = response.best_params(search)

        store = ModelStore(spark, conf.paths.models)
        version = store.next_version(model_conf.name)
        metadata: dict[str, Any] = {
            "created_at": created.isoformat(),
            "as_of": as_of.isoformat(),
            "label": model_conf.label,
            "attribution_days": model_conf.attribution_days,
            "params": params,
            "grid": {k: list(v) for k, v in vars(model_conf.grid).items()},
            "numeric_features": list(inputs.numeric),
            "categorical_features": list(inputs.categorical),
            "dropped_all_null_features": sorted(empty),
            "input_table_versions": versions,
            "split": {
                "method": split.method,
                "validation_campaigns": list(split.validation_campaigns),
                "train_negatives": negatives,
                "train_positives": positives,
                "positive_weight": negatives / positives,
            },
            "metrics": {VALIDATION: validation_metrics, TRAIN: {model_conf.name: train_metrics}},
            "feature_importances": importances,
            "spark_version": pyspark.__version__,
            "python": platform.python_version(),
        }
        path = store.save(model_conf.name, version, gbt, metadata)
        _write_metrics(
            spark, tables, model_conf.name, version, validation_metrics, train_metrics,
            importances, params, created,
        )  # fmt: skip
        report = TrainingReport(
            model_name=model_conf.name,
            model_version=version,
            path=path,
            split_method=split.method,
            train_rows=negatives + positives,
            validation_rows=int(validation_metrics[model_conf.name]["rows"]),
            validation_campaigns=split.validation_campaigns,
            validation=validation_metrics,
            importances=importances,
            params=params,
        )
        champion = champion_version(conf, model_conf.name)
        champion_value, unmeasured = _champion_auc(store, model_conf.name, champion, validation)
        promotion = Promotion(
            model=model_conf.name,
            challenger=version,
            champion=champion,
            metric="roc_auc",
            challenger_value=validation_metrics[model_conf.name]["roc_auc"],
            champion_value=champion_value,
            tolerance=conf.tracking.champion_tolerance,
            unmeasured_reason=unmeasured,
        )
        report.mlflow_run_id = log_training_run(
            conf,
            run_name=f"{model_conf.name}-{version}",
            params={**params, "label": model_conf.label, "split": split.method},
            metrics={
                f"{VALIDATION}.{name.split('.')[-1]}.{metric}": value
                for name, metrics in validation_metrics.items()
                for metric, value in metrics.items()
                if metric in ("roc_auc", "pr_auc", "brier", "lift_d01")
            },
            tags={"model_name": model_conf.name, "model_version": version, "path": path},
            metadata=metadata,
            model=gbt,
            model_inputs=train.select(*inputs.numeric, *inputs.categorical).schema,
        )
        if report.mlflow_run_id is not None:
            register_version(conf, model_conf.name, version, report.mlflow_run_id, promotion)
            report.promotion = promotion
        return report
    finally:
        for df in cached:
            df.unpersist()


def score_customers(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    model_version: str | None = None,
) -> ScoringReport:
    """Score the features of ``as_of`` with the champion (or ``model_version``) response model.

    Raises
    ------
    ModelNotFoundError
        When no such model version is saved.
    MissingInputError
        When the features of ``as_of`` have not been built.
    """
    name = conf.response_model.name
    serving = model_version or champion_version(conf, name)
    stored = ModelStore(spark, conf.paths.models).load(name, serving)
    features = tables.read_day(catalog.CUSTOMER_FEATURES, c.AS_OF_DATE, as_of)
    day = f"{c.AS_OF_DATE} = DATE'{as_of.isoformat()}'"
    scores = propensity_scores(
        features, stored.pipeline, name, stored.version, conf.scoring.offers
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        report = ScoringReport(model_name=name, model_version=stored.version, as_of=as_of)
        report.rows = scores.count()
        report.writes[catalog.PROPENSITY_SCORES] = tables.replace_slice(
            catalog.PROPENSITY_SCORES, scores, f"{day} AND {c.MODEL_NAME} = '{name}'"
        )
        return report
    finally:
        scores.unpersist()


def _champion_auc(
    store: ModelStore, name: str, champion: str | None, validation: DataFrame
) -> tuple[float | None, str]:
    """The champion's ROC AUC on this run's validation split, or why it cannot be measured."""
    if champion is None:
        return None, ""
    try:
        stored = store.load(name, champion)
        scored = response.score(stored.pipeline, validation, keep=[c.LABEL])
        return binary_metrics(scored)["roc_auc"], ""
    except (ModelNotFoundError, AnalysisException) as exc:
        return None, str(exc).strip().splitlines()[0][:200]


def _write_metrics(
    spark: SparkSession,
    tables: Tables,
    model_name: str,
    version: str,
    validation: dict[str, dict[str, float]],
    train: dict[str, float],
    importances: dict[str, float],
    params: dict[str, float],
    created: datetime,
) -> None:
    rows = [
        (name, VALIDATION, metric, value)
        for name, metrics in validation.items()
        for metric, value in metrics.items()
    ]
    rows += [(model_name, TRAIN, metric, value) for metric, value in train.items()]
    rows += [(model_name, MODEL, f"importance.{k}", v) for k, v in importances.items()]
    rows += [(model_name, MODEL, f"param.{k}", v) for k, v in params.items()]
    # One commit per model version, whatever retries happen.
    tables.append(
        catalog.MODEL_METRICS,
        metrics_rows(spark, version, created, rows),
        txn=Txn(f"train:{model_name}", int(version[1:])),
    )


def _xgboost_scores(
    train: DataFrame, validation: DataFrame, inputs: response.ModelInputs
) -> DataFrame:
    """XGBoost's own Spark estimator on the same preparation and split, for comparison."""
    try:
        from xgboost.spark import SparkXGBClassifier
    except ImportError as exc:
        raise ConfigError(
            "response_model.engine: xgboost needs the xgboost package (pip install xgboost)"
        ) from exc
    from pyspark.ml import Pipeline

    model = Pipeline(
        stages=[
            *response.preparation(inputs),
            SparkXGBClassifier(
                features_col=response.FEATURES,
                label_col=c.LABEL,
                weight_col=c.WEIGHT,
                num_workers=1,
                max_depth=5,
                n_estimators=200,
                learning_rate=0.1,
            ),
        ]
    ).fit(train)
    return response.score(model, validation, keep=[c.LABEL])

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
from collections.abc import Callable
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
from campaignlake.features.inputs import (
    FEATURE_INPUTS,
    REQUIRED_FEATURE_INPUTS,
    features_for,
    text_as_of,
)
from campaignlake.frames import fit_layout, fit_partitions_for, metrics_rows
from campaignlake.measurement.outcomes import behaviour_outcomes, campaign_assignments
from campaignlake.models import response, uplift
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
    #: The response model's scores.
    rows: int = 0
    writes: dict[str, WriteResult] = field(default_factory=dict)
    #: The uplift model version that scored too (objective ``uplift``), if any, and its scores.
    uplift_version: str | None = None
    uplift_rows: int = 0

    def describe(self) -> str:
        """The model versions, the rows and the writes, in one line."""
        also = f" and uplift {self.uplift_version}" if self.uplift_version else ""
        return (
            f"score_customers {self.as_of}: {self.model_name} {self.model_version}{also} → "
            f"{self.rows + self.uplift_rows} scores; {describe_writes(self.writes)}"
        )


def training_examples(
    spark: SparkSession, conf: Conf, tables: Tables, as_of: date
) -> tuple[DataFrame, FeatureSet]:
    """One row per labelled contact: features as of its send time, context and label."""
    model_conf = conf.response_model
    feature_set = FeatureSet.from_conf(conf)
    tables.require(TRAINING_INPUTS, "training the response model")
    inputs = text_as_of({key: tables.read_or_empty(key) for key in FEATURE_INPUTS}, as_of)
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
        partitions = fit_partitions_for(
            negatives + positives, model_conf.fit_partitions, model_conf.fit_rows_per_partition
        )
        train, validation, inputs, empty = _fit_inputs(
            with_class_weights(split.train, negatives, positives),
            split.validation,
            feature_set,
            partitions,
        )
        cached += [train, validation]

        # Unweighted (response.gbt_search says why); the logistic baseline keeps the weights.
        fitted = response.fit_gbt(train, inputs, model_conf, weight_column=None)
        cached.append(fitted.prepared)
        gbt = fitted.model
        baseline = response.logistic_baseline(fitted)
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
        params = fitted.params

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
                "baseline_positive_weight": negatives / positives,
                "fit_partitions": partitions,
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
        champion_value, unmeasured = _champion_value(
            store,
            model_conf.name,
            champion,
            lambda model: binary_metrics(response.score(model, validation, keep=[c.LABEL]))[
                "roc_auc"
            ],
        )
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
        tracked = log_training_run(
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
        if tracked is not None:
            report.mlflow_run_id = tracked.run_id
            register_version(conf, model_conf.name, version, tracked, promotion)
            report.promotion = promotion
        return report
    finally:
        for df in cached:
            df.unpersist()


UPLIFT = "uplift"


@dataclass
class UpliftReport:
    """What one ``train_uplift_model`` run trained and measured (or why it did not run)."""

    model_name: str
    skipped: str | None = None
    model_version: str | None = None
    path: str | None = None
    train_rows: int = 0
    validation_rows: int = 0
    validation_campaigns: tuple[str, ...] = ()
    #: ranker → metric → value on the validation campaign (Qini, uplift by decile).
    validation: dict[str, dict[str, float]] = field(default_factory=dict)
    params: dict[str, float] = field(default_factory=dict)
    mlflow_run_id: str | None = None
    promotion: Promotion | None = None

    def describe(self) -> str:
        """The Qini of the uplift model against the response model and a random ranking,
        and the uplift model's uplift by decile."""
        if self.skipped:
            return f"train_uplift_model: skipped ({self.skipped})"
        lines = [
            f"train_uplift_model: {self.model_name} {self.model_version} saved to {self.path}",
            f"   {self.train_rows} training, {self.validation_rows} validation customers "
            f"(validation campaign {', '.join(self.validation_campaigns)}); chosen params "
            f"{self.params}",
        ]
        for ranker, m in self.validation.items():
            lines.append(f"   {ranker:<32} Qini {m['qini']:+.4f}")
        mine = self.validation.get(self.model_name, {})
        deciles = " ".join(
            f"{mine.get(f'uplift_d{d:02d}', float('nan')) * 100:+.1f}" for d in range(1, 11)
        )
        lines.append(f"   uplift by decile (pp, decile 1 = highest predicted): {deciles}")
        lines.append(f"   champion gate: {describe_promotion(self.promotion)}")
        return "\n".join(lines)


def uplift_training_examples(
    conf: Conf, tables: Tables, as_of: date
) -> tuple[DataFrame, FeatureSet]:
    """One row per audience member of every past campaign with both groups whose window
    closed by ``as_of``: features as of the send, group, behaviour outcome and the
    transformed label."""
    model_conf = conf.response_model
    feature_set = FeatureSet.from_conf(conf)
    tables.require(TRAINING_INPUTS, "training the uplift model")
    inputs = text_as_of({key: tables.read_or_empty(key) for key in FEATURE_INPUTS}, as_of)
    audiences = (
        tables.read(catalog.CAMPAIGN_AUDIENCES)
        if tables.exists(catalog.CAMPAIGN_AUDIENCES)
        else None
    )
    assignments = campaign_assignments(
        inputs[catalog.CAMPAIGN_CONTACTS],
        audiences,
        attribution_days=model_conf.attribution_days,
        closed_by=cutoff_of(as_of),
        category_pattern=model_conf.campaign_category_pattern,
    )
    outcomes = behaviour_outcomes(
        assignments,
        inputs[catalog.CLICKSTREAM_EVENTS],
        inputs[catalog.PRODUCTS],
        category_only=conf.measurement.outcome == "category_purchase",
    )
    examples = uplift.uplift_examples(outcomes)
    return with_campaign_context(features_for(examples, inputs, feature_set)), feature_set


def train_uplift_model(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    now: datetime | None = None,
) -> UpliftReport:
    """Train, evaluate (Qini against the response model and a random ranking) and save a new
    version of the uplift model, when ``response_model.objective`` is ``uplift``.

    Raises
    ------
    MissingInputError
        When the CRM tables or the campaign history do not exist yet.
    TrainingDataError
        When no past campaign has both a treatment and a control group.
    """
    model_conf = conf.response_model
    name = model_conf.uplift_name
    if model_conf.objective != UPLIFT:
        return UpliftReport(name, skipped=f"response_model.objective is {model_conf.objective}")
    created = now or datetime.now(timezone.utc)
    tables.require(TRAINING_INPUTS, "training the uplift model")
    versions = tables.versions(FEATURE_INPUTS)
    examples, feature_set = uplift_training_examples(conf, tables, as_of)
    examples = examples.persist(StorageLevel.MEMORY_AND_DISK)
    cached = [examples]
    try:
        split = split_examples(
            examples,
            attribution_days=model_conf.attribution_days,
            validation_fraction=model_conf.validation_fraction,
            seed=model_conf.seed,
        )
        treated, held_out = uplift.group_counts(split.train)
        partitions = fit_partitions_for(
            treated + held_out, model_conf.fit_partitions, model_conf.fit_rows_per_partition
        )
        train, validation, inputs, empty = _fit_inputs(
            uplift.with_group_weights(split.train, treated, held_out),
            split.validation,
            feature_set,
            partitions,
        )
        cached += [train, validation]
        fitted = response.fit_gbt(train, inputs, model_conf, weight_column=c.WEIGHT)
        cached.append(fitted.prepared)
        model = fitted.model
        keep = [c.GROUP, c.CONVERTED]
        scored = {
            name: uplift.uplift_score(model, validation, keep=keep),
            f"{name}.{uplift.RANDOM_RANKER}": uplift.random_ranking(
                validation, keep=keep, seed=model_conf.seed
            ),
        }
        responder = _response_ranker(spark, conf)
        if responder is not None:
            scored[f"{name}.{uplift.RESPONSE_RANKER}"] = response.score(
                responder, validation, keep=keep
            )
        validation_metrics = {
            ranker: uplift.uplift_metrics(uplift.decile_outcomes(df))
            for ranker, df in scored.items()
        }
        train_metrics = uplift.uplift_metrics(
            uplift.decile_outcomes(uplift.uplift_score(model, train, keep=keep))
        )
        importances = response.feature_importances(model, inputs)
        params = fitted.params
        store = ModelStore(spark, conf.paths.models)
        version = store.next_version(name)
        metadata: dict[str, Any] = {
            "created_at": created.isoformat(),
            "as_of": as_of.isoformat(),
            "objective": UPLIFT,
            "method": "class transformation, groups weighted equally; uplift = 2 P(z=1) - 1",
            "outcome": "a purchase within attribution_days of the send (behaviour)",
            "attribution_days": model_conf.attribution_days,
            "params": params,
            "numeric_features": list(inputs.numeric),
            "categorical_features": list(inputs.categorical),
            "dropped_all_null_features": sorted(empty),
            "input_table_versions": versions,
            "split": {
                "method": split.method,
                "validation_campaigns": list(split.validation_campaigns),
                "train_treated": treated,
                "train_held_out": held_out,
                "fit_partitions": partitions,
            },
            "metrics": {VALIDATION: validation_metrics, TRAIN: {name: train_metrics}},
            "feature_importances": importances,
            "spark_version": pyspark.__version__,
        }
        path = store.save(name, version, model, metadata)
        _write_metrics(
            spark, tables, name, version, validation_metrics, train_metrics, importances,
            params, created,
        )  # fmt: skip
        report = UpliftReport(
            name,
            model_version=version,
            path=path,
            train_rows=treated + held_out,
            validation_rows=int(validation_metrics[name]["rows"]),
            validation_campaigns=split.validation_campaigns,
            validation=validation_metrics,
            params=params,
        )
        champion = champion_version(conf, name)
        champion_value, unmeasured = _champion_value(
            store,
            name,
            champion,
            lambda model: uplift.uplift_metrics(
                uplift.decile_outcomes(uplift.uplift_score(model, validation, keep=keep))
            )["qini"],
        )
        promotion = Promotion(
            model=name,
            challenger=version,
            champion=champion,
            metric="qini",
            challenger_value=validation_metrics[name]["qini"],
            champion_value=champion_value,
            tolerance=conf.tracking.champion_tolerance,
            unmeasured_reason=unmeasured,
        )
        tracked = log_training_run(
            conf,
            run_name=f"{name}-{version}",
            params={**params, "objective": UPLIFT, "split": split.method},
            metrics={
                f"{VALIDATION}.{ranker.split('.')[-1]}.{metric}": value
                for ranker, metrics in validation_metrics.items()
                for metric, value in metrics.items()
                if metric == "qini" or metric.startswith("uplift_d")
            },
            tags={"model_name": name, "model_version": version, "path": path},
            metadata=metadata,
            model=model,
            model_inputs=train.select(*inputs.numeric, *inputs.categorical).schema,
        )
        if tracked is not None:
            report.mlflow_run_id = tracked.run_id
            register_version(conf, name, version, tracked, promotion)
            report.promotion = promotion
        return report
    finally:
        for df in cached:
            df.unpersist()


def _response_ranker(spark: SparkSession, conf: Conf) -> Any:
    """The response model in service (the baseline an uplift model must beat), if any."""
    name = conf.response_model.name
    try:
        return (
            ModelStore(spark, conf.paths.models).load(name, champion_version(conf, name)).pipeline
        )
    except ModelNotFoundError:
        return None


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
    finally:
        scores.unpersist()
    uplift_name = conf.response_model.uplift_name
    store = ModelStore(spark, conf.paths.models)
    if conf.response_model.objective == UPLIFT and store.versions(uplift_name):
        stored = store.load(uplift_name, champion_version(conf, uplift_name))
        uplifts = propensity_scores(
            features, stored.pipeline, uplift_name, stored.version, conf.scoring.offers,
            uplift=True,
        ).persist(StorageLevel.MEMORY_AND_DISK)  # fmt: skip
        try:
            report.uplift_version = stored.version
            report.uplift_rows = uplifts.count()
            report.writes[f"{catalog.PROPENSITY_SCORES}[{uplift_name}]"] = tables.replace_slice(
                catalog.PROPENSITY_SCORES, uplifts, f"{day} AND {c.MODEL_NAME} = '{uplift_name}'"
            )
        finally:
            uplifts.unpersist()
    return report


def _fit_inputs(
    train: DataFrame, validation: DataFrame, feature_set: FeatureSet, partitions: int
) -> tuple[DataFrame, DataFrame, response.ModelInputs, set[str]]:
    """The training and validation examples laid out for MLlib and cached, the model inputs,
    and the features dropped because no training row has a value."""
    # A fixed layout, not the joins' (or the core count's): GBT's split candidates and the
    # search's random split are drawn per partition, so the same examples must reach MLlib
    # the same way on a laptop and on a cluster to give the same model.
    keys = [c.CAMPAIGN_ID, c.CUSTOMER_ID]
    train = fit_layout(train, keys, partitions).persist(StorageLevel.MEMORY_AND_DISK)
    validation = fit_layout(validation, keys, partitions).persist(StorageLevel.MEMORY_AND_DISK)
    inputs = response.ModelInputs.for_features(feature_set)
    empty = response.all_null_columns(train, inputs)
    return train, validation, inputs.without(empty), empty


def _champion_value(
    store: ModelStore, name: str, champion: str | None, measure: Callable[[Any], float]
) -> tuple[float | None, str]:
    """``measure`` of the champion's pipeline (on this run's validation data), or why it
    cannot be measured."""
    if champion is None:
        return None, ""
    try:
        return measure(store.load(name, champion).pipeline), ""
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

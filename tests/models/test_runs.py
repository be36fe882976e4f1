"""The response model end to end on a small generated sample: it learns the planted signal,
round-trips through the model store, scores idempotently, and fails clearly without a model."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.errors import MissingInputError, ModelNotFoundError
from campaignlake.features.runs import SEGMENTATION_MODEL
from campaignlake.models.evaluation import LOGISTIC_BASELINE
from campaignlake.models.registry import ModelStore
from campaignlake.models.runs import TrainingReport, score_customers, train_response_model
from campaignlake.models.tracking import champion_version, registered_name
from campaignlake.tables import Tables

pytestmark = pytest.mark.job

if TYPE_CHECKING:
    from tests.conftest import SampleModels


AS_OF = date(2026, 10, 31)


@pytest.fixture(scope="module")
def trained(sample_models: SampleModels) -> tuple[Conf, Tables, TrainingReport]:
    return sample_models.conf, sample_models.tables, sample_models.training


def test_the_model_learns_the_planted_signal_and_beats_recency(trained) -> None:
    conf, _, report = trained
    gbt = report.validation[conf.response_model.name]
    recency = report.validation[f"{conf.response_model.name}.recency_rule"]
    assert report.split_method == "chronological_by_campaign"
    assert gbt["roc_auc"] > 0.65 and gbt["roc_auc"] > recency["roc_auc"]
    assert gbt["lift_d01"] >= 1.8
    # Affinity to the promoted category drives conversion in the generator.
    assert c.CAMPAIGN_CATEGORY_AFFINITY in list(report.importances)[:10]


def test_metrics_and_metadata_are_recorded(spark: SparkSession, trained) -> None:
    conf, tables, report = trained
    name = conf.response_model.name
    metrics = tables.read("model_metrics").where(f"{c.MODEL_VERSION} = '{report.model_version}'")
    rows = {(r[c.MODEL_NAME], r[c.SPLIT], r[c.METRIC]): r[c.VALUE] for r in metrics.collect()}
    for model in (name, f"{name}.{LOGISTIC_BASELINE}", f"{name}.recency_rule"):
        for metric in ("roc_auc", "pr_auc", "brier", "lift_d01", "cumulative_gain_d10"):
            assert (model, "validation", metric) in rows
    assert rows[(name, "validation", "roc_auc")] == pytest.approx(
        report.validation[name]["roc_auc"]
    )
    assert (name, "model", f"importance.{c.CAMPAIGN_CATEGORY_AFFINITY}") in rows
    metadata = json.loads(Path(report.path, "metadata.json").read_text())
    assert metadata["input_table_versions"]["clickstream_events"] == tables.version(
        "clickstream_events"
    )
    assert c.CAMPAIGN_CATEGORY_AFFINITY in metadata["numeric_features"]
    assert metadata["split"]["validation_campaigns"] == list(report.validation_campaigns)
    assert len(report.validation_campaigns) == 1
    assert report.mlflow_run_id and list(Path(conf.paths.models, "mlruns").iterdir())
    segmentation = {
        r[c.METRIC] for r in tables.read("model_metrics").collect()
        if r[c.MODEL_NAME] == SEGMENTATION_MODEL
    }  # fmt: skip
    assert segmentation == {"chosen_k", "silhouette_k3", "silhouette_k4"}


def test_save_load_score_round_trip_and_rerun_changes_nothing(spark: SparkSession, trained) -> None:
    conf, tables, report = trained
    loaded = ModelStore(spark, conf.paths.models).load(conf.response_model.name)
    assert loaded.version == report.model_version
    first = score_customers(spark, conf, tables, as_of=AS_OF)
    customers = tables.read("customer_features").where(f"{c.AS_OF_DATE} = DATE'{AS_OF}'").count()
    assert first.rows == customers * len(conf.scoring.offers)
    # Probabilities (the uplift model's scores, in [-1, 1], share the table under its name).
    scores = tables.read("propensity_scores").where(F.col(c.MODEL_NAME) == conf.response_model.name)
    assert scores.where(f"{c.SCORE} < 0 OR {c.SCORE} > 1 OR {c.DECILE} NOT BETWEEN 1 AND 10")\
        .isEmpty()  # fmt: skip
    # The fixture scored this date already: this run was a rerun (a rerun of every stage of
    # the date is tests/e2e/test_rerun_on_the_sample.py's).
    assert not first.writes["propensity_scores"].committed


def test_scoring_without_a_model_or_features_fails_clearly(spark: SparkSession, trained) -> None:
    conf, tables, _ = trained
    empty = dataclasses.replace(
        conf, paths=dataclasses.replace(conf.paths, models=conf.paths.models + "-none")
    )
    with pytest.raises(ModelNotFoundError, match="no trained model 'campaign_response'"):
        score_customers(spark, empty, tables, as_of=AS_OF)
    with pytest.raises(MissingInputError, match=r"run build_features --date 2026-01-01"):
        score_customers(spark, conf, tables, as_of=date(2026, 1, 1))


@pytest.fixture
def own_copy(spark: SparkSession, trained, tmp_path: Path) -> tuple[Conf, Tables, TrainingReport]:
    """The trained sample's warehouse and models copied into this test's folder, so that a
    retrain there leaves the shared sample's champion as it is, whatever runs after."""
    conf, _, first = trained
    paths = {}
    for name in ("warehouse", "models", "exports", "reports"):
        source = Path(getattr(conf.paths, name))
        if source.exists():
            shutil.copytree(source, tmp_path / name)
        paths[name] = str(tmp_path / name)
    copied = dataclasses.replace(conf, paths=dataclasses.replace(conf.paths, **paths))
    return copied, Tables(spark, copied), first


def test_the_champion_serves_and_a_worse_retrain_stays_a_challenger(
    spark: SparkSession, own_copy
) -> None:
    conf, tables, first = own_copy
    name = conf.response_model.name
    assert first.promotion is not None and first.promotion.champion is None
    assert champion_version(conf, name) == first.model_version
    # Registered as an MLflow Spark model whose signature is the model's input columns.
    info = mlflow.models.get_model_info(f"models:/{registered_name(conf, name)}@champion")
    inputs = info.signature.inputs.input_names()
    assert {c.CAMPAIGN_CATEGORY_AFFINITY, c.CHANNEL} <= set(inputs)
    assert not {c.CUSTOMER_ID, c.EMAIL, c.LABEL} & set(inputs)
    # Its output is declared too: Unity Catalog's registry refuses a signature without one.
    assert info.signature.outputs.input_names() == ["prediction"]
    assert info.signature.outputs.input_types()[0].name == "double"

    # Trees that may not split (every leaf needs more rows than there are) score everyone the
    # same: ROC AUC 0.5, worse than the champion on the same validation campaigns.
    weak = dataclasses.replace(
        conf,
        response_model=dataclasses.replace(conf.response_model, min_instances_per_node=10**6),
        tracking=dataclasses.replace(conf.tracking, champion_tolerance=0.0),
    )
    second = train_response_model(spark, weak, tables, as_of=AS_OF)
    decision = second.promotion
    assert decision is not None and decision.champion == first.model_version
    # The champion was scored again on this run's split: the same campaigns, the same AUC.
    assert decision.champion_value == pytest.approx(first.validation[name]["roc_auc"])
    assert decision.challenger_value == pytest.approx(0.5) and not decision.promoted
    assert f"{first.model_version} stays champion, {second.model_version} is a challenger" in (
        second.describe()
    )
    assert champion_version(conf, name) == first.model_version
    assert score_customers(spark, conf, tables, as_of=AS_OF).model_version == first.model_version
    # A retrain that is not worse takes over (the rule, tie included, is checked on literal
    # values in tests/models/test_promotion.py).

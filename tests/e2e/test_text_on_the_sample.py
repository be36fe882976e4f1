"""The text job on the generated sample: reviews ingested with contact details masked, topics,
embeddings and sentiment learned, text neighbours that find the category, and cold-start
products recommended from them on the recommender's holdout."""

from __future__ import annotations

import functools
import operator
from datetime import date, datetime, timedelta, timezone
from typing import TYPE_CHECKING

import mlflow
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.feature_set import REVIEW_SENTIMENT_MEAN, topic_affinity
from campaignlake.models.tracking import champion_version, registered_name
from campaignlake.pii import EMAIL_IN_TEXT, PHONE_IN_TEXT
from campaignlake.recommend.evaluation import POPULARITY_BASELINE, WITH_COLD_START

if TYPE_CHECKING:
    from tests.conftest import SampleModels

AS_OF = date(2026, 10, 31)


@pytest.mark.job
def test_reviews_are_ingested_masked_and_their_sentiment_is_learned(
    spark: SparkSession, sample_models: SampleModels
) -> None:
    conf, tables, report = sample_models.conf, sample_models.tables, sample_models.text_training
    reviews = tables.read("reviews")
    # The generator writes e-mail addresses and phone numbers into some reviews.
    assert reviews.where(F.col(c.TEXT).contains("[email]")).count() > 0
    assert reviews.where(F.col(c.TEXT).rlike(EMAIL_IN_TEXT)).isEmpty()
    assert reviews.where(F.col(c.TEXT).rlike(PHONE_IN_TEXT)).isEmpty()
    quarantined = {r[c.REASON] for r in tables.read("reviews_quarantine").collect()}
    assert quarantined == {"invalid_rating", "missing_product_id"}
    # Sentiment on held-out reviews, from the words alone (the ratings are weak labels).
    assert 0.8 < report.sentiment["roc_auc"] <= 1.0
    assert report.sentiment["test_rows"] > 100
    recorded = {
        r[c.METRIC]: r[c.VALUE]
        for r in tables.read("model_metrics")
        .where(F.col(c.MODEL_NAME) == conf.text.sentiment_model_name)
        .collect()
    }
    assert recorded["roc_auc"] == pytest.approx(report.sentiment["roc_auc"])
    scored = tables.read("review_sentiment")
    erased = tables.read("deletion_requests").select(c.CUSTOMER_ID)
    assert scored.join(erased, c.CUSTOMER_ID, "left_semi").isEmpty()
    mean_by_rating = {
        r[c.RATING]: r["mean"]
        for r in scored.groupBy(c.RATING).agg(F.avg(c.SENTIMENT).alias("mean")).collect()
    }
    assert mean_by_rating[5] > mean_by_rating[3] > mean_by_rating[1]
    assert "ROC AUC" in report.describe() and "LDA: k=" in report.describe()
    # Scored by the version the text job applied, each review once.
    assert {r[0] for r in scored.select(c.MODEL_VERSION).distinct().collect()} == {
        sample_models.text.model_version
    }
    assert scored.count() == scored.select(c.REVIEW_ID).distinct().count()
    # The first version is the champion, registered with the classifier MLflow can serve:
    # its signature has the cleaned text in and the prediction out (Unity Catalog needs both).
    assert report.promotion is not None and report.promotion.promoted
    assert champion_version(conf, conf.text.model_name) == report.model_version
    info = mlflow.models.get_model_info(
        f"models:/{registered_name(conf, conf.text.model_name)}@champion"
    )
    assert info.signature.inputs.input_names() == ["clean_text"]
    assert info.signature.outputs.input_names() == ["prediction"]


@pytest.mark.job
def test_topics_and_text_neighbours_find_the_catalogue_structure(
    sample_models: SampleModels,
) -> None:
    conf, tables = sample_models.conf, sample_models.tables
    report = sample_models.text_training
    assert report.topics_k in conf.text.topics_k
    assert set(report.perplexities) == set(conf.text.topics_k)
    topics = tables.read("product_topics")
    products = tables.read("products")
    assert topics.count() == products.count()
    sums = topics.select(F.aggregate(c.TOPIC_DISTRIBUTION, F.lit(0.0), lambda a, x: a + x))
    assert all(abs(r[0] - 1.0) < 1e-6 for r in sums.collect())
    assert topics.where(F.size(c.EMBEDDING) != conf.text.embedding_size).isEmpty()
    # A product's nearest text neighbour is of its own category far more often than chance
    # (one in ten).
    category = products.select(c.PRODUCT_ID, c.CATEGORY)
    nearest = (
        tables.read("similar_products")
        .where((F.col(c.METHOD) == c.CONTENT_METHOD) & (F.col(c.RANK) == 1))
        .join(category, c.PRODUCT_ID)
        .join(
            category.select(
                F.col(c.PRODUCT_ID).alias(c.SIMILAR_PRODUCT_ID),
                F.col(c.CATEGORY).alias("neighbour_category"),
            ),
            c.SIMILAR_PRODUCT_ID,
        )
    )
    same = nearest.agg(F.avg((F.col(c.CATEGORY) == F.col("neighbour_category")).cast("double")))
    assert same.first()[0] > 0.8
    methods = {r[0] for r in tables.read("similar_products").select(c.METHOD).distinct().collect()}
    assert methods == {c.ALS_METHOD, c.CONTENT_METHOD}


@pytest.mark.job
def test_cold_products_are_recommended_from_text_similarity(sample_models: SampleModels) -> None:
    conf, report = sample_models.conf, sample_models.recommender
    name = conf.recommendations.model_name
    served = report.holdout[f"{name}.{WITH_COLD_START}"]  # type: ignore[attr-defined]
    baseline = report.holdout[f"{name}.{POPULARITY_BASELINE}"]  # type: ignore[attr-defined]
    # Products launched in the last two weeks are held out whole: popularity knows nothing of
    # them (it reaches them only by running through a small category's whole list), text
    # similarity to what the customer liked finds them.
    assert served["cold_pairs"] == baseline["cold_pairs"] > 20
    assert served["cold_recall"] > baseline["cold_recall"] + 0.1
    assert f"cold_recall {served['cold_recall']:.4f}" in report.describe()


@pytest.mark.job
def test_customer_features_carry_topic_affinity_and_recent_negative_reviews(
    sample_models: SampleModels,
) -> None:
    conf, tables = sample_models.conf, sample_models.tables
    features = tables.read("customer_features").where(F.col(c.AS_OF_DATE) == AS_OF)
    k = sample_models.text_training.topics_k
    columns = [topic_affinity(t) for t in range(max(conf.text.topics_k))]
    assert set(columns) <= set(features.columns)
    active = features.where(F.col("product_views_90d") > 0)
    total = F.lit(0.0)
    for t in range(k):
        total = total + F.col(topic_affinity(t))
    assert active.where(F.abs(total - 1.0) > 1e-6).isEmpty()
    # Columns beyond the chosen k are null.
    beyond = [F.col(name).isNotNull() for name in columns[k:]]
    assert not beyond or active.where(functools.reduce(operator.or_, beyond)).isEmpty()
    days = conf.text.negative_review_days
    since = datetime.combine(AS_OF + timedelta(days=1), datetime.min.time(), timezone.utc)
    negative = (
        tables.read("reviews")
        .where((F.col(c.RATING) <= 2) & (F.col(c.CREATED_AT) >= since - timedelta(days=days)))
        .join(features.select(c.CUSTOMER_ID), c.CUSTOMER_ID, "left_semi")
        .count()
    )
    assert negative > 0
    assert features.agg(F.sum(f"negative_reviews_{days}d")).first()[0] == negative
    assert features.where(F.col(REVIEW_SENTIMENT_MEAN).isNotNull()).count() > 100

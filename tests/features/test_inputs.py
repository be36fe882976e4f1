"""The feature inputs as of a date: the text tables as the text job left them that day."""

from __future__ import annotations

from datetime import date

from pyspark.sql import SparkSession

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.features.inputs import text_as_of
from campaignlake.schemas import PRODUCT_TOPICS, REVIEW_SENTIMENT
from tests.literals import assert_frames_equal, frame, ts


def _topics(product: str, version: str, day: date, weights: list[float]) -> dict:
    return {
        c.PRODUCT_ID: product,
        c.DOMINANT_TOPIC: weights.index(max(weights)),
        c.TOPIC_DISTRIBUTION: weights,
        c.EMBEDDING: [0.0],
        c.REVIEWS: 0,
        c.MODEL_VERSION: version,
        c.AS_OF_DATE: day,
    }


def _sentiment(review: str, version: str, sentiment: float) -> dict:
    return {
        c.REVIEW_ID: review,
        c.CUSTOMER_ID: "C1",
        c.PRODUCT_ID: "P1",
        c.RATING: 4,
        c.CREATED_AT: ts("2026-10-01 10:00:00"),
        c.SENTIMENT: sentiment,
        c.MODEL_VERSION: version,
        c.AS_OF_DATE: date(2026, 10, 1),
    }


def test_the_text_inputs_of_a_date_are_that_days_topics_and_their_models_sentiment(
    spark: SparkSession,
) -> None:
    # v1 built 30 and 31 October; v2, trained later, built 2 November.
    topics = [
        _topics("P1", "v1", date(2026, 10, 30), [0.9, 0.1]),
        _topics("P1", "v1", date(2026, 10, 31), [0.8, 0.2]),
        _topics("P1", "v2", date(2026, 11, 2), [0.1, 0.7, 0.2]),
    ]
    sentiment = [_sentiment("R1", "v1", 0.8), _sentiment("R1", "v2", 0.6)]
    inputs = {
        catalog.PRODUCT_TOPICS: frame(spark, PRODUCT_TOPICS, topics),
        catalog.REVIEW_SENTIMENT: frame(spark, REVIEW_SENTIMENT, sentiment),
        catalog.PRODUCTS: spark.range(1),
    }
    for as_of, expected_topics, expected_sentiment in (
        (date(2026, 11, 1), topics[1], sentiment[0]),  # the newest day before: v1's
        (date(2026, 11, 2), topics[2], sentiment[1]),
        (date(2026, 12, 1), topics[2], sentiment[1]),
    ):
        narrowed = text_as_of(inputs, as_of)
        assert_frames_equal(
            narrowed[catalog.PRODUCT_TOPICS], frame(spark, PRODUCT_TOPICS, [expected_topics])
        )
        assert_frames_equal(
            narrowed[catalog.REVIEW_SENTIMENT],
            frame(spark, REVIEW_SENTIMENT, [expected_sentiment]),
        )
        assert narrowed[catalog.PRODUCTS] is inputs[catalog.PRODUCTS]
    # Before the first text run: no topics, no sentiment.
    before = text_as_of(inputs, date(2026, 10, 29))
    assert before[catalog.PRODUCT_TOPICS].isEmpty()
    assert before[catalog.REVIEW_SENTIMENT].isEmpty()

"""Customer features on small literal inputs with hand-written expectations: windows,
revenue, and point-in-time correctness."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.feature_set import REVIEW_SENTIMENT_MEAN, cutoff_of, topic_affinity
from campaignlake.features.customer import customer_features
from campaignlake.schemas import (
    CLICKSTREAM_EVENTS,
)
from tests.literals import AS_OF, FS, assert_frames_equal, event, frame, ts


def features_at(
    spark: SparkSession, feature_inputs: dict[str, DataFrame], cutoffs: list
) -> DataFrame:
    keys = spark.createDataFrame(cutoffs, f"{c.CUSTOMER_ID} string, {c.CUTOFF_TS} timestamp")
    return customer_features(keys, feature_set=FS, **feature_inputs)


def test_an_event_on_a_windows_first_instant_is_inside_it_and_line_amounts_are_revenue(
    spark: SparkSession, feature_inputs: dict[str, DataFrame]
) -> None:
    # Cutoff 2026-10-11T00:00: the 7-day window starts at 2026-10-04T00:00 and the 30-day one
    # at 2026-09-11T00:00, both included (date-only timestamps land exactly there).
    boundary = [
        event(
            "B7", "purchase", "2026-10-04T00:00:00", "P1", customer="C2", quantity=3,
            price=Decimal("3.33"),
        ),
        event(
            "B30", "purchase", "2026-09-11T00:00:00", "P2", customer="C2", quantity=1,
            price=Decimal("5.00"),
        ),
        event(
            "OUT", "purchase", "2026-09-10T23:59:59", "P2", customer="C2", quantity=1,
            price=Decimal("7.00"),
        ),
    ]  # fmt: skip
    rows = [
        {**e, c.AMOUNT: Decimal("10.00") if e[c.SESSION_ID] == "B7" else None} for e in boundary
    ]
    feature_inputs = {**feature_inputs, "events": frame(spark, CLICKSTREAM_EVENTS, rows)}
    got = features_at(spark, feature_inputs, [("C2", cutoff_of(AS_OF))]).first()
    assert (got["orders_7d"], got["revenue_7d"]) == (1, Decimal("10.00"))
    assert (got["orders_30d"], got["revenue_30d"]) == (2, Decimal("15.00"))
    assert got["days_since_last_purchase"] == 7


def test_features_count_only_what_happened_before_the_cutoff(
    spark: SparkSession, feature_inputs: dict[str, DataFrame]
) -> None:
    cutoff = cutoff_of(AS_OF)
    features = features_at(spark, feature_inputs, [("C1", cutoff), ("C2", cutoff)])
    expected_columns = [
        c.CUSTOMER_ID, "days_since_last_purchase", "days_since_last_visit", "orders_7d",
        "revenue_7d", "sessions_30d", "product_views_30d", "add_to_carts_30d",
        "cart_abandonments_7d", "cart_abandonments_30d", "email_sends_30d",
        "email_open_rate_30d", "email_click_rate_30d", "campaign_contacts_30d",
        "avg_order_value_30d", "affinity_books", "affinity_toys", "favourite_category",
        "distinct_categories", "device_share_mobile", "traffic_share_email",
        "traffic_share_direct", "tenure_days", c.LOYALTY_TIER, "age_band", "has_phone",
        "deletion_requested", "attr_points", "attr_origin",
    ]  # fmt: skip
    actual = features.select(*expected_columns)
    expected_rows = [
        ("C1", 1, 1, 1, Decimal("20.00"), 2, 2, 2, 0, 1, 1, 1.0, 0.0, 1, 20.0, 0.6, 0.4,
         "books", 2, 0.5, 0.5, 0.5, 1013, "silver", "35-44", False, False, 1200.0, "social"),
        ("C2", None, None, 0, Decimal("0.00"), 0, 0, 0, 0, 0, 0, None, None, 0, None,
         None, None, None, 0, None, None, None, 10, "none", "35-44", True, True, None, None),
    ]  # fmt: skip
    expected = spark.createDataFrame(expected_rows, actual.schema)
    assert_frames_equal(actual, expected)
    interactions = features.where(f"{c.CUSTOMER_ID} = 'C1'").first()["category_interactions"]
    assert interactions == {"books": 3, "toys": 2}


def test_features_of_a_past_date_ignore_everything_that_arrived_later(
    spark: SparkSession, feature_inputs: dict[str, DataFrame]
) -> None:
    cutoff = cutoff_of(AS_OF)
    before = features_at(spark, feature_inputs, [("C1", cutoff)])
    later_event = frame(
        spark,
        CLICKSTREAM_EVENTS,
        [event("S7", "purchase", "2026-10-15T00:00:00", "P1", price=Decimal("50.00"))],
    )
    more = {**feature_inputs, "events": feature_inputs["events"].unionByName(later_event)}
    after = features_at(spark, more, [("C1", cutoff)])
    assert_frames_equal(before, after, ordered=True)


def test_topic_affinity_and_review_features_are_point_in_time(
    spark: SparkSession, feature_inputs: dict[str, DataFrame]
) -> None:
    fs = dataclasses.replace(FS, topics=3, negative_review_days=7)
    # C1 viewed, carted and bought P1 (3 events) and viewed and carted P2 (2 events).
    topics = spark.createDataFrame(
        [("P1", [0.8, 0.2]), ("P2", [0.1, 0.9])],
        f"{c.PRODUCT_ID} string, {c.TOPIC_DISTRIBUTION} array<double>",
    )
    reviews = spark.createDataFrame(
        [
            ("C1", 2, ts("2026-10-08T12:00:00"), 0.1),  # negative, 2.5 days before the cutoff
            ("C1", 5, ts("2026-09-20T12:00:00"), 0.9),
            ("C1", 1, ts("2026-10-12T12:00:00"), 0.0),  # after the cutoff
            ("C1", 1, ts("2026-08-01T12:00:00"), 0.0),  # before the longest window
        ],
        f"{c.CUSTOMER_ID} string, {c.RATING} int, {c.CREATED_AT} timestamp, {c.SENTIMENT} double",
    )
    keys = spark.createDataFrame(
        [("C1", cutoff_of(AS_OF)), ("C2", cutoff_of(AS_OF))],
        f"{c.CUSTOMER_ID} string, {c.CUTOFF_TS} timestamp",
    )
    features = customer_features(
        keys, feature_set=fs, reviews=reviews, product_topics=topics, **feature_inputs
    )
    columns = [
        c.CUSTOMER_ID, topic_affinity(0), topic_affinity(1), topic_affinity(2), "reviews_30d",
        "negative_reviews_7d", REVIEW_SENTIMENT_MEAN,
    ]  # fmt: skip
    actual = features.select(*columns)
    expected = spark.createDataFrame(
        [
            # (3 × 0.8 + 2 × 0.1) / 5; the model has two topics, the third column stays null.
            ("C1", 0.52, 0.48, None, 2, 1, 0.5),
            ("C2", None, None, None, 0, 0, None),
        ],
        actual.schema,
    )
    rounded = actual.select(c.CUSTOMER_ID, *[F.round(n, 9).alias(n) for n in columns[1:]])
    assert_frames_equal(rounded, expected)

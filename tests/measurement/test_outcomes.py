"""What a campaign member did in its window, on literal events."""

from __future__ import annotations

from decimal import Decimal

from pyspark.sql import SparkSession

from campaignlake import columns as c
from campaignlake.measurement.outcomes import WINDOW_START, behaviour_outcomes
from campaignlake.schemas import CLICKSTREAM_EVENTS, PRODUCTS
from tests.literals import assert_frames_equal, event, frame, ts


def test_revenue_is_the_amount_when_the_collector_sends_one_as_in_the_features(
    spark: SparkSession,
) -> None:
    assignments = spark.createDataFrame(
        [
            ("K1", f"T{i}", ts("2026-10-01T09:00:00"), ts("2026-10-08T09:00:00"), None)
            for i in (1, 2, 3)
        ],
        f"{c.CAMPAIGN_ID} string, {c.CUSTOMER_ID} string, {WINDOW_START} timestamp, "
        f"{c.WINDOW_END} timestamp, {c.CAMPAIGN_CATEGORY} string",
    )
    bought = {"quantity": 2, "price": Decimal("10.00")}
    events = [
        # Two at 10.00 with a discount: the line amount is the revenue, not price x quantity.
        {
            **event("s1", "purchase", "2026-10-02T10:00:00", "P1", customer="T1", **bought),
            c.AMOUNT: Decimal("17.50"),
        },
        event("s2", "purchase", "2026-10-02T10:00:00", "P1", customer="T2", **bought),
        event("s3", "purchase", "2026-10-02T10:00:00", "P1", customer="T3"),  # no price
    ]
    outcomes = behaviour_outcomes(
        assignments,
        frame(spark, CLICKSTREAM_EVENTS, events),
        frame(spark, PRODUCTS, [{c.PRODUCT_ID: "P1", c.CATEGORY: "fashion"}]),
        category_only=False,
    ).select(c.CUSTOMER_ID, c.CONVERTED, c.REVENUE)
    expected = spark.createDataFrame(
        [("T1", 1, 17.5), ("T2", 1, 20.0), ("T3", 1, 0.0)],
        outcomes.schema,
    )
    assert_frames_equal(outcomes.orderBy(c.CUSTOMER_ID), expected)

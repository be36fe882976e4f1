"""Interaction strengths (weighted, decayed, before the cutoff) and stable, dense indices."""

from __future__ import annotations

from datetime import date, datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.recommend.interactions import extend_index, interactions
from campaignlake.schemas import CLICKSTREAM_EVENTS
from tests.literals import assert_frames_equal, frame, ts

CUTOFF = datetime(2026, 10, 11, tzinfo=timezone.utc)


def test_interaction_strength_is_weighted_decayed_and_before_the_cutoff(
    spark: SparkSession,
) -> None:
    def ev(kind: str, at: str, product: str = "P1", customer: str | None = "C1") -> dict:
        return {c.EVENT_ID: f"{kind}{at}{product}", c.EVENT_TYPE: kind, c.EVENT_TS: ts(at),
                c.CUSTOMER_ID: customer, c.PRODUCT_ID: product}  # fmt: skip

    events = frame(
        spark,
        CLICKSTREAM_EVENTS,
        [
            ev("product_view", "2026-10-11T00:00:00"),  # the cutoff itself: excluded
            ev("product_view", "2026-10-10T00:00:00"),  # 1 day old: 1 * 0.5 ** (1/10)
            ev("purchase", "2026-10-01T00:00:00"),  # 10 days old: 5 * 0.5
            ev("search", "2026-10-09T00:00:00"),  # no weight: ignored
            ev("product_view", "2026-06-01T00:00:00"),  # before the history window
            ev("add_to_cart", "2026-10-10T00:00:00", "P2"),
            ev("add_to_cart", "2026-10-10T00:00:00", customer=None),  # anonymous
        ],
    )
    actual = interactions(
        events,
        cutoff=CUTOFF,
        start=ts("2026-09-01T00:00:00"),
        event_weights={"product_view": 1.0, "add_to_cart": 3.0, "purchase": 5.0},
        half_life_days=10,
        exclude_event_types=["purchase"],
    ).select(c.CUSTOMER_ID, c.PRODUCT_ID, F.round(c.STRENGTH, 6).alias(c.STRENGTH), c.EVENTS,
             c.EXCLUDED)  # fmt: skip
    expected = spark.createDataFrame(
        [
            ("C1", "P1", round(0.5**0.1 + 2.5, 6), 2, True),
            ("C1", "P2", round(3 * 0.5**0.1, 6), 1, False),
        ],
        actual.schema,
    )
    assert_frames_equal(actual, expected)


def test_index_mapping_is_stable_and_dense_across_runs(spark: SparkSession) -> None:
    schema = f"{c.CUSTOMER_ID} string, {c.CUSTOMER_INDEX} int, {c.FIRST_SEEN} date"
    empty = spark.createDataFrame([], schema)
    ids = spark.createDataFrame([("C3",), ("C1",), ("C2",), ("C1",)], f"{c.CUSTOMER_ID} string")
    first = extend_index(
        empty, ids, id_column=c.CUSTOMER_ID, index_column=c.CUSTOMER_INDEX, seen=date(2026, 10, 1)
    )
    assert sorted((r[0], r[1]) for r in first.collect()) == [("C1", 0), ("C2", 1), ("C3", 2)]
    later = spark.createDataFrame([("C0",), ("C2",), ("C9",)], f"{c.CUSTOMER_ID} string")
    second = extend_index(
        first, later, id_column=c.CUSTOMER_ID, index_column=c.CUSTOMER_INDEX, seen=date(2026, 10, 2)
    )
    # Known ids keep their index; new ones continue after the maximum, in id order.
    assert sorted((r[0], r[1]) for r in second.collect()) == [("C0", 3), ("C9", 4)]

"""The chronological holdouts: train on each customer's past, test on their new interest only."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf, HoldoutConf
from campaignlake.recommend.evaluation import holdout_split
from campaignlake.recommend.metrics import RELEVANT
from campaignlake.schemas import CLICKSTREAM_EVENTS
from tests.literals import frame, ts

CUTOFF = datetime(2026, 10, 11, tzinfo=timezone.utc)


def ev(customer: str, kind: str, at: str, product: str) -> dict:
    return {c.EVENT_ID: f"{customer}{kind}{at}{product}", c.EVENT_TYPE: kind,
            c.EVENT_TS: ts(at), c.CUSTOMER_ID: customer, c.PRODUCT_ID: product}  # fmt: skip


def test_the_last_days_split_trains_on_the_past_and_tests_on_new_interest_only(
    spark: SparkSession, conf: Conf
) -> None:
    events = frame(
        spark,
        CLICKSTREAM_EVENTS,
        [
            ev("C1", "purchase", "2026-09-20T00:00:00", "P1"),
            ev("C1", "product_view", "2026-09-25T00:00:00", "P2"),
            ev("C1", "product_view", "2026-10-05T00:00:00", "P1"),  # test period, but bought
            ev("C1", "add_to_cart", "2026-10-06T00:00:00", "P3"),  # test period: relevant
            ev("C1", "product_view", "2026-10-06T00:00:00", "P2"),  # seen before, still relevant
            ev("C2", "product_view", "2026-10-07T00:00:00", "P3"),  # unknown to training
            ev("C1", "purchase", "2026-10-12T00:00:00", "P4"),  # after the cutoff
        ],
    )
    recs = dataclasses.replace(
        conf.recommendations, holdout=HoldoutConf(split="last_days", days=10)
    )
    split = holdout_split(events, recs, CUTOFF)
    assert sorted((r[c.CUSTOMER_ID], r[c.PRODUCT_ID]) for r in split.train_rows.collect()) == [
        ("C1", "P1"),
        ("C1", "P2"),
    ]
    assert {r[c.CUSTOMER_ID]: sorted(r[RELEVANT]) for r in split.relevant.collect()} == {
        "C1": ["P2", "P3"]
    }
    assert split.description == "2026-10-01 to 2026-10-11"


def test_the_per_customer_split_evaluates_customers_active_at_different_times(
    spark: SparkSession, conf: Conf
) -> None:
    # E is active in August only, L in October only: one date would evaluate L alone.
    early = [ev("E", "product_view", f"2026-08-0{d}T10:00:00", f"P{d}") for d in range(1, 6)]
    late = [ev("L", "product_view", f"2026-10-0{d}T10:00:00", f"Q{d}") for d in range(1, 6)]
    few = [ev("F", "product_view", f"2026-09-0{d}T10:00:00", "P1") for d in range(1, 4)]
    bought = [
        ev("B", "purchase", "2026-09-01T10:00:00", "P9"),
        ev("B", "product_view", "2026-09-02T10:00:00", "P8"),
        ev("B", "product_view", "2026-09-03T10:00:00", "P7"),
        ev("B", "product_view", "2026-09-04T10:00:00", "P9"),  # held out, but bought before
        ev("B", "add_to_cart", "2026-09-04T10:00:00", "P6"),  # the same instant: held out too
    ]
    events = frame(spark, CLICKSTREAM_EVENTS, early + late + few + bought)
    recs = dataclasses.replace(
        conf.recommendations, holdout=HoldoutConf(split="per_customer", fraction=0.2, min_events=5)
    )
    split = holdout_split(events, recs, CUTOFF)

    assert {r[c.CUSTOMER_ID]: sorted(r[RELEVANT]) for r in split.relevant.collect()} == {
        "E": ["P5"],  # the last of 5 events (20%)
        "L": ["Q5"],
        "B": ["P6"],  # P9 was bought before the cut; P6 shares the cut's instant
    }
    trained = {(r[c.CUSTOMER_ID], r[c.PRODUCT_ID]) for r in split.train_rows.collect()}
    assert ("F", "P1") in trained  # fewer than min_events: trains, is not evaluated
    assert ("E", "P4") in trained and ("L", "Q4") in trained
    # No leakage: no held-out interaction is in the customer's training rows, and every
    # training interaction is older than every held-out event of its customer.
    held_out = {(r[c.CUSTOMER_ID], r[c.PRODUCT_ID]) for r in
                split.relevant.select(c.CUSTOMER_ID, F.explode(RELEVANT).alias(c.PRODUCT_ID))
                .collect()}  # fmt: skip
    assert held_out and not held_out & trained
    last_trained = {
        r[c.CUSTOMER_ID]: r["last"]
        for r in split.train_rows.groupBy(c.CUSTOMER_ID)
        .agg(F.max(c.LAST_EVENT_TS).alias("last"))
        .collect()
    }
    assert last_trained["E"] < ts("2026-08-05T10:00:00").replace(tzinfo=None)
    assert last_trained["B"] < ts("2026-09-04T10:00:00").replace(tzinfo=None)
    # Each customer's strengths decay from their own cut: E's day-4 view is one day old.
    strength = {(r[c.CUSTOMER_ID], r[c.PRODUCT_ID]): r[c.STRENGTH]
                for r in split.train_rows.collect()}  # fmt: skip
    assert strength[("E", "P4")] == strength[("L", "Q4")] == 0.5 ** (1 / 30)
    assert split.description == (
        "each customer's last 20% of interactions (customers with 5+ events)"
    )

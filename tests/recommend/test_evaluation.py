"""The chronological holdout: train on the past, test on new interest only."""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.recommend.evaluation import held_out_items
from campaignlake.recommend.interactions import recent_interactions
from campaignlake.recommend.metrics import RELEVANT
from campaignlake.schemas import CLICKSTREAM_EVENTS
from tests.literals import frame, ts

CUTOFF = datetime(2026, 10, 11, tzinfo=timezone.utc)


def test_holdout_split_trains_on_the_past_and_tests_on_new_interest_only(
    spark: SparkSession, conf: Conf
) -> None:
    def ev(customer: str, kind: str, at: str, product: str) -> dict:
        return {c.EVENT_ID: f"{customer}{kind}{at}{product}", c.EVENT_TYPE: kind,
                c.EVENT_TS: ts(at), c.CUSTOMER_ID: customer, c.PRODUCT_ID: product}  # fmt: skip

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
    recs = conf.recommendations
    split_at = ts("2026-10-01T00:00:00")
    train_rows = recent_interactions(events, recs, split_at)
    assert sorted((r[c.CUSTOMER_ID], r[c.PRODUCT_ID]) for r in train_rows.collect()) == [
        ("C1", "P1"),
        ("C1", "P2"),
    ]
    excluded = train_rows.where(F.col(c.EXCLUDED)).select(c.CUSTOMER_ID, c.PRODUCT_ID)
    relevant = held_out_items(events, train_rows, excluded, recs, split_at, CUTOFF)
    assert {r[c.CUSTOMER_ID]: sorted(r[RELEVANT]) for r in relevant.collect()} == {
        "C1": ["P2", "P3"]
    }

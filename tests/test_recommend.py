"""Recommendations: interaction strengths, stable indices, ranking metrics against hand-computed
values, complete lists with fallbacks and exclusions, and the jobs on generated data."""

from __future__ import annotations

import math
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import TYPE_CHECKING

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.recommend import als
from campaignlake.recommend.interactions import extend_index, interactions
from campaignlake.recommend.metrics import RECOMMENDED, RELEVANT, ranking_metrics
from campaignlake.recommend.runs import (
    POPULARITY_BASELINE,
    held_out_items,
    recent_interactions,
    recommend,
)
from campaignlake.schemas import CLICKSTREAM_EVENTS, PRODUCTS

if TYPE_CHECKING:
    from conftest import SampleModels

CUTOFF = datetime(2026, 10, 11, tzinfo=timezone.utc)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def rows_frame(spark: SparkSession, schema, rows: list[dict]) -> DataFrame:
    return spark.createDataFrame(
        [tuple(r.get(n) for n in schema.fieldNames()) for r in rows], schema
    )


def test_interaction_strength_is_weighted_decayed_and_before_the_cutoff(
    spark: SparkSession,
) -> None:
    def ev(kind: str, at: str, product: str = "P1", customer: str | None = "C1") -> dict:
        return {c.EVENT_ID: f"{kind}{at}{product}", c.EVENT_TYPE: kind, c.EVENT_TS: ts(at),
                c.CUSTOMER_ID: customer, c.PRODUCT_ID: product}  # fmt: skip

    events = rows_frame(
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
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_holdout_split_trains_on_the_past_and_tests_on_new_interest_only(
    spark: SparkSession, conf: Conf
) -> None:
    def ev(customer: str, kind: str, at: str, product: str) -> dict:
        return {c.EVENT_ID: f"{customer}{kind}{at}{product}", c.EVENT_TYPE: kind,
                c.EVENT_TS: ts(at), c.CUSTOMER_ID: customer, c.PRODUCT_ID: product}  # fmt: skip

    events = rows_frame(
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


def test_ranking_metrics_match_hand_computed_values_and_the_identity_case(
    spark: SparkSession,
) -> None:
    schema = f"{c.CUSTOMER_ID} string, {RECOMMENDED} array<string>"
    recommended = spark.createDataFrame(
        [("A", ["x", "p", "y", "q"]), ("B", ["r", "s", "t", "u"])], schema
    )
    relevant = spark.createDataFrame(
        [("A", ["p", "q", "z"]), ("B", ["s"]), ("C", ["w"])],
        f"{c.CUSTOMER_ID} string, {RELEVANT} array<string>",
    )
    m = ranking_metrics(recommended, relevant, 4)
    # A: hits at ranks 2 and 4 of 3 relevant; B: a hit at rank 2 of 1; C: no list at all.
    ndcg_a = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    ndcg_b = (1 / math.log2(3)) / 1
    assert m["precision_at_4"] == pytest.approx((2 / 4 + 1 / 4 + 0) / 3)
    assert m["recall_at_4"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    assert m["ndcg_at_4"] == pytest.approx((ndcg_a + ndcg_b + 0) / 3)
    assert m["map_at_4"] == pytest.approx(((1 / 2 + 2 / 4) / 3 + (1 / 2) / 1 + 0) / 3)
    assert m["evaluated_customers"] == 3
    perfect = ranking_metrics(
        spark.createDataFrame([("A", ["p", "q", "z"]), ("B", ["s"])], schema), relevant.limit(2), 3
    )
    assert perfect["precision_at_3"] == pytest.approx((1 + 1 / 3) / 2)
    assert perfect["ndcg_at_3"] == pytest.approx(1.0) and perfect["map_at_3"] == pytest.approx(1.0)


def test_lists_are_complete_distinct_active_and_never_hold_excluded_products(
    spark: SparkSession,
) -> None:
    catalog = rows_frame(
        spark,
        PRODUCTS,
        [
            {
                c.PRODUCT_ID: f"P{i}",
                c.CATEGORY: "books" if i <= 3 else "toys",
                c.PRICE: Decimal(1),
                c.ACTIVE: i != 2,
            }
            for i in range(1, 7)
        ],
    )
    strengths = spark.createDataFrame(
        [
            ("C1", "P1", 9.0, True),
            ("C2", "P1", 5.0, False),
            ("C2", "P4", 4.0, False),
            ("C3", "P5", 1.0, False),
            ("C1", "P2", 8.0, False),
        ],
        f"{c.CUSTOMER_ID} string, {c.PRODUCT_ID} string, {c.STRENGTH} double, {c.EXCLUDED} boolean",
    )
    popular = als.popularity(strengths, catalog)
    assert [r[c.PRODUCT_ID] for r in popular.orderBy("__position").collect()] == [
        "P1", "P4", "P5", "P3", "P6",
    ]  # fmt: skip
    als_candidates = spark.createDataFrame(
        [("C2", "P6", 0.9, 1), ("C2", "P2", 0.8, 2), ("C2", "P3", 0.7, 3)],
        f"{c.CUSTOMER_ID} string, {c.PRODUCT_ID} string, {c.SCORE} double, __position int",
    )
    customers = spark.createDataFrame([("C1",), ("C2",), ("C9",)], f"{c.CUSTOMER_ID} string")
    excluded = strengths.where(F.col(c.EXCLUDED)).select(c.CUSTOMER_ID, c.PRODUCT_ID)
    lists = als.complete_lists(
        customers,
        als=als_candidates,
        popular=popular,
        favourites=als.favourite_categories(strengths, catalog),
        excluded=excluded,
        k=3,
        depth=4,
    )
    got = {(r[c.CUSTOMER_ID], r[c.RANK]): (r[c.PRODUCT_ID], r[c.SOURCE]) for r in lists.collect()}
    assert got == {
        # C1 bought P1 (excluded) and favours books (P2 is inactive): P3, then overall.
        ("C1", 1): ("P3", "popular_in_category"),
        ("C1", 2): ("P4", "popular"),
        ("C1", 3): ("P5", "popular"),
        # C2 is known to ALS: its active candidates first (P2 is inactive), then books.
        ("C2", 1): ("P6", "als"),
        ("C2", 2): ("P3", "als"),
        ("C2", 3): ("P1", "popular_in_category"),
        # C9 is new: overall popular products.
        ("C9", 1): ("P1", "popular"),
        ("C9", 2): ("P4", "popular"),
        ("C9", 3): ("P5", "popular"),
    }


@pytest.mark.slow
def test_recommender_beats_popularity_and_every_customer_gets_k_products(
    spark: SparkSession, sample_models: SampleModels
) -> None:
    conf, tables, report = sample_models.conf, sample_models.tables, sample_models.recommender
    as_of = date(2026, 10, 31)
    name = conf.recommendations.model_name
    als_ndcg = report.holdout[name]["ndcg_at_10"]
    assert als_ndcg > report.holdout[f"{name}.{POPULARITY_BASELINE}"]["ndcg_at_10"]
    index_before = {r[0]: r[1] for r in tables.read("customer_index").collect()}
    versions = {k: tables.version(k) for k in ("recommendations", "similar_products",
                                               "interactions", "customer_index")}  # fmt: skip

    # The fixture recommended for this date already: this run is a rerun and changes nothing.
    result = recommend(spark, conf, tables, as_of=as_of)
    assert {k: tables.version(k) for k in versions} == versions
    recs = tables.read("recommendations")
    per_customer = recs.groupBy(c.CUSTOMER_ID).agg(
        F.count(F.lit(1)).alias("n"), F.count_distinct(c.PRODUCT_ID).alias("distinct")
    )
    erased = tables.read("deletion_requests").select(c.CUSTOMER_ID)
    customers = (
        tables.read("customers").select(c.CUSTOMER_ID).join(erased, c.CUSTOMER_ID, "left_anti")
    )
    assert per_customer.where("n != 10 OR distinct != 10").isEmpty()
    assert customers.join(per_customer, c.CUSTOMER_ID, "left_anti").isEmpty()
    assert erased.count() > 0 and recs.join(erased, c.CUSTOMER_ID, "left_semi").isEmpty()
    inactive = tables.read("products").where(~F.col(c.ACTIVE)).select(c.PRODUCT_ID)
    assert recs.join(inactive, c.PRODUCT_ID, "left_semi").isEmpty()
    bought = tables.read("interactions").where(F.col(c.EXCLUDED))
    assert recs.join(bought, [c.CUSTOMER_ID, c.PRODUCT_ID], "left_semi").isEmpty()
    assert result.by_source.get("als", 0) > 0
    similar = tables.read("similar_products")
    assert similar.where(f"{c.RANK} > {conf.recommendations.similar_products}").isEmpty()
    assert similar.where(f"{c.PRODUCT_ID} = {c.SIMILAR_PRODUCT_ID}").isEmpty()
    assert {r[0]: r[1] for r in tables.read("customer_index").collect()} == index_before

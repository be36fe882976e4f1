"""RFM scores and named segments, and the behavioural segmentation, on literal features."""

from __future__ import annotations

from decimal import Decimal

from pyspark.sql import SparkSession

from campaignlake import columns as c
from campaignlake.config import SegmentsConf
from campaignlake.feature_set import FeatureSet
from campaignlake.features.segments import (
    assign_behaviour_segments,
    fit_behaviour_segments,
    rfm_segments,
)
from tests.literals import FS, assert_frames_equal


def test_rfm_scores_and_named_segments(spark: SparkSession) -> None:
    schema = (
        f"{c.CUSTOMER_ID} string, days_since_last_purchase int, orders_30d long, "
        "revenue_30d decimal(16,2)"
    )
    features = spark.createDataFrame(
        [
            ("B1", 1, 5, Decimal(500)),
            ("B2", 2, 1, Decimal(100)),
            ("B3", 3, 3, Decimal(300)),
            ("B4", 4, 4, Decimal(400)),
            ("B5", 5, 2, Decimal(200)),
            ("N1", None, 0, Decimal(0)),
        ],
        schema,
    )
    actual = rfm_segments(features, FS)
    expected = spark.createDataFrame(
        [
            ("B1", 5, 5, 5, "champions"),
            ("B2", 4, 1, 1, "new_customers"),
            ("B3", 3, 3, 3, "loyal"),
            ("B4", 2, 4, 4, "at_risk"),
            ("B5", 1, 2, 2, "hibernating"),
            ("N1", None, None, None, "prospect"),
        ],
        actual.schema,
    )
    assert_frames_equal(actual, expected)


#: The behaviour inputs of a one-window (7 days), one-category (books) feature set.
BEHAVIOUR_FS = FeatureSet(windows=(7,), top_categories=("books",), devices=(), mediums=())


def behaviour_segments(
    spark: SparkSession, rows: list[tuple], k_min: int, k_max: int
) -> tuple[int, set[int], dict[str, int]]:
    """Fit on ``rows`` (customer, five 7-day counts, days since last visit, books affinity):
    the chosen k, the k values with a silhouette, and each customer's segment."""
    counts = ["sessions", "product_views", "searches", "add_to_carts", "orders"]
    columns = [f"{n}_7d" for n in counts] + ["days_since_last_visit", "affinity_books"]
    schema = f"{c.CUSTOMER_ID} string, " + ", ".join(
        f"{n} {'double' if n.startswith('affinity') else 'long'}" for n in columns
    )
    features = spark.createDataFrame(rows, schema)
    conf = SegmentsConf(kmeans_k_min=k_min, kmeans_k_max=k_max, kmeans_max_iter=20, seed=1)
    segmentation = fit_behaviour_segments(features, BEHAVIOUR_FS, conf)
    assigned = {
        r[c.CUSTOMER_ID]: r[c.BEHAVIOUR_SEGMENT]
        for r in assign_behaviour_segments(features, BEHAVIOUR_FS, segmentation).collect()
    }
    return segmentation.k, set(segmentation.silhouettes), assigned


def test_behaviour_segments_separate_active_from_dormant_customers(spark: SparkSession) -> None:
    rows = [(f"A{i}", *[20 + i % 3] * 5, 1, 0.9) for i in range(12)]
    rows += [(f"D{i}", *[0] * 5, 29 - i % 2, 0.1) for i in range(12)]
    k, with_silhouette, assigned = behaviour_segments(spark, rows, k_min=2, k_max=3)
    assert k == 2 and with_silhouette == {2, 3}
    active = {assigned[f"A{i}"] for i in range(12)}
    dormant = {assigned[f"D{i}"] for i in range(12)}
    assert len(active) == 1 and len(dormant) == 1 and active != dormant


def test_fewer_behaviours_than_the_minimum_k_get_one_segment_each(spark: SparkSession) -> None:
    # A development extract: two behaviours, each shared by three customers.
    rows = [(f"A{i}", *[20] * 5, 1, 0.9) for i in range(3)]
    rows += [(f"D{i}", *[0] * 5, 29, 0.1) for i in range(3)]
    k, with_silhouette, assigned = behaviour_segments(spark, rows, k_min=3, k_max=6)
    assert k == 2 and with_silhouette == {2}
    assert len({assigned[f"A{i}"] for i in range(3)} | {assigned[f"D{i}"] for i in range(3)}) == 2
    assert assigned["A0"] != assigned["D0"]

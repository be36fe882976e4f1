"""Ranking metrics against hand-computed values and the identity case."""

from __future__ import annotations

import math

import pytest
from pyspark.sql import SparkSession

from campaignlake import columns as c
from campaignlake.recommend.metrics import RECOMMENDED, RELEVANT, ranking_metrics


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

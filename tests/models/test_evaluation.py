"""Binary metrics against hand-computed values, and deciles (ties split evenly, per group)."""

from __future__ import annotations

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.models.evaluation import binary_metrics, with_deciles


def test_binary_metrics_match_hand_computed_values(spark: SparkSession) -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    labels = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    df = spark.createDataFrame(list(zip(labels, scores, strict=True)), "label int, score double")
    m = binary_metrics(df)
    # Positives at .9, .8 and .6 outrank 7, 7 and 6 of the 7 negatives.
    assert m["roc_auc"] == pytest.approx(20 / 21)
    assert m["brier"] == pytest.approx(1.2525 / 10)
    assert m["positive_rate"] == pytest.approx(0.3)
    # One row per decile: the top row is a positive, so lift = 1 / 0.3.
    assert m["lift_d01"] == pytest.approx(1 / 0.3)
    assert m["lift_d03"] == 0.0
    assert [round(m[f"cumulative_gain_d{d:02d}"], 4) for d in (1, 2, 3, 4, 10)] == [
        0.3333,
        0.6667,
        0.6667,
        1.0,
        1.0,
    ]
    perfect = binary_metrics(df.withColumn("score", F.col("label").cast("double")))
    assert perfect["roc_auc"] == pytest.approx(1.0) and perfect["brier"] == 0.0


def test_tied_scores_are_split_evenly_across_deciles(spark: SparkSession) -> None:
    # A constant score ranks no one: every decile's lift is exactly 1, not 0 in nine of them.
    labels = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0] * 3
    constant = spark.createDataFrame([(y, 0.5) for y in labels], "label int, score double")
    m = binary_metrics(constant)
    assert [m[f"lift_d{d:02d}"] for d in range(1, 11)] == [pytest.approx(1.0)] * 10
    # Hand-computed: 10 rows at 0.9 (5 positives) fill deciles 1-5 with 2 rows and 1 positive
    # each (rate 0.5, lift 0.5 / 0.3); 10 rows at 0.1 (1 positive) fill deciles 6-10 with 0.2
    # positives each (rate 0.1, lift 1/3).
    two = [(1, 0.9)] * 5 + [(0, 0.9)] * 5 + [(1, 0.1)] + [(0, 0.1)] * 9
    m = binary_metrics(spark.createDataFrame(two, "label int, score double"))
    assert m["lift_d01"] == pytest.approx(0.5 / 0.3) and m["lift_d05"] == pytest.approx(0.5 / 0.3)
    assert m["lift_d06"] == pytest.approx(1 / 3) and m["lift_d10"] == pytest.approx(1 / 3)
    assert m["cumulative_gain_d05"] == pytest.approx(5 / 6)
    assert m["brier"] == pytest.approx((5 * 0.01 + 5 * 0.81 + 0.81 + 9 * 0.01) / 20)


def test_deciles_rank_the_highest_scores_first_within_each_group(spark: SparkSession) -> None:
    rows = [("a", float(i)) for i in range(1, 21)] + [("b", float(-i)) for i in range(1, 11)]
    scored = spark.createDataFrame(rows, "grp string, score double")
    deciles = {
        (r["grp"], r["score"]): r[c.DECILE] for r in with_deciles(scored, by=("grp",)).collect()
    }
    assert deciles[("a", 20.0)] == 1 and deciles[("a", 19.0)] == 1
    assert deciles[("a", 18.0)] == 2 and deciles[("a", 1.0)] == 10
    assert deciles[("b", -1.0)] == 1 and deciles[("b", -10.0)] == 10

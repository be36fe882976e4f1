"""The uplift model's label, weights and metrics on literal rows."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf, GbtGridConf
from campaignlake.errors import TrainingDataError
from campaignlake.models import response, uplift

OUTCOMES = (
    f"{c.CAMPAIGN_ID} string, {c.CHANNEL} string, {c.CUSTOMER_ID} string, {c.GROUP} string, "
    f"window_start timestamp, {c.CAMPAIGN_CATEGORY} string, {c.CONVERTED} int"
)


def decile(d: int, n_t: int, y_t: int, n_c: int, y_c: int) -> dict:
    return {c.DECILE: d, "n_t": n_t, "y_t": y_t, "n_c": n_c, "y_c": y_c}


def test_the_label_is_the_transformed_class_and_campaigns_need_both_groups(
    spark: SparkSession,
) -> None:
    sent = datetime(2026, 10, 1, 9)
    rows = [
        ("CMP-1", "email", "A", c.TREATMENT, sent, "fashion", 1),
        ("CMP-1", "email", "B", c.TREATMENT, sent, "fashion", 0),
        ("CMP-1", "email", "C", c.CONTROL, sent, "fashion", 1),
        ("CMP-1", "email", "D", c.CONTROL, sent, "fashion", 0),
        ("CMP-2", "sms", "A", c.TREATMENT, sent, "toys", 1),  # no control group
    ]
    examples = uplift.uplift_examples(spark.createDataFrame(rows, OUTCOMES))
    got = {
        r[c.CUSTOMER_ID]: (r[c.LABEL], r[c.CAMPAIGN_CATEGORY], r[c.CUTOFF_TS])
        for r in examples.collect()
    }
    assert got == {
        "A": (1, "fashion", sent),
        "B": (0, "fashion", sent),
        "C": (0, "fashion", sent),
        "D": (1, "fashion", sent),
    }
    assert uplift.group_counts(examples) == (2, 2)
    # 3 treated and 1 held out: each group weighs half of the 4 rows.
    uneven = uplift.with_group_weights(examples.where(F.col(c.CUSTOMER_ID) != "D"), 2, 1)
    totals = dict(uneven.groupBy(c.GROUP).agg(F.sum(c.WEIGHT)).collect())
    assert totals == {c.TREATMENT: pytest.approx(1.5), c.CONTROL: pytest.approx(1.5)}
    with pytest.raises(TrainingDataError, match="0 held-out customers"):
        uplift.with_group_weights(examples, 4, 0)


def test_qini_of_a_perfect_a_useless_and_a_reversed_ranking() -> None:
    # Ten deciles of 10 treated and 10 held-out customers each; the message persuades the
    # customers of the first two deciles (8 of 10 buy when treated, 2 when held out); the
    # rest buy at 2 in 10 either way.
    persuadable = [decile(d, 10, 8, 10, 2) for d in (1, 2)]
    unmoved = [decile(d, 10, 2, 10, 2) for d in range(3, 11)]
    perfect = uplift.uplift_metrics(persuadable + unmoved)
    assert perfect["uplift_d01"] == pytest.approx(0.6) and perfect["uplift_d05"] == 0.0
    assert perfect["observed_uplift"] == pytest.approx(12 / 100)
    # Qini curve: 0, 6, 12, 12, … 12 against the random line 1.2 k; trapezoids of width 0.1
    # over the gaps 0, 4.8, 8.4, 8.4 − 1.2 (k − 2)…, divided by the 100 treated.
    gaps = [0.0, 4.8] + [12 - 1.2 * k for k in range(2, 11)]
    area = sum((gaps[k] + gaps[k + 1]) / 2 * 0.1 for k in range(10))
    assert perfect["qini"] == pytest.approx(area / 100)
    flat = uplift.uplift_metrics([decile(d, 10, 3, 10, 2) for d in range(1, 11)])
    assert flat["qini"] == pytest.approx(0.0, abs=1e-12)
    reversed_ = uplift.uplift_metrics(unmoved[::-1] + persuadable)
    assert reversed_["qini"] == pytest.approx(-perfect["qini"])


def test_uplift_cannot_be_measured_without_a_control_group() -> None:
    with pytest.raises(TrainingDataError, match="0 held-out customers"):
        uplift.uplift_metrics([decile(d, 10, 1, 0, 0) for d in range(1, 11)])


@pytest.mark.job
def test_on_a_known_heterogeneous_effect_the_uplift_model_beats_the_response_model(
    spark: SparkSession, conf: Conf
) -> None:
    # 16,000 audience members (70% treated), two features and a known effect: recent buyers
    # buy anyway (55%, and the message puts off those without affinity), the others are
    # persuaded in proportion to their affinity. A response model trained on the treated
    # ranks the recent buyers first; the uplift model must rank the persuadable first.
    rows = (
        spark.range(16_000, numPartitions=2)
        .withColumn("affinity", F.rand(1))
        .withColumn("recent", (F.rand(2) < 0.3).cast("double"))
        .withColumn(c.GROUP, F.when(F.rand(3) < 0.7, c.TREATMENT).otherwise(c.CONTROL))
    )
    base = 0.05 + 0.5 * F.col("recent")
    effect = F.when(F.col("recent") == 1, F.when(F.col("affinity") < 0.3, -0.25).otherwise(0.0))
    treated = base + effect.otherwise(0.4 * F.col("affinity"))
    probability = F.when(F.col(c.GROUP) == c.TREATMENT, treated).otherwise(base)
    outcomes = rows.select(
        F.when(F.col("id") < 12_000, "CMP-TRAIN").otherwise("CMP-VALID").alias(c.CAMPAIGN_ID),
        F.lit("email").alias(c.CHANNEL),
        F.col("id").cast("string").alias(c.CUSTOMER_ID),
        c.GROUP,
        F.lit(datetime(2026, 10, 1)).alias("window_start"),
        F.lit("fashion").alias(c.CAMPAIGN_CATEGORY),
        (F.rand(4) < probability).cast("int").alias(c.CONVERTED),
        "affinity",
        "recent",
    )
    examples = outcomes.join(
        uplift.uplift_examples(outcomes).select(c.CAMPAIGN_ID, c.CUSTOMER_ID, c.LABEL),
        [c.CAMPAIGN_ID, c.CUSTOMER_ID],
    ).cache()
    train = examples.where(F.col(c.CAMPAIGN_ID) == "CMP-TRAIN")
    validation = examples.where(F.col(c.CAMPAIGN_ID) == "CMP-VALID")
    inputs = response.ModelInputs(numeric=("affinity", "recent"), categorical=(c.CHANNEL,))
    model_conf = dataclasses.replace(
        conf.response_model, grid=GbtGridConf(max_depth=[3], max_iter=[30], step_size=[0.2])
    )
    weighted = uplift.with_group_weights(train, *uplift.group_counts(train))
    uplift_model = response.fit_gbt(weighted, inputs, model_conf, weight_column=c.WEIGHT).model
    contacted = train.where(F.col(c.GROUP) == c.TREATMENT).select(
        *train.columns[:-1], F.col(c.CONVERTED).alias(c.LABEL), F.lit(1.0).alias(c.WEIGHT)
    )
    response_model = response.fit_gbt(contacted, inputs, model_conf, weight_column=None).model
    keep = [c.GROUP, c.CONVERTED]
    qini = {
        name: uplift.uplift_metrics(uplift.decile_outcomes(scored))["qini"]
        for name, scored in {
            "uplift": uplift.uplift_score(uplift_model, validation, keep=keep),
            "response": response.score(response_model, validation, keep=keep),
            "random": uplift.random_ranking(validation, keep=keep, seed=1),
        }.items()
    }
    assert qini["uplift"] > qini["response"] + 0.02, qini
    assert qini["uplift"] > qini["random"] + 0.02, qini

"""The uplift model: who buys *because of* a message, learnt from past campaigns' holdouts.

Class transformation (Jaskowski & Jaroszewicz 2012, with Athey & Imbens' weighting for
unequal groups): the label is ``z = 1`` for a contacted customer who converted and for a
held-out customer who did not. With both groups weighted to the same total, the predicted
uplift is ``2·P(z = 1) − 1``: the difference between converting when contacted and when not.
One GBT learns it with the response model's preparation and search, on features as of the
send time, so the model scores every customer the way the response model does.

Outcomes come from behaviour (:mod:`campaignlake.measurement.outcomes`), the same for both
groups. The model is judged on uplift, not on ``z``: the **Qini curve** ranks the validation
customers by score and, for the top share φ, counts the incremental conversions
``q(φ) = Y_T(φ) − Y_C(φ) · N_T(φ) / N_C(φ)`` (treated conversions minus the control's,
scaled to the treated count); a random ranking gives the straight line ``φ · q(1)``. The
**Qini coefficient** is the area between the two (trapezoids over deciles) divided by the
number of treated customers: 0 for a random ranking, higher is better, comparable between
rankers on the same validation customers. **Uplift by decile** is the treated minus the
control conversion rate in each decile of the score.
"""

from __future__ import annotations

from typing import Any

from pyspark.ml import PipelineModel
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.errors import TrainingDataError
from campaignlake.measurement.outcomes import WINDOW_START
from campaignlake.models.evaluation import with_deciles

RESPONSE_RANKER = "response_model"
RANDOM_RANKER = "random"


def uplift_examples(outcomes: DataFrame) -> DataFrame:
    """Training rows from the audience members of past campaigns with both groups.

    Parameters
    ----------
    outcomes
        :func:`~campaignlake.measurement.outcomes.behaviour_outcomes` rows.

    Returns
    -------
    DataFrame
        ``customer_id``, ``cutoff_ts`` (the window's start: features see nothing from it on),
        ``campaign_id``, ``channel``, ``campaign_category``, ``group``, ``converted`` and
        ``label`` (the transformed class ``z``).
    """
    both = (
        outcomes.groupBy(c.CAMPAIGN_ID)
        .agg(F.count_distinct(c.GROUP).alias("__groups"))
        .where(F.col("__groups") == 2)
        .select(c.CAMPAIGN_ID)
    )
    treated = F.col(c.GROUP) == F.lit(c.TREATMENT)
    return outcomes.join(both, c.CAMPAIGN_ID, "left_semi").select(
        c.CUSTOMER_ID,
        F.col(WINDOW_START).alias(c.CUTOFF_TS),
        c.CAMPAIGN_ID,
        c.CHANNEL,
        c.CAMPAIGN_CATEGORY,
        c.GROUP,
        c.CONVERTED,
        F.when(treated, F.col(c.CONVERTED)).otherwise(1 - F.col(c.CONVERTED)).alias(c.LABEL),
    )


def group_counts(examples: DataFrame) -> tuple[int, int]:
    """(treated, held out) rows."""
    row = examples.agg(
        F.count_if(F.col(c.GROUP) == c.TREATMENT).alias("t"),
        F.count_if(F.col(c.GROUP) == c.CONTROL).alias("k"),
    ).first()
    return int(row["t"]), int(row["k"])  # type: ignore[index]


def with_group_weights(examples: DataFrame, treated: int, held_out: int) -> DataFrame:
    """``weight``: each group weighs half of the rows, so ``2·P(z = 1) − 1`` is the uplift
    whatever the control fraction."""
    if treated == 0 or held_out == 0:
        raise TrainingDataError(
            f"the training campaigns hold {treated} treated and {held_out} held-out customers; "
            "an uplift model needs campaigns with control groups (group = control in the "
            "campaign history, or audiences built with a control_fraction)"
        )
    total = treated + held_out
    return examples.withColumn(
        c.WEIGHT,
        F.when(F.col(c.GROUP) == c.TREATMENT, F.lit(total / (2 * treated))).otherwise(
            F.lit(total / (2 * held_out))
        ),
    )


def uplift_score(model: PipelineModel, rows: DataFrame, *, keep: list[str]) -> DataFrame:
    """``keep`` columns and ``score``: the predicted uplift, ``2·P(z = 1) − 1`` (−1 … 1)."""
    probability = vector_to_array(F.col("probability")).getItem(1)
    return model.transform(rows).select(*keep, (2 * probability - 1).alias(c.SCORE))


def random_ranking(rows: DataFrame, *, keep: list[str], seed: int) -> DataFrame:
    """A ranking that knows nothing: a seeded hash of (campaign, customer)."""
    bucket = F.xxhash64(F.col(c.CAMPAIGN_ID), F.col(c.CUSTOMER_ID), F.lit(seed))
    return rows.select(*keep, (bucket.cast("double") / 2.0**63).alias(c.SCORE))


def decile_outcomes(scored: DataFrame) -> list[dict[str, Any]]:
    """Per decile of ``score`` (1 = highest): treated and held-out rows and conversions.
    Ten rows, collected."""
    deciled = with_deciles(scored)
    treated = F.col(c.GROUP) == c.TREATMENT
    rows = (
        deciled.groupBy(c.DECILE)
        .agg(
            F.count_if(treated).alias("n_t"),
            F.sum(F.when(treated, F.col(c.CONVERTED)).otherwise(0)).alias("y_t"),
            F.count_if(~treated).alias("n_c"),
            F.sum(F.when(~treated, F.col(c.CONVERTED)).otherwise(0)).alias("y_c"),
        )
        .collect()
    )
    by_decile = {int(r[c.DECILE]): r.asDict() for r in rows}
    empty = {"n_t": 0, "y_t": 0, "n_c": 0, "y_c": 0}
    return [{c.DECILE: d, **by_decile.get(d, empty)} for d in range(1, 11)]


def uplift_metrics(deciles: list[dict[str, Any]]) -> dict[str, float]:
    """``qini`` (the Qini coefficient), ``uplift_dNN`` (treated − held-out conversion rate
    per decile, NaN where a group is empty), ``rows``, ``treated``, ``held_out`` and
    ``observed_uplift`` (the whole validation's difference of rates), from
    :func:`decile_outcomes`."""
    n_t = sum(d["n_t"] for d in deciles)
    n_c = sum(d["n_c"] for d in deciles)
    if n_t == 0 or n_c == 0:
        raise TrainingDataError(
            f"the validation campaign holds {n_t} treated and {n_c} held-out customers; "
            "uplift cannot be measured without both"
        )
    metrics: dict[str, float] = {"rows": float(n_t + n_c), "treated": float(n_t)}
    metrics["held_out"] = float(n_c)
    curve = [0.0]
    cum = {"n_t": 0, "y_t": 0, "n_c": 0, "y_c": 0}
    for d in deciles:
        for k in cum:
            cum[k] += d[k]
        scaled = cum["y_c"] * cum["n_t"] / cum["n_c"] if cum["n_c"] else 0.0
        curve.append(cum["y_t"] - scaled)
        rate_t = d["y_t"] / d["n_t"] if d["n_t"] else float("nan")
        rate_c = d["y_c"] / d["n_c"] if d["n_c"] else float("nan")
        metrics[f"uplift_d{d[c.DECILE]:02d}"] = rate_t - rate_c
    total = curve[-1]
    gaps = [q - total * k / 10 for k, q in enumerate(curve)]
    area = sum((gaps[k] + gaps[k + 1]) / 2 * 0.1 for k in range(10))
    metrics["qini"] = area / n_t
    metrics["observed_uplift"] = cum["y_t"] / n_t - cum["y_c"] / n_c
    return metrics

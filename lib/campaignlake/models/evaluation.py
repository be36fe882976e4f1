"""Scores → deciles and the metrics marketers read: ROC AUC, PR AUC, Brier score, lift and
cumulative gains per decile.

Decile 1 holds the highest scores. Cut points come from one ``percentile_approx``
aggregation, so deciling never sorts all rows in one partition; tied scores share a decile,
which is why deciles can be uneven when many scores are equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.schemas import MODEL_METRICS

DECILE_CUTS = [i / 10 for i in range(1, 10)]
_CUTS = "__cuts"


def with_deciles(scored: DataFrame, *, score: str = c.SCORE, by: tuple[str, ...] = ()) -> DataFrame:
    """``scored`` with ``decile`` (1 = top 10% of ``score``), within each group of ``by``."""
    cuts = scored.groupBy(*by).agg(
        F.percentile_approx(F.col(score), DECILE_CUTS, 10_000).alias(_CUTS)
    )
    joined = (
        scored.join(F.broadcast(cuts), on=list(by), how="left")
        if by
        else scored.crossJoin(F.broadcast(cuts))
    )
    return joined.withColumn(c.DECILE, decile_of(F.col(score), F.col(_CUTS))).drop(_CUTS)


def decile_of(score: Column, cuts: Column) -> Column:
    """10 minus the number of decile cut points below the score."""
    above = F.lit(0)
    for i in range(len(DECILE_CUTS)):
        above = above + (score > cuts.getItem(i)).cast("int")
    return (F.lit(10) - above).cast("int")


def binary_metrics(predictions: DataFrame, *, score: str = c.SCORE) -> dict[str, float]:
    """Metrics of ``score`` (a probability or any ranking score) against ``label`` (0/1).

    Returns
    -------
    dict
        ``roc_auc``, ``pr_auc``, ``brier`` (only meaningful for probabilities), ``rows``,
        ``positive_rate``, and per decile d (01–10): ``lift_dNN`` (response rate in the decile
        over the overall rate), ``cumulative_gain_dNN`` (share of all positives in deciles 1..d)
        and ``cumulative_fpr_dNN`` (share of all negatives in deciles 1..d: the ROC curve at
        decile resolution).
    """
    scored = predictions.select(
        F.col(c.LABEL).cast("double").alias(c.LABEL), F.col(score).cast("double").alias(c.SCORE)
    )
    metrics: dict[str, float] = {}
    for name, metric in (("roc_auc", "areaUnderROC"), ("pr_auc", "areaUnderPR")):
        evaluator = BinaryClassificationEvaluator(
            rawPredictionCol=c.SCORE, labelCol=c.LABEL, metricName=metric
        )
        metrics[name] = float(evaluator.evaluate(scored))
    per_decile = (
        with_deciles(scored)
        .groupBy(c.DECILE)
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.sum(c.LABEL).alias("positives"),
            F.sum((F.col(c.SCORE) - F.col(c.LABEL)) ** 2).alias("squared_error"),
        )
        .collect()  # ten rows at most
    )
    table = {int(r[c.DECILE]): r for r in per_decile}
    rows = sum(r["rows"] for r in per_decile)
    positives = sum(r["positives"] for r in per_decile)
    negatives = rows - positives
    metrics["rows"] = float(rows)
    metrics["positive_rate"] = positives / rows if rows else float("nan")
    metrics["brier"] = sum(r["squared_error"] for r in per_decile) / rows if rows else float("nan")
    cumulative_pos = cumulative_neg = 0.0
    for d in range(1, 11):
        row = table.get(d)
        n, p = (row["rows"], row["positives"]) if row else (0, 0.0)
        cumulative_pos += p
        cumulative_neg += n - p
        rate = p / n if n else 0.0
        base = metrics["positive_rate"]
        metrics[f"lift_d{d:02d}"] = rate / base if base else float("nan")
        metrics[f"cumulative_gain_d{d:02d}"] = cumulative_pos / positives if positives else 0.0
        metrics[f"cumulative_fpr_d{d:02d}"] = cumulative_neg / negatives if negatives else 0.0
    return metrics


def metrics_rows(
    spark: SparkSession,
    model_version: str,
    created_at: datetime,
    rows: Iterable[tuple[str, str, str, float]],
) -> DataFrame:
    """``(model_name, split, metric, value)`` tuples of one model version as rows of
    ``gold/model_metrics``."""
    return spark.createDataFrame(
        [(name, model_version, split, metric, float(value), created_at)
         for name, split, metric, value in rows],
        MODEL_METRICS,
    )  # fmt: skip

"""Scores → deciles and the metrics marketers read: ROC AUC, PR AUC, Brier score, lift and
cumulative gains per decile.

Decile 1 holds the highest scores. For scoring, cut points come from one
``percentile_approx`` aggregation, so deciling never sorts all rows in one partition; tied
scores share a decile, which is why deciles can be uneven when many scores are equal.

The evaluation metrics per decile split ties instead: rows that share a score occupy a range
of ranks, and each decile gets the share of that group's rows (and, in expectation, of its
positives) that falls inside its tenth of the ranks. A model that gives everyone the same score
has a lift of exactly 1 in every decile, not 0 in nine of them.
"""

from __future__ import annotations

from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from campaignlake import columns as c

DECILE_CUTS = [i / 10 for i in range(1, 10)]
_CUTS = "__cuts"

#: Names in ``gold/model_metrics``: the baselines the response model is compared with (as
#: ``<model>.<baseline>``) and the splits (``validation``, ``train``; ``model`` for params and
#: importances).
LOGISTIC_BASELINE = "logistic_baseline"
RECENCY_RULE = "recency_rule"
XGBOOST = "xgboost"
VALIDATION = "validation"
TRAIN = "train"
MODEL = "model"


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
    per_decile = decile_totals(scored).collect()  # ten rows
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


_PART = "__part"


def decile_totals(scored: DataFrame, *, parts: int = 8) -> DataFrame:
    """Per decile (1 = highest scores): ``rows``, ``positives`` and ``squared_error`` of
    ``scored`` (``score``, ``label``), with tied scores split across the deciles their ranks
    span (see the module docstring).

    Rows are grouped by score, the groups range-partitioned by score, and each group's rank
    range is its partition's offset (from one small per-partition total) plus a running sum
    within the partition: no step sorts all rows in one partition.
    """
    groups = (
        scored.groupBy(c.SCORE)
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.sum(c.LABEL).alias("p"),
            F.sum((F.col(c.SCORE) - F.col(c.LABEL)) ** 2).alias("sq"),
        )
        .repartitionByRange(parts, F.col(c.SCORE))
        .withColumn(_PART, F.spark_partition_id())
    )
    totals = groups.groupBy(_PART).agg(F.sum("n").alias("n"), F.max(c.SCORE).alias("top"))
    # Partitions hold score ranges: the one with the highest scores comes first.
    ordered = sorted(totals.collect(), key=lambda r: r["top"], reverse=True)  # `parts` rows
    offsets, seen = [], 0
    for row in ordered:
        offsets.append((row[_PART], seen))
        seen += row["n"]
    total = float(seen)
    offset_frame = scored.sparkSession.createDataFrame(offsets, f"{_PART} int, offset long")
    running = F.sum("n").over(
        Window.partitionBy(_PART)
        .orderBy(F.desc(c.SCORE))
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    ranked = (
        groups.join(F.broadcast(offset_frame), on=_PART, how="inner")
        .withColumn("end", F.col("offset") + running)
        .withColumn("start", F.col("end") - F.col("n"))
    )
    per_decile = []
    for d in range(1, 11):
        low, high = (d - 1) * total / 10, d * total / 10
        overlap = F.greatest(
            F.lit(0.0), F.least(F.col("end"), F.lit(high)) - F.greatest(F.col("start"), F.lit(low))
        )
        share = overlap / F.col("n")
        per_decile.append(
            F.struct(
                F.lit(d).alias(c.DECILE),
                F.sum(overlap).alias("rows"),
                F.sum(F.col("p") * share).alias("positives"),
                F.sum(F.col("sq") * share).alias("squared_error"),
            )
        )
    return ranked.agg(F.array(*per_decile).alias("__d")).select(F.inline("__d"))

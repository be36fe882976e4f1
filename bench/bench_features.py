"""Benchmark: the feature build at scale, and MLlib GBT against LightGBM on the same rows.

Not a test. Generates and ingests (once, cached under bench/out/ by ``bench/prepare.py``) a
landing set of --customers customers, then in one Spark session:

* times ``build_features`` for the last day (features, RFM and KMeans segments, writes);
* builds the response model's training examples, prepares them with the model's own
  preparation stages, and trains on the same training rows: MLlib's GBTClassifier as the
  response model trains it (``response_model``'s first grid point, unweighted), the logistic
  baseline (standardised, class-weighted), LightGBM with the same depth, trees, learning rate,
  leaf size and bagging, and LightGBM with its defaults (what a user would try first); all
  are evaluated on the same chronological validation split: ROC AUC and fit time.

Prints Markdown rows for BENCHMARKS.md and writes bench/out/features.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import time
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
from prepare import END, prepared
from pyspark import StorageLevel
from pyspark.ml import Pipeline
from pyspark.ml.classification import LogisticRegression
from pyspark.ml.feature import StandardScaler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.features.runs import build_features
from campaignlake.frames import fit_layout
from campaignlake.models import response
from campaignlake.models.evaluation import binary_metrics
from campaignlake.models.runs import training_examples
from campaignlake.models.training import class_counts, split_examples, with_class_weights


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC as the Mann–Whitney statistic (ties count half)."""
    order = scores.argsort()
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    positives = labels == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sessions-per-week", type=float, default=0.3)
    args = parser.parse_args()

    spark, conf, tables = prepared(args.customers, args.sessions_per_week)
    now = datetime.now(timezone.utc)
    events = tables.read(catalog.CLICKSTREAM_EVENTS).count()

    # A fresh build: a rerun over unchanged inputs would compare and commit nothing.
    for key in ("customer_features", "customer_segments", "model_metrics"):
        shutil.rmtree(tables.path(key), ignore_errors=True)
    started = time.perf_counter()
    report = build_features(spark, conf, tables, as_of=END, now=now)
    feature_seconds = time.perf_counter() - started
    print(report.describe())

    model_conf = conf.response_model
    examples, feature_set = training_examples(spark, conf, tables, END)
    examples = examples.persist(StorageLevel.MEMORY_AND_DISK)
    split = split_examples(
        examples, attribution_days=model_conf.attribution_days,
        validation_fraction=model_conf.validation_fraction, seed=model_conf.seed,
    )  # fmt: skip
    negatives, positives = class_counts(split.train)
    inputs = response.ModelInputs.for_features(feature_set)
    train = with_class_weights(split.train, negatives, positives)
    inputs = inputs.without(response.all_null_columns(train, inputs))
    preparation = Pipeline(stages=response.preparation(inputs)).fit(train)
    cores = spark.sparkContext.defaultParallelism
    # The layout train_response_model gives its examples.
    keys, parts = [c.CAMPAIGN_ID, c.CUSTOMER_ID], model_conf.fit_partitions
    train_rows = (
        preparation.transform(fit_layout(train, keys, parts))
        .select(response.FEATURES, c.LABEL, c.WEIGHT).persist(StorageLevel.MEMORY_AND_DISK)
    )  # fmt: skip
    validation_rows = (
        preparation.transform(fit_layout(split.validation, keys, parts))
        .select(response.FEATURES, c.LABEL).persist(StorageLevel.MEMORY_AND_DISK)
    )  # fmt: skip
    n_train, n_validation = train_rows.count(), validation_rows.count()
    grid = model_conf.grid
    depth, iterations, step = grid.max_depth[0], grid.max_iter[0], grid.step_size[0]

    started = time.perf_counter()
    gbt = response.gbt_search(model_conf, weight_column=None).getEstimator()
    gbt = gbt.copy({gbt.maxDepth: depth, gbt.maxIter: iterations, gbt.stepSize: step})
    gbt_model = gbt.fit(train_rows)
    gbt_seconds = time.perf_counter() - started

    def validation_auc(model) -> float:
        scored = model.transform(validation_rows).select(
            c.LABEL, vector_to_array(F.col(response.PROBABILITY)).getItem(1).alias(c.SCORE)
        )
        return binary_metrics(scored)["roc_auc"]

    gbt_auc = validation_auc(gbt_model)
    baseline = Pipeline(stages=[
        StandardScaler(inputCol=response.FEATURES, outputCol=response.SCALED, withMean=True,
                       withStd=True),
        LogisticRegression(featuresCol=response.SCALED, labelCol=c.LABEL, weightCol=c.WEIGHT,
                           regParam=0.01),
    ]).fit(train_rows)  # fmt: skip
    baseline_auc = validation_auc(baseline)

    import lightgbm

    def to_numpy(df):  # bench only: a few hundred thousand rows at most
        pdf = df.select(vector_to_array(F.col(response.FEATURES)).alias("x"), c.LABEL).toPandas()
        return np.stack(pdf["x"].to_numpy()), pdf[c.LABEL].to_numpy()

    x_train, y_train = to_numpy(train_rows)
    x_val, y_val = to_numpy(validation_rows)

    def lightgbm_fit(params: dict, rounds: int) -> tuple[float, float]:
        started = time.perf_counter()
        booster = lightgbm.train(
            {"objective": "binary", "seed": 1, "num_threads": cores, "verbose": -1, **params},
            lightgbm.Dataset(x_train, label=y_train),
            num_boost_round=rounds,
        )
        return time.perf_counter() - started, auc(y_val, booster.predict(x_val))

    lgbm_seconds, lgbm_auc = lightgbm_fit(
        {
            "max_depth": depth, "num_leaves": 2**depth, "learning_rate": step,
            "min_data_in_leaf": model_conf.min_instances_per_node,
            "bagging_fraction": model_conf.subsampling_rate, "bagging_freq": 1,
        },
        iterations,
    )  # fmt: skip
    _, default_auc = lightgbm_fit({}, 100)
    Path("bench/out").mkdir(parents=True, exist_ok=True)
    Path("bench/out/features.json").write_text(json.dumps({
        "feature_build_s": feature_seconds, "train_rows": n_train, "validation_rows": n_validation,
        "settings": {"max_depth": depth, "trees": iterations, "step": step},
        "gbt": {"roc_auc": gbt_auc, "fit_s": gbt_seconds},
        "logistic_baseline": {"roc_auc": baseline_auc},
        "lightgbm_same_settings": {"roc_auc": lgbm_auc, "fit_s": lgbm_seconds},
        "lightgbm_defaults": {"roc_auc": default_auc},
    }, indent=2) + "\n")  # fmt: skip

    machine = f"{platform.machine()}, {cores} cores, Spark {spark.version}"
    print("\n| date | machine | customers | events | feature build |")
    print(
        f"| {date.today()} | {machine} | {report.customers:,} | {events:,} | "
        f"{feature_seconds:.1f}s |"
    )
    print(
        "\n| date | train / validation rows | features | settings | MLlib GBT | logistic "
        "baseline | LightGBM, same settings | LightGBM defaults | GBT − LightGBM (same) | "
        "fit time ratio |"
    )
    print(
        f"| {date.today()} | {n_train:,} / {n_validation:,} | {len(x_train[0])} | depth "
        f"{depth}, {iterations} trees, step {step} | {gbt_seconds:.1f}s, AUC {gbt_auc:.4f} | "
        f"AUC {baseline_auc:.4f} | {lgbm_seconds:.2f}s, AUC {lgbm_auc:.4f} | AUC "
        f"{default_auc:.4f} | {gbt_auc - lgbm_auc:+.4f} | {gbt_seconds / lgbm_seconds:.0f}× |"
    )


if __name__ == "__main__":
    main()

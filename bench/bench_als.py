"""Benchmark: Spark MLlib ALS against the ``implicit`` library on the same interactions.

Not a test. Generates and ingests (once, cached under bench/out/) a landing set with
``bench/prepare.py``. In one process, on the same
chronological split as ``train_recommender`` (the last ``holdout_days`` before the date test):

* MLlib ALS: fit on the training interactions, then ``recommendForAllUsers(k)``;
* implicit's CPU ALS with the same rank, regularisation, alpha and iterations;

both models' candidates go through the same exclusions and fallbacks and are scored with the
same NDCG@k. Prints a Markdown row for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import time
from datetime import date, timedelta

import numpy as np
from prepare import END, prepared
from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.feature_set import cutoff_of
from campaignlake.recommend import als
from campaignlake.recommend.evaluation import candidate_depth, evaluate_lists, held_out_items
from campaignlake.recommend.interactions import extend_index, indexed, recent_interactions
from campaignlake.tables import Tables


def indices(tables: Tables, rows: DataFrame) -> tuple[DataFrame, DataFrame]:
    """The customer and product indices of ``rows`` (the stored ones, extended in memory)."""
    result = []
    for key, id_column, index_column in (
        (catalog.CUSTOMER_INDEX, c.CUSTOMER_ID, c.CUSTOMER_INDEX),
        (catalog.PRODUCT_INDEX, c.PRODUCT_ID, c.PRODUCT_INDEX),
    ):
        stored = tables.read_or_empty(key)
        new = extend_index(stored, rows, id_column=id_column, index_column=index_column, seen=END)
        result.append(stored.unionByName(new))
    return result[0], result[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--sessions-per-week", type=float, default=0.3)
    args = parser.parse_args()
    spark, conf, tables = prepared(args.customers, args.sessions_per_week)
    recs = conf.recommendations
    cutoff = cutoff_of(END)
    split_at = cutoff - timedelta(days=recs.holdout_days)
    events = tables.read(catalog.CLICKSTREAM_EVENTS)
    products = tables.read(catalog.PRODUCTS)
    train_rows = recent_interactions(events, recs, split_at).persist(StorageLevel.MEMORY_AND_DISK)
    customers_idx, products_idx = indices(tables, recent_interactions(events, recs, cutoff))
    train = indexed(train_rows, customers_idx, products_idx).persist(StorageLevel.MEMORY_AND_DISK)
    n_interactions = train.count()
    excluded = train_rows.where(F.col(c.EXCLUDED)).select(c.CUSTOMER_ID, c.PRODUCT_ID)
    relevant = held_out_items(events, train, excluded, recs, split_at, cutoff).persist()
    evaluated = relevant.select(c.CUSTOMER_ID)
    popular = als.popularity(train_rows, products).persist()
    catalog_size = popular.count()
    depth = candidate_depth(excluded, recs.k)
    common = {"popular": popular, "favourites": als.favourite_categories(train_rows, products),
              "excluded": excluded, "k": recs.k, "depth": depth}  # fmt: skip
    reg, alpha = 0.1, 20.0
    params = als.AlsParams(args.rank, reg, alpha, args.iterations, recs.block_size, 1)

    started = time.perf_counter()
    model = als.fit_als(train, params)
    model.userFactors.count()
    fit_seconds = time.perf_counter() - started
    started = time.perf_counter()
    model.recommendForAllUsers(recs.k).write.format("noop").mode("overwrite").save()
    recommend_seconds = time.perf_counter() - started
    spark_candidates = als.als_candidates(
        model, evaluated.join(customers_idx, c.CUSTOMER_ID), products_idx, depth
    )
    spark_metrics = evaluate_lists(
        als.complete_lists(evaluated, als=spark_candidates, **common), relevant, recs.k,
        catalog_size,
    )  # fmt: skip

    import implicit
    from scipy.sparse import csr_matrix
    from threadpoolctl import threadpool_limits

    # implicit runs its own threads; a BLAS thread pool on top of them only contends.
    threadpool_limits(1, "blas")

    pdf = train.select(c.CUSTOMER_INDEX, c.PRODUCT_INDEX, c.STRENGTH).toPandas()  # bench only
    shape = (int(pdf[c.CUSTOMER_INDEX].max()) + 1, int(pdf[c.PRODUCT_INDEX].max()) + 1)
    user_items = csr_matrix(
        (pdf[c.STRENGTH].to_numpy(), (pdf[c.CUSTOMER_INDEX], pdf[c.PRODUCT_INDEX])), shape=shape
    )
    cpu = implicit.cpu.als.AlternatingLeastSquares(
        factors=args.rank, regularization=reg, alpha=alpha, iterations=args.iterations,
        random_state=1, num_threads=spark.sparkContext.defaultParallelism,
    )  # fmt: skip
    started = time.perf_counter()
    cpu.fit(user_items, show_progress=False)
    implicit_fit = time.perf_counter() - started
    users = evaluated.join(customers_idx, c.CUSTOMER_ID).select(c.CUSTOMER_ID, c.CUSTOMER_INDEX)
    users_pdf = users.toPandas()
    users_pdf = users_pdf[users_pdf[c.CUSTOMER_INDEX] < shape[0]]
    ids = users_pdf[c.CUSTOMER_INDEX].to_numpy()
    started = time.perf_counter()
    items, scores = cpu.recommend(ids, user_items[ids], N=depth, filter_already_liked_items=False)
    implicit_recommend = time.perf_counter() - started
    positions = np.tile(np.arange(1, depth + 1), len(ids))
    rows = list(zip(np.repeat(users_pdf[c.CUSTOMER_ID].to_numpy(), depth).tolist(),
                    items.ravel().tolist(), scores.ravel().astype(float).tolist(),
                    positions.tolist(), strict=True))  # fmt: skip
    candidates = spark.createDataFrame(
        rows, f"{c.CUSTOMER_ID} string, {c.PRODUCT_INDEX} int, {c.SCORE} double, __position int"
    ).join(products_idx.select(c.PRODUCT_ID, c.PRODUCT_INDEX), c.PRODUCT_INDEX)
    implicit_metrics = evaluate_lists(
        als.complete_lists(evaluated, als=candidates.drop(c.PRODUCT_INDEX), **common),
        relevant, recs.k, catalog_size,
    )  # fmt: skip
    plain = {**common, "favourites": None}
    baseline = evaluate_lists(als.complete_lists(evaluated, als=None, **plain), relevant,
                              recs.k, catalog_size)  # fmt: skip
    k = recs.k
    machine = f"{platform.machine()}, {spark.sparkContext.defaultParallelism} cores"
    print(
        "\n| date | machine | training interactions | evaluated customers | MLlib ALS fit | "
        f"recommendForAllUsers({k}) | implicit fit | MLlib NDCG@{k} | implicit NDCG@{k} | "
        f"popularity NDCG@{k} | fit time ratio (MLlib / implicit) |"
    )
    print(
        f"| {date.today()} | {machine} | {n_interactions:,} | "
        f"{int(spark_metrics['evaluated_customers']):,} | {fit_seconds:.1f}s | "
        f"{recommend_seconds:.1f}s | {implicit_fit:.1f}s (+{implicit_recommend:.1f}s recommend) | "
        f"{spark_metrics[f'ndcg_at_{k}']:.4f} | {implicit_metrics[f'ndcg_at_{k}']:.4f} | "
        f"{baseline[f'ndcg_at_{k}']:.4f} | {fit_seconds / implicit_fit:.1f}× |"
    )


if __name__ == "__main__":
    main()

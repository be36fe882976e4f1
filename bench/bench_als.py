"""Benchmark: Spark MLlib ALS against the ``implicit`` library, and similar products at scale.

Not a test. In one process (local mode), on two interaction sets:

* the **bench set**: generated and ingested once by ``bench/prepare.py`` (100,000 customers,
  2,000 products, 90 days), read from its Delta tables;
* a **long catalogue**: generated here in Spark (``--long-products`` products whose popularity
  is log-uniform, so a few are popular and most are rarely touched; customers with a taste
  for one of 100 product groups, active for a few weeks each at different times over the
  year, with a long-tailed number of events);

each split per customer as ``train_recommender`` splits them (``recommendations.holdout``),
it fits MLlib ALS (``fit_als``, the configured blocks) and implicit's CPU ALS with the same
rank, regularisation, alpha and iterations, sends both models' candidates through the same
exclusions and fallbacks, and scores them and the popularity baseline with the same NDCG@k.
It times the fit, the candidates of the evaluated customers and ``similar_products`` on the
model's items. Then it times ``similar_products`` on ``--similar-products`` random factors of
rank ``--rank`` (top 20) and checks its recall against numpy's exact answer for 200 products.

Prints Markdown rows for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import time
from datetime import date

import numpy as np
from prepare import END, prepared
from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import RecommendationsConf
from campaignlake.feature_set import cutoff_of
from campaignlake.recommend import als
from campaignlake.recommend.evaluation import candidate_depth, evaluate_lists, holdout_split
from campaignlake.recommend.interactions import extend_index, indexed

SIMILAR_N = 20


def timed(action: object) -> tuple[object, float]:
    started = time.perf_counter()
    result = action()  # type: ignore[operator]
    return result, time.perf_counter() - started


def index_of(spark: SparkSession, rows: DataFrame, id_column: str, index_column: str) -> DataFrame:
    empty = spark.createDataFrame([], f"{id_column} string, {index_column} int")
    return extend_index(
        empty, rows, id_column=id_column, index_column=index_column, seen=END
    ).persist(StorageLevel.MEMORY_AND_DISK)


def long_catalogue(
    spark: SparkSession, customers: int, products: int
) -> tuple[DataFrame, DataFrame]:
    """Clickstream events and a catalogue with a long tail, customers active at different
    times (see the module docstring). Deterministic for a given partitioning."""
    groups = 100
    end = cutoff_of(END)
    people = spark.range(customers, numPartitions=8).select(
        F.concat(F.lit("LC"), F.col("id")).alias(c.CUSTOMER_ID),
        (F.rand(1) * 330).alias("__start"),  # days before the end their activity starts
        (F.lit(2) + F.floor(-F.log(F.rand(2)) * 8)).cast("int").alias("__events"),
        F.floor(F.rand(3) * groups).cast("long").alias("__taste"),
    )
    u, v, w = F.rand(4), F.rand(5), F.rand(6)
    in_group = F.floor(F.exp(u * math.log(products // groups))) - 1
    anywhere = F.floor(F.exp(u * math.log(products))) - 1
    product = F.when(v < 0.7, F.col("__taste") + groups * in_group).otherwise(anywhere)
    days_back = F.col("__start") - F.rand(7) * F.least(F.col("__start"), F.lit(30.0))
    events = (
        people.select("*", F.explode(F.sequence(F.lit(1), F.col("__events"))).alias("__n"))
        .select(
            F.concat_ws("-", c.CUSTOMER_ID, "__n").alias(c.EVENT_ID),
            F.when(w < 0.8, "product_view")
            .when(w < 0.95, "add_to_cart")
            .otherwise("purchase")
            .alias(c.EVENT_TYPE),
            (F.lit(end) - F.make_dt_interval(secs=days_back * 86400)).alias(c.EVENT_TS),
            c.CUSTOMER_ID,
            F.concat(F.lit("LP"), product.cast("long")).alias(c.PRODUCT_ID),
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    catalogue = spark.range(products).select(
        F.concat(F.lit("LP"), F.col("id")).alias(c.PRODUCT_ID),
        F.concat(F.lit("group"), F.col("id") % groups).alias(c.CATEGORY),
        F.lit(True).alias(c.ACTIVE),
    )
    return events, catalogue


def compare(
    spark: SparkSession,
    name: str,
    events: DataFrame,
    products: DataFrame,
    recs: RecommendationsConf,
    args: argparse.Namespace,
) -> str:
    """One Markdown row: MLlib ALS, implicit and popularity on ``events``' per-customer split."""
    cutoff = cutoff_of(END)
    split = holdout_split(events, recs, cutoff)
    train_rows = split.train_rows.persist(StorageLevel.MEMORY_AND_DISK)
    customers_idx = index_of(spark, train_rows, c.CUSTOMER_ID, c.CUSTOMER_INDEX)
    products_idx = index_of(spark, train_rows, c.PRODUCT_ID, c.PRODUCT_INDEX)
    train = indexed(train_rows, customers_idx, products_idx).persist(StorageLevel.MEMORY_AND_DISK)
    n_interactions = train.count()
    relevant = split.relevant.persist(StorageLevel.MEMORY_AND_DISK)
    evaluated = relevant.select(c.CUSTOMER_ID)
    n_evaluated = evaluated.count()
    popular = als.popularity(train_rows, products).persist()
    catalog_size = popular.count()
    excluded = split.excluded_before
    depth = candidate_depth(excluded, recs.k)
    common = {"popular": popular, "favourites": als.favourite_categories(train_rows, products),
              "excluded": excluded, "k": recs.k, "depth": depth}  # fmt: skip
    params = als.AlsParams(args.rank, args.reg_param, args.alpha, args.iterations,
                           recs.block_size, 1, recs.num_blocks)  # fmt: skip

    def fit() -> object:
        model = als.fit_als(train, params)
        model.userFactors.count()
        return model

    model, fit_seconds = timed(fit)
    candidates = als.als_candidates(
        model,
        evaluated.join(customers_idx, c.CUSTOMER_ID),
        products_idx,
        depth,  # type: ignore[arg-type]
    ).persist()
    _, candidate_seconds = timed(candidates.count)
    spark_metrics = evaluate_lists(
        als.complete_lists(evaluated, als=candidates, **common), relevant, recs.k, catalog_size
    )
    active = products.where(F.col(c.ACTIVE)).select(c.PRODUCT_ID)
    similar = als.similar_products(
        model.itemFactors,
        products_idx,
        active,
        SIMILAR_N,
        recs.similar_block_size,  # type: ignore[attr-defined]
    )
    _, similar_seconds = timed(lambda: similar.write.format("noop").mode("overwrite").save())

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
        factors=args.rank, regularization=args.reg_param, alpha=args.alpha,
        iterations=args.iterations, random_state=1,
        num_threads=spark.sparkContext.defaultParallelism,
    )  # fmt: skip
    _, implicit_fit = timed(lambda: cpu.fit(user_items, show_progress=False))
    users_pdf = evaluated.join(customers_idx, c.CUSTOMER_ID).toPandas()
    ids = users_pdf[c.CUSTOMER_INDEX].to_numpy()
    (items, scores), implicit_recommend = timed(
        lambda: cpu.recommend(ids, user_items[ids], N=depth, filter_already_liked_items=False)
    )
    positions = np.tile(np.arange(1, depth + 1), len(ids))
    rows = list(zip(np.repeat(users_pdf[c.CUSTOMER_ID].to_numpy(), depth).tolist(),
                    items.ravel().tolist(), scores.ravel().astype(float).tolist(),
                    positions.tolist(), strict=True))  # fmt: skip
    implicit_candidates = spark.createDataFrame(
        rows, f"{c.CUSTOMER_ID} string, {c.PRODUCT_INDEX} int, {c.SCORE} double, __position int"
    ).join(products_idx.select(c.PRODUCT_ID, c.PRODUCT_INDEX), c.PRODUCT_INDEX)
    implicit_metrics = evaluate_lists(
        als.complete_lists(evaluated, als=implicit_candidates.drop(c.PRODUCT_INDEX), **common),
        relevant, recs.k, catalog_size,
    )  # fmt: skip
    baseline = evaluate_lists(
        als.complete_lists(evaluated, als=None, **{**common, "favourites": None}),
        relevant, recs.k, catalog_size,
    )  # fmt: skip
    for frame in (train_rows, train, relevant, popular, candidates, customers_idx, products_idx):
        frame.unpersist()
    k = recs.k
    machine = f"{platform.machine()}, {spark.sparkContext.defaultParallelism} cores"
    return (
        f"| {date.today()} | {machine} | {name} | {catalog_size:,} | {n_interactions:,} | "
        f"{n_evaluated:,} | {fit_seconds:.1f}s | {candidate_seconds:.1f}s | "
        f"{similar_seconds:.1f}s | {implicit_fit:.1f}s (+{implicit_recommend:.1f}s) | "
        f"{spark_metrics[f'ndcg_at_{k}']:.4f} | {implicit_metrics[f'ndcg_at_{k}']:.4f} | "
        f"{baseline[f'ndcg_at_{k}']:.4f} | {fit_seconds / implicit_fit:.1f}× |"
    )


def similar_at_scale(spark: SparkSession, products: int, rank: int, block_size: int) -> str:
    """Time ``similar_products`` on random factors, and its recall against numpy's exact top
    ``SIMILAR_N`` for 200 products."""
    factors = (
        spark.range(products, numPartitions=8)
        .select(
            F.col("id").cast("int").alias("id"),
            F.array(*[F.randn(100 + i).cast("float") for i in range(rank)]).alias("features"),
        )
        .persist()
    )
    factors.count()
    index = spark.range(products).select(
        F.concat(F.lit("SP"), F.col("id")).alias(c.PRODUCT_ID),
        F.col("id").cast("int").alias(c.PRODUCT_INDEX),
    )
    similar = als.similar_products(
        factors, index, index.select(c.PRODUCT_ID), SIMILAR_N, block_size
    ).persist(StorageLevel.DISK_ONLY)
    _, seconds = timed(similar.count)
    matrix = np.stack(factors.orderBy("id").toPandas()["features"].to_numpy()).astype(np.float64)
    units = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    queries = np.random.default_rng(7).choice(products, 200, replace=False)
    sims = units[queries] @ units.T
    sims[np.arange(len(queries)), queries] = -np.inf
    exact = {f"SP{q}": {f"SP{j}" for j in np.argsort(-sims[i], kind="stable")[:SIMILAR_N]}
             for i, q in enumerate(queries)}  # fmt: skip
    found: dict[str, set[str]] = {}
    for row in similar.where(F.col(c.PRODUCT_ID).isin(list(exact))).collect():
        found.setdefault(row[c.PRODUCT_ID], set()).add(row[c.SIMILAR_PRODUCT_ID])
    recall = sum(len(found.get(p, set()) & e) for p, e in exact.items()) / (200 * SIMILAR_N)
    similar.unpersist()
    factors.unpersist()
    machine = f"{platform.machine()}, {spark.sparkContext.defaultParallelism} cores"
    return (
        f"| {date.today()} | {machine} | {products:,} × rank {rank} | top {SIMILAR_N} | "
        f"block {block_size} | {seconds:.1f}s | {recall:.4f} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--sessions-per-week", type=float, default=0.3)
    parser.add_argument("--long-customers", type=int, default=100_000)
    parser.add_argument("--long-products", type=int, default=20_000)
    parser.add_argument("--similar-products", type=int, default=100_000)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--reg-param", type=float, default=0.1)
    parser.add_argument("--alpha", type=float, default=20.0)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--only", choices=("bench", "long", "similar"), default=None)
    args = parser.parse_args()
    spark, conf, tables = prepared(args.customers, args.sessions_per_week)
    recs = conf.recommendations
    rows = []
    if args.only in (None, "bench"):
        events = tables.read(catalog.CLICKSTREAM_EVENTS)
        products = tables.read(catalog.PRODUCTS)
        rows.append(compare(spark, f"bench set ({args.customers:,} customers)", events,
                            products, recs, args))  # fmt: skip
    if args.only in (None, "long"):
        events, products = long_catalogue(spark, args.long_customers, args.long_products)
        rows.append(compare(spark, f"long catalogue ({args.long_customers:,} customers)",
                            events, products, recs, args))  # fmt: skip
    k = recs.k
    print(
        f"\nholdout: {dataclasses.asdict(recs.holdout)}; rank {args.rank}, reg {args.reg_param}, "
        f"alpha {args.alpha}, {args.iterations} iterations, {recs.num_blocks} blocks\n"
        "| date | machine | set | products | training interactions | evaluated customers | "
        f"MLlib ALS fit | candidates of the evaluated | similar products (top {SIMILAR_N}) | "
        f"implicit fit (+recommend) | MLlib NDCG@{k} | implicit NDCG@{k} | popularity NDCG@{k} "
        "| fit time ratio |"
    )
    print("| --- " * 14 + "|")
    print("\n".join(rows))
    if args.only in (None, "similar"):
        print(
            "\n| date | machine | factors | neighbours | blocks | similar_products | "
            "recall vs exact (200 products) |\n" + "| --- " * 7 + "|"
        )
        print(similar_at_scale(spark, args.similar_products, args.rank, recs.similar_block_size))


if __name__ == "__main__":
    main()

"""The recommender jobs' work: ``train_recommender`` (interactions, index tables, a grid over
ALS on a chronological holdout against the popularity baseline, a new model version) and
``recommend`` (complete lists for every customer and similar products)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pyspark
from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf, RecommendationsConf
from campaignlake.errors import TrainingDataError
from campaignlake.features.customer import cutoff_of
from campaignlake.models.evaluation import metrics_rows
from campaignlake.models.registry import ModelStore
from campaignlake.models.tracking import log_training_run
from campaignlake.recommend import als
from campaignlake.recommend.interactions import extend_index, interactions
from campaignlake.recommend.metrics import (
    RECOMMENDED,
    RELEVANT,
    ids_in_rank_order,
    ranking_metrics,
)
from campaignlake.tables import Tables, Txn, WriteResult, describe_writes

POPULARITY_BASELINE = "popularity_baseline"
HOLDOUT = "holdout"
INPUTS = {"clickstream_events": "ingest_clickstream", "products": "ingest_products",
          "customers": "ingest_crm"}  # fmt: skip


def recent_interactions(
    events: DataFrame, recs: RecommendationsConf, cutoff: datetime
) -> DataFrame:
    """Interactions of the ``history_days`` before ``cutoff``, with the configured weights."""
    return interactions(
        events,
        cutoff=cutoff,
        start=cutoff - timedelta(days=recs.history_days),
        event_weights=recs.event_weights,
        half_life_days=recs.half_life_days,
        exclude_event_types=recs.exclude_event_types,
    )


def update_indices(tables: Tables, rows: DataFrame, as_of: date) -> tuple[DataFrame, DataFrame]:
    """Give every customer and product in ``rows`` an index (existing ones keep theirs) and
    return both index tables."""
    result = []
    for key, id_column, index_column in (
        ("customer_index", c.CUSTOMER_ID, c.CUSTOMER_INDEX),
        ("product_index", c.PRODUCT_ID, c.PRODUCT_INDEX),
    ):
        tables.ensure(key)
        new = extend_index(
            tables.read(key), rows, id_column=id_column, index_column=index_column, seen=as_of
        ).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            if not new.isEmpty():
                tables.append(key, new)
        finally:
            new.unpersist()
        result.append(tables.read(key))
    return result[0], result[1]


def indexed(rows: DataFrame, customers: DataFrame, products: DataFrame) -> DataFrame:
    return rows.join(
        customers.select(c.CUSTOMER_ID, c.CUSTOMER_INDEX), c.CUSTOMER_ID, "inner"
    ).join(products.select(c.PRODUCT_ID, c.PRODUCT_INDEX), c.PRODUCT_ID, "inner")


def held_out_items(
    events: DataFrame,
    train: DataFrame,
    excluded_before: DataFrame,
    recs: RecommendationsConf,
    split_at: datetime,
    cutoff: datetime,
) -> DataFrame:
    """``customer_id`` → ``relevant``: the products a customer known to the training data
    interacted with (a weighted event) in ``[split_at, cutoff)`` and had not excluded before."""
    in_test = (
        events.where(
            (F.col(c.EVENT_TS) >= F.lit(split_at))
            & (F.col(c.EVENT_TS) < F.lit(cutoff))
            & F.col(c.EVENT_TYPE).isin(*recs.event_weights)
            & F.col(c.CUSTOMER_ID).isNotNull()
            & F.col(c.PRODUCT_ID).isNotNull()
        )
        .select(c.CUSTOMER_ID, c.PRODUCT_ID)
        .distinct()
        .join(excluded_before, [c.CUSTOMER_ID, c.PRODUCT_ID], "left_anti")
        .join(train.select(c.CUSTOMER_ID).distinct(), c.CUSTOMER_ID, "left_semi")
    )
    return in_test.groupBy(c.CUSTOMER_ID).agg(F.collect_set(c.PRODUCT_ID).alias(RELEVANT))


def serviceable_customers(tables: Tables) -> DataFrame:
    """The customer ids of ``silver/customers`` that have no deletion request: an erased
    customer gets no recommendations, whenever the request was made."""
    customers = tables.read("customers").select(c.CUSTOMER_ID).distinct()
    if not tables.exists("deletion_requests"):
        return customers
    erased = tables.read("deletion_requests").select(c.CUSTOMER_ID)
    return customers.join(erased, on=c.CUSTOMER_ID, how="left_anti")


def candidate_depth(excluded: DataFrame, k: int) -> int:
    most = excluded.groupBy(c.CUSTOMER_ID).count().agg(F.max("count")).first()[0]  # type: ignore[index]
    return k + int(most or 0)


@dataclass
class RecommenderReport:
    model_version: str
    params: str
    holdout: dict[str, dict[str, float]] = field(default_factory=dict)
    grid: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        lines = [f"train_recommender: als_recommender {self.model_version} ({self.params})"]
        for model, m in self.holdout.items():
            shown = "  ".join(
                f"{k} {v:.4f}" for k, v in m.items() if k.split("_at_")[0] in
                ("precision", "recall", "ndcg", "map") or k == "coverage"
            )  # fmt: skip
            lines.append(f"   {model:<34} {shown}")
        return "\n".join(lines)


def evaluate_lists(lists: DataFrame, relevant: DataFrame, k: int, catalog_size: int) -> dict:
    """Ranking metrics and catalog coverage of recommendation lists."""
    recommended = lists.groupBy(c.CUSTOMER_ID).agg(ids_in_rank_order().alias(RECOMMENDED))
    metrics = ranking_metrics(recommended, relevant, k)
    distinct = lists.join(relevant.select(c.CUSTOMER_ID), c.CUSTOMER_ID, "left_semi")
    covered = distinct.select(c.PRODUCT_ID).distinct().count()
    metrics["coverage"] = covered / catalog_size if catalog_size else 0.0
    return metrics


def train_recommender(
    spark: SparkSession,
    conf: Conf,
    tables: Tables | None = None,
    *,
    as_of: date,
    now: datetime | None = None,
) -> RecommenderReport:
    """Choose ALS parameters on the last ``holdout_days`` before ``as_of`` (against the
    popularity baseline on the same split), refit on everything up to ``as_of`` and save a new
    model version."""
    tables = tables or Tables(spark, conf)
    tables.require(INPUTS, "recommendations")
    recs = conf.recommendations
    created = now or datetime.now(timezone.utc)
    cutoff = cutoff_of(as_of)
    split_at = cutoff - timedelta(days=recs.holdout_days)
    events = tables.read("clickstream_events")
    catalog = tables.read("products")
    all_rows = recent_interactions(events, recs, cutoff).persist(StorageLevel.MEMORY_AND_DISK)
    train_rows = recent_interactions(events, recs, split_at).persist(StorageLevel.MEMORY_AND_DISK)
    cached = [all_rows, train_rows]
    try:
        customers_idx, products_idx = update_indices(tables, all_rows, as_of)
        train = indexed(train_rows, customers_idx, products_idx).persist()
        cached.append(train)
        if train.isEmpty():
            raise TrainingDataError(
                f"no interactions before {split_at:%Y-%m-%d}: nothing to train ALS on"
            )
        excluded_before = train_rows.where(F.col(c.EXCLUDED)).select(c.CUSTOMER_ID, c.PRODUCT_ID)
        relevant = held_out_items(events, train, excluded_before, recs, split_at, cutoff).persist(
            StorageLevel.MEMORY_AND_DISK
        )
        cached.append(relevant)
        evaluated = relevant.select(c.CUSTOMER_ID)
        popular = als.popularity(train_rows, catalog).persist()
        cached.append(popular)
        catalog_size = popular.count()
        depth = candidate_depth(excluded_before, recs.k)
        favourites = als.favourite_categories(train_rows, catalog)
        common = {"popular": popular, "favourites": favourites, "excluded": excluded_before,
                  "k": recs.k, "depth": depth}  # fmt: skip
        # The baseline is plain popularity: the most interacted products of the training
        # period, with the same exclusions.
        baseline = als.complete_lists(evaluated, als=None, **{**common, "favourites": None})
        results = {
            f"{recs.model_name}.{POPULARITY_BASELINE}": evaluate_lists(
                baseline, relevant, recs.k, catalog_size
            )
        }
        grid: dict[str, float] = {}
        best: tuple[float, als.AlsParams, dict] | None = None
        for rank, reg, alpha in itertools.product(
            recs.grid.rank, recs.grid.reg_param, recs.grid.alpha
        ):
            params = als.AlsParams(rank, reg, alpha, recs.max_iter, recs.block_size, recs.seed)
            model = als.fit_als(train, params)
            candidates = als.als_candidates(
                model, evaluated.join(customers_idx, c.CUSTOMER_ID), products_idx, depth
            )
            lists = als.complete_lists(evaluated, als=candidates, **common)
            metrics = evaluate_lists(lists, relevant, recs.k, catalog_size)
            ndcg = metrics[f"ndcg_at_{recs.k}"]
            grid[params.label()] = ndcg
            if best is None or ndcg > best[0]:
                best = (ndcg, params, metrics)
        assert best is not None
        results[recs.model_name] = best[2]

        full = indexed(all_rows, customers_idx, products_idx)
        final = als.fit_als(full, best[1])
        store = ModelStore(spark, conf.paths.models)
        version = store.next_version(recs.model_name)
        metadata: dict[str, Any] = {
            "created_at": created.isoformat(),
            "as_of": as_of.isoformat(),
            "params": vars(best[1]),
            "holdout": {"start": split_at.isoformat(), "end": cutoff.isoformat()},
            "event_weights": recs.event_weights,
            "half_life_days": recs.half_life_days,
            "metrics": results,
            "grid_ndcg": grid,
            "input_table_versions": {k: tables.version(k) for k in INPUTS},
            "spark_version": pyspark.__version__,
        }
        path = store.save(recs.model_name, version, PipelineModel(stages=[final]), metadata)
        rows = [
            (name, HOLDOUT, metric, value)
            for name, metrics in results.items()
            for metric, value in metrics.items()
        ]
        rows += [
            (recs.model_name, "grid", f"ndcg_at_{recs.k}[{label}]", v) for label, v in grid.items()
        ]
        tables.append(
            "model_metrics",
            metrics_rows(spark, version, created, rows),
            txn=Txn(f"train:{recs.model_name}", int(version[1:])),
        )
        log_training_run(
            conf,
            run_name=f"{recs.model_name}-{version}",
            params=vars(best[1]),
            metrics={f"{HOLDOUT}.{n.split('.')[-1]}.{m}": v for n, ms in results.items()
                     for m, v in ms.items()},
            tags={"model_name": recs.model_name, "model_version": version, "path": path},
            metadata=metadata,
        )  # fmt: skip
        return RecommenderReport(version, best[1].label(), results, grid)
    finally:
        for df in cached:
            df.unpersist()


@dataclass
class RecommendReport:
    as_of: date
    model_version: str
    customers: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    writes: dict[str, WriteResult] = field(default_factory=dict)

    def describe(self) -> str:
        tables = describe_writes(self.writes)
        sources = ", ".join(f"{k}={v}" for k, v in sorted(self.by_source.items()))
        return (
            f"recommend {self.as_of}: als_recommender {self.model_version}, "
            f"{self.customers} customers; items by source: {sources}; tables: {tables}"
        )


def recommend(
    spark: SparkSession,
    conf: Conf,
    tables: Tables | None = None,
    *,
    as_of: date,
    model_version: str | None = None,
) -> RecommendReport:
    """Exactly k recommendations for every customer in ``silver/customers`` without a
    deletion request, and similar products, for ``as_of``; both replaced per date only when
    they change."""
    tables = tables or Tables(spark, conf)
    tables.require(INPUTS, "recommendations")
    recs = conf.recommendations
    stored = ModelStore(spark, conf.paths.models).load(recs.model_name, model_version)
    model: ALSModel = stored.pipeline.stages[0]  # type: ignore[assignment]
    cutoff = cutoff_of(as_of)
    catalog = tables.read("products")
    rows = recent_interactions(tables.read("clickstream_events"), recs, cutoff).persist()
    cached = [rows]
    try:
        customers_idx, products_idx = update_indices(tables, rows, as_of)
        day = f"{c.AS_OF_DATE} = DATE'{as_of.isoformat()}'"
        with_date = F.lit(as_of).cast("date")
        interactions_out = indexed(rows, customers_idx, products_idx).withColumn(
            c.AS_OF_DATE, with_date
        )
        report = RecommendReport(as_of=as_of, model_version=stored.version)
        report.writes["interactions"] = tables.replace_slice(
            "interactions", interactions_out.select(*tables.spec("interactions").schema.names), day
        )
        customers = serviceable_customers(tables)
        excluded = rows.where(F.col(c.EXCLUDED)).select(c.CUSTOMER_ID, c.PRODUCT_ID)
        depth = candidate_depth(excluded, recs.k)
        popular = als.popularity(rows, catalog).persist()
        cached.append(popular)
        if popular.count() < recs.k:
            raise TrainingDataError(
                f"the active catalog has fewer than k={recs.k} products: lists cannot be full"
            )
        candidates = als.als_candidates(
            model, customers.join(customers_idx, c.CUSTOMER_ID, "inner"), products_idx, depth
        )
        lists = (
            als.complete_lists(
                customers,
                als=candidates,
                popular=popular,
                favourites=als.favourite_categories(rows, catalog),
                excluded=excluded,
                k=recs.k,
                depth=depth,
            )
            .withColumn(c.MODEL_VERSION, F.lit(stored.version))
            .withColumn(c.AS_OF_DATE, with_date)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        cached.append(lists)
        counts = lists.groupBy(c.SOURCE).count().collect()  # three sources at most
        report.by_source = {r[c.SOURCE]: r["count"] for r in counts}
        report.customers = customers.count()
        report.writes["recommendations"] = tables.replace_slice("recommendations", lists, day)
        active = catalog.where(F.col(c.ACTIVE)).select(c.PRODUCT_ID)
        similar = (
            als.similar_products(model, products_idx, active, recs.similar_products)
            .withColumn(c.MODEL_VERSION, F.lit(stored.version))
            .withColumn(c.AS_OF_DATE, with_date)
        )
        report.writes["similar_products"] = tables.replace_slice("similar_products", similar, day)
        return report
    finally:
        for df in cached:
            df.unpersist()

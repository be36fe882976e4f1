"""The recommender's table I/O: ``train_recommender`` (interactions, index tables, a grid over
ALS on a chronological holdout per customer against the popularity baseline, a new model
version) and
``recommend`` (complete lists for every customer and similar products)."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyspark
from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.ml.recommendation import ALSModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf, RecommendationsConf
from campaignlake.errors import ModelNotFoundError, TrainingDataError
from campaignlake.feature_set import cutoff_of
from campaignlake.frames import metrics_rows
from campaignlake.models.promotion import Promotion, describe_promotion
from campaignlake.models.registry import ModelStore
from campaignlake.models.tracking import champion_version, log_training_run, register_version
from campaignlake.recommend import als
from campaignlake.recommend.evaluation import (
    COLD_RECALL,
    HOLDOUT,
    POPULARITY_BASELINE,
    WITH_COLD_START,
    candidate_depth,
    cold_recall,
    cold_start_split,
    evaluate_lists,
    holdout_split,
)
from campaignlake.recommend.interactions import extend_index, indexed, recent_interactions
from campaignlake.tables import Tables, Txn, WriteResult, describe_writes

#: The tables both recommender jobs read.
INPUTS = (catalog.CLICKSTREAM_EVENTS, catalog.PRODUCTS, catalog.CUSTOMERS)


def content_neighbours(tables: Tables, as_of: date) -> DataFrame | None:
    """The text neighbours (``gold/similar_products``, method content) of the newest date on
    or before ``as_of``; None when ``build_text_features`` has not written any."""
    if not tables.exists(catalog.SIMILAR_PRODUCTS):
        return None
    content = tables.read(catalog.SIMILAR_PRODUCTS).where(
        (F.col(c.METHOD) == c.CONTENT_METHOD) & (F.col(c.AS_OF_DATE) <= F.lit(as_of))
    )
    newest = content.agg(F.max(c.AS_OF_DATE)).first()[0]  # type: ignore[index]
    if newest is None:
        return None
    return content.where(F.col(c.AS_OF_DATE) == F.lit(newest)).select(
        c.PRODUCT_ID, c.SIMILAR_PRODUCT_ID, c.SIMILARITY
    )


def update_indices(tables: Tables, rows: DataFrame, as_of: date) -> tuple[DataFrame, DataFrame]:
    """Give every customer and product in ``rows`` an index (existing ones keep theirs) and
    return both index tables."""
    result = []
    for key, id_column, index_column in (
        (catalog.CUSTOMER_INDEX, c.CUSTOMER_ID, c.CUSTOMER_INDEX),
        (catalog.PRODUCT_INDEX, c.PRODUCT_ID, c.PRODUCT_INDEX),
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


def serviceable_customers(tables: Tables) -> DataFrame:
    """The customer ids of ``silver/customers`` that have no deletion request: an erased
    customer gets no recommendations, whenever the request was made."""
    customers = tables.read(catalog.CUSTOMERS).select(c.CUSTOMER_ID).distinct()
    if not tables.exists(catalog.DELETION_REQUESTS):
        return customers
    erased = tables.read(catalog.DELETION_REQUESTS).select(c.CUSTOMER_ID)
    return customers.join(erased, on=c.CUSTOMER_ID, how="left_anti")


@dataclass
class RecommenderReport:
    """What one ``train_recommender`` run measured and saved."""

    model_version: str
    params: str
    holdout: dict[str, dict[str, float]] = field(default_factory=dict)
    grid: dict[str, float] = field(default_factory=dict)
    #: What was held out (``recommendations.holdout``), for the first line of the report.
    split: str = ""
    #: The champion gate's decision (None with tracking off: the latest version serves).
    promotion: Promotion | None = None

    def describe(self) -> str:
        """The version, the holdout and how many customers it evaluated, the metrics against
        the popularity baseline and the champion gate's decision."""
        lines = [f"train_recommender: als_recommender {self.model_version} ({self.params})"]
        evaluated = max((int(m.get("evaluated_customers", 0)) for m in self.holdout.values()),
                        default=0)  # fmt: skip
        lines.append(f"   holdout: {self.split}; {evaluated} customers evaluated")
        for model, m in self.holdout.items():
            shown = "  ".join(
                f"{k} {v:.4f}" for k, v in m.items() if k.split("_at_")[0] in
                ("precision", "recall", "ndcg", "map") or k in ("coverage", COLD_RECALL)
            )  # fmt: skip
            lines.append(f"   {model:<34} {shown}")
        lines.append(f"   champion gate: {describe_promotion(self.promotion)}")
        return "\n".join(lines)


@dataclass
class _Holdout:
    """ALS parameters fitted on one split's training interactions and scored on its held-out
    items, each point once (the grid and the champion's re-measurement share them)."""

    train: DataFrame
    evaluated: DataFrame
    indices: tuple[DataFrame, DataFrame]
    lists: dict[str, Any]
    relevant: DataFrame
    catalog_size: int
    k: int
    measured: dict[als.AlsParams, dict[str, float]] = field(default_factory=dict)

    def metrics(self, params: als.AlsParams) -> dict[str, float]:
        """The ranking metrics of ``params`` (fitted when first asked for)."""
        if params not in self.measured:
            customers_idx, products_idx = self.indices
            model = als.fit_als(self.train, params)
            candidates = als.als_candidates(
                model, self.evaluated.join(customers_idx, c.CUSTOMER_ID), products_idx,
                self.lists["depth"],
            )  # fmt: skip
            lists = als.complete_lists(self.evaluated, als=candidates, **self.lists)
            self.measured[params] = evaluate_lists(lists, self.relevant, self.k, self.catalog_size)
        return self.measured[params]

    def ndcg(self, params: als.AlsParams) -> float:
        """NDCG@k of ``params``: what the grid and the champion gate compare."""
        return self.metrics(params)[f"ndcg_at_{self.k}"]


def train_recommender(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    now: datetime | None = None,
) -> RecommenderReport:
    """Choose ALS parameters on a chronological holdout before ``as_of``
    (``recommendations.holdout``: each customer's last interactions, or the last days), against
    the popularity baseline on the same split; refit on everything up to ``as_of`` and save a
    new model version."""
    tables.require(INPUTS, "recommendations")
    recs = conf.recommendations
    created = now or datetime.now(timezone.utc)
    cutoff = cutoff_of(as_of)
    events = tables.read(catalog.CLICKSTREAM_EVENTS)
    products = tables.read(catalog.PRODUCTS)
    all_rows = recent_interactions(events, recs, cutoff).persist(StorageLevel.MEMORY_AND_DISK)
    split = holdout_split(events, recs, cutoff)
    # Both halves of the split read the events with their cuts: one window, not two.
    events_with_cut = split.events_with_cut.persist(StorageLevel.MEMORY_AND_DISK)
    train_rows = split.train_rows.persist(StorageLevel.MEMORY_AND_DISK)
    cached = [all_rows, events_with_cut, train_rows]
    try:
        customers_idx, products_idx = update_indices(tables, all_rows, as_of)
        train = indexed(train_rows, customers_idx, products_idx).persist()
        cached.append(train)
        if train.isEmpty():
            raise TrainingDataError(
                f"no interactions before the holdout ({split.description}): nothing to train ALS on"
            )
        excluded_before = split.excluded_before
        relevant = split.relevant.persist(StorageLevel.MEMORY_AND_DISK)
        cached.append(relevant)
        evaluated = relevant.select(c.CUSTOMER_ID)
        popular = als.popularity(train_rows, products).persist()
        cached.append(popular)
        catalog_size = popular.count()
        common = {"popular": popular, "favourites": als.favourite_categories(train_rows, products),
                  "excluded": excluded_before, "k": recs.k,
                  "depth": candidate_depth(excluded_before, recs.k)}  # fmt: skip
        # The baseline is plain popularity: the most interacted products of the training
        # period, with the same exclusions.
        baseline = als.complete_lists(evaluated, als=None, **{**common, "favourites": None})
        results = {
            f"{recs.model_name}.{POPULARITY_BASELINE}": evaluate_lists(
                baseline, relevant, recs.k, catalog_size
            )
        }
        holdout = _Holdout(train, evaluated, (customers_idx, products_idx), common, relevant,
                           catalog_size, recs.k)  # fmt: skip
        points = [
            als.AlsParams(rank, reg, alpha, recs.max_iter, recs.block_size, recs.seed,
                          recs.num_blocks)
            for rank, reg, alpha in itertools.product(
                recs.grid.rank, recs.grid.reg_param, recs.grid.alpha
            )
        ]  # fmt: skip
        # Each point's fit is a chain of small Spark jobs: run side by side they fill the
        # cores one alone leaves idle between stages.
        with ThreadPoolExecutor(max_workers=recs.grid_parallelism) as pool:
            list(pool.map(holdout.metrics, points))
        grid = {params.label(): holdout.ndcg(params) for params in points}
        best = max(points, key=lambda params: (holdout.ndcg(params), -points.index(params)))
        results[recs.model_name] = holdout.metrics(best)
        neighbours = content_neighbours(tables, as_of)
        if neighbours is not None and recs.cold_start_slots > 0:
            cold_start = _cold_start_recall(events, products, neighbours, recs, cutoff)
            results[f"{recs.model_name}.{POPULARITY_BASELINE}"].update(cold_start[0])
            results[f"{recs.model_name}.{WITH_COLD_START}"] = cold_start[1]
        store = ModelStore(spark, conf.paths.models)
        champion = champion_version(conf, recs.model_name)
        champion_value, unmeasured = _champion_ndcg(store, recs.model_name, champion, holdout.ndcg)
        full = indexed(all_rows, customers_idx, products_idx)
        final = als.fit_als(full, best)
        version = store.next_version(recs.model_name)
        metadata: dict[str, Any] = {
            "created_at": created.isoformat(),
            "as_of": as_of.isoformat(),
            "params": vars(best),
            "holdout": {"split": split.description, "end": cutoff.isoformat()},
            "event_weights": recs.event_weights,
            "half_life_days": recs.half_life_days,
            "metrics": results,
            "grid_ndcg": grid,
            "input_table_versions": tables.versions(INPUTS),
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
            catalog.MODEL_METRICS,
            metrics_rows(spark, version, created, rows),
            txn=Txn(f"train:{recs.model_name}", int(version[1:])),
        )
        tracked = log_training_run(
            conf,
            run_name=f"{recs.model_name}-{version}",
            params=vars(best),
            metrics={f"{HOLDOUT}.{n.split('.')[-1]}.{m}": v for n, ms in results.items()
                     for m, v in ms.items()},
            tags={"model_name": recs.model_name, "model_version": version, "path": path},
            metadata=metadata,
            model=PipelineModel(stages=[final]),
            model_inputs=full.select(final.getUserCol(), final.getItemCol()).schema,
        )  # fmt: skip
        report = RecommenderReport(version, best.label(), results, grid, split.description)
        if tracked is not None:
            report.promotion = Promotion(
                model=recs.model_name,
                challenger=version,
                champion=champion,
                metric=f"ndcg_at_{recs.k}",
                challenger_value=holdout.ndcg(best),
                champion_value=champion_value,
                tolerance=conf.tracking.champion_tolerance,
                unmeasured_reason=unmeasured,
            )
            register_version(conf, recs.model_name, version, tracked, report.promotion)
        return report
    finally:
        for df in cached:
            df.unpersist()


@dataclass
class RecommendReport:
    """What one ``recommend`` run wrote."""

    as_of: date
    model_version: str
    customers: int = 0
    by_source: dict[str, int] = field(default_factory=dict)
    writes: dict[str, WriteResult] = field(default_factory=dict)

    def describe(self) -> str:
        """Customers, items by source and the writes, in one line."""
        tables = describe_writes(self.writes)
        sources = ", ".join(f"{k}={v}" for k, v in sorted(self.by_source.items()))
        return (
            f"recommend {self.as_of}: als_recommender {self.model_version}, "
            f"{self.customers} customers; items by source: {sources}; tables: {tables}"
        )


def _cold_start_recall(
    events: DataFrame,
    products: DataFrame,
    neighbours: DataFrame,
    recs: RecommendationsConf,
    cutoff: datetime,
) -> tuple[dict[str, float], dict[str, float]]:
    """Recall of the late-launched products (:func:`cold_start_split`) by the popularity
    fallbacks alone and with the cold-start places, from the history before the launches."""
    split = cold_start_split(events, recs, cutoff)
    history = split.history.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        customers = split.relevant.select(c.CUSTOMER_ID)
        excluded = history.where(F.col(c.EXCLUDED)).select(c.CUSTOMER_ID, c.PRODUCT_ID)
        common = {
            "popular": als.popularity(history, products),
            "favourites": als.favourite_categories(history, products),
            "excluded": excluded,
            "k": recs.k,
            "depth": candidate_depth(excluded, recs.k),
        }
        content = als.content_candidates(history, neighbours, split.cold, recs.cold_start_slots)
        fallback = als.complete_lists(customers, als=None, **common)
        served = als.complete_lists(
            customers, als=None, content=content, content_slots=recs.cold_start_slots, **common
        )
        return (
            cold_recall(fallback, split.relevant, split.cold),
            cold_recall(served, split.relevant, split.cold),
        )
    finally:
        history.unpersist()


def _champion_ndcg(
    store: ModelStore,
    name: str,
    champion: str | None,
    holdout_ndcg: Callable[[als.AlsParams], float],
) -> tuple[float | None, str]:
    """The champion's parameters measured on this run's split, or why they cannot be: its saved
    model was refitted on everything up to its date, so scoring it on a holdout it may have
    seen would flatter it."""
    if champion is None:
        return None, ""
    try:
        params = als.AlsParams(**store.metadata(name, champion)["params"])
    except (ModelNotFoundError, KeyError, TypeError) as exc:
        return None, f"its parameters are not readable: {exc}"
    return holdout_ndcg(params), ""


def recommend(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    model_version: str | None = None,
) -> RecommendReport:
    """Exactly k recommendations for every customer in ``silver/customers`` without a
    deletion request, and similar products, for ``as_of``; both replaced per date only when
    they change."""
    tables.require(INPUTS, "recommendations")
    recs = conf.recommendations
    serving = model_version or champion_version(conf, recs.model_name)
    stored = ModelStore(spark, conf.paths.models).load(recs.model_name, serving)
    model: ALSModel = stored.pipeline.stages[0]  # type: ignore[assignment]
    cutoff = cutoff_of(as_of)
    products = tables.read(catalog.PRODUCTS)
    rows = recent_interactions(tables.read(catalog.CLICKSTREAM_EVENTS), recs, cutoff).persist()
    cached = [rows]
    try:
        customers_idx, products_idx = update_indices(tables, rows, as_of)
        day = f"{c.AS_OF_DATE} = DATE'{as_of.isoformat()}'"
        with_date = F.lit(as_of).cast("date")
        interactions_out = indexed(rows, customers_idx, products_idx).withColumn(
            c.AS_OF_DATE, with_date
        )
        report = RecommendReport(as_of=as_of, model_version=stored.version)
        report.writes[catalog.INTERACTIONS] = tables.replace_slice(
            catalog.INTERACTIONS,
            interactions_out.select(*tables.spec(catalog.INTERACTIONS).schema.names),
            day,
        )
        customers = serviceable_customers(tables)
        excluded = rows.where(F.col(c.EXCLUDED)).select(c.CUSTOMER_ID, c.PRODUCT_ID)
        depth = candidate_depth(excluded, recs.k)
        popular = als.popularity(rows, products).persist()
        cached.append(popular)
        if popular.count() < recs.k:
            raise TrainingDataError(
                f"the active catalog has fewer than k={recs.k} products: lists cannot be full"
            )
        candidates = als.als_candidates(
            model, customers.join(customers_idx, c.CUSTOMER_ID, "inner"), products_idx, depth
        )
        neighbours = content_neighbours(tables, as_of)
        content = None
        if neighbours is not None:
            # Cold: active products the serving model has no factors for.
            scored_by_model = model.itemFactors.select(F.col("id").alias(c.PRODUCT_INDEX)).join(
                products_idx, c.PRODUCT_INDEX, "inner"
            )
            cold = popular.select(c.PRODUCT_ID).join(
                scored_by_model.select(c.PRODUCT_ID), c.PRODUCT_ID, "left_anti"
            )
            content = als.content_candidates(rows, neighbours, cold, recs.cold_start_slots)
        lists = (
            als.complete_lists(
                customers,
                als=candidates,
                popular=popular,
                favourites=als.favourite_categories(rows, products),
                excluded=excluded,
                k=recs.k,
                depth=depth,
                content=content,
                content_slots=recs.cold_start_slots,
            )
            .withColumn(c.MODEL_VERSION, F.lit(stored.version))
            .withColumn(c.AS_OF_DATE, with_date)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        cached.append(lists)
        counts = lists.groupBy(c.SOURCE).count().collect()  # four sources at most
        report.by_source = {r[c.SOURCE]: r["count"] for r in counts}
        report.customers = customers.count()
        report.writes[catalog.RECOMMENDATIONS] = tables.replace_slice(
            catalog.RECOMMENDATIONS, lists, day
        )
        active = products.where(F.col(c.ACTIVE)).select(c.PRODUCT_ID)
        similar = (
            als.similar_products(
                model.itemFactors,
                products_idx,
                active,
                recs.similar_products,
                recs.similar_block_size,
            )
            .withColumn(c.METHOD, F.lit(c.ALS_METHOD))
            .withColumn(c.MODEL_VERSION, F.lit(stored.version))
            .withColumn(c.AS_OF_DATE, with_date)
        )
        report.writes[catalog.SIMILAR_PRODUCTS] = tables.replace_slice(
            catalog.SIMILAR_PRODUCTS, similar, f"{day} AND {c.METHOD} = '{c.ALS_METHOD}'"
        )
        return report
    finally:
        for df in cached:
            df.unpersist()

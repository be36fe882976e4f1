"""Evaluating recommendation lists on a chronological holdout: the split (per customer, or
one date for all), the held-out items of each customer, the candidate depth, and ranking
metrics with catalogue coverage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from pyspark import StorageLevel
from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import RecommendationsConf
from campaignlake.recommend.interactions import interactions, recent_interactions
from campaignlake.recommend.metrics import RECOMMENDED, RELEVANT, ids_in_rank_order, ranking_metrics

#: Names in ``gold/model_metrics``: the baseline the recommender is compared with (as
#: ``<model>.popularity_baseline``) and the split its metrics are measured on.
POPULARITY_BASELINE = "popularity_baseline"
HOLDOUT = "holdout"
#: The recommender's lists with the content cold-start places (cold-product recall only).
WITH_COLD_START = "with_cold_start"
#: Metrics of the lists on products launched late (:func:`cold_recall`).
COLD_RECALL = "cold_recall"
COLD_PAIRS = "cold_pairs"


#: Each event's holdout start: its customer's cut (null: the customer is not evaluated).
SPLIT_AT = "split_at"


@dataclass(frozen=True)
class HoldoutSplit:
    """A chronological split of the interactions before a cutoff."""

    #: Interactions before each customer's cut (every customer's, evaluated or not), with
    #: ages measured back from that cut: what a model fitted at the cut would have seen.
    train_rows: DataFrame
    #: ``customer_id`` → ``relevant``: the products each evaluated customer interacted with
    #: at or after their cut and had not excluded (bought) before it.
    relevant: DataFrame
    #: ``customer_id``, ``product_id`` pairs excluded before the customer's cut.
    excluded_before: DataFrame
    #: What was held out, for reports: ``each customer's last 20% …`` or the dates.
    description: str
    #: The events the split reads, each with its customer's cut (:data:`SPLIT_AT`): both
    #: halves are built from it, so persisting it computes the per-customer cuts once.
    events_with_cut: DataFrame


def holdout_split(events: DataFrame, recs: RecommendationsConf, cutoff: datetime) -> HoldoutSplit:
    """Split the interactions of the ``history_days`` before ``cutoff`` by
    ``recommendations.holdout``.

    ``per_customer`` (as recommenders' ``spark_chrono_split``): a customer with at least
    ``min_events`` weighted events in the window holds out the last ``fraction`` of them
    (at least one, and every event at the same instant as the first held-out one), so
    customers active at different times are all evaluated, each on what came after their own
    history. Customers with fewer events only train. ``last_days``: every customer's events of
    the last ``days`` are held out, one date for all.
    """
    start = cutoff - timedelta(days=recs.history_days)
    split_events = _with_split_at(events, recs, start, cutoff)
    until = F.coalesce(F.col(SPLIT_AT), F.lit(cutoff))
    train_rows = interactions(
        split_events.where(F.col(c.EVENT_TS) < until),
        cutoff=until,
        start=start,
        event_weights=recs.event_weights,
        half_life_days=recs.half_life_days,
        exclude_event_types=recs.exclude_event_types,
    )
    excluded_before = train_rows.where(F.col(c.EXCLUDED)).select(c.CUSTOMER_ID, c.PRODUCT_ID)
    in_test = (
        _weighted_events(split_events, recs, start, cutoff)
        .where(F.col(SPLIT_AT).isNotNull() & (F.col(c.EVENT_TS) >= F.col(SPLIT_AT)))
        .select(c.CUSTOMER_ID, c.PRODUCT_ID)
        .distinct()
        .join(excluded_before, [c.CUSTOMER_ID, c.PRODUCT_ID], "left_anti")
        # A customer needs a history before the cut to be recommended from it.
        .join(train_rows.select(c.CUSTOMER_ID).distinct(), c.CUSTOMER_ID, "left_semi")
    )
    relevant = in_test.groupBy(c.CUSTOMER_ID).agg(F.collect_set(c.PRODUCT_ID).alias(RELEVANT))
    holdout = recs.holdout
    if holdout.split == "per_customer":
        description = (
            f"each customer's last {holdout.fraction:.0%} of interactions "
            f"(customers with {holdout.min_events}+ events)"
        )
    else:
        description = f"{cutoff - timedelta(days=holdout.days):%Y-%m-%d} to {cutoff:%Y-%m-%d}"
    return HoldoutSplit(train_rows, relevant, excluded_before, description, split_events)


def _weighted_events(
    events: DataFrame, recs: RecommendationsConf, start: datetime, cutoff: datetime
) -> DataFrame:
    """The events that give interaction strength, in ``[start, cutoff)``."""
    return events.where(
        (F.col(c.EVENT_TS) >= F.lit(start))
        & (F.col(c.EVENT_TS) < F.lit(cutoff))
        & F.col(c.EVENT_TYPE).isin(*recs.event_weights)
        & F.col(c.CUSTOMER_ID).isNotNull()
        & F.col(c.PRODUCT_ID).isNotNull()
    )


def _with_split_at(
    events: DataFrame, recs: RecommendationsConf, start: datetime, cutoff: datetime
) -> DataFrame:
    """The columns of ``events`` a split reads, with :data:`SPLIT_AT`, the customer's holdout
    start."""
    events = events.select(c.EVENT_ID, c.EVENT_TYPE, c.EVENT_TS, c.CUSTOMER_ID, c.PRODUCT_ID)
    holdout = recs.holdout
    if holdout.split == "last_days":
        return events.withColumn(SPLIT_AT, F.lit(cutoff - timedelta(days=holdout.days)))
    by_customer = Window.partitionBy(c.CUSTOMER_ID)
    numbered = _weighted_events(events, recs, start, cutoff).select(
        c.CUSTOMER_ID,
        c.EVENT_TS,
        F.row_number().over(by_customer.orderBy(c.EVENT_TS, c.EVENT_ID)).alias("__position"),
        F.count(F.lit(1)).over(by_customer).alias("__events"),
    )
    held = F.greatest(F.lit(1), F.ceil(F.col("__events") * F.lit(holdout.fraction)))
    cuts = numbered.where(
        (F.col("__events") >= holdout.min_events)
        & (F.col("__position") == F.col("__events") - held + 1)
    ).select(c.CUSTOMER_ID, F.col(c.EVENT_TS).alias(SPLIT_AT))
    return events.join(cuts, c.CUSTOMER_ID, "left")


def candidate_depth(excluded: DataFrame, k: int) -> int:
    """How many ALS candidates to ask for so that k remain after the exclusions of the
    customer with the most excluded products."""
    most = excluded.groupBy(c.CUSTOMER_ID).count().agg(F.max("count")).first()[0]  # type: ignore[index]
    return k + int(most or 0)


def evaluate_lists(lists: DataFrame, relevant: DataFrame, k: int, catalog_size: int) -> dict:
    """Ranking metrics and catalog coverage of recommendation lists (the lists are computed
    once: both read the per-customer arrays)."""
    recommended = (
        lists.groupBy(c.CUSTOMER_ID)
        .agg(ids_in_rank_order().alias(RECOMMENDED))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        metrics = ranking_metrics(recommended, relevant, k)
        covered = (
            recommended.join(relevant.select(c.CUSTOMER_ID), c.CUSTOMER_ID, "left_semi")
            .select(F.explode(RECOMMENDED).alias(c.PRODUCT_ID))
            .distinct()
            .count()
        )
    finally:
        recommended.unpersist()
    metrics["coverage"] = covered / catalog_size if catalog_size else 0.0
    return metrics


def cold_recall(lists: DataFrame, relevant: DataFrame, cold: DataFrame) -> dict[str, float]:
    """How many held-out interactions with cold products (``cold``: ``product_id`` of the
    products the training period has no interaction with) the lists found:
    ``cold_recall`` = hits / ``cold_pairs``, the held-out (customer, cold product) pairs
    (0 when there are none)."""
    pairs = relevant.select(c.CUSTOMER_ID, F.explode(RELEVANT).alias(c.PRODUCT_ID)).join(
        F.broadcast(cold), c.PRODUCT_ID, "left_semi"
    )
    marked = lists.select(c.CUSTOMER_ID, c.PRODUCT_ID, F.lit(1).alias("__hit"))
    totals = (
        pairs.join(marked, [c.CUSTOMER_ID, c.PRODUCT_ID], "left")
        .agg(F.count(F.lit(1)).alias("pairs"), F.count("__hit").alias("hits"))
        .first()
    )
    n_pairs = int(totals["pairs"]) if totals else 0  # type: ignore[index]
    hits = int(totals["hits"]) if totals else 0  # type: ignore[index]
    return {COLD_RECALL: hits / n_pairs if n_pairs else 0.0, COLD_PAIRS: float(n_pairs)}


@dataclass(frozen=True)
class ColdStartSplit:
    """The products launched in the last ``holdout.days`` before a cutoff, held out whole."""

    #: Interactions before the launch window: what customers had done when the products came.
    history: DataFrame
    #: ``product_id`` of the products whose first interaction is in the window.
    cold: DataFrame
    #: ``customer_id`` → ``relevant``: the cold products each customer with a history
    #: interacted with in the window.
    relevant: DataFrame
    description: str


def cold_start_split(
    events: DataFrame, recs: RecommendationsConf, cutoff: datetime
) -> ColdStartSplit:
    """Hold out the products first interacted with in the last ``recommendations.holdout.days``
    before ``cutoff`` (the late launches): nothing about them is known before the window, so a
    list built from the history can find them only from their text."""
    window_start = cutoff - timedelta(days=recs.holdout.days)
    weighted = _weighted_events(
        events.select(c.EVENT_TYPE, c.EVENT_TS, c.CUSTOMER_ID, c.PRODUCT_ID),
        recs,
        cutoff - timedelta(days=recs.history_days),
        cutoff,
    )
    cold = (
        weighted.groupBy(c.PRODUCT_ID)
        .agg(F.min(c.EVENT_TS).alias("__first"))
        .where(F.col("__first") >= F.lit(window_start))
        .select(c.PRODUCT_ID)
    )
    history = recent_interactions(events, recs, window_start)
    relevant = (
        weighted.where(F.col(c.EVENT_TS) >= F.lit(window_start))
        .join(cold, c.PRODUCT_ID, "left_semi")
        .select(c.CUSTOMER_ID, c.PRODUCT_ID)
        .distinct()
        .join(history.select(c.CUSTOMER_ID).distinct(), c.CUSTOMER_ID, "left_semi")
        .groupBy(c.CUSTOMER_ID)
        .agg(F.collect_set(c.PRODUCT_ID).alias(RELEVANT))
    )
    description = f"products launched {window_start:%Y-%m-%d} to {cutoff:%Y-%m-%d}"
    return ColdStartSplit(history, cold, relevant, description)

"""Evaluating recommendation lists on a chronological holdout: the held-out items of each
customer, the candidate depth, and ranking metrics with catalogue coverage."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import RecommendationsConf
from campaignlake.recommend.metrics import RECOMMENDED, RELEVANT, ids_in_rank_order, ranking_metrics

#: Names in ``gold/model_metrics``: the baseline the recommender is compared with (as
#: ``<model>.popularity_baseline``) and the split its metrics are measured on.
POPULARITY_BASELINE = "popularity_baseline"
HOLDOUT = "holdout"


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


def candidate_depth(excluded: DataFrame, k: int) -> int:
    """How many ALS candidates to ask for so that k remain after the exclusions of the
    customer with the most excluded products."""
    most = excluded.groupBy(c.CUSTOMER_ID).count().agg(F.max("count")).first()[0]  # type: ignore[index]
    return k + int(most or 0)


def evaluate_lists(lists: DataFrame, relevant: DataFrame, k: int, catalog_size: int) -> dict:
    """Ranking metrics and catalog coverage of recommendation lists."""
    recommended = lists.groupBy(c.CUSTOMER_ID).agg(ids_in_rank_order().alias(RECOMMENDED))
    metrics = ranking_metrics(recommended, relevant, k)
    distinct = lists.join(relevant.select(c.CUSTOMER_ID), c.CUSTOMER_ID, "left_semi")
    covered = distinct.select(c.PRODUCT_ID).distinct().count()
    metrics["coverage"] = covered / catalog_size if catalog_size else 0.0
    return metrics

"""Implicit feedback: customer × product interaction strengths, and stable integer indices.

A customer's strength for a product is the sum over their events of
``weight(event_type) × 0.5 ** (age_days / half_life_days)``, where the age is measured back
from the cutoff. Only events in ``[cutoff − history_days, cutoff)`` with a customer and a
product count. ALS needs integer ids: the index tables map ids to dense integers that never
change once given, so a model's factors keep pointing at the same customers and products.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType

from campaignlake import columns as c
from campaignlake.config import RecommendationsConf
from campaignlake.frames import with_row_numbers


def interactions(
    events: DataFrame,
    *,
    cutoff: datetime | Column,
    start: datetime,
    event_weights: dict[str, float],
    half_life_days: float,
    exclude_event_types: list[str],
) -> DataFrame:
    """Interaction strength per (customer, product) from events in ``[start, cutoff)``.

    ``cutoff`` is one instant, or a timestamp column of ``events`` (each customer's own
    cutoff, as in a per-customer holdout): ages are measured back from it.

    Returns
    -------
    DataFrame
        ``customer_id``, ``product_id``, ``strength`` (decayed, weighted), ``events`` (how many
        weighted events), ``last_event_ts`` and ``excluded`` (the customer had an event of an
        ``exclude_event_types`` type for the product, e.g. bought it).
    """
    weight = F.lit(None).cast("double")
    for event_type, w in event_weights.items():
        weight = F.when(F.col(c.EVENT_TYPE) == event_type, F.lit(float(w))).otherwise(weight)
    until = cutoff if isinstance(cutoff, Column) else F.lit(cutoff)
    age_days = (F.unix_micros(until) - F.unix_micros(F.col(c.EVENT_TS))) / 1e6 / 86400.0
    decayed = weight * F.pow(F.lit(0.5), age_days / F.lit(float(half_life_days)))
    counted = (
        events.where(
            F.col(c.CUSTOMER_ID).isNotNull()
            & F.col(c.PRODUCT_ID).isNotNull()
            & (F.col(c.EVENT_TS) < until)
            & (F.col(c.EVENT_TS) >= F.lit(start))
        )
        .withColumn("__weight", decayed)
        .withColumn("__excluding", F.col(c.EVENT_TYPE).isin(*exclude_event_types))
        .where(F.col("__weight").isNotNull() | F.col("__excluding"))
    )
    return counted.groupBy(c.CUSTOMER_ID, c.PRODUCT_ID).agg(
        F.coalesce(F.sum("__weight"), F.lit(0.0)).alias(c.STRENGTH),
        F.count("__weight").alias(c.EVENTS),
        F.max(c.EVENT_TS).alias(c.LAST_EVENT_TS),
        F.max(F.col("__excluding")).alias(c.EXCLUDED),
    )


def extend_index(
    existing: DataFrame, ids: DataFrame, *, id_column: str, index_column: str, seen: date
) -> DataFrame:
    """The rows to add to an index table: every id in ``ids`` not yet in ``existing`` gets the
    next integers above the existing maximum, in id order. Existing rows never change.

    Dense numbering without a global window (see :func:`campaignlake.frames.with_row_numbers`).
    """
    new_ids = (
        ids.select(id_column)
        .distinct()
        .join(existing.select(id_column), on=id_column, how="left_anti")
    )
    numbered = with_row_numbers(new_ids, [F.col(id_column)], "__position")
    start = existing.agg(F.coalesce(F.max(index_column), F.lit(-1)).alias("__start"))
    return (
        numbered.crossJoin(F.broadcast(start))
        .select(
            F.col(id_column),
            (F.col("__start") + F.col("__position")).cast(IntegerType()).alias(index_column),
        )
        .withColumn(c.FIRST_SEEN, F.lit(seen).cast("date"))
    )


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


def indexed(rows: DataFrame, customers: DataFrame, products: DataFrame) -> DataFrame:
    """``rows`` with the customers' and products' ALS indices (rows without either are
    dropped)."""
    return rows.join(
        customers.select(c.CUSTOMER_ID, c.CUSTOMER_INDEX), c.CUSTOMER_ID, "inner"
    ).join(products.select(c.PRODUCT_ID, c.PRODUCT_INDEX), c.PRODUCT_ID, "inner")

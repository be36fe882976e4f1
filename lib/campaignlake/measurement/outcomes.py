"""Who was in each campaign, and what they did in its attribution window.

A campaign's assignment is its audience: the treatment (contacted) and control (held out)
customers. Campaigns built by campaignlake take it from ``gold/campaign_audiences``; campaigns
known only from the CRM's campaign history take it from ``silver/campaign_contacts`` (its
``group`` column). The outcome is read from behaviour, the same way for both groups, because a
control customer was never contacted and has no attributed response: a customer *converted*
when the clickstream has a purchase by them in ``[window_start, window_end)`` (of a product of
the campaign's category, with the ``category_purchase`` outcome), and their *revenue* is the
sum of those purchases' revenue (:func:`~campaignlake.frames.purchase_revenue`: the amount
when the collector sends one, else price × quantity). The window starts when the campaign
was sent (its first send, for every member of either group) and lasts the attribution days.
"""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.frames import purchase_revenue

PURCHASE = "purchase"
WINDOW_START = "window_start"
ATTRIBUTED = "attributed"


def _window(start: Column, attribution_days: int) -> Column:
    return start + F.make_interval(days=F.lit(attribution_days))


def campaign_assignments(
    contacts: DataFrame,
    audiences: DataFrame | None,
    *,
    attribution_days: int,
    closed_by: datetime,
    category_pattern: str,
) -> DataFrame:
    """One row per (campaign, customer) of every campaign whose window closed by ``closed_by``.

    Parameters
    ----------
    contacts
        ``silver/campaign_contacts``: the campaign history, contacts and held-out customers.
    audiences
        ``gold/campaign_audiences`` or None. A campaign found here takes its groups from here
        (the history would only know its contacts); its window starts at its send date, 00:00
        UTC.

    Returns
    -------
    DataFrame
        ``campaign_id``, ``channel``, ``customer_id``, ``group``, ``window_start``,
        ``window_end``, ``campaign_category`` (the first group of ``category_pattern`` in the
        id, null when it does not match), ``rfm_segment`` and ``decile`` (audiences only),
        ``attributed`` (1 when the history credits the contact with a conversion in the
        window, else 0).
    """
    history = contacts.where(F.col(c.SENT_AT).isNotNull()).withColumn(
        WINDOW_START, F.min(c.SENT_AT).over(Window.partitionBy(c.CAMPAIGN_ID))
    )
    converted = F.col(c.CONVERTED_AT)
    history = history.select(
        c.CAMPAIGN_ID,
        c.CHANNEL,
        c.CUSTOMER_ID,
        F.coalesce(F.col(c.GROUP), F.lit(c.TREATMENT)).alias(c.GROUP),
        WINDOW_START,
        F.lit(None).cast("string").alias(c.RFM_SEGMENT),
        F.lit(None).cast("int").alias(c.DECILE),
        F.coalesce(
            (converted >= F.col(WINDOW_START))
            & (converted < _window(F.col(WINDOW_START), attribution_days)),
            F.lit(False),
        )
        .cast("int")
        .alias(ATTRIBUTED),
    )
    if audiences is not None:
        built = audiences.select(
            c.CAMPAIGN_ID,
            c.CHANNEL,
            c.CUSTOMER_ID,
            c.GROUP,
            F.to_timestamp(F.col(c.SEND_DATE)).alias(WINDOW_START),
            c.RFM_SEGMENT,
            c.DECILE,
        )
        credited = history.where(F.col(ATTRIBUTED) == 1).select(
            c.CAMPAIGN_ID, c.CUSTOMER_ID, ATTRIBUTED
        )
        built = built.join(credited, [c.CAMPAIGN_ID, c.CUSTOMER_ID], "left").fillna(
            0, subset=[ATTRIBUTED]
        )
        history = history.join(
            built.select(c.CAMPAIGN_ID).distinct(), c.CAMPAIGN_ID, "left_anti"
        ).unionByName(built)
    window_end = _window(F.col(WINDOW_START), attribution_days)
    category = F.regexp_extract(F.col(c.CAMPAIGN_ID), category_pattern, 1)
    return (
        history.withColumn(c.WINDOW_END, window_end)
        .withColumn(c.CAMPAIGN_CATEGORY, F.when(category != "", category))
        .where(F.col(c.WINDOW_END) <= F.lit(closed_by))
    )


def behaviour_outcomes(
    assignments: DataFrame, events: DataFrame, products: DataFrame, *, category_only: bool
) -> DataFrame:
    """``assignments`` with ``converted`` (0/1) and ``revenue`` (double, 0 without a purchase)
    from the purchases in each row's window.

    Parameters
    ----------
    events
        ``bronze/clickstream_events`` (its purchases are used).
    products
        ``silver/products``: the category of each purchased product.
    category_only
        Count only purchases in the row's ``campaign_category`` (all when it is null).
    """
    categories = products.select(
        F.col(c.PRODUCT_ID).alias("__product"), F.col(c.CATEGORY).alias("__category")
    )
    purchases = (
        events.where((F.col(c.EVENT_TYPE) == F.lit(PURCHASE)) & F.col(c.CUSTOMER_ID).isNotNull())
        .join(categories, F.col(c.PRODUCT_ID) == F.col("__product"), "left")
        .select(
            F.col(c.CUSTOMER_ID).alias("__customer"),
            F.col(c.EVENT_TS).alias("__ts"),
            "__category",
            F.coalesce(purchase_revenue(), F.lit(0)).cast("double").alias("__amount"),
        )
    )
    keys = [c.CAMPAIGN_ID, c.CUSTOMER_ID]
    inside = (
        (F.col("__customer") == F.col(c.CUSTOMER_ID))
        & (F.col("__ts") >= F.col(WINDOW_START))
        & (F.col("__ts") < F.col(c.WINDOW_END))
    )
    if category_only:
        inside = inside & (
            F.col(c.CAMPAIGN_CATEGORY).isNull()
            | (F.col("__category") == F.col(c.CAMPAIGN_CATEGORY))
        )
    bought = (
        assignments.select(*keys, WINDOW_START, c.WINDOW_END, c.CAMPAIGN_CATEGORY)
        .join(purchases, inside, "inner")
        .groupBy(*keys)
        .agg(F.sum("__amount").alias(c.REVENUE))
        .withColumn(c.CONVERTED, F.lit(1))
    )
    return (
        assignments.join(bought, keys, "left")
        .fillna(0, subset=[c.CONVERTED])
        .fillna(0.0, subset=[c.REVENUE])
    )

"""Point-in-time customer features: one row per (customer, cutoff).

Every feature is computed from what was known strictly before a cutoff timestamp: events with
``event_ts < cutoff``, campaign contacts and responses before it, and the newest CRM version
updated before it. The daily table uses the midnight after the as-of date as the cutoff (so
everything *on* the as-of date counts); training rows use each contact's send time, so a
contact's own response can never leak into its features. Both go through
:func:`customer_features`, so training and scoring compute features the same way.

Windows are counted back from the cutoff: an event is "in the 30-day window" when
``cutoff - 30 days <= event_ts < cutoff``. Sessions are assigned to windows by their first
event. Counts without activity are 0; rates without a denominator and "days since" without an
event are null.
"""

from __future__ import annotations

from datetime import date, datetime

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DecimalType,
    LongType,
)

from campaignlake import columns as c
from campaignlake.feature_set import (
    AGE_BAND,
    CATEGORY_INTERACTIONS,
    DAYS_SINCE_LAST_PURCHASE,
    DAYS_SINCE_LAST_VISIT,
    DELETION_REQUESTED,
    DISTINCT_CATEGORIES,
    FAVOURITE_CATEGORY,
    HAS_PHONE,
    REVIEW_SENTIMENT_MEAN,
    SESSION_COUNTS,
    TENURE_DAYS,
    FeatureSet,
    attribute_column,
    topic_affinity,
    windowed,
)
from campaignlake.frames import purchase_revenue

AGE_BANDS = ((25, "18-24"), (35, "25-34"), (45, "35-44"), (55, "45-54"), (65, "55-64"))
OLDEST_BAND = "65+"
#: Event types that express interest in a product's category.
INTEREST_EVENTS = ("product_view", "add_to_cart", "purchase")

_SESSION = "__session"
_START = "__start"
_N = "__n_"
_HAS_CART = "__has_cart"
_HAS_PURCHASE = "__has_purchase"
_LAST_PURCHASE = "__last_purchase"
_SESSION_REVENUE = "__revenue"
_MEDIUM = "__medium"
_AGE = "__age_days"


def customers_as_of(history: DataFrame, cutoff: datetime) -> DataFrame:
    """``customer_id`` and ``cutoff_ts`` of every customer with a CRM version before
    ``cutoff``: the population of a daily feature table."""
    return (
        history.where(F.col(c.UPDATED_AT) < F.lit(cutoff))
        .select(c.CUSTOMER_ID)
        .distinct()
        .withColumn(c.CUTOFF_TS, F.lit(cutoff).cast("timestamp"))
    )


def customer_features(
    cutoffs: DataFrame,
    *,
    events: DataFrame,
    products: DataFrame,
    contacts: DataFrame,
    history: DataFrame,
    deletion_requests: DataFrame,
    feature_set: FeatureSet,
    reviews: DataFrame | None = None,
    product_topics: DataFrame | None = None,
) -> DataFrame:
    """Features of each (customer, cutoff) in ``cutoffs``, from data strictly before the cutoff.

    Parameters
    ----------
    cutoffs
        ``customer_id``, ``cutoff_ts`` and any key columns to carry along (they are kept).
        One output row per input row; customers without any activity get zeros and nulls.
    events
        ``bronze/clickstream_events``; events without a customer_id are not used.
    products
        ``silver/products`` (product → category).
    contacts
        ``silver/campaign_contacts``.
    history
        ``silver/customer_history``: every CRM version of every customer.
    deletion_requests
        ``silver/deletion_requests``.
    feature_set
        Which features to compute.
    reviews
        ``customer_id``, ``rating``, ``created_at`` and ``sentiment`` (null when not scored)
        of every review (None: no review features, zeros and nulls).
    product_topics
        ``product_id`` → ``topic_distribution`` (``gold/product_topics``; None: no topic
        affinity).

    Returns
    -------
    DataFrame
        ``cutoffs``' columns followed by :meth:`FeatureSet.columns`, in that order.
    """
    keys = cutoffs.select(c.CUSTOMER_ID, c.CUTOFF_TS).distinct()
    # Joined to the cutoffs once; sessions and category interest both read it.
    visible = _before_cutoff(
        events.where(F.col(c.CUSTOMER_ID).isNotNull()), keys, c.EVENT_TS, feature_set.horizon
    )
    activity = _session_features(_sessions(visible), feature_set)
    interests = _category_features(visible, products, feature_set)
    email = _contact_features(keys, contacts, feature_set)
    crm = _crm_features(keys, history, deletion_requests, feature_set)
    joined = (
        cutoffs.join(activity, on=[c.CUSTOMER_ID, c.CUTOFF_TS], how="left")
        .join(interests, on=[c.CUSTOMER_ID, c.CUTOFF_TS], how="left")
        .join(email, on=[c.CUSTOMER_ID, c.CUTOFF_TS], how="left")
        .join(crm, on=[c.CUSTOMER_ID, c.CUTOFF_TS], how="left")
    )
    if product_topics is not None and feature_set.topics:
        topics = _topic_features(visible, product_topics, feature_set)
        joined = joined.join(topics, on=[c.CUSTOMER_ID, c.CUTOFF_TS], how="left")
    if reviews is not None:
        written = _review_features(keys, reviews, feature_set)
        joined = joined.join(written, on=[c.CUSTOMER_ID, c.CUTOFF_TS], how="left")
    missing = [
        F.lit(None).cast(data_type).alias(name)
        for name, data_type, _ in feature_set.columns()
        if name not in joined.columns
    ]
    joined = joined.select("*", *missing)
    zero_when_missing = {DISTINCT_CATEGORIES: F.lit(0), DELETION_REQUESTED: F.lit(False)}
    outputs = []
    for name, data_type, _ in feature_set.columns():
        value = F.col(name)
        if isinstance(data_type, (LongType, DecimalType)):
            value = F.coalesce(value, F.lit(0))
        elif name in zero_when_missing:
            value = F.coalesce(value, zero_when_missing[name])
        outputs.append(value.cast(data_type).alias(name))
    return joined.select(*cutoffs.columns, *outputs)


def _in_window(days: int) -> Column:
    """In ``[cutoff − days, cutoff)``: ages run from just above 0 to exactly ``days``."""
    return F.col(_AGE) <= F.lit(days)


def _before_cutoff(rows: DataFrame, keys: DataFrame, ts: str, horizon: int) -> DataFrame:
    """``rows`` of the keys' customers, once per cutoff, whose ``ts`` lies in
    ``[cutoff − horizon days, cutoff)``."""
    cutoff = F.col(c.CUTOFF_TS)
    return rows.join(keys, on=c.CUSTOMER_ID, how="inner").where(
        (F.col(ts) < cutoff) & (F.col(ts) >= cutoff - F.make_interval(days=F.lit(horizon)))
    )


def _days_before_cutoff(ts: Column) -> Column:
    return (F.unix_seconds(F.col(c.CUTOFF_TS)) - F.unix_seconds(ts)) / 86400.0


def _sessions(visible_events: DataFrame) -> DataFrame:
    """One row per (customer, cutoff, session) of the events visible at the cutoff."""
    ev = visible_events
    is_purchase = F.col(c.EVENT_TYPE) == "purchase"
    line_revenue = purchase_revenue()
    counts = [
        F.count_if(F.col(c.EVENT_TYPE) == event_type).alias(_N + event_type)
        for event_type in SESSION_COUNTS.values()
        if event_type
    ]
    return (
        ev.groupBy(c.CUSTOMER_ID, c.CUTOFF_TS, c.SESSION_ID)
        .agg(
            F.min(c.EVENT_TS).alias(_START),
            *counts,
            F.max((F.col(c.EVENT_TYPE) == "add_to_cart").cast("int")).alias(_HAS_CART),
            F.max(is_purchase.cast("int")).alias(_HAS_PURCHASE),
            F.max(F.when(is_purchase, F.col(c.EVENT_TS))).alias(_LAST_PURCHASE),
            F.sum(F.when(is_purchase, line_revenue)).alias(_SESSION_REVENUE),
            # The entry's traffic source and device: those of the session's first event.
            F.min_by(F.col(c.UTM_MEDIUM), F.col(c.EVENT_TS)).alias(_MEDIUM),
            F.min_by(F.col(c.DEVICE), F.col(c.EVENT_TS)).alias(c.DEVICE),
        )
        .withColumn(_AGE, _days_before_cutoff(F.col(_START)))
    )


def _share(part: Column, whole: Column) -> Column:
    return F.when(whole > 0, part / whole)


def _session_features(sessions: DataFrame, fs: FeatureSet) -> DataFrame:
    aggs: list[Column] = [
        # The cutoff is a grouping key, so it can stand beside the aggregate.
        F.floor(_days_before_cutoff(F.max(_LAST_PURCHASE)))
        .cast("int")
        .alias(DAYS_SINCE_LAST_PURCHASE),
        F.floor(F.min(F.col(_AGE))).cast("int").alias(DAYS_SINCE_LAST_VISIT),
    ]
    for w in fs.windows:
        inside = _in_window(w)
        purchased = inside & (F.col(_HAS_PURCHASE) == 1)
        aggs += [
            F.count_if(purchased).alias(windowed("orders", w)),
            F.sum(F.when(purchased, F.col(_SESSION_REVENUE))).alias(windowed("revenue", w)),
            F.count_if(inside).alias(windowed("sessions", w)),
            *[
                F.sum(F.when(inside, F.col(_N + event_type))).alias(windowed(name, w))
                for name, event_type in SESSION_COUNTS.items()
                if event_type
            ],
            F.count_if(inside & (F.col(_HAS_CART) == 1) & (F.col(_HAS_PURCHASE) == 0)).alias(
                windowed("cart_abandonments", w)
            ),
        ]
    total = F.count(F.lit(1))
    aggs += [
        *[
            _share(F.count_if(F.col(c.DEVICE) == d), total).alias(f"device_share_{d}")
            for d in fs.devices
        ],
        *[
            _share(F.count_if(F.col(_MEDIUM) == m), total).alias(f"traffic_share_{m}")
            for m in fs.mediums
        ],
        _share(F.count_if(F.col(_MEDIUM).isNull()), total).alias("traffic_share_direct"),
    ]
    horizon = fs.horizon
    return (
        sessions.groupBy(c.CUSTOMER_ID, c.CUTOFF_TS)
        .agg(*aggs)
        .withColumn(
            windowed("avg_order_value", horizon),
            _share(
                F.col(windowed("revenue", horizon)).cast("double"),
                F.col(windowed("orders", horizon)),
            ),
        )
    )


def _category_features(visible_events: DataFrame, products: DataFrame, fs: FeatureSet) -> DataFrame:
    """Interest per category over the longest window: product views, add-to-carts and
    purchases, counted per category of the product."""
    catalog = products.select(c.PRODUCT_ID, c.CATEGORY)
    per_category = (
        visible_events.where(F.col(c.EVENT_TYPE).isin(*INTEREST_EVENTS))
        .join(F.broadcast(catalog), on=c.PRODUCT_ID, how="inner")
        .groupBy(c.CUSTOMER_ID, c.CUTOFF_TS, c.CATEGORY)
        .agg(F.count(F.lit(1)).alias("__count"))
    )
    total = F.sum("__count")
    return per_category.groupBy(c.CUSTOMER_ID, c.CUTOFF_TS).agg(
        *[
            _share(F.sum(F.when(F.col(c.CATEGORY) == cat, F.col("__count"))), total)
            .cast("double")
            .alias(f"affinity_{cat}")
            for cat in fs.top_categories
        ],
        # The most interacted category; ties go to the alphabetically first one.
        F.min_by(F.col(c.CATEGORY), F.struct(-F.col("__count"), F.col(c.CATEGORY))).alias(
            FAVOURITE_CATEGORY
        ),
        F.count(F.lit(1)).cast("int").alias(DISTINCT_CATEGORIES),
        F.map_from_entries(
            F.array_sort(F.collect_list(F.struct(F.col(c.CATEGORY), F.col("__count"))))
        ).alias(CATEGORY_INTERACTIONS),
    )


def _topic_features(
    visible_events: DataFrame, product_topics: DataFrame, fs: FeatureSet
) -> DataFrame:
    """Interest per text topic over the longest window: the mean topic distribution of the
    products the customer viewed, put in the cart or bought (one event, one vote). Topics
    beyond the model's k stay null."""
    topics = product_topics.select(c.PRODUCT_ID, c.TOPIC_DISTRIBUTION)
    interest = visible_events.where(F.col(c.EVENT_TYPE).isin(*INTEREST_EVENTS)).join(
        F.broadcast(topics), on=c.PRODUCT_ID, how="inner"
    )
    weights = F.col(c.TOPIC_DISTRIBUTION)
    return interest.groupBy(c.CUSTOMER_ID, c.CUTOFF_TS).agg(
        *[
            _exact_mean(F.try_element_at(weights, F.lit(t + 1))).alias(topic_affinity(t))
            for t in range(fs.topics)
        ]
    )


def _exact_mean(value: Column) -> Column:
    """The mean of a double column, summed as decimals: a sum of doubles depends on the order
    the rows arrive in (partitioning, the table engine), and features must not."""
    return F.avg(value.cast("decimal(30,18)")).cast("double")


def _review_features(keys: DataFrame, reviews: DataFrame, fs: FeatureSet) -> DataFrame:
    """Reviews written in the longest window before the cutoff, those rated 1–2 in the
    negative-review window, and the mean predicted sentiment of the window's reviews."""
    age = _days_before_cutoff(F.col(c.CREATED_AT))
    written = (
        reviews.select(c.CUSTOMER_ID, c.CREATED_AT, c.RATING, c.SENTIMENT)
        .join(keys, on=c.CUSTOMER_ID, how="inner")
        .where((F.col(c.CREATED_AT) < F.col(c.CUTOFF_TS)) & (age <= F.lit(fs.horizon)))
    )
    negative = (F.col(c.RATING) <= 2) & (age <= F.lit(fs.negative_review_days))
    return written.groupBy(c.CUSTOMER_ID, c.CUTOFF_TS).agg(
        F.count(F.lit(1)).alias(windowed("reviews", fs.horizon)),
        F.count(F.when(negative, 1)).alias(windowed("negative_reviews", fs.negative_review_days)),
        _exact_mean(F.col(c.SENTIMENT)).alias(REVIEW_SENTIMENT_MEAN),
    )


def _contact_features(keys: DataFrame, contacts: DataFrame, fs: FeatureSet) -> DataFrame:
    """Campaign contacts and email responses per window; a response counts only when it
    happened before the cutoff. Held-out (control) rows were never contacted."""
    sent = contacts.where(~F.col(c.GROUP).eqNullSafe(F.lit(c.CONTROL)))
    before = _before_cutoff(sent, keys, c.SENT_AT, fs.horizon).withColumn(
        _AGE, _days_before_cutoff(F.col(c.SENT_AT))
    )
    email = F.col(c.CHANNEL) == "email"
    opened = F.col(c.OPENED_AT) < F.col(c.CUTOFF_TS)
    clicked = F.col(c.CLICKED_AT) < F.col(c.CUTOFF_TS)
    aggs: list[Column] = []
    for w in fs.windows:
        inside = _in_window(w)
        sends = F.count_if(inside & email)
        aggs += [
            sends.alias(windowed("email_sends", w)),
            _share(F.count_if(inside & email & opened), sends).alias(
                windowed("email_open_rate", w)
            ),
            _share(F.count_if(inside & email & clicked), sends).alias(
                windowed("email_click_rate", w)
            ),
            F.count_if(inside).alias(windowed("campaign_contacts", w)),
        ]
    return before.groupBy(c.CUSTOMER_ID, c.CUTOFF_TS).agg(*aggs)


def age_band(age: Column) -> Column:
    """Age in years → band label (null when unknown or under 18)."""
    band = F.when(age < 18, F.lit(None).cast("string"))
    for upper, label in AGE_BANDS:
        band = band.when(age < upper, F.lit(label))
    return band.otherwise(F.lit(OLDEST_BAND))


def _crm_features(
    keys: DataFrame, history: DataFrame, deletion_requests: DataFrame, fs: FeatureSet
) -> DataFrame:
    """The newest CRM version updated before the cutoff, and whether a deletion request was
    made before it."""
    fields = [
        c.SIGNUP_DATE, c.BIRTH_YEAR, c.LOYALTY_TIER, c.COUNTRY, c.EMAIL_OPT_IN, c.SMS_OPT_IN,
        c.PUSH_OPT_IN, c.EMAIL_VALID, c.PHONE, c.ATTRIBUTES,
    ]  # fmt: skip
    newest_first = F.struct(F.col(c.UPDATED_AT), F.col(c.INGESTED_AT), F.col(c.SOURCE_FILE))
    state = (
        history.join(keys, on=c.CUSTOMER_ID, how="inner")
        .where(F.col(c.UPDATED_AT) < F.col(c.CUTOFF_TS))
        .groupBy(c.CUSTOMER_ID, c.CUTOFF_TS)
        .agg(F.max_by(F.struct(*fields), newest_first).alias("__crm"))
        .select(c.CUSTOMER_ID, c.CUTOFF_TS, "__crm.*")
    )
    requested = (
        deletion_requests.join(keys, on=c.CUSTOMER_ID, how="inner")
        .where(F.col(c.REQUESTED_AT) < F.col(c.CUTOFF_TS))
        .select(c.CUSTOMER_ID, c.CUTOFF_TS, F.lit(True).alias(DELETION_REQUESTED))
        .distinct()
    )
    cutoff_date = F.to_date(F.col(c.CUTOFF_TS) - F.expr("INTERVAL 1 MICROSECOND"))
    attributes = [
        (
            F.expr(f"try_cast(try_element_at(`{c.ATTRIBUTES}`, '{name}') AS DOUBLE)")
            if kind == "numeric"
            else F.try_element_at(F.col(c.ATTRIBUTES), F.lit(name))
        ).alias(attribute_column(name))
        for name, kind in fs.attributes
    ]
    return state.join(requested, on=[c.CUSTOMER_ID, c.CUTOFF_TS], how="left").select(
        c.CUSTOMER_ID,
        c.CUTOFF_TS,
        F.datediff(cutoff_date, F.col(c.SIGNUP_DATE)).alias(TENURE_DAYS),
        F.col(c.LOYALTY_TIER),
        F.col(c.COUNTRY),
        age_band(F.year(cutoff_date) - F.col(c.BIRTH_YEAR)).alias(AGE_BAND),
        F.col(c.EMAIL_OPT_IN),
        F.col(c.SMS_OPT_IN),
        F.col(c.PUSH_OPT_IN),
        F.col(c.EMAIL_VALID),
        F.col(c.PHONE).isNotNull().alias(HAS_PHONE),
        F.col(DELETION_REQUESTED),
        *attributes,
    )


def daily_features(features: DataFrame, as_of: date) -> DataFrame:
    """Rows of :func:`customer_features` for one as-of date, in the table's schema."""
    return features.drop(c.CUTOFF_TS).withColumn(c.AS_OF_DATE, F.lit(as_of).cast("date"))

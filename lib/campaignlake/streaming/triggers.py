"""Real-time triggers, as pure transforms: bronze events → per-customer state on event time →
fired or cancelled candidates → products attached → suppressed → control group split →
``gold/trigger_events`` rows.

The state machine (:func:`candidates`) runs per customer in Spark's
``applyInPandasWithState``: a customer's events are a sequence whose meaning depends on what
came before (an ``add_to_cart`` is cancelled by a later ``purchase``), which no built-in
aggregation expresses. Its timers are on event time: a pending trigger fires when the
watermark (the latest event time seen, minus ``streaming.watermark_minutes``) passes its due
time, or as soon as a later event of the same customer shows it was due — so the outcome does
not depend on how the events were cut into micro-batches. A customer's state is removed when
nothing is pending and no view counter is open, so the state holds only customers active
within the longest rule delay plus the watermark; events older than the watermark are dropped
by Spark and counted (``numRowsDroppedByWatermark``). A deletion request reaches the state
machine as an input row of its own (:func:`with_deletion_signals`) and removes the customer's
state, unfired.

Suppression follows the batch audiences (:mod:`campaignlake.audiences.build`), in this order:
``erased``, ``global_opt_out``, ``no_channel_consent``, ``invalid_address``, ``no_products``,
``expired``, ``quiet_hours``, ``frequency_cap``. A trigger is decided when its micro-batch
runs (``committed_at``, the time of sending): one due longer than
``streaming.max_trigger_age_minutes`` before that (a backlog read after a restart, a cart
weeks old) expires instead of firing, and quiet hours are those of the time of sending, not of
the due time. Consent and addresses come from the newest CRM state read for each micro-batch.
The frequency cap counts the campaign history, the batch audiences'
treatment rows and earlier triggers sent, like a campaign's cap; two triggers of one customer
in the same micro-batch count against each other. A suppressed ``erased`` row keeps no customer
id. The control group is a deterministic hash of (rule, customer): the same customers are
held out by a rule in every run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd
from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.streaming.state import GroupState, GroupStateTimeout
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from campaignlake import columns as c
from campaignlake.audiences.build import (
    CAP_WINDOW_DAYS,
    CHANNEL_CONSENT,
    CONTROL,
    ERASED,
    FREQUENCY_CAP,
    GLOBAL_OPT_OUT,
    INVALID_ADDRESS,
    NO_CHANNEL_CONSENT,
    TREATMENT,
    valid_address,
)
from campaignlake.schemas import TRIGGER_EVENTS
from campaignlake.streaming.rules import (
    BROWSE_ABANDONMENT,
    CART_ABANDONMENT,
    POST_PURCHASE,
    TriggerRule,
)

FIRED = "fired"
CANCELLED = "cancelled"
NO_PRODUCTS = "no_products"
QUIET_HOURS = "quiet_hours"
EXPIRED = "expired"
#: Suppression reasons, in the order they are checked.
TRIGGER_SUPPRESSION_REASONS = (
    ERASED, GLOBAL_OPT_OUT, NO_CHANNEL_CONSENT, INVALID_ADDRESS, NO_PRODUCTS, EXPIRED,
    QUIET_HOURS, FREQUENCY_CAP,
)  # fmt: skip

#: The event types the state machine reads.
TRIGGER_EVENT_TYPES = ("product_view", "add_to_cart", "remove_from_cart", "checkout", "purchase")
#: The state machine's input for a deletion request (:func:`with_deletion_signals`): the customer's
#: state goes, with nothing fired.
FORGET = "deletion_request"

_EVENT_MS = "event_ms"
_CAUSE_MS = "cause_ms"
_FIRED_MS = "fired_ms"
_HOLDOUT_BUCKETS = 10000

#: What the state machine emits per fired or cancelled trigger.
CANDIDATES = StructType(
    [
        StructField(c.RULE_ID, StringType()),
        StructField(c.TRIGGER_KIND, StringType()),
        StructField(c.CUSTOMER_ID, StringType()),
        StructField(c.CAUSE_EVENT_ID, StringType()),
        StructField(_CAUSE_MS, LongType()),
        StructField(_FIRED_MS, LongType()),
        StructField(c.OUTCOME, StringType()),
        StructField(c.CATEGORY, StringType()),
        StructField(c.PRODUCT_IDS, ArrayType(StringType())),
    ]
)
_STATE = StructType([StructField("memory", StringType())])

#: A rule's settings as columns (joined to its candidates).
RULE_COLUMNS = StructType(
    [
        StructField(c.RULE_ID, StringType()),
        StructField(c.CHANNEL, StringType()),
        StructField("products_wanted", IntegerType()),
        StructField("control_fraction", DoubleType()),
        StructField("cap_min_days", IntegerType()),
        StructField("cap_max_30d", IntegerType()),
        StructField("cap_scope", StringType()),
        StructField("quiet_start", IntegerType()),
        StructField("quiet_end", IntegerType()),
        StructField("quiet_timezone", StringType()),
    ]
)


def trigger_inputs(
    events: DataFrame, products: DataFrame, max_ahead_of_arrival_minutes: int
) -> DataFrame:
    """The events the rules read (known customers only), with each product's category and the
    event time in epoch milliseconds. An event time more than ``max_ahead_of_arrival_minutes``
    after the event's arrival (``ingested_at``) is taken as that: the watermark follows the
    largest event time seen, and one device clock hours ahead would otherwise fire every
    pending trigger at once and turn the next hours' on-time events into late ones.

    Parameters
    ----------
    events
        ``bronze/clickstream_events`` (a stream or a table).
    products
        ``silver/products``.
    """
    categories = products.select(c.PRODUCT_ID, c.CATEGORY).dropDuplicates([c.PRODUCT_ID])
    return (
        events.where(
            F.col(c.EVENT_TYPE).isin(*TRIGGER_EVENT_TYPES) & F.col(c.CUSTOMER_ID).isNotNull()
        )
        .select(
            c.EVENT_ID,
            c.EVENT_TYPE,
            F.least(
                F.col(c.EVENT_TS),
                F.col(c.INGESTED_AT) + F.make_interval(mins=F.lit(max_ahead_of_arrival_minutes)),
            ).alias(c.EVENT_TS),
            c.CUSTOMER_ID,
            c.SESSION_ID,
            c.PRODUCT_ID,
        )
        .join(F.broadcast(categories), on=c.PRODUCT_ID, how="left")
        .withColumn(_EVENT_MS, F.unix_millis(F.col(c.EVENT_TS)))
    )


def with_deletion_signals(inputs: DataFrame, deletion_requests: DataFrame) -> DataFrame:
    """:func:`trigger_inputs` with a row of event type :data:`FORGET` per request of
    ``silver/deletion_requests`` (a stream), its other columns null: when one reaches the
    state machine, the customer's pending triggers and viewed products leave the state store
    at once instead of staying until their timers run out. No event time: a request neither
    moves the watermark nor arrives late (Spark drops rows older than the watermark; a null
    time is never older)."""
    signals = deletion_requests.where(F.col(c.CUSTOMER_ID).isNotNull()).select(
        c.CUSTOMER_ID, F.lit(FORGET).alias(c.EVENT_TYPE)
    )
    return inputs.unionByName(signals, allowMissingColumns=True)


def candidates(inputs: DataFrame, rules: list[TriggerRule], watermark_minutes: int) -> DataFrame:
    """Fired and cancelled triggers (:data:`CANDIDATES`) of ``inputs`` (:func:`trigger_inputs`,
    a stream), one row per trigger, keyed by customer with state on event time."""
    return (
        inputs.withWatermark(c.EVENT_TS, f"{watermark_minutes} minutes")
        .groupBy(c.CUSTOMER_ID)
        .applyInPandasWithState(
            customer_state_machine(rules),
            outputStructType=CANDIDATES,
            stateStructType=_STATE,
            outputMode="append",
            timeoutConf=GroupStateTimeout.EventTimeTimeout,
        )
    )


def customer_state_machine(
    rules: list[TriggerRule],
) -> Callable[[Any, Iterator[pd.DataFrame], GroupState], Iterator[pd.DataFrame]]:
    """The function ``applyInPandasWithState`` calls per customer: it reads the customer's
    new events (or a timer), updates the pending triggers and emits those that fired or
    were cancelled."""
    settings = [
        {"id": r.id, "kind": r.kind, "delay_ms": r.delay_minutes * 60_000, "views": r.min_views}
        for r in rules
    ]
    browse_window_ms = max(
        [s["delay_ms"] for s in settings if s["kind"] == BROWSE_ABANDONMENT], default=0
    )

    def advance(
        key: Any, batches: Iterator[pd.DataFrame], state: GroupState
    ) -> Iterator[pd.DataFrame]:
        customer = key[0]
        memory = json.loads(state.get[0]) if state.exists else {"pending": [], "views": {}}
        emitted: list[dict[str, Any]] = []
        if not state.hasTimedOut:
            frames = list(batches)
            events = frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
            if (events[c.EVENT_TYPE] == FORGET).any():
                # A deletion request: what the state holds of the customer goes, unfired.
                state.remove()
                return
            if len(events) > 1:
                events = events.sort_values([_EVENT_MS, c.EVENT_ID], kind="stable")
            for event in events.to_dict("records"):
                _fire_due(memory, int(event[_EVENT_MS]), customer, emitted)
                _apply(memory, event, settings, customer, emitted)
        watermark = state.getCurrentWatermarkMs()
        _fire_due(memory, watermark, customer, emitted)
        memory["views"] = {
            k: v for k, v in memory["views"].items() if v["last_ms"] + browse_window_ms >= watermark
        }
        if not memory["pending"] and not memory["views"]:
            state.remove()
        else:
            state.update((json.dumps(memory),))
            deadlines = [p["due_ms"] for p in memory["pending"]] + [
                v["last_ms"] + browse_window_ms for v in memory["views"].values()
            ]
            state.setTimeoutTimestamp(max(min(deadlines), watermark + 1))
        # Most calls emit nothing: no frame at all spares its conversion to Arrow.
        if emitted:
            yield pd.DataFrame(emitted, columns=CANDIDATES.fieldNames())

    return advance


def _emit(
    pending: dict[str, Any], outcome: str, at_ms: int, customer: str, out: list[dict[str, Any]]
) -> None:
    out.append(
        {
            c.RULE_ID: pending["rule"],
            c.TRIGGER_KIND: pending["kind"],
            c.CUSTOMER_ID: customer,
            c.CAUSE_EVENT_ID: pending["cause"],
            _CAUSE_MS: pending["cause_ms"],
            _FIRED_MS: at_ms,
            c.OUTCOME: outcome,
            c.CATEGORY: pending.get("category"),
            c.PRODUCT_IDS: list(pending["products"]),
        }
    )


def _fire_due(memory: dict[str, Any], now_ms: int, customer: str, out: list[dict]) -> None:
    """Fire every pending trigger due strictly before ``now_ms`` (event time)."""
    keep = []
    for pending in memory["pending"]:
        if pending["due_ms"] < now_ms:
            _emit(pending, FIRED, pending["due_ms"], customer, out)
        else:
            keep.append(pending)
    memory["pending"] = keep


def _cancel(
    memory: dict[str, Any], kind: str, at_ms: int, customer: str, out: list[dict], **match: Any
) -> None:
    keep = []
    for pending in memory["pending"]:
        if pending["kind"] == kind and all(pending.get(k) == v for k, v in match.items()):
            _emit(pending, CANCELLED, at_ms, customer, out)
        else:
            keep.append(pending)
    memory["pending"] = keep


def _apply(
    memory: dict[str, Any],
    event: dict[str, Any],
    settings: list[dict[str, Any]],
    customer: str,
    out: list[dict],
) -> None:
    """One event's effect on the customer's pending triggers and view counters."""
    kind, at, product = event[c.EVENT_TYPE], int(event[_EVENT_MS]), event[c.PRODUCT_ID]
    session = event[c.SESSION_ID]
    if kind in ("checkout", "purchase"):
        _cancel(memory, CART_ABANDONMENT, at, customer, out)
    if kind == "add_to_cart":
        _cancel(memory, BROWSE_ABANDONMENT, at, customer, out)
        memory["views"] = {k: v for k, v in memory["views"].items() if v["session"] != session}
    if kind == "remove_from_cart" and product is not None:
        _remove_from_carts(memory, product, at, customer, out)
    counter = _count_view(memory, event) if kind == "product_view" else None
    for rule in settings:
        if rule["kind"] == CART_ABANDONMENT and kind == "add_to_cart" and product is not None:
            _start_or_extend(memory, rule, event, at, [product])
        elif rule["kind"] == POST_PURCHASE and kind == "purchase" and product is not None:
            _start(memory, rule, event, at, [product], None)
        elif rule["kind"] == BROWSE_ABANDONMENT and counter is not None:
            _browse(memory, rule, event, counter)


def _remove_from_carts(
    memory: dict[str, Any], product: str, at: int, customer: str, out: list[dict]
) -> None:
    """A removed product leaves the pending carts; a cart left empty is cancelled."""
    for pending in memory["pending"]:
        if pending["kind"] == CART_ABANDONMENT and product in pending["products"]:
            pending["products"].remove(product)
    emptied = [p for p in memory["pending"] if p["kind"] == CART_ABANDONMENT and not p["products"]]
    for pending in emptied:
        _emit(pending, CANCELLED, at, customer, out)
    memory["pending"] = [p for p in memory["pending"] if p not in emptied]


def _count_view(memory: dict[str, Any], event: dict[str, Any]) -> dict[str, Any] | None:
    """Count a product view in its (session, category); None when it has neither."""
    session, category, product = event[c.SESSION_ID], event[c.CATEGORY], event[c.PRODUCT_ID]
    if session is None or category is None:
        return None
    at = int(event[_EVENT_MS])
    counter = memory["views"].setdefault(
        f"{session}\u0000{category}",
        {"session": session, "category": category, "count": 0, "last_ms": at, "products": []},
    )
    counter["count"] += 1
    counter["last_ms"] = max(counter["last_ms"], at)
    if product is not None and product not in counter["products"]:
        counter["products"].insert(0, product)
    return counter


def _browse(
    memory: dict[str, Any], rule: dict[str, Any], event: dict[str, Any], counter: dict[str, Any]
) -> None:
    """A browse rule: the view that reaches ``min_views`` starts it; later views in the same
    session and category restart its wait."""
    at = int(event[_EVENT_MS])
    session, category = counter["session"], counter["category"]
    open_ = [
        p
        for p in memory["pending"]
        if p["rule"] == rule["id"] and p["session"] == session and p["category"] == category
    ]
    if open_:
        open_[0]["due_ms"] = max(open_[0]["due_ms"], at + rule["delay_ms"])
        open_[0]["products"] = list(counter["products"])
    elif counter["count"] == rule["views"]:
        _start(memory, rule, event, at, list(counter["products"]), category)


def _start(
    memory: dict[str, Any],
    rule: dict[str, Any],
    event: dict[str, Any],
    at: int,
    products: list[str],
    category: str | None,
) -> None:
    memory["pending"].append(
        {
            "rule": rule["id"],
            "kind": rule["kind"],
            "cause": event[c.EVENT_ID],
            "cause_ms": at,
            "due_ms": at + rule["delay_ms"],
            "products": products,
            "category": category,
            "session": event[c.SESSION_ID],
        }
    )


def _start_or_extend(
    memory: dict[str, Any], rule: dict[str, Any], event: dict[str, Any], at: int, products: list
) -> None:
    """A cart rule: a further add-to-cart joins the pending cart and restarts its wait."""
    for pending in memory["pending"]:
        if pending["rule"] == rule["id"]:
            pending["products"] = products + [p for p in pending["products"] if p not in products]
            pending["due_ms"] = max(pending["due_ms"], at + rule["delay_ms"])
            return
    _start(memory, rule, event, at, products, None)


def rule_frame(spark: SparkSession, rules: list[TriggerRule]) -> DataFrame:
    """The rules' settings as a small frame (:data:`RULE_COLUMNS`), joined to candidates."""
    rows = []
    for rule in rules:
        quiet = rule.quiet_hours.minutes() if rule.quiet_hours else (None, None)
        rows.append(
            (
                rule.id, rule.channel, rule.products, rule.control_fraction,
                rule.frequency_cap.min_days_since_last_contact,
                rule.frequency_cap.max_contacts_30d, rule.frequency_cap.scope,
                quiet[0], quiet[1], rule.quiet_hours.timezone if rule.quiet_hours else None,
            )
        )  # fmt: skip
    return spark.createDataFrame(rows, RULE_COLUMNS)


def with_trigger_ids(found: DataFrame, rules: DataFrame) -> DataFrame:
    """Candidates (:data:`CANDIDATES`) with their ``trigger_id`` (rule and causing event: the
    same trigger has the same id however often it is computed), timestamps and the rule's
    settings."""
    return (
        found.withColumn(c.TRIGGER_ID, F.concat_ws(":", F.col(c.RULE_ID), F.col(c.CAUSE_EVENT_ID)))
        .withColumn(c.CAUSE_TS, F.timestamp_millis(F.col(_CAUSE_MS)))
        .withColumn(c.FIRED_AT, F.timestamp_millis(F.col(_FIRED_MS)))
        .withColumn(c.FIRED_DATE, F.to_date(F.col(c.FIRED_AT)))
        .drop(_CAUSE_MS, _FIRED_MS)
        .join(F.broadcast(rules), on=c.RULE_ID, how="inner")
    )


def offer_neighbours(similar: DataFrame) -> DataFrame:
    """The neighbours a message may offer for a product: its ALS neighbours (what customers
    also liked), and its text neighbours only when it has no ALS ones (a product launched
    after the recommender was fitted). Rows without a method were written before text
    neighbours existed: they are ALS's."""
    by_factors = similar.where(
        F.coalesce(F.col(c.METHOD), F.lit(c.ALS_METHOD)) == F.lit(c.ALS_METHOD)
    )
    by_text = similar.where(F.col(c.METHOD) == F.lit(c.CONTENT_METHOD)).join(
        by_factors.select(c.PRODUCT_ID).distinct(), c.PRODUCT_ID, "left_anti"
    )
    return by_factors.unionByName(by_text)


def with_offered_products(
    found: DataFrame, recommendations: DataFrame, similar: DataFrame, products: DataFrame
) -> DataFrame:
    """Fired triggers' ``product_ids`` replaced by the products their message offers (at most
    the rule's ``products_wanted``, active products only; see :mod:`.rules` for each kind);
    cancelled ones keep the products that caused them.

    Parameters
    ----------
    recommendations
        The latest day of ``gold/recommendations``.
    similar
        The latest day of ``gold/similar_products``.
    """
    fired = found.where(F.col(c.OUTCOME) == F.lit(FIRED))
    kind = F.col(c.TRIGGER_KIND)
    caused = fired.select(c.TRIGGER_ID, kind, F.posexplode(c.PRODUCT_IDS).alias("__pos", "__cause"))
    from_cart = caused.where(kind == F.lit(CART_ABANDONMENT)).select(
        c.TRIGGER_ID, F.col("__cause").alias(c.PRODUCT_ID), F.lit(0).alias("__tier"),
        F.col("__pos").alias("__order"),
    )  # fmt: skip
    from_similar = (
        caused.where(kind != F.lit(CART_ABANDONMENT))
        .join(similar, F.col("__cause") == similar[c.PRODUCT_ID])
        .select(
            c.TRIGGER_ID, F.col(c.SIMILAR_PRODUCT_ID).alias(c.PRODUCT_ID), F.lit(1).alias("__tier"),
            (F.col("__pos") * 1000 + F.col(c.RANK)).alias("__order"),
        )
    )  # fmt: skip
    in_category = recommendations.join(
        products.select(c.PRODUCT_ID, c.CATEGORY), on=c.PRODUCT_ID
    ).select(c.CUSTOMER_ID, c.CATEGORY, c.PRODUCT_ID, c.RANK)
    from_recommendations = (
        fired.where(kind == F.lit(BROWSE_ABANDONMENT))
        .select(c.TRIGGER_ID, c.CUSTOMER_ID, c.CATEGORY)
        .join(in_category, on=[c.CUSTOMER_ID, c.CATEGORY])
        .select(
            c.TRIGGER_ID, c.PRODUCT_ID, F.lit(0).alias("__tier"), F.col(c.RANK).alias("__order")
        )
    )
    bought = caused.where(kind == F.lit(POST_PURCHASE)).select(
        c.TRIGGER_ID, F.col("__cause").alias(c.PRODUCT_ID)
    )
    active = products.where(F.coalesce(F.col(c.ACTIVE), F.lit(True))).select(c.PRODUCT_ID)
    offered = (
        from_cart.unionByName(from_similar)
        .unionByName(from_recommendations)
        .join(bought, on=[c.TRIGGER_ID, c.PRODUCT_ID], how="left_anti")
        .join(active, on=c.PRODUCT_ID, how="left_semi")
        .groupBy(c.TRIGGER_ID, c.PRODUCT_ID)
        .agg(F.min(F.struct("__tier", "__order")).alias("__key"))
    )
    ranked = offered.withColumn(
        "__n",
        F.row_number().over(Window.partitionBy(c.TRIGGER_ID).orderBy("__key", c.PRODUCT_ID)),
    )
    lists = (
        ranked.join(fired.select(c.TRIGGER_ID, "products_wanted"), on=c.TRIGGER_ID)
        .where(F.col("__n") <= F.col("products_wanted"))
        .groupBy(c.TRIGGER_ID)
        .agg(F.sort_array(F.collect_list(F.struct("__n", c.PRODUCT_ID))).alias("__offer"))
        .select(c.TRIGGER_ID, F.transform("__offer", lambda s: s[c.PRODUCT_ID]).alias("__offer"))
    )
    empty = F.array().cast(ArrayType(StringType()))
    offer = F.when(F.col(c.OUTCOME) == F.lit(FIRED), F.coalesce(F.col("__offer"), empty)).otherwise(
        F.col(c.PRODUCT_IDS)
    )
    return (
        found.join(lists, on=c.TRIGGER_ID, how="left")
        .withColumn(c.PRODUCT_IDS, offer)
        .drop("__offer")
    )


def contact_pressure_at(found: DataFrame, history: DataFrame) -> DataFrame:
    """Per trigger, the latest earlier contact within its cap's look-back and the contacts in
    the 30 days up to its fired date (``last_contact_date``, ``contacts_30d``), from
    ``history`` (``campaign_id, customer_id, channel, contact_date``); only the rule's channel
    when its cap's scope is ``channel``."""
    fired_date = F.col(c.FIRED_DATE)
    lookback = F.greatest(F.lit(CAP_WINDOW_DAYS), F.coalesce(F.col("cap_min_days"), F.lit(0)))
    contacts = history.select(
        F.col(c.CUSTOMER_ID).alias("__customer"), F.col(c.CHANNEL).alias("__channel"),
        c.CONTACT_DATE,
    )  # fmt: skip
    joined = found.select(
        c.TRIGGER_ID, c.CUSTOMER_ID, c.CHANNEL, c.FIRED_DATE, "cap_min_days", "cap_scope"
    ).join(
        contacts,
        on=(F.col(c.CUSTOMER_ID) == F.col("__customer"))
        & F.col(c.CONTACT_DATE).between(F.date_sub(fired_date, lookback), fired_date)
        & ((F.col("cap_scope") == F.lit("all")) | (F.col("__channel") == F.col(c.CHANNEL))),
    )
    return joined.groupBy(c.TRIGGER_ID).agg(
        F.max(c.CONTACT_DATE).alias("last_contact_date"),
        F.count_if(F.col(c.CONTACT_DATE) >= F.date_sub(fired_date, CAP_WINDOW_DAYS)).alias(
            "contacts_30d"
        ),
    )


def _per_channel(values: dict[str, Column], channel: Column) -> Column:
    result: Column = F.lit(False)
    for name, value in reversed(list(values.items())):
        result = F.when(channel == F.lit(name), value).otherwise(result)
    return result


def _in_quiet_hours(sending_at: Column) -> Column:
    local = F.from_utc_timestamp(sending_at, F.col("quiet_timezone"))
    minute = F.hour(local) * 60 + F.minute(local)
    start, end = F.col("quiet_start"), F.col("quiet_end")
    inside = F.when(start < end, (minute >= start) & (minute < end)).otherwise(
        (minute >= start) | (minute < end)
    )
    return F.coalesce(start.isNotNull() & inside, F.lit(False))


def with_trigger_suppression(
    found: DataFrame,
    customers: DataFrame,
    deletion_requests: DataFrame,
    pressure: DataFrame,
    *,
    phone_pattern: str,
    sending_at: Column,
    max_age_minutes: int | None,
) -> DataFrame:
    """Fired triggers with ``suppression_reason`` (the first that applies, see the module
    docstring) and ``group`` (``control``/``treatment``, for those not suppressed); cancelled
    ones get neither.

    Parameters
    ----------
    customers
        ``silver/customers``: the newest consent and addresses.
    deletion_requests
        ``silver/deletion_requests``.
    pressure
        :func:`contact_pressure_at` of ``found``.
    sending_at
        When the triggers are decided and sent: quiet hours are checked at this time, and a
        trigger due more than ``max_age_minutes`` (``None``: no limit) before it expires.
    """
    consent_columns = list(CHANNEL_CONSENT.values())
    crm = customers.select(
        c.CUSTOMER_ID, F.lit(True).alias("__known"), c.EMAIL, c.EMAIL_VALID, c.PHONE,
        *consent_columns,
    )  # fmt: skip
    erased = deletion_requests.select(c.CUSTOMER_ID).distinct().withColumn("__erased", F.lit(1))

    def granted(column: str) -> Column:
        return F.coalesce(F.col(column), F.lit(False))

    any_consent = granted(consent_columns[0])
    for column in consent_columns[1:]:
        any_consent = any_consent | granted(column)
    channel = F.col(c.CHANNEL)
    consented = _per_channel({k: granted(v) for k, v in CHANNEL_CONSENT.items()}, channel)
    addressed = _per_channel({k: valid_address(k, phone_pattern) for k in CHANNEL_CONSENT}, channel)
    capped_before = (
        F.col("cap_min_days").isNotNull()
        & (F.col("last_contact_date") >= F.date_sub(F.col(c.FIRED_DATE), F.col("cap_min_days")))
    ) | (F.col("cap_max_30d").isNotNull() & (F.col("contacts_30d") >= F.col("cap_max_30d")))
    gone = F.col("__erased").isNotNull() | F.col("__known").isNull()
    expired = F.lit(False)
    if max_age_minutes is not None:
        expired = F.col(c.FIRED_AT) < sending_at - F.make_dt_interval(mins=F.lit(max_age_minutes))
    reason = (
        F.when(gone, F.lit(ERASED))
        .when(~any_consent, F.lit(GLOBAL_OPT_OUT))
        .when(~consented, F.lit(NO_CHANNEL_CONSENT))
        .when(~addressed, F.lit(INVALID_ADDRESS))
        .when(F.size(c.PRODUCT_IDS) == 0, F.lit(NO_PRODUCTS))
        .when(expired, F.lit(EXPIRED))
        .when(_in_quiet_hours(sending_at), F.lit(QUIET_HOURS))
        .when(F.coalesce(capped_before, F.lit(False)), F.lit(FREQUENCY_CAP))
    )
    fired = F.col(c.OUTCOME) == F.lit(FIRED)
    annotated = (
        found.join(crm, on=c.CUSTOMER_ID, how="left")
        .join(erased, on=c.CUSTOMER_ID, how="left")
        .join(pressure, on=c.TRIGGER_ID, how="left")
        .withColumn(c.SUPPRESSION_REASON, F.when(fired, reason))
    )
    # A contactable trigger counts as a contact for the customer's later ones in this batch.
    earlier = Window.partitionBy(
        F.when(fired & F.col(c.SUPPRESSION_REASON).isNull(), F.col(c.CUSTOMER_ID))
    ).orderBy(c.FIRED_AT, c.TRIGGER_ID)
    previous = F.lag(c.FIRED_DATE).over(earlier)
    before = F.count(F.lit(1)).over(earlier.rowsBetween(Window.unboundedPreceding, -1))
    capped_in_batch = (
        F.col("cap_min_days").isNotNull()
        & (previous >= F.date_sub(F.col(c.FIRED_DATE), F.col("cap_min_days")))
    ) | (
        F.col("cap_max_30d").isNotNull()
        & (F.coalesce(F.col("contacts_30d"), F.lit(0)) + before >= F.col("cap_max_30d"))
    )
    contactable = fired & F.col(c.SUPPRESSION_REASON).isNull() & F.col(c.CUSTOMER_ID).isNotNull()
    annotated = annotated.withColumn(
        c.SUPPRESSION_REASON,
        F.when(
            contactable & F.coalesce(capped_in_batch, F.lit(False)), F.lit(FREQUENCY_CAP)
        ).otherwise(F.col(c.SUPPRESSION_REASON)),
    )
    bucket = F.pmod(F.xxhash64(F.col(c.RULE_ID), F.col(c.CUSTOMER_ID)), F.lit(_HOLDOUT_BUCKETS))
    held_out = bucket < F.round(F.col("control_fraction") * _HOLDOUT_BUCKETS)
    group = F.when(
        fired & F.col(c.SUPPRESSION_REASON).isNull(),
        F.when(held_out, F.lit(CONTROL)).otherwise(F.lit(TREATMENT)),
    )
    return annotated.withColumn(c.GROUP, group).withColumn(
        # An erased customer's trigger is counted, never kept with their id.
        c.CUSTOMER_ID,
        F.when(gone, F.lit(None)).otherwise(F.col(c.CUSTOMER_ID)),
    )


def trigger_event_rows(annotated: DataFrame, committed_at: Column) -> DataFrame:
    """The rows of ``gold/trigger_events``."""
    derived = {c.COMMITTED_AT: committed_at}
    return annotated.select(
        *[
            derived.get(f.name, F.col(f.name)).cast(f.dataType).alias(f.name)
            for f in TRIGGER_EVENTS.fields
        ]
    )


def trigger_contacts(trigger_events: DataFrame) -> DataFrame:
    """Triggers sent, as contacts (``campaign_id, customer_id, channel, contact_date``) for
    the frequency caps: one per trigger."""
    return trigger_events.where(F.col(c.GROUP) == F.lit(TREATMENT)).select(
        F.col(c.TRIGGER_ID).alias(c.CAMPAIGN_ID),
        c.CUSTOMER_ID,
        c.CHANNEL,
        F.col(c.FIRED_DATE).alias(c.CONTACT_DATE),
    )


def trigger_funnel(trigger_events: DataFrame) -> DataFrame:
    """Per rule: candidates, cancelled, suppressed (and by reason), control and sent."""
    outcome, reason, group = F.col(c.OUTCOME), F.col(c.SUPPRESSION_REASON), F.col(c.GROUP)
    counts = [
        F.count(F.lit(1)).alias("candidates"),
        F.count_if(outcome == F.lit(CANCELLED)).alias(CANCELLED),
        F.count_if(reason.isNotNull()).alias("suppressed"),
        *[
            F.count_if(reason == F.lit(r)).alias(f"suppressed_{r}")
            for r in TRIGGER_SUPPRESSION_REASONS
        ],
        F.count_if(group == F.lit(CONTROL)).alias(CONTROL),
        F.count_if(group == F.lit(TREATMENT)).alias("sent"),
    ]
    return trigger_events.groupBy(c.RULE_ID).agg(*counts).orderBy(c.RULE_ID)


def funnel_by_rule(trigger_events: DataFrame) -> dict[str, dict[str, int]]:
    """:func:`trigger_funnel` as rule → step → count (one small row per rule collected)."""
    return {
        row[c.RULE_ID]: {k: int(v) for k, v in row.asDict().items() if k != c.RULE_ID}
        for row in trigger_funnel(trigger_events).collect()
    }


def outbox_messages(trigger_events: DataFrame) -> DataFrame:
    """The messages to send: the treatment rows, without personal data beyond the customer id
    (the sending system looks the address up, with consent checked once more there)."""
    return trigger_events.where(F.col(c.GROUP) == F.lit(TREATMENT)).select(
        c.TRIGGER_ID,
        c.RULE_ID,
        c.CHANNEL,
        c.CUSTOMER_ID,
        c.PRODUCT_IDS,
        c.FIRED_AT,
    )

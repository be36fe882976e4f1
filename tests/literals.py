"""Small literal inputs and helpers shared by the test modules, and the suite's one rule for
comparing DataFrames."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.audiences.campaigns import Campaign, SelectionConf
from campaignlake.feature_set import FeatureSet
from campaignlake.schemas import (
    CAMPAIGN_CONTACTS,
    CLICKSTREAM_EVENTS,
    CUSTOMERS,
    DELETION_REQUESTS,
    PRODUCTS,
)
from campaignlake.tables import Tables


def assert_frames_equal(actual: DataFrame, expected: DataFrame, *, ordered: bool = False) -> None:
    """The suite's DataFrame equality: same columns in the same order with the same types and
    the same rows. Row order counts only when ``ordered`` (a transform's contract is a set of
    rows unless it says otherwise); nullability never does (Spark infers it differently for
    literal and computed frames, and the tables do not enforce it)."""
    assert_df_equality(
        _comparable(actual),
        _comparable(expected),
        ignore_row_order=not ordered,
        ignore_nullable=True,
    )


def _comparable(df: DataFrame) -> DataFrame:
    """Maps as their sorted entries: Spark cannot sort or compare rows by a map column."""
    return df.select(
        *[
            F.array_sort(F.map_entries(F.col(f.name))).alias(f.name)
            if isinstance(f.dataType, MapType)
            else F.col(f.name)
            for f in df.schema.fields
        ]
    )


FS = FeatureSet(
    windows=(7, 30),
    top_categories=("books", "toys"),
    devices=("mobile", "desktop"),
    mediums=("email",),
    attributes=(("points", "numeric"), ("origin", "categorical")),
)


AS_OF = date(2026, 10, 10)  # cutoff 2026-10-11T00:00Z


def ts(text: str) -> datetime:
    """A UTC timestamp from ``YYYY-MM-DDTHH:MM:SS``."""
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def frame(spark: SparkSession, schema, rows: list[dict]) -> DataFrame:
    names = schema.fieldNames()
    return spark.createDataFrame([tuple(r.get(n) for n in names) for r in rows], schema)


def event(session: str, kind: str, at: str, product: str | None = None, **extra) -> dict:
    return {
        c.EVENT_ID: f"{session}-{kind}-{at}",
        c.EVENT_TYPE: kind,
        c.EVENT_TS: ts(at),
        c.CUSTOMER_ID: extra.get("customer", "C1"),
        c.SESSION_ID: session,
        c.PRODUCT_ID: product,
        c.QUANTITY: extra.get("quantity"),
        c.PRICE: extra.get("price"),
        c.DEVICE: extra.get("device"),
        c.UTM_MEDIUM: extra.get("medium"),
    }


def feature_inputs(spark: SparkSession) -> dict[str, DataFrame]:
    """Two customers' events, products, contacts, CRM versions and a deletion request around
    :data:`AS_OF`, as keyword arguments of :func:`customer_features`."""
    mobile_email = {"device": "mobile", "medium": "email"}
    events = [
        # S1, 1.6 days before the cutoff: a purchase of 2 x 10.00.
        event("S1", "page_view", "2026-10-09T10:00:00", **mobile_email),
        event("S1", "product_view", "2026-10-09T10:01:00", "P1", **mobile_email),
        event("S1", "add_to_cart", "2026-10-09T10:02:00", "P1", **mobile_email),
        event(
            "S1", "purchase", "2026-10-09T10:03:00", "P1", quantity=2, price=Decimal("10.00"),
            **mobile_email,
        ),
        # S2, 21 days before: an abandoned cart, direct traffic.
        event("S2", "product_view", "2026-09-20T08:00:00", "P2", device="desktop"),
        event("S2", "add_to_cart", "2026-09-20T08:05:00", "P2", device="desktop"),
        # After the cutoff: must not count.
        event(
            "S3", "purchase", "2026-10-11T08:00:00", "P2", quantity=1, price=Decimal("99.00"),
            device="mobile",
        ),
        # 40 days before: outside every window.
        event("S0", "purchase", "2026-09-01T08:00:00", "P2", quantity=1, price=Decimal("5.00")),
        # Anonymous: not any customer's.
        event("S9", "purchase", "2026-10-09T08:00:00", "P1", customer=None, price=Decimal("1")),
    ]  # fmt: skip
    products = [
        {c.PRODUCT_ID: "P1", c.CATEGORY: "books"},
        {c.PRODUCT_ID: "P2", c.CATEGORY: "toys"},
    ]
    contacts = [
        {
            c.CAMPAIGN_ID: "CMP-20261005-email-books", c.CHANNEL: "email", c.CUSTOMER_ID: "C1",
            c.SENT_AT: ts("2026-10-05T09:00:00"), c.OPENED_AT: ts("2026-10-05T10:00:00"),
            c.CONVERTED_AT: ts("2026-10-09T10:03:00"),
        },
        {  # after the cutoff
            c.CAMPAIGN_ID: "CMP-20261012-sms-toys", c.CHANNEL: "sms", c.CUSTOMER_ID: "C1",
            c.SENT_AT: ts("2026-10-12T09:00:00"),
        },
    ]  # fmt: skip
    crm = {
        c.COUNTRY: "DE", c.BIRTH_YEAR: 1990, c.EMAIL_OPT_IN: True, c.SMS_OPT_IN: False,
        c.PUSH_OPT_IN: False, c.EMAIL_VALID: True, c.INGESTED_AT: ts("2026-10-20T00:00:00"),
        c.SOURCE_FILE: "f.csv",
    }  # fmt: skip
    history = [
        {
            **crm, c.CUSTOMER_ID: "C1", c.SIGNUP_DATE: date(2024, 1, 1),
            c.LOYALTY_TIER: "silver", c.UPDATED_AT: ts("2026-09-01T00:00:00"),
            c.ATTRIBUTES: {"points": "1200", "origin": "social"},
        },
        {  # updated after the cutoff: not visible on AS_OF
            **crm, c.CUSTOMER_ID: "C1", c.SIGNUP_DATE: date(2024, 1, 1),
            c.LOYALTY_TIER: "gold", c.UPDATED_AT: ts("2026-10-20T00:00:00"),
            c.ATTRIBUTES: {"points": "5000", "origin": "social"},
        },
        {
            **crm, c.CUSTOMER_ID: "C2", c.SIGNUP_DATE: date(2026, 9, 30),
            c.LOYALTY_TIER: "none", c.UPDATED_AT: ts("2026-10-01T00:00:00"),
            c.ATTRIBUTES: {"points": "not a number"}, c.PHONE: "+49 1",
        },
    ]  # fmt: skip
    return {
        "events": frame(spark, CLICKSTREAM_EVENTS, events),
        "products": frame(spark, PRODUCTS, products),
        "contacts": frame(spark, CAMPAIGN_CONTACTS, contacts),
        "history": frame(spark, CUSTOMERS, history),
        "deletion_requests": frame(
            spark,
            DELETION_REQUESTS,
            [{c.CUSTOMER_ID: "C2", c.REQUESTED_AT: ts("2026-10-05T00:00:00")}],
        ),
    }


SEND = date(2026, 11, 2)


VALID_CAMPAIGN = """\
id: CMP-TEST-email-fashion
name: Test fashion
channel: email
category: fashion
send_date: 2026-11-02
eligibility: "affinity_fashion > 0.1"
model: campaign_response
selection: {top_n: 100}
products: 3
frequency_cap: {min_days_since_last_contact: 3, max_contacts_30d: 2}
control_fraction: 0.1
"""


def campaign(**overrides) -> Campaign:
    """A valid email campaign sending on :data:`SEND`, with ``overrides``."""
    values = dict(
        id="CMP-T",
        name="T",
        channel="email",
        category="fashion",
        send_date=SEND,
        model="campaign_response",
        selection=SelectionConf(top_n=10),
        products=2,
        control_fraction=0.1,
    )
    return Campaign(**{**values, **overrides})


#: Features and segments of the audience tests' customers.
FEATURE_SCHEMA = StructType(
    [
        StructField(c.CUSTOMER_ID, StringType()),
        StructField("affinity_fashion", DoubleType()),
        StructField("orders_30d", LongType()),
    ]
)


SEGMENT_SCHEMA = StructType(
    [
        StructField(c.CUSTOMER_ID, StringType()),
        StructField(c.RFM_SEGMENT, StringType()),
        StructField(c.BEHAVIOUR_SEGMENT, IntegerType()),
    ]
)


#: The ingestion tests' clock.
NOW = datetime(2026, 10, 31, 12, 0, tzinfo=timezone.utc)

CRM_HEADER = (
    "customer_id,email,first_name,last_name,country,city,signup_date,birth_year,loyalty_tier,"
    "email_opt_in,sms_opt_in,push_opt_in,phone,updated_at"
)


def write(landing: str, relative: str, text: str | bytes) -> None:
    """Write ``text`` to ``landing/relative``, creating its folders."""
    path = Path(landing) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)


def event_line(event_id: str, **overrides: object) -> str:
    """One clickstream JSON line; ``overrides`` replace or add fields."""
    record = {
        "event_id": event_id,
        "event_type": "product_view",
        "event_ts": "2026-10-30T10:00:00Z",
        "customer_id": "C1",
        "session_id": "s1",
        "product_id": "P1",
        "price": 10.0,
    }
    record.update(overrides)
    return json.dumps(record)


def crm_row(
    customer_id: str, email: str, updated_at: str, tier: str = "gold", email_opt_in: str = "true"
) -> str:
    """One line of a CRM export under :data:`CRM_HEADER`."""
    return (
        f"{customer_id},{email},Ana,Lima,de,Berlin,2024-01-05,1990,{tier},"
        f"{email_opt_in},false,yes,+49 151 1234567,{updated_at}"
    )


#: One cart-abandonment rule, 30 minutes, no control group: every trigger it fires is sent.
CART_RULE = (
    "id: cart\nkind: cart_abandonment\nchannel: email\ndelay_minutes: 30\ncontrol_fraction: 0.0\n"
)


def with_only_rule(conf_dir: Path, text: str = CART_RULE) -> None:
    """Replace the trigger rules of the conf copy in ``conf_dir`` by the one rule ``text``."""
    folder = conf_dir / "triggers"
    for path in folder.glob("*.yaml"):
        path.unlink()
    (folder / "rule.yaml").write_text(text)


def seed_trigger_inputs(
    spark: SparkSession, tables: Tables, customers: list[str], products: list[tuple[str, str]]
) -> None:
    """The CRM (``customers``, each consenting to email with a valid address), no deletion
    request, and ``products`` as (product id, category): what the trigger stream needs."""
    crm = [
        {c.CUSTOMER_ID: cid, c.EMAIL: f"{cid.lower()}@example.com", c.EMAIL_VALID: True,
         c.EMAIL_OPT_IN: True}
        for cid in customers
    ]  # fmt: skip
    tables.append(catalog.CUSTOMERS, frame(spark, CUSTOMERS, crm))
    tables.ensure(catalog.DELETION_REQUESTS)
    rows = [{c.PRODUCT_ID: p, c.CATEGORY: cat, c.ACTIVE: True} for p, cat in products]
    tables.append(catalog.PRODUCTS, frame(spark, PRODUCTS, rows))

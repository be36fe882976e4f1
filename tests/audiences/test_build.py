"""Audience transforms on literal frames: ranking and selection, the products of each customer,
suppression with its reasons, the rest period, the control split and the export rows."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from datetime import date, datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from campaignlake import columns as c
from campaignlake.audiences import build
from campaignlake.audiences.campaigns import (
    Campaign,
    FrequencyCapConf,
    SelectionConf,
)
from campaignlake.pii import DEVELOPMENT_KEY, hmac_key_frame
from campaignlake.schemas import CAMPAIGN_CONTACTS, CUSTOMERS, DELETION_REQUESTS
from tests.literals import FEATURE_SCHEMA, SEGMENT_SCHEMA, assert_frames_equal, campaign, frame


def test_eligible_customers_are_ranked_by_score_and_cut_by_selection(spark: SparkSession) -> None:
    features = frame(
        spark,
        FEATURE_SCHEMA,
        [
            {c.CUSTOMER_ID: "a", "affinity_fashion": 0.5},
            {c.CUSTOMER_ID: "b", "affinity_fashion": 0.5},
            {c.CUSTOMER_ID: "c", "affinity_fashion": 0.5},
            {c.CUSTOMER_ID: "d", "affinity_fashion": 0.5},
            {c.CUSTOMER_ID: "e", "affinity_fashion": 0.0},
            {c.CUSTOMER_ID: "f", "affinity_fashion": None},
        ],
    )
    segments = frame(
        spark,
        SEGMENT_SCHEMA,
        [{c.CUSTOMER_ID: "a", c.RFM_SEGMENT: "loyal", c.BEHAVIOUR_SEGMENT: 1}],
    )
    scores_schema = "customer_id string, score double, decile int"
    scores = spark.createDataFrame(
        [
            ("a", 0.4, 3),
            ("b", 0.9, 1),
            ("c", 0.4, 3),
            ("d", 0.1, 9),
            ("e", 0.99, 1),
            ("f", 0.98, 1),
        ],
        scores_schema,
    )
    eligible = build.eligible_customers(features, segments, "affinity_fashion > 0.1")
    both = build.selected_customers(eligible, scores, SelectionConf(top_n=2, min_score=0.2))
    expected_schema = StructType(
        [
            StructField(c.CUSTOMER_ID, StringType()),
            StructField(c.RFM_SEGMENT, StringType()),
            StructField(c.BEHAVIOUR_SEGMENT, IntegerType()),
            StructField(c.SCORE, DoubleType()),
            StructField(c.DECILE, IntegerType()),
            StructField(c.RANK, IntegerType()),
        ]
    )
    expected = spark.createDataFrame(
        [("b", None, None, 0.9, 1, 1), ("a", "loyal", 1, 0.4, 3, 2)], expected_schema
    )
    assert_frames_equal(both, expected)
    threshold_only = build.selected_customers(eligible, scores, SelectionConf(min_score=0.2))
    assert sorted((r[c.CUSTOMER_ID], r[c.RANK]) for r in threshold_only.collect()) == [
        ("a", 2),
        ("b", 1),
        ("c", 3),
    ]


def test_products_are_the_first_k_recommendations_in_rank_order(spark: SparkSession) -> None:
    selected = spark.createDataFrame([("a",), ("b",)], "customer_id string")
    recs = spark.createDataFrame(
        [("a", 2, "P2"), ("a", 1, "P1"), ("a", 3, "P3")],
        "customer_id string, rank int, product_id string",
    )
    result = {
        r[c.CUSTOMER_ID]: r[c.PRODUCT_IDS] for r in build.with_products(selected, recs, 2).collect()
    }
    assert result == {"a": ["P1", "P2"], "b": []}


def customer(customer_id: str, **overrides) -> dict:
    values = {
        c.CUSTOMER_ID: customer_id,
        c.EMAIL: f"{customer_id}@example.com",
        c.EMAIL_VALID: True,
        c.PHONE: "+491500000001",
        c.FIRST_NAME: customer_id.title(),
        c.EMAIL_OPT_IN: True,
        c.SMS_OPT_IN: True,
        c.PUSH_OPT_IN: True,
    }
    return {**values, **overrides}


CONTACT_ROWS = [
    # "capped": contacted two days before the send by another campaign
    {
        c.CAMPAIGN_ID: "OLD",
        c.CHANNEL: "sms",
        c.CUSTOMER_ID: "capped",
        c.SENT_AT: datetime(2026, 10, 31, 9, tzinfo=timezone.utc),
    },
    # "busy": two contacts in the last 30 days, neither recent
    {
        c.CAMPAIGN_ID: "OLD1",
        c.CHANNEL: "email",
        c.CUSTOMER_ID: "busy",
        c.SENT_AT: datetime(2026, 10, 10, 9, tzinfo=timezone.utc),
    },
    {
        c.CAMPAIGN_ID: "OLD2",
        c.CHANNEL: "email",
        c.CUSTOMER_ID: "busy",
        c.SENT_AT: datetime(2026, 10, 20, 9, tzinfo=timezone.utc),
    },
    # a contact by this very campaign (a rerun after the history came back) does not count
    {
        c.CAMPAIGN_ID: "CMP-T",
        c.CHANNEL: "email",
        c.CUSTOMER_ID: "ok",
        c.SENT_AT: datetime(2026, 11, 1, 9, tzinfo=timezone.utc),
    },
    # contacts older than 30 days do not count
    {
        c.CAMPAIGN_ID: "ANCIENT",
        c.CHANNEL: "email",
        c.CUSTOMER_ID: "ok",
        c.SENT_AT: datetime(2026, 9, 1, 9, tzinfo=timezone.utc),
    },
]


def test_each_suppressed_customer_gets_the_first_reason_that_applies(spark: SparkSession) -> None:
    customers = frame(
        spark,
        CUSTOMERS,
        [
            customer("ok"),
            customer("deleted"),
            customer("nowhere", email_opt_in=False, sms_opt_in=False, push_opt_in=None),
            customer("no_email", email_opt_in=False),
            customer("bad_email", email_valid=False),
            customer("no_address", email=None, email_opt_in=True),
            customer("capped"),
            customer("busy"),
            customer("planned"),
            customer(
                "deleted_and_opted_out", email_opt_in=False, sms_opt_in=False, push_opt_in=False
            ),
        ],
    )
    deletions = frame(
        spark,
        DELETION_REQUESTS,
        [
            {c.CUSTOMER_ID: "deleted", c.REQUESTED_AT: datetime(2026, 11, 1, tzinfo=timezone.utc)},
            {
                c.CUSTOMER_ID: "deleted_and_opted_out",
                c.REQUESTED_AT: datetime(2026, 1, 1, tzinfo=timezone.utc),
            },
        ],
    )
    contacts = frame(spark, CAMPAIGN_CONTACTS, CONTACT_ROWS)
    planned = spark.createDataFrame(
        [
            ("EARLIER", "push", date(2026, 11, 2), "planned", build.TREATMENT),
            ("EARLIER", "push", date(2026, 11, 2), "ok", build.CONTROL),
        ],
        "campaign_id string, channel string, send_date date, customer_id string, group string",
    )
    ids = [
        "ok",
        "deleted",
        "gone",
        "nowhere",
        "no_email",
        "bad_email",
        "no_address",
        "capped",
        "busy",
        "planned",
        "deleted_and_opted_out",
    ]
    selected = spark.createDataFrame([(i,) for i in ids], "customer_id string")
    cmp = campaign(
        frequency_cap=FrequencyCapConf(min_days_since_last_contact=3, max_contacts_30d=2)
    )
    pressure = build.contact_pressure(build.contact_history(contacts, planned), cmp)
    result = build.with_suppression_reasons(
        selected,
        customers,
        deletions,
        pressure,
        campaign=cmp,
        phone_pattern=r"^\+[1-9][0-9]{7,14}$",
    )
    expected = spark.createDataFrame(
        [
            ("ok", None),
            ("deleted", build.ERASED),
            ("gone", build.ERASED),
            ("nowhere", build.GLOBAL_OPT_OUT),
            ("no_email", build.NO_CHANNEL_CONSENT),
            ("bad_email", build.INVALID_ADDRESS),
            ("no_address", build.INVALID_ADDRESS),
            ("capped", build.FREQUENCY_CAP),
            ("busy", build.FREQUENCY_CAP),
            ("planned", build.FREQUENCY_CAP),
            ("deleted_and_opted_out", build.ERASED),
        ],
        "customer_id string, suppression_reason string",
    )
    assert_frames_equal(result, expected)
    # With the cap on the campaign's own channel only, the sms and push contacts do not count.
    own_channel = dataclasses.replace(
        cmp, frequency_cap=dataclasses.replace(cmp.frequency_cap, scope="channel")
    )
    pressure = build.contact_pressure(build.contact_history(contacts, planned), own_channel)
    reasons = dict(
        build.with_suppression_reasons(
            selected, customers, deletions, pressure, campaign=own_channel, phone_pattern=r"^\+"
        ).collect()
    )
    assert (reasons["capped"], reasons["busy"], reasons["planned"]) == (
        None,
        build.FREQUENCY_CAP,
        None,
    )


def test_a_rest_period_longer_than_30_days_is_honoured(spark: SparkSession) -> None:
    # SEND is 2026-11-02: "rested" was contacted 40 days before, "long_ago" 50 days before.
    history = spark.createDataFrame(
        [
            ("OLD", "rested", "email", date(2026, 9, 23)),
            ("OLD", "long_ago", "email", date(2026, 9, 13)),
        ],
        "campaign_id string, customer_id string, channel string, contact_date date",
    )
    cmp = campaign(frequency_cap=FrequencyCapConf(min_days_since_last_contact=45))
    pressure = {r[c.CUSTOMER_ID]: r for r in build.contact_pressure(history, cmp).collect()}
    assert set(pressure) == {"rested"} and build.lookback_days(cmp) == 45
    customers = frame(spark, CUSTOMERS, [customer("rested"), customer("long_ago")])
    deletions = spark.createDataFrame([], DELETION_REQUESTS)
    reasons = dict(
        build.with_suppression_reasons(
            customers.select(c.CUSTOMER_ID),
            customers,
            deletions,
            build.contact_pressure(history, cmp),
            campaign=cmp,
            phone_pattern=r"^\+",
        ).collect()
    )
    assert reasons == {"rested": build.FREQUENCY_CAP, "long_ago": None}
    # Outside the 30-day count window, the contact does not count toward max_contacts_30d.
    counted = campaign(frequency_cap=FrequencyCapConf(max_contacts_30d=1))
    assert build.contact_pressure(history, counted).count() == 0


def test_sms_needs_a_valid_phone_number(spark: SparkSession) -> None:
    customers = frame(
        spark,
        CUSTOMERS,
        [
            customer("good"),
            customer("none", phone=None),
            customer("short", phone="+4915"),
            customer("local", phone="01500000001"),
        ],
    )
    empty_deletions = frame(spark, DELETION_REQUESTS, [])
    pressure = spark.createDataFrame(
        [], "customer_id string, last_contact_date date, contacts_30d long"
    )
    selected = spark.createDataFrame(
        [("good",), ("none",), ("short",), ("local",)], "customer_id string"
    )
    result = build.with_suppression_reasons(
        selected,
        customers,
        empty_deletions,
        pressure,
        campaign=campaign(channel="sms"),
        phone_pattern=r"^\+[1-9][0-9]{7,14}$",
    )
    assert dict(result.collect()) == {
        "good": None,
        "none": build.INVALID_ADDRESS,
        "short": build.INVALID_ADDRESS,
        "local": build.INVALID_ADDRESS,
    }


def test_the_control_group_is_exact_deterministic_and_unrelated_to_rank(
    spark: SparkSession,
) -> None:
    audience = spark.range(1000).select(
        F.format_string("C%04d", F.col("id")).alias(c.CUSTOMER_ID),
        F.col("id").cast("int").alias(c.RANK),
    )
    first = build.with_groups(audience, "CMP-A", 0.1)
    control = {
        r[0] for r in first.where(F.col(c.GROUP) == build.CONTROL).select(c.CUSTOMER_ID).collect()
    }
    assert len(control) == 100
    shuffled = audience.repartition(3, F.col(c.RANK)).orderBy(F.rand(seed=1))
    again = build.with_groups(shuffled, "CMP-A", 0.1)
    assert {
        r[0] for r in again.where(F.col(c.GROUP) == build.CONTROL).select(c.CUSTOMER_ID).collect()
    } == control
    other = build.with_groups(audience, "CMP-B", 0.1)
    other_control = {
        r[0] for r in other.where(F.col(c.GROUP) == build.CONTROL).select(c.CUSTOMER_ID).collect()
    }
    assert len(other_control) == 100 and len(control & other_control) < 30
    # The best-ranked tenth is not the control group.
    assert len([i for i in control if int(i[1:]) < 100]) < 30
    assert (
        build.with_groups(audience.limit(7), "CMP-A", 0.1)
        .where(F.col(c.GROUP) == build.CONTROL)
        .count()
        == 1
    )


def test_export_rows_carry_only_what_the_channel_needs(spark: SparkSession) -> None:
    customers = frame(
        spark,
        CUSTOMERS,
        [
            customer("a", first_name='=HYPERLINK("x")'),
            customer("b", email="=cmd|'/ccalc.exe'!a0@example.com"),
        ],
    )
    products = spark.createDataFrame(
        [("P1", "Scarf", "19.99"), ("P2", "+Boots", "80.00")],
        "product_id string, name string, price string",
    ).select(c.PRODUCT_ID, c.NAME, F.col(c.PRICE).cast("decimal(12,2)").alias(c.PRICE))
    schema = StructType(
        [
            StructField(c.CUSTOMER_ID, StringType()),
            StructField(c.RANK, IntegerType()),
            StructField(c.PRODUCT_IDS, ArrayType(StringType())),
        ]
    )
    treatment = spark.createDataFrame([("a", 2, ["P2", "P1"]), ("b", 1, ["P1"])], schema)
    key = DEVELOPMENT_KEY.encode()
    key_frame = hmac_key_frame(spark, key)
    rows = build.export_rows(
        treatment, customers, products, channel="email", product_count=2, key=key_frame
    )
    assert rows.columns == [
        c.RECIPIENT_ID,
        c.EMAIL,
        c.FIRST_NAME,
        "product_1_id",
        "product_1_name",
        "product_1_price",
        "product_2_id",
        "product_2_name",
        "product_2_price",
        c.RANK,
    ]
    by_rank = {r[c.RANK]: r.asDict() for r in rows.collect()}
    expected_id = hmac.new(key, b"a", hashlib.sha256).hexdigest()
    assert by_rank[2] == {
        c.RECIPIENT_ID: expected_id,
        c.EMAIL: "a@example.com",
        c.FIRST_NAME: '\'=HYPERLINK("x")',
        "product_1_id": "P2",
        "product_1_name": "'+Boots",
        "product_1_price": "80.00",
        "product_2_id": "P1",
        "product_2_name": "Scarf",
        "product_2_price": "19.99",
        c.RANK: 2,
    }
    assert (by_rank[1]["product_2_id"], by_rank[1]["product_2_name"]) == (None, None)
    # The address is user-controlled text too.
    assert by_rank[1][c.EMAIL] == "'=cmd|'/ccalc.exe'!a0@example.com"
    push = build.export_rows(
        treatment, customers, products, channel="push", product_count=0, key=key_frame
    )
    assert push.columns == [c.RECIPIENT_ID, c.FIRST_NAME, c.RANK]


def test_a_recent_negative_review_suppresses_when_the_campaign_asks(spark: SparkSession) -> None:
    # SEND is 2026-11-02; the window is the 30 days before it: [2026-10-03, 2026-11-02).
    names = ["angry", "long_ago", "after_send", "happy", "no_review", "opted_out_and_angry"]
    customers = frame(
        spark,
        CUSTOMERS,
        [customer(n) for n in names[:-1]] + [customer(names[-1], email_opt_in=False)],
    )
    reviews = spark.createDataFrame(
        [
            ("angry", 2, datetime(2026, 11, 1, 23, 0)),
            ("long_ago", 1, datetime(2026, 10, 2, 23, 0)),
            ("after_send", 1, datetime(2026, 11, 2, 0, 0)),
            ("happy", 5, datetime(2026, 11, 1)),
            ("opted_out_and_angry", 1, datetime(2026, 10, 20)),
        ],
        f"{c.CUSTOMER_ID} string, {c.RATING} int, {c.CREATED_AT} timestamp",
    )
    pressure = spark.createDataFrame(
        [], "customer_id string, last_contact_date date, contacts_30d long"
    )
    selected = customers.select(c.CUSTOMER_ID)
    deletions = frame(spark, DELETION_REQUESTS, [])

    def reasons(cmp: Campaign) -> dict[str, str | None]:
        return dict(
            build.with_suppression_reasons(
                selected, customers, deletions, pressure, campaign=cmp, phone_pattern=r"^\+",
                reviews=reviews,
            ).collect()
        )  # fmt: skip

    assert reasons(campaign(suppress_negative_review_days=30)) == {
        "angry": build.NEGATIVE_REVIEW,
        "long_ago": None,
        "after_send": None,
        "happy": None,
        "no_review": None,
        # Consent comes first: the customer is counted under the first reason that applies.
        "opted_out_and_angry": build.NO_CHANNEL_CONSENT,
    }
    # Without the option a review never suppresses.
    assert set(reasons(campaign()).values()) == {None, build.NO_CHANNEL_CONSENT}

"""Campaign audiences: campaign files and their validation, ranking and selection, suppression
with its reasons, the control split, the export rows, and the job on the generated sample
(consent invariant, funnel, idempotent reruns)."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
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
from campaignlake.audiences import build
from campaignlake.audiences.campaigns import (
    Campaign,
    FrequencyCapConf,
    SelectionConf,
    check_eligibility,
    check_models,
    due_campaigns,
    load_campaign_file,
    load_campaigns,
)
from campaignlake.audiences.runs import AudienceReport, build_audiences
from campaignlake.config import Conf
from campaignlake.errors import ConfigError
from campaignlake.models.registry import ModelStore
from campaignlake.pii import DEVELOPMENT_KEY, hmac_key_frame
from campaignlake.schemas import CAMPAIGN_CONTACTS, CUSTOMERS, DELETION_REQUESTS
from campaignlake.tables import Tables

if TYPE_CHECKING:
    from conftest import SampleModels

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


def frame(spark: SparkSession, schema: StructType, rows: list[dict]) -> DataFrame:
    return spark.createDataFrame(
        [tuple(r.get(n) for n in schema.fieldNames()) for r in rows], schema
    )


# --- campaign files ---------------------------------------------------------------------------


def test_a_valid_campaign_file_loads_with_typed_values(conf: Conf, tmp_path: Path) -> None:
    path = tmp_path / "fashion.yaml"
    path.write_text(VALID_CAMPAIGN)
    loaded = load_campaign_file(path, conf)
    assert loaded.send_date == date(2026, 11, 2)
    assert loaded.selection == SelectionConf(top_n=100, min_score=None)
    assert loaded.frequency_cap == FrequencyCapConf(3, 2, "all")
    assert loaded.priority == 100 and loaded.source_file == str(path)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (
            ("products: 3", "products: 3\naudience_size: 4"),
            r"bad\.yaml: audience_size: unknown key",
        ),
        (("products: 3", "products: three"), r"bad\.yaml: products: expected an integer"),
        (("model: campaign_response\n", ""), r"bad\.yaml: model: missing value"),
        (("channel: email", "channel: fax"), r"bad\.yaml: channel: expected one of email, sms"),
        (
            ("send_date: 2026-11-02", "send_date: 2026-13-02"),
            r"bad\.yaml: send_date: expected a date",
        ),
        (
            ("category: fashion", "category: toys"),
            r"bad\.yaml: category: the offer \(email, toys\) is not scored",
        ),
        (
            ("products: 3", "products: 11"),
            r"bad\.yaml: products: must be between 0 and recommendations\.k \(10\)",
        ),
        (
            ("selection: {top_n: 100}", "selection: {}"),
            r"bad\.yaml: selection: give top_n, min_score or both",
        ),
        (
            ("control_fraction: 0.1", "control_fraction: 1.5"),
            r"bad\.yaml: control_fraction: must be",
        ),
        (
            ("max_contacts_30d: 2", "max_contacts_30d: 0"),
            r"bad\.yaml: frequency_cap\.max_contacts_30d",
        ),
        (("id: CMP-TEST-email-fashion", "id: ../etc"), r"bad\.yaml: id: use letters"),
    ],
)
def test_campaign_file_errors_name_the_file_and_the_key(
    conf: Conf, tmp_path: Path, edit: tuple[str, str], error: str
) -> None:
    path = tmp_path / "bad.yaml"
    assert edit[0] in VALID_CAMPAIGN
    path.write_text(VALID_CAMPAIGN.replace(edit[0], edit[1]))
    with pytest.raises(ConfigError, match=error):
        load_campaign_file(path, conf)


def test_duplicate_campaign_ids_and_build_order(conf: Conf, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        VALID_CAMPAIGN.replace("send_date: 2026-11-02", "send_date: 2026-11-03")
    )
    (tmp_path / "b.yaml").write_text(
        VALID_CAMPAIGN.replace("CMP-TEST-email-fashion", "CMP-B") + "priority: 5\n"
    )
    (tmp_path / "c.yaml").write_text(VALID_CAMPAIGN.replace("CMP-TEST-email-fashion", "CMP-C"))
    assert [x.id for x in load_campaigns(conf, tmp_path)] == [
        "CMP-B",
        "CMP-C",
        "CMP-TEST-email-fashion",
    ]
    (tmp_path / "d.yaml").write_text(VALID_CAMPAIGN)
    with pytest.raises(
        ConfigError,
        match=r"d\.yaml: id: campaign 'CMP-TEST-email-fashion' is also defined in .*a\.yaml",
    ):
        load_campaigns(conf, tmp_path)


def test_the_shipped_campaigns_are_valid(conf: Conf) -> None:
    shipped = load_campaigns(conf)
    assert len(shipped) >= 2
    assert {x.channel for x in shipped} >= {"email", "sms"}


def test_due_campaigns_are_those_sending_within_the_lead_window() -> None:
    first, second, later = (
        campaign(id="A", send_date=date(2026, 11, 1)),
        campaign(id="B"),
        campaign(id="C", send_date=date(2026, 11, 9)),
    )
    everything = [first, second, later]
    assert due_campaigns(everything, date(2026, 10, 31), 2) == [first, second]
    assert due_campaigns(everything, date(2026, 10, 31), 1) == [first]
    assert due_campaigns(everything, date(2026, 10, 31), 1, "C") == [later]
    with pytest.raises(
        ConfigError,
        match=r"send_date: 2026-11-01 is not after the run date 2026-11-01; build it with "
        r"--date 2026-10-31",
    ):
        due_campaigns(everything, date(2026, 11, 1), 3, "A")
    with pytest.raises(ConfigError, match=r"--campaign Z: no such campaign \(known: A, B, C\)"):
        due_campaigns(everything, date(2026, 10, 31), 3, "Z")


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


def test_eligibility_is_checked_against_the_schema_before_reading(spark: SparkSession) -> None:
    schema = build.eligibility_schema(FEATURE_SCHEMA, SEGMENT_SCHEMA)
    good = campaign(
        eligibility="affinity_fashion > 0.2 AND rfm_segment = 'loyal'", source_file="x.yaml"
    )
    check_eligibility(spark, good, schema)
    typo = dataclasses.replace(good, eligibility="affinty_fashion > 0.2")
    with pytest.raises(
        ConfigError,
        match=r"x\.yaml: eligibility: unknown column `affinty_fashion` "
        r"\(did you mean .*`affinity_fashion`",
    ):
        check_eligibility(spark, typo, schema)
    with pytest.raises(
        ConfigError, match=r"x\.yaml: eligibility: must be a boolean expression, got bigint"
    ):
        check_eligibility(spark, dataclasses.replace(good, eligibility="orders_30d + 1"), schema)
    with pytest.raises(ConfigError, match=r"x\.yaml: eligibility: not a Spark SQL expression"):
        check_eligibility(spark, dataclasses.replace(good, eligibility="orders_30d >"), schema)


UNSAFE_ELIGIBILITY = {
    # The expression of the security report: a native library load and a file read.
    "(reflect('java.lang.System','load','/tmp/libx.so') is null OR tenure_days >= 0) AND "
    "exists(select 1 from text.`/etc/passwd` where value like 'root:%')": "'reflect'",
    "java_method('java.lang.System', 'getenv', 'HOME') = 'x'": "'java_method'",
    "tenure_days > (select max(tenure_days) from parquet.`/tmp/x`)": "a subquery",
    "exists(select 1 from text.`/etc/passwd`)": r"a subquery \(EXISTS\)",
    "tenure_days IN (select 1)": r"a subquery \(IN \(SELECT",
    "my_catalog.my_udf(tenure_days) > 1": "'my_catalog.my_udf'",
    "exists(array(1), x -> x > 0)": "'exists'",
    "rand() > 0.5": "'rand'",
    "count(tenure_days) > 1": "'count'",
}


@pytest.mark.parametrize("expression, offender", list(UNSAFE_ELIGIBILITY.items()))
def test_eligibility_outside_the_safe_language_is_refused_naming_file_key_and_function(
    spark: SparkSession, expression: str, offender: str
) -> None:
    schema = build.eligibility_schema(FEATURE_SCHEMA, SEGMENT_SCHEMA)
    unsafe = campaign(eligibility=expression, source_file="conf/campaigns/x.yaml")
    with pytest.raises(
        ConfigError, match=rf"conf/campaigns/x\.yaml: eligibility: .*{offender}.* not allowed"
    ):
        check_eligibility(spark, unsafe, schema)


def test_safe_eligibility_with_functions_operators_and_case_is_accepted(
    spark: SparkSession,
) -> None:
    schema = build.eligibility_schema(FEATURE_SCHEMA, SEGMENT_SCHEMA)
    safe = campaign(
        eligibility=(
            "coalesce(affinity_fashion, 0) * 2 >= 0.3 AND lower(rfm_segment) IN ('loyal', 'x') "
            "AND NOT (orders_30d BETWEEN 5 AND 9) AND CASE WHEN orders_30d > 1 THEN true "
            "ELSE abs(orders_30d - 1) < 2 END AND rfm_segment LIKE 'l%' "
            "AND CAST(orders_30d AS DOUBLE) IS NOT NULL"
        ),
        source_file="x.yaml",
    )
    check_eligibility(spark, safe, schema)


def test_build_audiences_refuses_an_unsafe_campaign_before_running_it(
    spark: SparkSession, conf: Conf, tmp_path: Path
) -> None:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    marker = "campaignlake.test.reflect_ran"
    unsafe = VALID_CAMPAIGN.replace(
        'eligibility: "affinity_fashion > 0.1"',
        f"eligibility: \"reflect('java.lang.System', 'setProperty', '{marker}', 'yes') "
        f'IS NOT NULL"',
    )
    (folder / "unsafe.yaml").write_text(unsafe)
    conf = dataclasses.replace(
        conf, audiences=dataclasses.replace(conf.audiences, campaigns_dir=str(folder))
    )
    with pytest.raises(ConfigError, match=r"unsafe\.yaml: eligibility: function 'reflect'"):
        build_audiences(spark, conf, Tables(spark, conf), as_of=SEND.replace(day=1))
    system = spark.sparkContext._jvm.java.lang.System  # type: ignore[union-attr]
    assert system.getProperty(marker) is None


def test_a_campaign_naming_an_untrained_model_fails_with_file_and_key(
    spark: SparkSession, tmp_path: Path
) -> None:
    store = ModelStore(spark, str(tmp_path / "models"))
    with pytest.raises(ConfigError, match=r"y\.yaml: model: no trained model 'next_best_offer'"):
        check_models([campaign(model="next_best_offer", source_file="y.yaml")], store)


# --- transforms -------------------------------------------------------------------------------


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
    assert_df_equality(both, expected, ignore_row_order=True, ignore_nullable=True)
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
    assert_df_equality(result, expected, ignore_row_order=True, ignore_nullable=True)
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


# --- the job on the generated sample -----------------------------------------------------------


@pytest.mark.slow
def test_audiences_on_the_sample_respect_consent_and_reruns_change_nothing(
    spark: SparkSession, sample_models: SampleModels, sample_audiences: AudienceReport
) -> None:
    conf, tables = sample_models.conf, sample_models.tables
    as_of = date(2026, 10, 31)
    report = sample_audiences
    built = {r.campaign.id: r for r in report.results}
    assert set(built) == {
        x.id for x in load_campaigns(conf) if as_of < x.send_date <= date(2026, 11, 3)
    }

    audiences = tables.read("campaign_audiences")
    customers = tables.read("customers")
    consent = F.expr(
        "CASE channel WHEN 'email' THEN email_opt_in WHEN 'sms' THEN sms_opt_in "
        "WHEN 'push' THEN push_opt_in END"
    )
    joined = audiences.join(customers, on=c.CUSTOMER_ID, how="left")
    assert joined.where(~F.coalesce(consent, F.lit(False))).isEmpty()
    erased = tables.read("deletion_requests").select(c.CUSTOMER_ID)
    assert audiences.join(erased, on=c.CUSTOMER_ID, how="left_semi").isEmpty()
    assert audiences.groupBy(c.CAMPAIGN_ID, c.CUSTOMER_ID).count().where("count > 1").isEmpty()

    for result in report.results:
        funnel = result.funnel
        assert funnel["selected"] == funnel["suppressed_total"] + funnel["audience"]
        assert funnel["audience"] == funnel["control"] + funnel["treatment"]
        assert funnel["exported"] == funnel["treatment"]
        rows = audiences.where(F.col(c.CAMPAIGN_ID) == result.campaign.id)
        assert rows.count() == funnel["audience"]
        assert abs(funnel["control_share"] - result.campaign.control_fraction) <= 0.01
        export = spark.read.option("header", True).csv(result.export_path)
        treatment_emails = rows.where(F.col(c.GROUP) == build.TREATMENT).join(
            customers, on=c.CUSTOMER_ID, how="inner"
        )
        assert export.count() == funnel["treatment"]
        address = build.CHANNEL_ADDRESS[result.campaign.channel]
        if address:
            assert export.select(address).exceptAll(treatment_emails.select(address)).isEmpty()
        saved = json.loads(Path(result.export_path).with_name("audit.json").read_text())
        assert saved == json.loads(json.dumps(funnel, default=str))
    largest = max(report.results, key=lambda r: r.funnel["audience"])
    assert largest.funnel["audience"] >= 100 and largest.funnel["suppressed_total"] > 0

    exports = {r.export_path: Path(r.export_path).read_bytes() for r in report.results}
    version = tables.version("campaign_audiences")
    again = build_audiences(spark, conf, tables, as_of=as_of)
    assert tables.version("campaign_audiences") == version
    assert not any(r.write.committed for r in again.results)
    assert {r.export_path: Path(r.export_path).read_bytes() for r in again.results} == exports
    assert not list(Path(conf.paths.exports).rglob("*.crc"))

"""Customer features, point-in-time correctness, training labels without leakage, segments and
evaluation metrics, on small literal inputs with hand-written expectations."""

from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from chispa import assert_df_equality
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import SegmentsConf
from campaignlake.feature_set import FeatureSet, cutoff_of
from campaignlake.features.customer import customer_features
from campaignlake.features.segments import (
    assign_behaviour_segments,
    fit_behaviour_segments,
    rfm_segments,
)
from campaignlake.models.evaluation import binary_metrics, with_deciles
from campaignlake.models.training import (
    RANDOM_HOLDOUT,
    labelled_contacts,
    split_examples,
    with_campaign_context,
)
from campaignlake.schemas import (
    CAMPAIGN_CONTACTS,
    CLICKSTREAM_EVENTS,
    CUSTOMERS,
    DELETION_REQUESTS,
    PRODUCTS,
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


@pytest.fixture
def inputs(spark: SparkSession) -> dict[str, DataFrame]:
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


def features_at(spark: SparkSession, inputs: dict[str, DataFrame], cutoffs: list) -> DataFrame:
    keys = spark.createDataFrame(cutoffs, f"{c.CUSTOMER_ID} string, {c.CUTOFF_TS} timestamp")
    return customer_features(keys, feature_set=FS, **inputs)


def test_an_event_on_a_windows_first_instant_is_inside_it_and_line_amounts_are_revenue(
    spark: SparkSession, inputs: dict[str, DataFrame]
) -> None:
    # Cutoff 2026-10-11T00:00: the 7-day window starts at 2026-10-04T00:00 and the 30-day one
    # at 2026-09-11T00:00, both included (date-only timestamps land exactly there).
    boundary = [
        event(
            "B7", "purchase", "2026-10-04T00:00:00", "P1", customer="C2", quantity=3,
            price=Decimal("3.33"),
        ),
        event(
            "B30", "purchase", "2026-09-11T00:00:00", "P2", customer="C2", quantity=1,
            price=Decimal("5.00"),
        ),
        event(
            "OUT", "purchase", "2026-09-10T23:59:59", "P2", customer="C2", quantity=1,
            price=Decimal("7.00"),
        ),
    ]  # fmt: skip
    rows = [
        {**e, c.AMOUNT: Decimal("10.00") if e[c.SESSION_ID] == "B7" else None} for e in boundary
    ]
    inputs = {**inputs, "events": frame(spark, CLICKSTREAM_EVENTS, rows)}
    got = features_at(spark, inputs, [("C2", cutoff_of(AS_OF))]).first()
    assert (got["orders_7d"], got["revenue_7d"]) == (1, Decimal("10.00"))
    assert (got["orders_30d"], got["revenue_30d"]) == (2, Decimal("15.00"))
    assert got["days_since_last_purchase"] == 7


def test_features_count_only_what_happened_before_the_cutoff(
    spark: SparkSession, inputs: dict[str, DataFrame]
) -> None:
    cutoff = cutoff_of(AS_OF)
    features = features_at(spark, inputs, [("C1", cutoff), ("C2", cutoff)])
    expected_columns = [
        c.CUSTOMER_ID, "days_since_last_purchase", "days_since_last_visit", "orders_7d",
        "revenue_7d", "sessions_30d", "product_views_30d", "add_to_carts_30d",
        "cart_abandonments_7d", "cart_abandonments_30d", "email_sends_30d",
        "email_open_rate_30d", "email_click_rate_30d", "campaign_contacts_30d",
        "avg_order_value_30d", "affinity_books", "affinity_toys", "favourite_category",
        "distinct_categories", "device_share_mobile", "traffic_share_email",
        "traffic_share_direct", "tenure_days", c.LOYALTY_TIER, "age_band", "has_phone",
        "deletion_requested", "attr_points", "attr_origin",
    ]  # fmt: skip
    actual = features.select(*expected_columns)
    expected_rows = [
        ("C1", 1, 1, 1, Decimal("20.00"), 2, 2, 2, 0, 1, 1, 1.0, 0.0, 1, 20.0, 0.6, 0.4,
         "books", 2, 0.5, 0.5, 0.5, 1013, "silver", "35-44", False, False, 1200.0, "social"),
        ("C2", None, None, 0, Decimal("0.00"), 0, 0, 0, 0, 0, 0, None, None, 0, None,
         None, None, None, 0, None, None, None, 10, "none", "35-44", True, True, None, None),
    ]  # fmt: skip
    expected = spark.createDataFrame(expected_rows, actual.schema)
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)
    interactions = features.where(f"{c.CUSTOMER_ID} = 'C1'").first()["category_interactions"]
    assert interactions == {"books": 3, "toys": 2}


def test_features_of_a_past_date_ignore_everything_that_arrived_later(
    spark: SparkSession, inputs: dict[str, DataFrame]
) -> None:
    cutoff = cutoff_of(AS_OF)
    before = features_at(spark, inputs, [("C1", cutoff)])
    later_event = frame(
        spark,
        CLICKSTREAM_EVENTS,
        [event("S7", "purchase", "2026-10-15T00:00:00", "P1", price=Decimal("50.00"))],
    )
    more = {**inputs, "events": inputs["events"].unionByName(later_event)}
    after = features_at(spark, more, [("C1", cutoff)])
    assert_df_equality(before, after, ignore_nullable=True)


def test_training_examples_see_nothing_from_the_send_onwards(
    spark: SparkSession, inputs: dict[str, DataFrame]
) -> None:
    contacts = labelled_contacts(
        inputs["contacts"],
        cutoff=cutoff_of(AS_OF),
        attribution_days=5,
        label="converted",
        category_pattern=r"^CMP-[0-9]{8}-[a-z]+-([a-z_]+)$",
    )
    # The sms contact of 2026-10-12 has no closed attribution window yet: not an example.
    assert [(r[c.CAMPAIGN_ID], r[c.LABEL]) for r in contacts.collect()] == [
        ("CMP-20261005-email-books", 1)
    ]
    example = with_campaign_context(customer_features(contacts, feature_set=FS, **inputs)).first()
    # Sent 2026-10-05 09:00: the purchase session of 10-09 (the conversion) and the contact
    # itself are invisible; only the abandoned cart of 09-20 counts.
    assert example[c.CAMPAIGN_CATEGORY] == "books"
    assert (example["orders_30d"], example["sessions_30d"], example["cart_abandonments_30d"]) == (
        0,
        1,
        1,
    )
    assert example["email_sends_30d"] == 0 and example["days_since_last_purchase"] is None
    assert example[c.CAMPAIGN_CATEGORY_AFFINITY] == 0.0  # books: no interaction before the send
    assert example["affinity_toys"] == 1.0


def test_single_campaign_splits_by_a_stratified_hash_holdout(spark: SparkSession) -> None:
    rows = [("CMP-1", f"C{i}", datetime(2026, 10, 1), i % 4 == 0) for i in range(400)]
    examples = spark.createDataFrame(
        rows, f"{c.CAMPAIGN_ID} string, {c.CUSTOMER_ID} string, {c.CUTOFF_TS} timestamp, l boolean"
    ).withColumn(c.LABEL, F.col("l").cast("int"))
    split = split_examples(examples, attribution_days=7, validation_fraction=0.25, seed=3)
    assert split.method == RANDOM_HOLDOUT
    train, validation = split.train.collect(), split.validation.collect()
    assert len(train) + len(validation) == 400
    assert {r[c.CUSTOMER_ID] for r in train}.isdisjoint(r[c.CUSTOMER_ID] for r in validation)
    # Stratified exactly: a quarter of the 100 positives and a quarter of the 300 negatives.
    positives = sum(r[c.LABEL] for r in validation)
    assert (positives, len(validation) - positives) == (25, 75)
    reshuffled = split_examples(
        examples.repartition(7), attribution_days=7, validation_fraction=0.25, seed=3
    )
    assert {r[c.CUSTOMER_ID] for r in reshuffled.validation.collect()} == {
        r[c.CUSTOMER_ID] for r in validation
    }


def test_rfm_scores_and_named_segments(spark: SparkSession) -> None:
    schema = (
        f"{c.CUSTOMER_ID} string, days_since_last_purchase int, orders_30d long, "
        "revenue_30d decimal(16,2)"
    )
    features = spark.createDataFrame(
        [
            ("B1", 1, 5, Decimal(500)),
            ("B2", 2, 1, Decimal(100)),
            ("B3", 3, 3, Decimal(300)),
            ("B4", 4, 4, Decimal(400)),
            ("B5", 5, 2, Decimal(200)),
            ("N1", None, 0, Decimal(0)),
        ],
        schema,
    )
    actual = rfm_segments(features, FS)
    expected = spark.createDataFrame(
        [
            ("B1", 5, 5, 5, "champions"),
            ("B2", 4, 1, 1, "new_customers"),
            ("B3", 3, 3, 3, "loyal"),
            ("B4", 2, 4, 4, "at_risk"),
            ("B5", 1, 2, 2, "hibernating"),
            ("N1", None, None, None, "prospect"),
        ],
        actual.schema,
    )
    assert_df_equality(actual, expected, ignore_row_order=True, ignore_nullable=True)


def test_behaviour_segments_separate_active_from_dormant_customers(spark: SparkSession) -> None:
    counts = ["sessions", "product_views", "searches", "add_to_carts", "orders"]
    columns = [f"{n}_7d" for n in counts] + ["days_since_last_visit", "affinity_books"]
    rows = [(f"A{i}", *[20 + i % 3] * 5, 1, 0.9) for i in range(12)]
    rows += [(f"D{i}", *[0] * 5, 29 - i % 2, 0.1) for i in range(12)]
    schema = f"{c.CUSTOMER_ID} string, " + ", ".join(
        f"{n} {'double' if n.startswith('affinity') else 'long'}" for n in columns
    )
    fs = FeatureSet(windows=(7,), top_categories=("books",), devices=(), mediums=())
    features = spark.createDataFrame(rows, schema)
    segmentation = fit_behaviour_segments(
        features, fs, SegmentsConf(kmeans_k_min=2, kmeans_k_max=3, kmeans_max_iter=20, seed=1)
    )
    assert segmentation.k == 2 and set(segmentation.silhouettes) == {2, 3}
    assigned = {
        r[c.CUSTOMER_ID]: r[c.BEHAVIOUR_SEGMENT]
        for r in assign_behaviour_segments(features, fs, segmentation).collect()
    }
    active = {assigned[f"A{i}"] for i in range(12)}
    dormant = {assigned[f"D{i}"] for i in range(12)}
    assert len(active) == 1 and len(dormant) == 1 and active != dormant


def test_binary_metrics_match_hand_computed_values(spark: SparkSession) -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05]
    labels = [1, 1, 0, 1, 0, 0, 0, 0, 0, 0]
    df = spark.createDataFrame(list(zip(labels, scores, strict=True)), "label int, score double")
    m = binary_metrics(df)
    # Positives at .9, .8 and .6 outrank 7, 7 and 6 of the 7 negatives.
    assert m["roc_auc"] == pytest.approx(20 / 21)
    assert m["brier"] == pytest.approx(1.2525 / 10)
    assert m["positive_rate"] == pytest.approx(0.3)
    # One row per decile: the top row is a positive, so lift = 1 / 0.3.
    assert m["lift_d01"] == pytest.approx(1 / 0.3)
    assert m["lift_d03"] == 0.0
    assert [round(m[f"cumulative_gain_d{d:02d}"], 4) for d in (1, 2, 3, 4, 10)] == [
        0.3333,
        0.6667,
        0.6667,
        1.0,
        1.0,
    ]
    perfect = binary_metrics(df.withColumn("score", F.col("label").cast("double")))
    assert perfect["roc_auc"] == pytest.approx(1.0) and perfect["brier"] == 0.0


def test_tied_scores_are_split_evenly_across_deciles(spark: SparkSession) -> None:
    # A constant score ranks no one: every decile's lift is exactly 1, not 0 in nine of them.
    labels = [1, 0, 0, 0, 1, 0, 0, 0, 0, 0] * 3
    constant = spark.createDataFrame([(y, 0.5) for y in labels], "label int, score double")
    m = binary_metrics(constant)
    assert [m[f"lift_d{d:02d}"] for d in range(1, 11)] == [pytest.approx(1.0)] * 10
    # Hand-computed: 10 rows at 0.9 (5 positives) fill deciles 1-5 with 2 rows and 1 positive
    # each (rate 0.5, lift 0.5 / 0.3); 10 rows at 0.1 (1 positive) fill deciles 6-10 with 0.2
    # positives each (rate 0.1, lift 1/3).
    two = [(1, 0.9)] * 5 + [(0, 0.9)] * 5 + [(1, 0.1)] + [(0, 0.1)] * 9
    m = binary_metrics(spark.createDataFrame(two, "label int, score double"))
    assert m["lift_d01"] == pytest.approx(0.5 / 0.3) and m["lift_d05"] == pytest.approx(0.5 / 0.3)
    assert m["lift_d06"] == pytest.approx(1 / 3) and m["lift_d10"] == pytest.approx(1 / 3)
    assert m["cumulative_gain_d05"] == pytest.approx(5 / 6)
    assert m["brier"] == pytest.approx((5 * 0.01 + 5 * 0.81 + 0.81 + 9 * 0.01) / 20)


def test_deciles_rank_the_highest_scores_first_within_each_group(spark: SparkSession) -> None:
    rows = [("a", float(i)) for i in range(1, 21)] + [("b", float(-i)) for i in range(1, 11)]
    scored = spark.createDataFrame(rows, "grp string, score double")
    deciles = {
        (r["grp"], r["score"]): r[c.DECILE] for r in with_deciles(scored, by=("grp",)).collect()
    }
    assert deciles[("a", 20.0)] == 1 and deciles[("a", 19.0)] == 1
    assert deciles[("a", 18.0)] == 2 and deciles[("a", 1.0)] == 10
    assert deciles[("b", -1.0)] == 1 and deciles[("b", -10.0)] == 10


def test_dated_jobs_refuse_to_run_without_a_date(capsys: pytest.CaptureFixture[str]) -> None:
    from campaignlake.jobs.cli import main

    for job in ("build_features", "train_response_model", "score_customers"):
        assert main([job, "--env", "local"]) == 1
        assert "--date YYYY-MM-DD is required" in capsys.readouterr().err

"""measure_campaigns on literal campaign histories, clickstreams and segments."""

from __future__ import annotations

import dataclasses
from datetime import date
from decimal import Decimal

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf, MeasurementConf
from campaignlake.errors import MissingInputError
from campaignlake.measurement.runs import measure_campaigns
from campaignlake.schemas import (
    CAMPAIGN_CONTACTS,
    CLICKSTREAM_EVENTS,
    CUSTOMER_SEGMENTS,
    PRODUCTS,
)
from campaignlake.tables import Tables
from tests.literals import event, frame, ts

SENT = "2026-10-01T09:00:00"


def contact(campaign: str, customer: str, group: str, sent: str = SENT, **extra) -> dict:
    return {
        c.CAMPAIGN_ID: campaign,
        c.CHANNEL: "email",
        c.CUSTOMER_ID: customer,
        c.SENT_AT: ts(sent),
        c.GROUP: group,
        **extra,
    }


def purchase(customer: str, at: str, price: float, quantity: int = 1, product: str = "P1") -> dict:
    return event(
        f"s-{customer}-{at}", "purchase", at, product, customer=customer, quantity=quantity,
        price=Decimal(str(price)),
    )  # fmt: skip


def seed(spark: SparkSession, tables: Tables) -> None:
    products = [
        {c.PRODUCT_ID: "P1", c.CATEGORY: "fashion"},
        {c.PRODUCT_ID: "P2", c.CATEGORY: "toys"},
    ]
    tables.append(catalog.PRODUCTS, frame(spark, PRODUCTS, products))
    treated = [f"T{i}" for i in range(1, 5)]
    held_out = [f"K{i}" for i in range(1, 5)]
    contacts = [
        contact("CMP-A", "T1", c.TREATMENT, converted_at=ts("2026-10-02T10:00:00")),
        *[contact("CMP-A", t, c.TREATMENT) for t in treated[1:]],
        *[contact("CMP-A", k, c.CONTROL) for k in held_out],
        # Sent on 10-28: its window closes on 11-04, after the date measured.
        contact("CMP-LATE", "T1", c.TREATMENT, sent="2026-10-28T09:00:00"),
        contact("CMP-LATE", "K1", c.CONTROL, sent="2026-10-28T09:00:00"),
    ]
    tables.append(catalog.CAMPAIGN_CONTACTS, frame(spark, CAMPAIGN_CONTACTS, contacts))
    events = [
        purchase("T1", "2026-10-02T10:00:00", 20.0),
        purchase("T1", "2026-10-04T10:00:00", 5.0),  # the same customer: one conversion
        purchase("T2", "2026-10-08T08:59:00", 10.0, quantity=2),  # the window's last minute
        purchase("T3", "2026-10-08T09:00:00", 99.0),  # the window has closed
        purchase("K1", "2026-10-03T12:00:00", 15.0),  # a held-out customer buys anyway
        purchase("K4", "2026-09-30T12:00:00", 50.0),  # before the send
        event("s-K2", "add_to_cart", "2026-10-02T12:00:00", "P1", customer="K2"),
    ]
    tables.append(catalog.CLICKSTREAM_EVENTS, frame(spark, CLICKSTREAM_EVENTS, events))
    segment = {c.AS_OF_DATE: date(2026, 9, 30)}
    segments = [
        {**segment, c.CUSTOMER_ID: cid, c.RFM_SEGMENT: "champions" if cid[1] in "12" else "other"}
        for cid in treated + held_out
    ]
    # A segment computed after the send must not be used: the campaign may have caused it.
    segments.append({c.AS_OF_DATE: date(2026, 10, 5), c.CUSTOMER_ID: "T1", c.RFM_SEGMENT: "new"})
    tables.append(catalog.CUSTOMER_SEGMENTS, frame(spark, CUSTOMER_SEGMENTS, segments))


def with_min_size(conf: Conf, size: int) -> Conf:
    return dataclasses.replace(
        conf, measurement=MeasurementConf(min_group_size=size, breakdowns=["rfm_segment"])
    )


# A job on a warehouse of literal tables (the job tier).
@pytest.mark.job
def test_lift_is_read_from_behaviour_in_the_window(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    seed(spark, tables)
    report = measure_campaigns(spark, with_min_size(conf, 4), tables, as_of=date(2026, 10, 31))
    assert [r[c.CAMPAIGN_ID] for r in report.campaigns] == ["CMP-A"]
    results = tables.read(catalog.CAMPAIGN_RESULTS)
    whole = results.where(F.col(c.BREAKDOWN) == "all").first().asDict()
    assert whole[c.STATUS] == "measured"
    assert (whole[c.TREATMENT_CUSTOMERS], whole[c.CONTROL_CUSTOMERS]) == (4, 4)
    assert (whole[c.TREATMENT_CONVERSIONS], whole[c.CONTROL_CONVERSIONS]) == (2, 1)
    assert whole[c.CONVERSION_LIFT] == pytest.approx(0.25)
    assert whole[c.CONVERSION_LIFT_RELATIVE] == pytest.approx(1.0)
    # Revenue per customer: (25 + 20) / 4 against 15 / 4.
    assert whole[c.TREATMENT_REVENUE_PER_CUSTOMER] == pytest.approx(11.25)
    assert whole[c.CONTROL_REVENUE_PER_CUSTOMER] == pytest.approx(3.75)
    assert whole[c.INCREMENTAL_REVENUE] == pytest.approx(30.0)
    assert whole[c.INCREMENTAL_CONVERSIONS] == pytest.approx(1.0)
    assert whole[c.ATTRIBUTED_CONVERSIONS] == 1
    assert whole[c.SIGNIFICANT] is False and whole[c.CONVERSION_P_VALUE] > 0.05
    assert whole[c.WINDOW_END] == ts("2026-10-08T09:00:00").replace(tzinfo=None)
    # Segments as of before the send: 2 + 2 customers per cell, below the minimum of 4.
    cells = {
        r[c.BREAKDOWN_VALUE]: (r[c.STATUS], r[c.TREATMENT_CUSTOMERS], r[c.CONTROL_CUSTOMERS])
        for r in results.where(F.col(c.BREAKDOWN) == "rfm_segment").collect()
    }
    assert cells == {
        "champions": ("insufficient_size", 2, 2),
        "other": ("insufficient_size", 2, 2),
    }


# Three more warehouses of literal tables, job tier like the first.
@pytest.mark.job
def test_rerun_commits_nothing_and_small_groups_are_not_measured(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    seed(spark, tables)
    first = measure_campaigns(spark, with_min_size(conf, 2), tables, as_of=date(2026, 10, 31))
    again = measure_campaigns(spark, with_min_size(conf, 2), tables, as_of=date(2026, 10, 31))
    assert first.writes[catalog.CAMPAIGN_RESULTS].committed
    assert not again.writes[catalog.CAMPAIGN_RESULTS].committed
    measured = {
        r[c.BREAKDOWN_VALUE]: r[c.STATUS] for r in tables.read(catalog.CAMPAIGN_RESULTS).collect()
    }
    assert measured == {"all": "measured", "champions": "measured", "other": "measured"}
    strict = measure_campaigns(spark, with_min_size(conf, 5), tables, as_of=date(2026, 10, 31))
    assert "not measured (insufficient_size)" in strict.describe()


# Three more warehouses of literal tables, job tier like the first.
@pytest.mark.job
def test_before_any_window_closes_nothing_is_measured(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    seed(spark, tables)
    report = measure_campaigns(spark, conf, tables, as_of=date(2026, 10, 7))
    assert report.campaigns == [] and tables.read(catalog.CAMPAIGN_RESULTS).count() == 0


# Three more warehouses of literal tables, job tier like the first.
@pytest.mark.job
def test_a_campaign_naming_a_category_counts_only_purchases_in_it(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    seed(spark, tables)
    promoted = "CMP-20261001-email-fashion"
    contacts = [
        contact(promoted, "T1", c.TREATMENT),
        contact(promoted, "T5", c.TREATMENT),
        contact(promoted, "K1", c.CONTROL),
        contact(promoted, "K5", c.CONTROL),
    ]
    tables.append(catalog.CAMPAIGN_CONTACTS, frame(spark, CAMPAIGN_CONTACTS, contacts))
    toys = [purchase("T5", "2026-10-02T10:00:00", 30.0, product="P2")]
    tables.append(catalog.CLICKSTREAM_EVENTS, frame(spark, CLICKSTREAM_EVENTS, toys))
    measure_campaigns(spark, with_min_size(conf, 2), tables, as_of=date(2026, 10, 31))
    whole = (
        tables.read(catalog.CAMPAIGN_RESULTS)
        .where((F.col(c.CAMPAIGN_ID) == promoted) & (F.col(c.BREAKDOWN) == "all"))
        .first()
    )
    # T1 bought fashion (P1) twice; T5's toys do not count for a fashion campaign; K1 bought
    # fashion.
    assert (whole[c.TREATMENT_CONVERSIONS], whole[c.CONTROL_CONVERSIONS]) == (1, 1)
    assert whole[c.TREATMENT_REVENUE_PER_CUSTOMER] == pytest.approx(12.5)
    anything = dataclasses.replace(
        conf, measurement=MeasurementConf(min_group_size=2, outcome="any_purchase")
    )
    measure_campaigns(spark, anything, tables, as_of=date(2026, 10, 31))
    whole = (
        tables.read(catalog.CAMPAIGN_RESULTS)
        .where((F.col(c.CAMPAIGN_ID) == promoted) & (F.col(c.BREAKDOWN) == "all"))
        .first()
    )
    assert whole[c.TREATMENT_CONVERSIONS] == 2


def test_missing_history_names_the_job_to_run(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    with pytest.raises(MissingInputError, match="ingest_campaigns"):
        measure_campaigns(spark, conf, tables, as_of=date(2026, 10, 31))

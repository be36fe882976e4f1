"""Trigger rule files: typed loading, errors naming the file and the key, the shipped rules;
and the trigger stream's control group: a deterministic hash of (rule, customer)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.errors import ConfigError
from campaignlake.schemas import (
    CAMPAIGN_CONTACTS,
    CLICKSTREAM_EVENTS,
    CUSTOMERS,
    DELETION_REQUESTS,
    PRODUCTS,
)
from campaignlake.streaming import triggers
from campaignlake.streaming.rules import load_rule_file, load_rules
from tests.literals import event, frame

VALID_RULE = """
id: cart_email
kind: cart_abandonment
channel: email
delay_minutes: 45
products: 3
quiet_hours: {start: "22:00", end: "07:00", timezone: Europe/Berlin}
frequency_cap: {min_days_since_last_contact: 1, scope: channel}
control_fraction: 0.2
"""


def test_a_valid_rule_file_loads_with_typed_values(conf: Conf, tmp_path: Path) -> None:
    path = tmp_path / "cart.yaml"
    path.write_text(VALID_RULE)
    rule = load_rule_file(path, conf)
    assert (rule.id, rule.kind, rule.channel, rule.delay_minutes) == (
        "cart_email", "cart_abandonment", "email", 45,
    )  # fmt: skip
    assert rule.quiet_hours is not None and rule.quiet_hours.minutes() == (22 * 60, 7 * 60)
    assert rule.frequency_cap.min_days_since_last_contact == 1
    assert rule.frequency_cap.scope == "channel"
    assert rule.control_fraction == 0.2 and rule.source_file == str(path)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (("kind: cart_abandonment", "kind: cart"), r"bad\.yaml: kind: .*cart"),
        (("channel: email", "channel: fax"), r"bad\.yaml: channel: "),
        (("delay_minutes: 45", "delay_minutes: 0"), r"bad\.yaml: delay_minutes: must be between 1"),
        (("products: 3", "products: 0"), r"bad\.yaml: products: must be between 1 and 20"),
        (('start: "22:00"', 'start: "25:00"'), r"bad\.yaml: quiet_hours\.start: '25:00'"),
        (("Europe/Berlin", "Mars/Olympus"), r"bad\.yaml: quiet_hours\.timezone: 'Mars/Olympus'"),
        (("control_fraction: 0.2", "control_fraction: 1.0"), r"bad\.yaml: control_fraction: "),
        (("id: cart_email", "id: cart email"), r"bad\.yaml: id: use letters"),
        (
            ("min_days_since_last_contact: 1", "min_days_since_last_contact: 0"),
            r"bad\.yaml: frequency_cap\.min_days_since_last_contact: must be between 1 and 3650",
        ),
        (("products: 3", "products: 3\ndelay: 5"), r"bad\.yaml: delay: unknown key"),
        (("id: cart_email", 'id: "cart_email\\n"'), r"bad\.yaml: id: use letters"),
        (('start: "22:00"', 'start: "22:00\\n"'), r"bad\.yaml: quiet_hours\.start: "),
        (
            ("delay_minutes: 45", "delay_minutes: 1000000000000"),
            r"bad\.yaml: delay_minutes: must be between 1 and 43200",
        ),
    ],
)
def test_rule_file_errors_name_the_file_and_the_key(
    conf: Conf, tmp_path: Path, edit: tuple[str, str], error: str
) -> None:
    path = tmp_path / "bad.yaml"
    assert edit[0] in VALID_RULE
    path.write_text(VALID_RULE.replace(edit[0], edit[1]))
    with pytest.raises(ConfigError, match=error):
        load_rule_file(path, conf)


@pytest.mark.parametrize("zone", ["Factory", "posixrules", "localtime", "right/UTC", "posix/UTC"])
def test_a_time_zone_spark_does_not_know_is_refused_naming_file_and_key(
    conf: Conf, tmp_path: Path, zone: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(VALID_RULE.replace("Europe/Berlin", zone))
    with pytest.raises(ConfigError, match=rf"bad\.yaml: quiet_hours\.timezone: '{zone}' is not"):
        load_rule_file(path, conf)


def test_duplicate_rule_ids_and_disabled_rules(conf: Conf, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID_RULE)
    (tmp_path / "b.yaml").write_text(VALID_RULE.replace("cart_email", "off") + "enabled: false\n")
    assert [r.id for r in load_rules(conf, tmp_path)] == ["cart_email"]
    (tmp_path / "c.yaml").write_text(VALID_RULE)
    with pytest.raises(
        ConfigError, match=r"c\.yaml: id: trigger rule 'cart_email' is also defined in"
    ):
        load_rules(conf, tmp_path)
    with pytest.raises(ConfigError, match=r"no trigger rule directory \(streaming.triggers_dir\)"):
        load_rules(conf, tmp_path / "missing")


def test_the_shipped_rules_are_valid_and_cover_every_kind(conf: Conf) -> None:
    assert {r.kind for r in load_rules(conf)} == {
        "cart_abandonment", "browse_abandonment", "post_purchase",
    }  # fmt: skip


def consenting_crm(spark: SparkSession, customers: list[str]) -> DataFrame:
    """``customers`` with e-mail consent and a valid address."""
    return frame(
        spark,
        CUSTOMERS,
        [{c.CUSTOMER_ID: cid, c.EMAIL: "x@example.com", c.EMAIL_VALID: True,
          c.EMAIL_OPT_IN: True} for cid in customers],
    )  # fmt: skip


def no_contacts(spark: SparkSession) -> DataFrame:
    """An empty contact history."""
    return spark.createDataFrame([], CAMPAIGN_CONTACTS).select(
        c.CAMPAIGN_ID, c.CUSTOMER_ID, c.CHANNEL, F.lit(date(2026, 1, 1)).alias(c.CONTACT_DATE)
    )


def test_the_control_group_is_a_stable_hash_of_rule_and_customer(
    spark: SparkSession, conf: Conf, tmp_path: Path
) -> None:
    # No quiet hours and no cap: only the hash decides (with a cap, the customer's second
    # trigger in the micro-batch would be capped).
    uncapped = VALID_RULE.replace("quiet_hours", "# quiet_hours").replace(
        "frequency_cap", "# frequency_cap"
    )
    (tmp_path / "a.yaml").write_text(uncapped)
    (tmp_path / "b.yaml").write_text(uncapped.replace("cart_email", "other"))
    rules = triggers.rule_frame(spark, load_rules(conf, tmp_path))
    noon = int(datetime(2026, 10, 30, 12, tzinfo=timezone.utc).timestamp() * 1000)
    customers = [f"C{n:03d}" for n in range(400)]
    found = spark.createDataFrame(
        [
            (rule, "cart_abandonment", cid, f"e-{cid}", noon, noon, "fired", None, ["P1"])
            for rule in ("cart_email", "other")
            for cid in customers
        ],
        triggers.CANDIDATES,
    ).transform(lambda df: triggers.with_trigger_ids(df, rules))
    crm = consenting_crm(spark, list(customers))
    none = spark.createDataFrame([], DELETION_REQUESTS)
    history = no_contacts(spark)

    def controls() -> dict[str, set[str]]:
        grouped = triggers.with_trigger_suppression(
            found, crm, none, triggers.contact_pressure_at(found, history), phone_pattern="^x$",
            sending_at=F.lit(datetime(2026, 10, 30, 12, 5)), max_age_minutes=60,
        ).where(F.col(c.GROUP) == "control")  # fmt: skip
        out: dict[str, set[str]] = {"cart_email": set(), "other": set()}
        for row in grouped.select(c.RULE_ID, c.CUSTOMER_ID).collect():
            out[row[0]].add(row[1])
        return out

    first, again = controls(), controls()
    assert first == again
    for rule in ("cart_email", "other"):
        assert 0.13 <= len(first[rule]) / len(customers) <= 0.27
    # Each rule holds out its own customers, not the same ones.
    assert first["cart_email"] != first["other"]


def test_a_trigger_expires_when_decided_too_late_and_quiet_hours_are_those_of_sending(
    spark: SparkSession, conf: Conf, tmp_path: Path
) -> None:
    # Quiet 22:00-07:00 Berlin (UTC+1 in November); no cap, no control group.
    (tmp_path / "a.yaml").write_text(
        VALID_RULE.replace("frequency_cap", "# frequency_cap").replace("0.2", "0.0")
    )
    rules = triggers.rule_frame(spark, load_rules(conf, tmp_path))

    def ms(day: int, hour: int, minute: int = 0) -> int:
        return int(datetime(2026, 11, day, hour, minute, tzinfo=timezone.utc).timestamp() * 1000)

    due = {"C1": ms(2, 11), "C2": ms(2, 7, 30), "C3": ms(1, 12), "C4": ms(2, 21, 30)}
    found = spark.createDataFrame(
        [("cart_email", "cart_abandonment", cid, f"e-{cid}", t, t, "fired", None, ["P1"])
         for cid, t in due.items()],
        triggers.CANDIDATES,
    ).transform(lambda df: triggers.with_trigger_ids(df, rules))  # fmt: skip
    crm = consenting_crm(spark, list(due))
    history = no_contacts(spark)

    def decided(sending: datetime) -> dict[str, str | None]:
        rows = triggers.with_trigger_suppression(
            found, crm, spark.createDataFrame([], DELETION_REQUESTS),
            triggers.contact_pressure_at(found, history), phone_pattern="^x$",
            sending_at=F.lit(sending), max_age_minutes=240,
        ).select(c.CUSTOMER_ID, F.coalesce(c.SUPPRESSION_REASON, c.GROUP)).collect()  # fmt: skip
        return dict(sorted((r[0], r[1]) for r in rows))

    # At 12:00 UTC (13:00 in Berlin): C2 due 4.5 hours ago and C3 a day ago expire; C4 is not
    # due yet but sent at a time outside quiet hours (its due time is inside them).
    assert decided(datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)) == {
        "C1": "treatment", "C2": "expired", "C3": "expired", "C4": "treatment",
    }  # fmt: skip
    # Decided at 21:45 UTC (22:45 in Berlin), after a stall: quiet for C4; C1 has expired.
    assert decided(datetime(2026, 11, 2, 21, 45, tzinfo=timezone.utc)) == {
        "C1": "expired", "C2": "expired", "C3": "expired", "C4": "quiet_hours",
    }  # fmt: skip


def test_messages_offer_text_neighbours_only_for_products_without_als_ones(
    spark: SparkSession,
) -> None:
    similar = spark.createDataFrame(
        [
            ("OLD", 1, "A", c.ALS_METHOD),
            ("OLD", 1, "B", c.CONTENT_METHOD),
            ("LEGACY", 1, "A", None),  # written before the method column: ALS's
            ("NEW", 1, "OLD", c.CONTENT_METHOD),
            ("NEW", 2, "A", c.CONTENT_METHOD),
        ],
        f"{c.PRODUCT_ID} string, {c.RANK} int, {c.SIMILAR_PRODUCT_ID} string, {c.METHOD} string",
    )
    got = sorted(tuple(r) for r in triggers.offer_neighbours(similar).collect())
    assert got == [
        ("LEGACY", 1, "A", None),
        ("NEW", 1, "OLD", c.CONTENT_METHOD),
        ("NEW", 2, "A", c.CONTENT_METHOD),
        ("OLD", 1, "A", c.ALS_METHOD),
    ]


def test_an_event_time_ahead_of_its_arrival_counts_as_arrival_plus_the_tolerance(
    spark: SparkSession,
) -> None:
    arrived = datetime(2026, 10, 30, 10, 30)
    events = [
        {**event(s, "add_to_cart", at, "P1", customer=cid), c.INGESTED_AT: arrived}
        for s, at, cid in [
            ("s1", "2026-10-30T10:00:00", "C1"),  # on time
            ("s2", "2026-10-30T10:33:00", "C2"),  # 3 minutes ahead: within the tolerance
            ("s3", "2026-10-31T06:30:00", "C3"),  # a device clock 20 hours ahead
        ]
    ]
    inputs = triggers.trigger_inputs(
        frame(spark, CLICKSTREAM_EVENTS, events),
        frame(spark, PRODUCTS, [{c.PRODUCT_ID: "P1", c.CATEGORY: "books"}]),
        max_ahead_of_arrival_minutes=5,
    )
    times = {r[c.CUSTOMER_ID]: r[c.EVENT_TS] for r in inputs.collect()}
    assert times == {
        "C1": datetime(2026, 10, 30, 10, 0),
        "C2": datetime(2026, 10, 30, 10, 33),
        "C3": datetime(2026, 10, 30, 10, 35),
    }

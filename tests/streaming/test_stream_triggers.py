"""The real-time triggers over bronze as a Delta stream: each rule fires after its delay in
event time, the cancelling event cancels it, consent, erasure, the frequency cap and quiet
hours suppress, products come from the cart, the recommendations and the similar products,
every trigger lands in gold/trigger_events once, and an event later than the watermark is
counted."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.erasure.runs import erase_customers
from campaignlake.schemas import (
    CAMPAIGN_CONTACTS,
    CUSTOMERS,
    DELETION_REQUESTS,
    PRODUCTS,
    RECOMMENDATIONS,
    SIMILAR_PRODUCTS,
)
from campaignlake.streaming.runs import stream_clickstream, stream_triggers
from campaignlake.tables import Tables
from tests.literals import NOW, event_line, frame, seed_trigger_inputs, write

pytestmark = pytest.mark.system

RULES = {
    "cart": """
id: cart
kind: cart_abandonment
channel: email
delay_minutes: 30
products: 3
quiet_hours: {start: "22:00", end: "07:00", timezone: UTC}
frequency_cap: {min_days_since_last_contact: 1}
control_fraction: 0.0
""",
    "browse": """
id: browse
kind: browse_abandonment
channel: push
delay_minutes: 20
min_views: 2
products: 2
control_fraction: 0.0
""",
    "post": """
id: post
kind: post_purchase
channel: email
delay_minutes: 60
products: 2
control_fraction: 0.0
""",
}


def at(clock: str, day: int = 30) -> datetime:
    hours, minutes = clock.split(":")
    return datetime(2026, 10, day, int(hours), int(minutes), tzinfo=timezone.utc)


def customer(customer_id: str, **overrides: object) -> dict:
    values = {
        c.CUSTOMER_ID: customer_id,
        c.EMAIL: f"{customer_id.lower()}@example.com",
        c.EMAIL_VALID: True,
        c.PHONE: "+491500000001",
        c.EMAIL_OPT_IN: True,
        c.SMS_OPT_IN: True,
        c.PUSH_OPT_IN: True,
    }
    return {**values, **overrides}


def product(product_id: str, category: str, active: bool = True) -> dict:
    return {c.PRODUCT_ID: product_id, c.CATEGORY: category, c.ACTIVE: active}


@pytest.fixture
def trigger_conf(conf: Conf, tmp_path: Path) -> Conf:
    folder = tmp_path / "triggers"
    folder.mkdir()
    for name, text in RULES.items():
        (folder / f"{name}.yaml").write_text(text)
    paths = dataclasses.replace(conf.paths, checkpoints=str(tmp_path / "checkpoints"))
    streaming = dataclasses.replace(
        conf.streaming,
        triggers_dir=str(folder),
        watermark_minutes=10,
        triggers_start="earliest",
        max_trigger_age_minutes=3 * 24 * 60,
    )
    return dataclasses.replace(conf, paths=paths, streaming=streaming)


def clicks(*events: tuple[str, str, str, str | None, datetime, str]) -> str:
    """Landing lines of (event id, customer, type, product, time, session)."""
    return "".join(
        event_line(
            event_id, customer_id=customer_id, event_type=kind, product_id=product_id,
            event_ts=moment.isoformat().replace("+00:00", "Z"), session_id=session,
        ) + "\n"
        for event_id, customer_id, kind, product_id, moment, session in events
    )  # fmt: skip


def trigger_rows(tables: Tables) -> list[tuple]:
    rows = tables.read(catalog.TRIGGER_EVENTS).collect()
    return sorted(
        (
            r[c.TRIGGER_ID], r[c.CUSTOMER_ID], r[c.OUTCOME], r[c.SUPPRESSION_REASON], r[c.GROUP],
            list(r[c.PRODUCT_IDS]), r[c.FIRED_AT].strftime("%d %H:%M"),
        )
        for r in rows
    )  # fmt: skip


#: C1 leaves a cart at 10:00; C9's view at 11:00 moves the watermark past its due time.
CART_THEN_A_LATER_VIEW = (
    ("c1a", "C1", "add_to_cart", "P1", at("10:00"), "s1"),
    ("c9a", "C9", "product_view", "P4", at("11:00"), "s9"),
)


def land(spark: SparkSession, conf: Conf, tables: Tables, name: str, *events: tuple) -> None:
    """Land ``events`` (see :func:`clicks`) as ``clickstream/<name>.jsonl`` and ingest them."""
    write(conf.paths.landing, f"clickstream/{name}.jsonl", clicks(*events))
    stream_clickstream(spark, conf, tables, now=NOW)


def test_rules_fire_cancel_and_are_suppressed_once_each_and_late_events_are_counted(
    spark: SparkSession, trigger_conf: Conf, tables: Tables
) -> None:
    conf = trigger_conf
    tables.append(
        catalog.CUSTOMERS,
        frame(
            spark,
            CUSTOMERS,
            [
                *[customer(f"C{n}") for n in (1, 2, 3, 6, 7, 8, 9, 10)],
                customer("C4", **{c.EMAIL_OPT_IN: False}),
            ],
        ),
    )
    tables.ensure(catalog.DELETION_REQUESTS)  # as ingest_crm leaves it: no request yet
    tables.append(
        catalog.CAMPAIGN_CONTACTS,
        frame(
            spark,
            CAMPAIGN_CONTACTS,
            [
                {
                    c.CAMPAIGN_ID: "OLD",
                    c.CHANNEL: "email",
                    c.CUSTOMER_ID: "C6",
                    c.SENT_AT: at("09:00", day=29),
                }
            ],
        ),
    )
    tables.append(
        catalog.PRODUCTS,
        frame(
            spark,
            PRODUCTS,
            [
                product("P1", "books"),
                product("P2", "books"),
                product("P3", "books"),
                product("P4", "toys"),
                product("P5", "toys", active=False),
            ],
        ),
    )
    day = date(2026, 10, 29)
    tables.append(
        catalog.SIMILAR_PRODUCTS,
        frame(
            spark,
            SIMILAR_PRODUCTS,
            [
                {c.PRODUCT_ID: p, c.RANK: r, c.SIMILAR_PRODUCT_ID: s, c.AS_OF_DATE: day}
                for p, r, s in [("P1", 1, "P2"), ("P1", 2, "P3"), ("P4", 1, "P5"), ("P4", 2, "P1")]
            ],
        ),
    )
    tables.append(
        catalog.RECOMMENDATIONS,
        frame(
            spark,
            RECOMMENDATIONS,
            [
                {c.CUSTOMER_ID: "C3", c.RANK: r, c.PRODUCT_ID: p, c.AS_OF_DATE: day}
                for r, p in [(1, "P4"), (2, "P3"), (3, "P2")]
            ],
        ),
    )
    write(
        conf.paths.landing,
        "clickstream/date=2026-10-30/a.jsonl",
        clicks(
            # C1 leaves a two-product cart: fires 30 minutes after the last add.
            ("c1a", "C1", "add_to_cart", "P1", at("10:00"), "s1"),
            ("c1b", "C1", "add_to_cart", "P2", at("10:10"), "s1"),
            # C2 buys within the delay: the cart is cancelled, the purchase cross-sells.
            ("c2a", "C2", "add_to_cart", "P1", at("10:00"), "s2"),
            ("c2b", "C2", "purchase", "P1", at("10:20"), "s2"),
            # C3 views two books and leaves: recommendations in books.
            ("c3a", "C3", "product_view", "P2", at("10:00"), "s3"),
            ("c3b", "C3", "product_view", "P3", at("10:05"), "s3"),
            # C4 has no email consent; C5 is not (or no longer) in the CRM; C6 was emailed
            # yesterday.
            ("c4a", "C4", "add_to_cart", "P1", at("10:00"), "s4"),
            ("c5a", "C5", "add_to_cart", "P1", at("10:00"), "s5"),
            ("c6a", "C6", "add_to_cart", "P1", at("10:00"), "s6"),
            # C7's cart falls due at 22:20, inside the rule's quiet hours; it is decided at noon
            # the next day (NOW), outside them: quiet hours are those of the time of sending.
            ("c7a", "C7", "add_to_cart", "P1", at("21:50"), "s7"),
            # C8 browses, then adds to the cart: browse cancelled, cart fires.
            ("c8a", "C8", "product_view", "P1", at("10:00"), "s8"),
            ("c8b", "C8", "product_view", "P2", at("10:02"), "s8"),
            ("c8c", "C8", "add_to_cart", "P4", at("10:10"), "s8"),
        ),
    )
    # A later event moves the watermark past every due time; C10's cart stays pending.
    write(
        conf.paths.landing,
        "clickstream/date=2026-10-31/b.jsonl",
        clicks(
            ("c9a", "C9", "product_view", "P4", at("11:00", day=31), "s9"),
            ("c10a", "C10", "add_to_cart", "P1", at("11:00", day=31), "s10"),
        ),
    )
    stream_clickstream(spark, conf, tables, now=NOW)

    report = stream_triggers(spark, conf, tables, available_now=True, now=NOW)

    assert trigger_rows(tables) == [
        ("browse:c3b", "C3", "fired", None, "treatment", ["P3", "P2"], "30 10:25"),
        ("browse:c8b", "C8", "cancelled", None, None, ["P2", "P1"], "30 10:10"),
        ("cart:c1a", "C1", "fired", None, "treatment", ["P2", "P1"], "30 10:40"),
        ("cart:c2a", "C2", "cancelled", None, None, ["P1"], "30 10:20"),
        ("cart:c4a", "C4", "fired", "no_channel_consent", None, ["P1"], "30 10:30"),
        ("cart:c5a", None, "fired", "erased", None, ["P1"], "30 10:30"),
        ("cart:c6a", "C6", "fired", "frequency_cap", None, ["P1"], "30 10:30"),
        ("cart:c7a", "C7", "fired", None, "treatment", ["P1"], "30 22:20"),
        ("cart:c8c", "C8", "fired", None, "treatment", ["P4"], "30 10:40"),
        ("post:c2b", "C2", "fired", None, "treatment", ["P2", "P3"], "30 11:20"),
    ]
    funnel = report.funnel()
    assert funnel["cart"]["candidates"] == 7 and funnel["cart"]["cancelled"] == 1
    assert funnel["cart"]["suppressed"] == 3 and funnel["cart"]["sent"] == 3
    assert funnel["cart"]["suppressed_erased"] == 1
    assert report.late_rows == 0
    assert "cart: candidates 7 → cancelled 1 → suppressed 3" in report.describe()

    outbox = Path(conf.paths.outbox_root)
    messages = {
        channel: sorted(
            json.loads(line)[c.TRIGGER_ID]
            for path in (outbox / channel).rglob("part-*.json")
            for line in path.read_text().splitlines()
        )
        for channel in ("email", "push")
    }
    assert messages == {
        "email": ["cart:c1a", "cart:c7a", "cart:c8c", "post:c2b"],
        "push": ["browse:c3b"],
    }
    assert not any("example.com" in p.read_text() for p in outbox.rglob("part-*.json"))

    # C10 asks to be deleted while the cart is pending: the state forgets it, nothing fires
    # and nothing is committed, also when the watermark later passes the cart's due time.
    version = tables.version(catalog.TRIGGER_EVENTS)
    tables.append(
        catalog.DELETION_REQUESTS,
        frame(spark, DELETION_REQUESTS, [{c.CUSTOMER_ID: "C10", c.REQUESTED_AT: at("11:05", 31)}]),
    )
    assert stream_triggers(spark, conf, tables, available_now=True, now=NOW).batches == []
    # Then an event older than the watermark (counted, dropped) and one that moves it on.
    write(
        conf.paths.landing,
        "clickstream/date=2026-10-30/late.jsonl",
        clicks(
            ("c1late", "C1", "add_to_cart", "P3", at("12:00"), "s1"),
            ("c11a", "C11", "checkout", "P1", at("13:00", day=31), "s11"),
        ),
    )
    stream_clickstream(spark, conf, tables, now=NOW)
    late = stream_triggers(spark, conf, tables, available_now=True, now=NOW)
    assert late.late_rows == 1 and late.batches == []
    assert tables.version(catalog.TRIGGER_EVENTS) == version


def test_a_scheduled_latest_start_reads_what_bronze_got_after_its_first_run(
    spark: SparkSession, trigger_conf: Conf, tables: Tables
) -> None:
    # The shipped default: a new checkpoint does not message the carts bronze already holds.
    conf = dataclasses.replace(
        trigger_conf, streaming=dataclasses.replace(trigger_conf.streaming, triggers_start="latest")
    )
    seed_trigger_inputs(spark, tables, ["C1", "C2", "C9"], [("P1", "books"), ("P4", "toys")])
    land(spark, conf, tables, "date=2026-10-30/a", *CART_THEN_A_LATER_VIEW)
    # The first scheduled run finds nothing after its starting point, and records that point.
    first = stream_triggers(spark, conf, tables, available_now=True, now=NOW)
    assert first.batches == [] and not tables.exists(catalog.TRIGGER_EVENTS)
    land(
        spark, conf, tables, "date=2026-10-30/b",
        ("c2a", "C2", "add_to_cart", "P1", at("12:00"), "s2"),
        ("c9b", "C9", "product_view", "P4", at("13:00"), "s9"),
    )  # fmt: skip
    # The next one reads what was appended in between (C2's cart), and still not C1's.
    stream_triggers(spark, conf, tables, available_now=True, now=NOW)
    assert [(row[0], row[2]) for row in trigger_rows(tables)] == [("cart:c2a", "fired")]


def test_a_batch_replayed_after_its_commit_sends_the_committed_triggers_again(
    spark: SparkSession, trigger_conf: Conf, tables: Tables
) -> None:
    # The cart rule caps at one contact a day: recomputed, the replay would count its own
    # committed trigger as an earlier contact and suppress it.
    conf = trigger_conf
    seed_trigger_inputs(spark, tables, ["C1", "C9"], [("P1", "books"), ("P4", "toys")])
    land(spark, conf, tables, "date=2026-10-30/a", *CART_THEN_A_LATER_VIEW)
    first = stream_triggers(spark, conf, tables, available_now=True, now=NOW)
    [written] = [b for b in first.batches if b.write is not None and b.write.committed]
    committed = trigger_rows(tables)
    assert [(r[0], r[4]) for r in committed] == [("cart:c1a", "treatment")]

    # The driver dies after the table's commit, before the checkpoint's and the outbox's.
    checkpoints = Path(conf.paths.checkpoints) / "stream_triggers" / "commits"
    for done in checkpoints.iterdir():
        batch = done.name.removeprefix(".").removesuffix(".crc")
        if batch.isdigit() and int(batch) >= written.micro_batch:
            done.unlink()
    outbox = Path(conf.paths.outbox_root)
    shutil.rmtree(outbox)

    replay = stream_triggers(spark, conf, tables, available_now=True, now=NOW)
    assert replay.batches[0].micro_batch == written.micro_batch
    assert not replay.batches[0].write.committed
    assert replay.funnel()["cart"]["sent"] == 1
    assert trigger_rows(tables) == committed
    sent = [
        json.loads(line)[c.TRIGGER_ID]
        for path in outbox.rglob("part-*.json")
        for line in path.read_text().splitlines()
    ]
    assert sent == ["cart:c1a"]


def test_the_stream_goes_on_after_an_erasure_vacuumed_a_file_it_had_not_read(
    spark: SparkSession, trigger_conf: Conf, tables: Tables
) -> None:
    conf = trigger_conf
    seed_trigger_inputs(spark, tables, ["C1", "C2", "C3", "C9"], [("P1", "books")])
    land(
        spark,
        conf,
        tables,
        "date=2026-10-29/a",
        ("c1a", "C1", "add_to_cart", "P1", at("10:00", day=29), "s1"),
    )
    assert stream_triggers(spark, conf, tables, available_now=True, now=NOW).batches == []
    # C2's event lands in bronze, and C2 is erased before the stream has read it: the file is
    # deleted and vacuumed at once (local retention: 0 hours).
    land(
        spark,
        conf,
        tables,
        "date=2026-10-30/a",
        ("c2a", "C2", "add_to_cart", "P1", at("10:00"), "s2"),
    )
    tables.append(
        catalog.DELETION_REQUESTS,
        frame(spark, DELETION_REQUESTS, [{c.CUSTOMER_ID: "C2", c.REQUESTED_AT: at("08:00")}]),
    )
    erased = erase_customers(spark, conf, tables, as_of=date(2026, 10, 31), now=NOW)
    assert erased.due == 1 and erased.vacuumed_files >= 1
    c3_cart = ("c3a", "C3", "add_to_cart", "P1", at("09:00", day=31), "s3")
    land(spark, conf, tables, "date=2026-10-31/b", c3_cart)

    # The stream reads on past the missing file: C3's event fires C1's cart.
    stream_triggers(spark, conf, tables, available_now=True, now=NOW)
    assert [(r[0], r[1], r[4]) for r in trigger_rows(tables)] == [("cart:c1a", "C1", "treatment")]
    c9_view = ("c9a", "C9", "product_view", "P1", at("11:00", day=31), "s9")
    land(spark, conf, tables, "date=2026-10-31/c", c9_view)
    stream_triggers(spark, conf, tables, available_now=True, now=NOW)
    assert [r[0] for r in trigger_rows(tables)] == ["cart:c1a", "cart:c3a"]

"""Clickstream parsing, checks and deduplication on small literal lines."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.ingest import clickstream as cs
from campaignlake.schemas import CLICKSTREAM_EVENTS
from tests.literals import assert_frames_equal

INGESTED_AT = datetime(2026, 10, 31, 12, 0, tzinfo=timezone.utc)


RULES = cs.ClickstreamRules(INGESTED_AT, 24, datetime(2015, 1, 1, tzinfo=timezone.utc))


FILE = "file:/landing/clickstream/date=2026-10-30/hour=10/events-0000.jsonl"


def event(**overrides: object) -> str:
    base = {
        "event_id": "e1",
        "event_type": "add_to_cart",
        "event_ts": "2026-10-30T10:15:30.250+02:00",
        "customer_id": "C1",
        "anonymous_id": "a1",
        "session_id": "s1",
        "product_id": "P1",
        "quantity": 2,
        "price": 19.99,
        "page_url": "https://shop/p1",
        "device": "mobile",
    }
    base.update(overrides)
    return json.dumps({k: v for k, v in base.items() if v is not ...}, ensure_ascii=False)


def lines_df(spark: SparkSession, lines: list[str | bytes]) -> DataFrame:
    """Lines as the text reader gives them: raw bytes viewed as a string."""
    raw = [(line.encode("utf-8") if isinstance(line, str) else line, FILE) for line in lines]
    return spark.createDataFrame(raw, "value binary, source_file string").select(
        F.col("value").cast("string").alias(cs.LINE), F.col(c.SOURCE_FILE)
    )


def reasons(spark: SparkSession, lines: list[str | bytes]) -> list[str | None]:
    parsed = cs.parse_events(lines_df(spark, lines), RULES)
    return [r[c.REASON] for r in parsed.collect()]


def test_valid_event_is_typed_in_utc(spark: SparkSession) -> None:
    parsed = cs.parse_events(
        lines_df(spark, [event(event_ts="2026-10-30T00:30:00.250+02:00", amount=39.97)]), RULES
    )
    bronze = cs.to_bronze(parsed, "b-1", INGESTED_AT)
    expected = spark.createDataFrame(
        [
            (
                "e1",
                "add_to_cart",
                datetime(2026, 10, 29, 22, 30, 0, 250000, tzinfo=timezone.utc),
                "C1",
                "a1",
                "s1",
                "P1",
                2,
                Decimal("19.99"),
                Decimal("39.97"),
                "https://shop/p1",
                None,
                None,
                None,
                None,
                "mobile",
                None,
                None,
                FILE,
                "b-1",
                INGESTED_AT,
                date(2026, 10, 29),
            )
        ],
        CLICKSTREAM_EVENTS,
    )
    assert_frames_equal(bronze, expected, ordered=True)


def test_unknown_fields_are_rescued_not_dropped(spark: SparkSession) -> None:
    line = event(experiment="checkout-v2", ab={"bucket": 7})
    row = cs.parse_events(lines_df(spark, [line]), RULES).first()
    assert row[c.REASON] is None
    assert json.loads(row[c.RESCUED_DATA]) == {"experiment": "checkout-v2", "ab": '{"bucket":7}'}


#: One line of each kind of bad record and the reason it must get.
BAD_RECORDS = [
    (event()[:40], "malformed_json"),
    (event(event_id=""), "missing_event_id"),
    (event(event_id=...), "missing_event_id"),
    (event(event_type="teleport"), "unknown_event_type"),
    (event(customer_id=None, anonymous_id=" "), "missing_customer_and_anonymous_id"),
    (event(session_id=None), "missing_session_id"),
    (event(event_ts=...), "missing_event_ts"),
    (event(event_ts="31/02/2026 25:61"), "unparseable_event_ts"),
    (event(event_ts="2026-11-02T12:00:01+00:00"), "future_event_ts"),
    (event(event_ts="1999-12-31T23:59:59Z"), "too_old_event_ts"),
    (event(quantity="two"), "invalid_quantity"),
    (event(quantity=0), "non_positive_quantity"),
    (event(price="abc"), "invalid_price"),
    (event(price=-12.5), "negative_price"),
    (event(product_id=None), "missing_product_id"),
    # Ids must be plain values, not JSON objects or arrays stored as text.
    (event(event_id={"id": "e1"}), "invalid_event_id"),
    (event(customer_id=["C1"]), "invalid_customer_id"),
    (event(product_id={"sku": "P1"}), "invalid_product_id"),
    # The contract requires an offset: a local time is not silently taken as UTC.
    (event(event_ts="2026-10-30T10:15:30"), "missing_ts_offset"),
    (event(event_ts="2026-10-30"), "missing_ts_offset"),
    (event(amount="lots"), "invalid_amount"),
    (event(amount=-1), "negative_amount"),
]


def test_each_bad_record_kind_gets_its_reason(spark: SparkSession) -> None:
    # All kinds in one batch (one Spark job, not one per kind): each line keeps its own
    # reason, whatever its neighbours are.
    lines = [event(), *(line for line, _ in BAD_RECORDS)]
    assert reasons(spark, lines) == [None, *(reason for _, reason in BAD_RECORDS)]


def test_non_utf8_line_is_rejected_and_kept_readable(spark: SparkSession) -> None:
    line = event(city="Montréal").encode("latin-1")
    row = cs.parse_events(lines_df(spark, [line]), RULES).first()
    assert row[c.REASON] == "invalid_utf8"
    assert "Montr\ufffdal" in row[c.RAW_RECORD]


def test_page_view_needs_no_product_and_future_within_skew_is_fine(spark: SparkSession) -> None:
    line = event(
        event_type="page_view",
        product_id=None,
        quantity=None,
        price=None,
        event_ts="2026-11-01T11:59:00+00:00",
    )
    assert reasons(spark, [line]) == [None]


def test_duplicates_within_batch_and_against_table(spark: SparkSession) -> None:
    lines = [
        event(event_id="e1", event_ts="2026-10-30T10:00:05Z"),
        event(event_id="e1", event_ts="2026-10-30T10:00:00Z"),  # earliest occurrence wins
        event(event_id="e2"),
        event(event_id="e3"),
        event(event_id="bad", price=-1),
    ]
    parsed = cs.parse_events(lines_df(spark, lines), RULES)
    existing = spark.createDataFrame([("e3",)], "event_id string")
    marked = cs.mark_duplicates(parsed, cs.duplicate_ids(parsed, cs.repeated_ids(parsed), existing))
    got = sorted((r[c.EVENT_ID], r[c.EVENT_TS].second, r[c.REASON]) for r in marked.collect())
    assert got == [
        ("bad", 30, "negative_price"),
        ("e1", 0, None),
        ("e1", 5, "duplicate_event_id"),
        ("e2", 30, None),
        ("e3", 30, "already_ingested"),
    ]
    quarantine = cs.to_clickstream_quarantine(marked, "b-1", INGESTED_AT)
    dispositions = sorted(
        (r[c.RECORD_KEY], r[c.REASON], r[c.DISPOSITION]) for r in quarantine.collect()
    )
    assert dispositions == [
        ("bad", "negative_price", "rejected"),
        ("e1", "duplicate_event_id", "duplicate"),
        ("e3", "already_ingested", "duplicate"),
    ]
    assert cs.to_bronze(marked, "b-1", INGESTED_AT).count() == 2


def test_identical_lines_keep_exactly_one(spark: SparkSession) -> None:
    same = event(event_id="e1")
    parsed = cs.parse_events(lines_df(spark, [same, same, same, event(event_id="e2")]), RULES)
    no_table = spark.createDataFrame([], "event_id string")
    marked = cs.mark_duplicates(parsed, cs.duplicate_ids(parsed, cs.repeated_ids(parsed), no_table))
    got = sorted((r[c.EVENT_ID], r[c.REASON] or "") for r in marked.collect())
    assert got == [
        ("e1", ""),
        ("e1", "duplicate_event_id"),
        ("e1", "duplicate_event_id"),
        ("e2", ""),
    ]


def test_ts_offsets_of_every_iso_form_are_accepted(spark: SparkSession) -> None:
    forms = ["2026-10-30T10:15:30Z", "2026-10-30T10:15:30.5+0200", "2026-10-30T10:15:30-05:00"]
    assert reasons(spark, [event(event_id=str(i), event_ts=ts) for i, ts in enumerate(forms)]) == [
        None,
        None,
        None,
    ]


def test_batch_files_are_read_by_name_relative_to_the_landing_root_and_a_missing_one_is_named(
    spark: SparkSession, tmp_path: Path
) -> None:
    kept = tmp_path / "events [1] {a}+b%.jsonl"
    kept.write_text(event(event_id="e1") + "\n\n   \n" + event(event_id="e2") + "\n")
    (tmp_path / "events 1 a.jsonl").write_text(event(event_id="not-in-batch") + "\n")
    parsed = cs.parse_events(cs.read_lines(spark, [f"file:{kept}"], f"file:{tmp_path}"), RULES)
    got = sorted((r[c.EVENT_ID], r[c.REASON], r[c.SOURCE_FILE]) for r in parsed.collect())
    assert got == [("e1", None, "events [1] {a}+b%.jsonl"), ("e2", None, "events [1] {a}+b%.jsonl")]
    with pytest.raises(Exception, match=r"gone\.jsonl"):
        cs.read_lines(spark, [f"file:{kept}", f"file:{tmp_path / 'gone.jsonl'}"], "file:/")

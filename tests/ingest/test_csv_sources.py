"""CSV sources' pure transforms on literal rows: the CRM tie rules and erased customers."""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import SparkSession

from campaignlake import columns as c
from campaignlake.ingest import csv_sources as csv
from tests.literals import assert_frames_equal

T1 = datetime(2026, 10, 1, tzinfo=timezone.utc)


T0 = datetime(2026, 9, 1, tzinfo=timezone.utc)


VERSIONS = (
    f"{c.CUSTOMER_ID} string, {c.UPDATED_AT} timestamp, {c.EMAIL_OPT_IN} boolean, "
    f"{c.SMS_OPT_IN} boolean, {c.PUSH_OPT_IN} boolean, {c.REASON} string"
)


def test_a_no_in_any_tied_version_of_a_batch_applies_to_the_winner(spark: SparkSession) -> None:
    refined = spark.createDataFrame(
        [
            ("C1", T1, True, True, True, None),  # the winner: the later export
            ("C1", T1, False, True, True, csv.STALE_DUPLICATE),  # tied, opted out of email
            ("C1", T0, True, False, True, csv.STALE_DUPLICATE),  # older: not a tie
            ("C2", T1, True, True, False, None),
            ("C3", None, True, True, True, "missing_updated_at"),
        ],
        VERSIONS,
    )
    expected = spark.createDataFrame(
        [
            ("C1", T1, False, True, True, None),
            ("C1", T1, False, True, True, csv.STALE_DUPLICATE),
            ("C1", T0, True, False, True, csv.STALE_DUPLICATE),
            ("C2", T1, True, True, False, None),
            ("C3", None, True, True, True, "missing_updated_at"),
        ],
        VERSIONS,
    )
    assert_frames_equal(csv.withdrawn_consent_in_ties(refined), expected)


ROWS = (
    f"{c.CUSTOMER_ID} string, {c.EMAIL} string, {c.EMAIL_OPT_IN} boolean, "
    f"{c.SMS_OPT_IN} boolean, {c.PUSH_OPT_IN} boolean, {c.UPDATED_AT} timestamp, "
    f"{c.SOURCE_FILE} string, {c.BATCH_ID} string"
)


def test_ties_with_the_table_go_to_the_later_export_and_keep_every_no(
    spark: SparkSession,
) -> None:
    table = spark.createDataFrame(
        [
            ("later", "old@x.com", True, False, True, T1, "crm/customers_2026-10-01.csv", "b1"),
            ("earlier", "kept@x.com", True, True, True, T1, "crm/customers_2026-10-05.csv", "b1"),
            ("newer", "old@x.com", False, False, False, T0, "crm/customers_2026-09-01.csv", "b1"),
        ],
        ROWS,
    )
    source = spark.createDataFrame(
        [
            # A later export with the same updated_at: its fields, and both versions' "no"s.
            ("later", "new@x.com", True, True, False, T1, "crm/customers_2026-10-02.csv", "b2"),
            # An older export arriving late: the table's fields, but its opt-out applies.
            ("earlier", "stale@x.com", False, True, True, T1, "crm/customers_2026-10-03.csv", "b2"),
            # A newer updated_at is not a tie: the source row as it is.
            ("newer", "new@x.com", True, True, True, T1, "crm/customers_2026-10-02.csv", "b2"),
            ("unknown", "u@x.com", True, True, True, T1, "crm/customers_2026-10-02.csv", "b2"),
        ],
        ROWS,
    )
    expected = spark.createDataFrame(
        [
            ("later", "new@x.com", True, False, False, T1, "crm/customers_2026-10-02.csv", "b2"),
            ("earlier", "kept@x.com", False, True, True, T1, "crm/customers_2026-10-05.csv", "b2"),
            ("newer", "new@x.com", True, True, True, T1, "crm/customers_2026-10-02.csv", "b2"),
            ("unknown", "u@x.com", True, True, True, T1, "crm/customers_2026-10-02.csv", "b2"),
        ],
        ROWS,
    )
    assert_frames_equal(csv.resolve_ties_with_table(source, table), expected)

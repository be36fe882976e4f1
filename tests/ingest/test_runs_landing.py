"""Every landing file is ingested or reported: compressed files, unexpected names, files that
change or vanish, moved data folders, RFC 4180 quoting, CRM ties and resumed batches."""

from __future__ import annotations

import dataclasses
import gzip
import shutil
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from campaignlake import columns as c
from campaignlake.audiences import build
from campaignlake.config import Conf, PathsConf
from campaignlake.errors import MissingInputError
from campaignlake.features.runs import build_features
from campaignlake.ingest import runs
from campaignlake.ingest.runs import (
    ingest_campaigns,
    ingest_clickstream,
    ingest_crm,
    ingest_products,
)
from campaignlake.tables import Tables
from campaignlake.tables.delta_rs import DeltaRsEngine
from tests.literals import CRM_HEADER, NOW, campaign, crm_row, event_line, write

pytestmark = pytest.mark.job

CONTACT_HISTORY = "campaign_id string, customer_id string, channel string, contact_date date"


def event_ids(tables: Tables) -> list[str]:
    return sorted(r[c.EVENT_ID] for r in tables.read("clickstream_events").collect())


def file_rows(tables: Tables, quarantine: str) -> list[tuple[str, str]]:
    return sorted(
        (r[c.SOURCE_FILE], r[c.REASON])
        for r in tables.read(quarantine).where(f"{c.DISPOSITION} = 'file_rejected'").collect()
    )


def test_gzipped_landing_files_are_read_as_records(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    landing = conf.paths.landing
    write(landing, "clickstream/date=2026-10-30/hour=00/a.jsonl", event_line("e1") + "\n")
    packed = "\n".join(event_line(f"z{i}") for i in range(50)) + "\n"
    write(
        landing,
        "clickstream/date=2026-10-30/hour=01/events.jsonl.gz",
        gzip.compress(packed.encode()),
    )
    report = ingest_clickstream(spark, conf, tables, now=NOW)
    assert (report.files, report.records, report.accepted) == (2, 51, 51)
    assert event_ids(tables) == sorted(["e1", *[f"z{i}" for i in range(50)]])

    csv_text = CRM_HEADER + "\n" + crm_row("C1", "c1@example.com", "2026-10-01T08:00:00Z") + "\n"
    write(landing, "crm/customers_2026-10-01.csv.gz", gzip.compress(csv_text.encode()))
    ingest_crm(spark, conf, tables, now=NOW)
    assert [r[c.EMAIL] for r in tables.read("customers").collect()] == ["c1@example.com"]


def test_files_with_unrecognised_names_are_quarantined_and_reported_once(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    landing = conf.paths.landing
    write(landing, "clickstream/date=2026-10-30/hour=00/a.jsonl", event_line("e1") + "\n")
    for name in ("events.json", "events.JSONL"):
        write(landing, f"clickstream/date=2026-10-30/hour=00/{name}", event_line("x") + "\n")
    row = crm_row("C1", "c1@example.com", "2026-10-01T08:00:00Z")
    write(landing, "crm/customers_2026-10-31.csv", CRM_HEADER + "\n" + row + "\n")
    for name in ("customers-2026-10-31.csv", "Customers_2026-10-31.csv"):
        write(landing, f"crm/{name}", CRM_HEADER + "\n" + row + "\n")
    write(landing, "crm/deletion_requests_2026-10-31.csv", "customer_id,requested_at\n")

    clicks = ingest_clickstream(spark, conf, tables, now=NOW)
    assert clicks.file_issues == [
        ("clickstream/date=2026-10-30/hour=00/events.JSONL", "unrecognised_file_name"),
        ("clickstream/date=2026-10-30/hour=00/events.json", "unrecognised_file_name"),
    ]
    assert "file not read (unrecognised_file_name): clickstream/" in clicks.describe()
    assert event_ids(tables) == ["e1"]
    customers, deletions = ingest_crm(spark, conf, tables, now=NOW)
    # The folder's first source reports the names that match none of its sources, once.
    assert customers.file_issues == [
        ("crm/Customers_2026-10-31.csv", "unrecognised_file_name"),
        ("crm/customers-2026-10-31.csv", "unrecognised_file_name"),
    ]
    assert deletions.file_issues == [] and deletions.files == 1
    assert file_rows(tables, "customers_quarantine") == customers.file_issues
    again = [ingest_clickstream(spark, conf, tables, now=NOW), *ingest_crm(spark, conf, tables)]
    assert [r.batch_id for r in again] == [None, None, None]


def test_a_csv_export_without_a_date_is_reported_and_blocks_nothing(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    landing = conf.paths.landing
    header = "product_id,name,category,brand,price,active"
    write(landing, "products/products_latest.csv", header + "\nP9,Mug,home,Acme,5.00,true\n")
    write(landing, "products/products_2026-10-01.csv", header + "\nP1,Lamp,home,Acme,19.99,true\n")
    report = ingest_products(spark, conf, tables, now=NOW)
    assert report.file_issues == [("products/products_latest.csv", "unrecognised_file_name")]
    assert [r[c.PRODUCT_ID] for r in tables.read("products").collect()] == ["P1"]
    contacts = "campaign_id,channel,customer_id,sent_at,opened_at,clicked_at,converted_at,revenue"
    write(landing, "campaigns/campaign_history_latest.csv", contacts + "\n")
    write(
        landing,
        "campaigns/campaign_history_2026-10-02.csv",
        contacts + "\nK1,email,C1,2026-10-01T08:00:00Z,,,,\n",
    )
    history = ingest_campaigns(spark, conf, tables, now=NOW)
    assert history.file_issues == [
        ("campaigns/campaign_history_latest.csv", "unrecognised_file_name")
    ]
    assert tables.read("campaign_contacts").count() == 1
    # The next export goes through as usual: no batch was left open.
    write(landing, "products/products_2026-10-02.csv", header + "\nP2,Vase,home,Acme,9.00,true\n")
    assert ingest_products(spark, conf, tables, now=NOW).files == 1
    assert tables.read("products").count() == 2


def test_lines_appended_to_an_ingested_file_are_taken_and_old_ones_not_duplicated(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    relative = "clickstream/date=2026-10-30/hour=00/a.jsonl"
    write(conf.paths.landing, relative, event_line("e1") + "\n")
    ingest_clickstream(spark, conf, tables, now=NOW)
    write(conf.paths.landing, relative, event_line("e1") + "\n" + event_line("e2") + "\n")
    report = ingest_clickstream(spark, conf, tables, now=NOW)
    assert report.changed_files == [relative]
    assert (report.records, report.accepted, report.by_reason) == (2, 1, {"already_ingested": 1})
    assert f"changed since ingested, taken again: {relative}" in report.describe()
    assert event_ids(tables) == ["e1", "e2"]


def crash(*_: object, **__: object) -> None:
    raise RuntimeError("killed mid-batch")


def two_files_then_a_crash_at(
    step: str, spark: SparkSession, conf: Conf, tables: Tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Land two hourly files and run the ingestion until ``step`` (a function of the ingest
    module) kills it, leaving a planned batch behind."""
    landing = conf.paths.landing
    write(landing, "clickstream/date=2026-10-30/hour=00/a.jsonl", event_line("e1") + "\n")
    write(landing, "clickstream/date=2026-10-30/hour=01/b.jsonl", event_line("e2") + "\n")
    monkeypatch.setattr(runs, step, crash)
    with pytest.raises(RuntimeError, match="killed"):
        ingest_clickstream(spark, conf, tables, now=NOW)
    monkeypatch.undo()


def test_a_planned_file_that_vanished_is_reported_and_the_rest_of_the_batch_ingested(
    spark: SparkSession, conf: Conf, tables: Tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    landing = conf.paths.landing
    # The batch is planned, then the run dies before writing anything.
    two_files_then_a_crash_at("_count", spark, conf, tables, monkeypatch)
    Path(landing, "clickstream/date=2026-10-30/hour=01/b.jsonl").unlink()
    resumed = ingest_clickstream(spark, conf, tables, now=NOW)
    missing = ("clickstream/date=2026-10-30/hour=01/b.jsonl", "file_missing")
    assert resumed.file_issues == [missing]
    assert "put it back and the next run ingests it" in resumed.describe()
    assert (resumed.records, resumed.accepted) == (1, 1)
    assert event_ids(tables) == ["e1"]
    assert file_rows(tables, "clickstream_quarantine") == [missing]
    # Put back, the file is ingested.
    write(landing, "clickstream/date=2026-10-30/hour=01/b.jsonl", event_line("e2") + "\n")
    assert ingest_clickstream(spark, conf, tables, now=NOW).accepted == 1
    assert event_ids(tables) == ["e1", "e2"]


def test_a_resumed_batch_reports_what_it_did_not_its_own_rows_as_already_ingested(
    spark: SparkSession, conf: Conf, tables: Tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every table is written, then the run dies before the batch is closed.
    two_files_then_a_crash_at("close_batch", spark, conf, tables, monkeypatch)
    version = tables.version("clickstream_events")
    resumed = ingest_clickstream(spark, conf, tables, now=NOW)
    assert (resumed.records, resumed.accepted, resumed.by_reason) == (2, 2, {})
    assert tables.version("clickstream_events") == version
    assert event_ids(tables) == ["e1", "e2"]


def test_a_moved_data_folder_is_not_new(
    spark: SparkSession, conf: Conf, tables: Tables, tmp_path: Path
) -> None:
    write(
        conf.paths.landing, "clickstream/date=2026-10-30/hour=00/a.jsonl", event_line("e1") + "\n"
    )
    rows = [crm_row("C1", "c1@example.com", "2026-10-01T08:00:00Z")]
    write(conf.paths.landing, "crm/customers_2026-10-01.csv", CRM_HEADER + "\n" + rows[0] + "\n")
    ingest_clickstream(spark, conf, tables, now=NOW)
    ingest_crm(spark, conf, tables, now=NOW)

    moved = tmp_path / "moved"
    shutil.copytree(conf.paths.landing, moved / "landing")
    shutil.copytree(conf.paths.warehouse, moved / "warehouse")
    paths = PathsConf(**{**dataclasses.asdict(conf.paths), "landing": str(moved / "landing")})
    paths = dataclasses.replace(paths, warehouse=str(moved / "warehouse"))
    there = dataclasses.replace(conf, paths=paths)
    tables_there = Tables(spark, there, engine=DeltaRsEngine(spark))
    keys = ("clickstream_events", "clickstream_quarantine", "customer_history", "customers")
    before = {k: tables_there.version(k) for k in keys}
    assert ingest_clickstream(spark, there, tables_there, now=NOW).batch_id is None
    assert [r.batch_id for r in ingest_crm(spark, there, tables_there, now=NOW)] == [None, None]
    assert {k: tables_there.version(k) for k in keys} == before
    assert tables_there.read("customer_history").count() == 1


def test_customer_history_is_idempotent_by_key(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    row = crm_row("C1", "c1@example.com", "2026-10-01T08:00:00Z")
    write(conf.paths.landing, "crm/customers_2026-10-01.csv", CRM_HEADER + "\n" + row + "\n")
    ingest_crm(spark, conf, tables, now=NOW)
    # The same file, rewritten with a second customer: re-taken, C1's version is not doubled.
    write(
        conf.paths.landing,
        "crm/customers_2026-10-01.csv",
        CRM_HEADER + "\n" + row + "\n" + crm_row("C2", "c2@x.com", "2026-10-01T09:00:00Z") + "\n",
    )
    ingest_crm(spark, conf, tables, now=NOW)
    history = sorted(
        (r[c.CUSTOMER_ID], r[c.SOURCE_FILE]) for r in tables.read("customer_history").collect()
    )
    assert history == [
        ("C1", "crm/customers_2026-10-01.csv"),
        ("C2", "crm/customers_2026-10-01.csv"),
    ]


def test_rfc4180_quoting_commas_doubled_quotes_and_line_breaks(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    header = "product_id,name,category,brand,price,active"
    text = (
        header
        + '\nP1,"Lamp, brass",home,"The ""Good"" Co",19.99,true'
        + '\nP2,"Two-line\nname",home,Acme,5.00,true'
        + "\nP3,too,many,fields,1.00,true,extra\n"
    )
    write(conf.paths.landing, "products/products_2026-10-01.csv", text)
    report = ingest_products(spark, conf, tables, now=NOW)
    products = {r[c.PRODUCT_ID]: (r[c.NAME], r[c.BRAND]) for r in tables.read("products").collect()}
    assert products == {"P1": ("Lamp, brass", 'The "Good" Co'), "P2": ("Two-line\nname", "Acme")}
    assert report.by_reason == {"malformed_row": 1}


def test_a_tie_of_updated_at_goes_to_the_later_export_and_an_opt_out_is_never_lost(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    landing = conf.paths.landing
    at = "2026-10-01T00:00:00Z"
    write(
        landing,
        "crm/customers_2026-10-30.csv",
        CRM_HEADER + "\n" + crm_row("C000001", "first@example.com", at) + "\n",
    )
    ingest_crm(spark, conf, tables, now=NOW)
    write(
        landing,
        "crm/customers_2026-10-31.csv",
        CRM_HEADER
        + "\n"
        + crm_row("C000001", "second@example.com", at, email_opt_in="false")
        + "\n",
    )
    report = ingest_crm(spark, conf, tables, now=NOW)[0]
    assert report.accepted == 1
    (customer,) = tables.read("customers").collect()
    assert (customer[c.EMAIL], customer[c.EMAIL_OPT_IN]) == ("second@example.com", False)
    history = sorted(
        (r[c.SOURCE_FILE], r[c.EMAIL], r[c.EMAIL_OPT_IN])
        for r in tables.read("customer_history").collect()
    )
    assert history == [
        ("crm/customers_2026-10-30.csv", "first@example.com", True),
        ("crm/customers_2026-10-31.csv", "second@example.com", False),
    ]
    # An older export arriving late loses the tie but its opt-out still applies; its other
    # fields do not.
    write(
        landing,
        "crm/customers_2026-10-29.csv",
        CRM_HEADER
        + "\n"
        + crm_row("C000001", "zero@example.com", at, email_opt_in="true").replace(
            ",false,yes,", ",false,no,"
        )
        + "\n",
    )
    ingest_crm(spark, conf, tables, now=NOW)
    (customer,) = tables.read("customers").collect()
    assert (customer[c.EMAIL], customer[c.EMAIL_OPT_IN], customer[c.PUSH_OPT_IN]) == (
        "second@example.com",
        False,
        False,
    )
    # Within one batch, too: the later file wins, and the earlier one's opt-out applies.
    write(
        landing,
        "crm/customers_2026-11-01.csv",
        CRM_HEADER + "\n" + crm_row("C2", "a@example.com", at, email_opt_in="false") + "\n",
    )
    write(
        landing,
        "crm/customers_2026-11-02.csv",
        CRM_HEADER + "\n" + crm_row("C2", "b@example.com", at) + "\n",
    )
    ingest_crm(spark, conf, tables, now=NOW)
    c2 = tables.read("customers").where(f"{c.CUSTOMER_ID} = 'C2'").first()
    assert (c2[c.EMAIL], c2[c.EMAIL_OPT_IN]) == ("b@example.com", False)
    # The opted-out customers are suppressed from an email campaign for that reason.
    email_campaign = campaign(channel="email", source_file="x.yaml")
    customers = tables.read("customers")
    reasons = build.with_suppression_reasons(
        customers.select(c.CUSTOMER_ID),
        customers,
        tables.read("deletion_requests"),
        build.contact_pressure(spark.createDataFrame([], CONTACT_HISTORY), email_campaign),
        campaign=email_campaign,
        phone_pattern=conf.audiences.phone_pattern,
    )
    assert sorted((r[c.CUSTOMER_ID], r[c.SUPPRESSION_REASON]) for r in reasons.collect()) == [
        ("C000001", "global_opt_out"),
        ("C2", "no_channel_consent"),
    ]


def test_a_company_with_only_crm_gets_empty_tables_and_features(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:

    with pytest.raises(MissingInputError) as missing:
        build_features(spark, conf, tables, as_of=date(2026, 10, 1))
    # Every missing required table, each with the job that writes it.
    assert "customer_history (run ingest_crm)" in str(missing.value)
    assert "deletion_requests (run ingest_crm)" in str(missing.value)

    row = crm_row("C1", "c1@example.com", "2026-10-01T08:00:00Z")
    write(conf.paths.landing, "crm/customers_2026-10-01.csv", CRM_HEADER + "\n" + row + "\n")
    products = ingest_products(spark, conf, tables, now=NOW)
    assert products.batch_id is None
    assert "no landing files under" in products.describe()
    ingest_clickstream(spark, conf, tables, now=NOW)
    ingest_campaigns(spark, conf, tables, now=NOW)
    ingest_crm(spark, conf, tables, now=NOW)
    assert tables.read("products").count() == 0 and tables.exists("clickstream_events")

    # A date after the newest data is refused, and nothing is written.
    with pytest.raises(MissingInputError, match=r"--date 2099-12-31 is after the newest ingested"):
        build_features(spark, conf, tables, as_of=date(2099, 12, 31))
    assert not tables.exists("customer_features")
    report = build_features(spark, conf, tables, as_of=date(2026, 10, 1))
    assert report.customers == 1
    (features,) = tables.read("customer_features").collect()
    assert (features["orders_30d"], features["sessions_30d"], features["email_opt_in"]) == (
        0,
        0,
        True,
    )

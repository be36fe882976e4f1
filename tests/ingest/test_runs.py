"""Ingestion jobs end to end on small literal landing files."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest
from deltalake import DeltaTable
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf, PiiConf
from campaignlake.errors import RejectRateExceededError, SecretMissingError
from campaignlake.ingest import runs
from campaignlake.ingest.runs import (
    ingest_campaigns,
    ingest_clickstream,
    ingest_crm,
    ingest_products,
)
from campaignlake.pii import DEVELOPMENT_KEY
from campaignlake.tables import Tables
from tests.literals import CRM_HEADER, NOW, crm_row, event_line, write

#: Whole ingestion runs, several per test: each is seconds of Delta commits on the native
#: engine (a MERGE alone is ~3 s of fixed cost), so they run in `make test`, not `test-fast`;
#: the parse-and-refine rules they rely on are tested fast in test_clickstream.py and beside it.
job_tier = pytest.mark.job


def versions(tables: Tables, *keys: str) -> dict[str, int]:
    return {k: tables.version(k) for k in keys}


@job_tier
def test_clickstream_ingests_new_files_once(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    landing = conf.paths.landing
    write(
        landing,
        "clickstream/date=2026-10-30/hour=10/a.jsonl",
        "\n".join(
            [event_line("e1"), event_line("e2"), event_line("e2"), event_line("e3", price=-1)]
        )
        + "\n",
    )
    first = ingest_clickstream(spark, conf, tables, now=NOW)
    assert (first.records, first.accepted, first.rejected) == (4, 2, 1)
    assert first.by_reason == {"duplicate_event_id": 1, "negative_price": 1}
    assert sorted(r[c.EVENT_ID] for r in tables.read("clickstream_events").collect()) == [
        "e1",
        "e2",
    ]

    keys = ("clickstream_events", "clickstream_quarantine", "ingest_batches")
    before = versions(tables, *keys)
    again = ingest_clickstream(spark, conf, tables, now=NOW)
    assert again.batch_id is None and versions(tables, *keys) == before

    # A later file re-sends e1 and adds e4: only e4 is new. Its name has glob characters
    # (read as that one file, not as a pattern) and blank lines (not records).
    write(
        landing,
        "clickstream/date=2026-10-30/hour=11/b[1]{x}.jsonl",
        event_line("e1") + "\n  \n\n" + event_line("e4") + "\n",
    )
    later = ingest_clickstream(spark, conf, tables, now=NOW)
    assert later.files == 1 and later.records == 2
    assert later.by_reason == {"already_ingested": 1}
    ids = sorted(r[c.EVENT_ID] for r in tables.read("clickstream_events").collect())
    assert ids == ["e1", "e2", "e4"]
    quarantine = {
        (r[c.RECORD_KEY], r[c.REASON]) for r in tables.read("clickstream_quarantine").collect()
    }
    assert ("e1", "already_ingested") in quarantine and ("e3", "negative_price") in quarantine


@job_tier
def test_too_many_rejects_fail_with_file_and_reason_and_write_only_quarantine(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    write(
        conf.paths.landing,
        "clickstream/date=2026-10-30/hour=10/bad.jsonl",
        "\n".join([event_line("e1"), "{broken", "{broken again"]) + "\n",
    )
    with pytest.raises(RejectRateExceededError) as error:
        ingest_clickstream(spark, conf, tables, now=NOW)
    message = str(error.value)
    assert "2 of 3 records rejected" in message and "bad.jsonl: 2 x malformed_json" in message
    assert "ingest.max_reject_rate" in message
    assert tables.read("clickstream_events").count() == 0
    assert tables.read("clickstream_quarantine").count() == 2

    # The operator raises the threshold; the same batch completes, quarantine is not doubled.
    lenient = dataclasses.replace(
        conf, ingest=dataclasses.replace(conf.ingest, max_reject_rate=0.9)
    )
    report = ingest_clickstream(
        spark, lenient, Tables(spark, lenient, engine=tables.engine), now=NOW
    )
    assert report.batch_id == "ingest_clickstream-000001"
    assert tables.read("clickstream_events").count() == 1
    assert tables.read("clickstream_quarantine").count() == 2


class SimulatedCrash(BaseException):
    pass


@job_tier
def test_crash_before_the_batch_is_closed_is_finished_by_the_next_run(
    spark: SparkSession, conf: Conf, tables: Tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        conf.paths.landing, "clickstream/date=2026-10-30/hour=10/a.jsonl", event_line("e1") + "\n"
    )

    def crash(*_: object, **__: object) -> None:
        raise SimulatedCrash()

    # The tables are written; the driver dies before the manifest records the batch as done.
    with monkeypatch.context() as patched:
        patched.setattr(runs, "close_batch", crash)
        with pytest.raises(SimulatedCrash):
            ingest_clickstream(spark, conf, tables, now=NOW)
    events_version = tables.version("clickstream_events")
    # A new file arrived meanwhile: it waits for the next batch.
    write(
        conf.paths.landing, "clickstream/date=2026-10-30/hour=11/b.jsonl", event_line("e2") + "\n"
    )
    resumed = ingest_clickstream(spark, conf, tables, now=NOW)
    assert resumed.batch_id == "ingest_clickstream-000001" and resumed.files == 1
    assert tables.version("clickstream_events") == events_version  # already committed: skipped
    nxt = ingest_clickstream(spark, conf, tables, now=NOW)
    assert nxt.batch_id == "ingest_clickstream-000002"
    assert sorted(r[c.EVENT_ID] for r in tables.read("clickstream_events").collect()) == [
        "e1",
        "e2",
    ]


@job_tier
def test_crm_newest_wins_invalid_fields_are_nulled_and_replays_change_nothing(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    landing = conf.paths.landing
    write(
        landing,
        "crm/customers_2026-10-01.csv",
        "\n".join(
            [
                CRM_HEADER,
                crm_row("C1", " Ana.Lima@Example.COM ", "2026-10-01T08:00:00Z"),
                crm_row(
                    "C1", "old@example.com", "2026-09-01T08:00:00Z", tier="none"
                ),  # stale duplicate
                crm_row(
                    "C2", "john.doe@", "2026-10-01T09:00:00Z"
                ),  # invalid email: kept, email nulled
                crm_row("", "x@example.com", "2026-10-01T09:00:00Z"),  # no id: rejected
                crm_row("C3", "c3@example.com", "yesterday"),  # unparseable updated_at: rejected
                "C4,too,few,fields",
                crm_row("C5", "c5@example.com", "2026-10-01T09:00:00Z").replace(
                    ",de,", ",Atlantis,"
                ),
            ]
        )
        + "\n",
    )
    write(
        landing,
        "crm/deletion_requests_2026-10-01.csv",
        "customer_id,requested_at\nC2,2026-10-01T10:00:00Z\n",
    )
    reports = ingest_crm(spark, conf, tables, now=NOW)
    assert reports[0].by_reason == {
        "stale_duplicate": 1,
        "invalid_email": 1,
        "missing_customer_id": 1,
        "unparseable_updated_at": 1,
        "malformed_row": 1,
        "invalid_country": 1,
    }
    customers = {r[c.CUSTOMER_ID]: r for r in tables.read("customers").collect()}
    assert sorted(customers) == ["C1", "C2", "C5"]
    assert customers["C5"][c.COUNTRY] is None and customers["C5"][c.CITY] == "Berlin"
    ana = customers["C1"]
    assert ana[c.EMAIL] == "ana.lima@example.com" and ana[c.EMAIL_VALID] is True
    expected_hash = hmac.new(
        DEVELOPMENT_KEY.encode(), b"ana.lima@example.com", hashlib.sha256
    ).hexdigest()
    assert ana[c.EMAIL_HASH] == expected_hash
    assert (ana[c.LOYALTY_TIER], ana[c.COUNTRY], ana[c.EMAIL_OPT_IN], ana[c.PUSH_OPT_IN]) == (
        "gold",
        "DE",
        True,
        True,
    )
    assert customers["C2"][c.EMAIL] is None and customers["C2"][c.EMAIL_VALID] is False
    assert customers["C2"][c.EMAIL_HASH] is None
    assert [r[c.CUSTOMER_ID] for r in tables.read("deletion_requests").collect()] == ["C2"]
    nulled = (
        tables.read("customers_quarantine").where(f"{c.DISPOSITION} = 'field_nulled'").collect()
    )
    assert sorted((r[c.RECORD_KEY], r[c.REASON]) for r in nulled) == [
        ("C2", "invalid_email"),
        ("C5", "invalid_country"),
    ]

    # A replay of an older export (new file name, older updated_at) changes nothing.
    before = tables.version("customers")
    write(
        landing,
        "crm/customers_2026-09-01.csv",
        CRM_HEADER
        + "\n"
        + crm_row("C1", "old@example.com", "2026-09-01T08:00:00Z", tier="none")
        + "\n",
    )
    ingest_crm(spark, conf, tables, now=NOW)
    assert tables.version("customers") == before
    # A newer export with an opt-out updates only that customer.
    write(
        landing,
        "crm/customers_2026-10-15.csv",
        CRM_HEADER
        + "\n"
        + crm_row("C1", "ana.lima@example.com", "2026-10-15T08:00:00Z", email_opt_in="false")
        + "\n",
    )
    ingest_crm(spark, conf, tables, now=NOW)
    customers = {r[c.CUSTOMER_ID]: r for r in tables.read("customers").collect()}
    assert customers["C1"][c.EMAIL_OPT_IN] is False and customers["C2"][c.EMAIL_VALID] is False


@job_tier
def test_a_crm_file_with_a_wrong_header_is_quarantined_whole_and_the_rest_ingested(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    write(conf.paths.landing, "crm/customers_2026-10-01.csv", "id,mail\nC1,a@b.co\n")
    write(
        conf.paths.landing,
        "crm/customers_2026-10-02.csv",
        CRM_HEADER + "\n" + crm_row("C2", "c2@example.com", "2026-10-02T08:00:00Z") + "\n",
    )
    report = ingest_crm(spark, conf, tables, now=NOW)[0]
    assert report.file_issues == [("crm/customers_2026-10-01.csv", "bad_header")]
    assert "file not read (bad_header): crm/customers_2026-10-01.csv" in report.describe()
    assert [r[c.CUSTOMER_ID] for r in tables.read("customers").collect()] == ["C2"]
    quarantined = [
        (r[c.SOURCE_FILE], r[c.REASON], r[c.DISPOSITION])
        for r in tables.read("customers_quarantine").collect()
    ]
    assert quarantined == [("crm/customers_2026-10-01.csv", "bad_header", "file_rejected")]


def test_outside_local_the_hmac_key_must_come_from_the_environment(
    spark: SparkSession, conf: Conf, tables: Tables, monkeypatch: pytest.MonkeyPatch
) -> None:
    strict = dataclasses.replace(
        conf, pii=PiiConf(hmac_key_env="CL_TEST_PII_KEY", allow_development_key=False)
    )
    monkeypatch.delenv("CL_TEST_PII_KEY", raising=False)
    with pytest.raises(SecretMissingError, match="CL_TEST_PII_KEY"):
        ingest_crm(spark, strict, tables, now=NOW)


@job_tier
def test_products_and_campaigns(spark: SparkSession, conf: Conf, tables: Tables) -> None:
    landing = conf.paths.landing
    write(
        landing,
        "products/products_2026-10-01.csv",
        "\n".join(
            [
                "product_id,name,category,brand,price,active",
                "P1,Lamp,Home,Acme,19.99,true",
                "P2,Chair,home,Acme,-5,true",
                "P3,Desk,home,Acme,99.00,maybe",
            ]
        )
        + "\n",
    )
    write(
        landing,
        "products/products_2026-10-02.csv",
        "product_id,name,category,brand,price,active\nP1,Lamp,Home,Acme,17.99,false\n",
    )
    report = ingest_products(spark, conf, tables, now=NOW)
    assert report.by_reason == {"negative_price": 1, "invalid_active_flag": 1, "stale_duplicate": 1}
    [lamp] = tables.read("products").collect()
    assert (str(lamp[c.PRICE]), lamp[c.ACTIVE], lamp[c.CATEGORY], str(lamp[c.EXPORT_DATE])) == (
        "17.99",
        False,
        "home",
        "2026-10-02",
    )

    write(
        landing,
        "campaigns/campaign_history_2026-10-01.csv",
        "\n".join(
            [
                "campaign_id,channel,customer_id,sent_at,opened_at,clicked_at,converted_at,revenue",
                "K1,email,C1,2026-09-01T09:00:00Z,2026-09-01T10:00:00Z,,,",
                "K1,fax,C2,2026-09-01T09:00:00Z,,,,",
                "K1,email,C3,2026-09-01T09:00:00Z,2026-08-01T10:00:00Z,,,",
                "K1,sms,C4,2026-09-01T09:00:00Z,,,2026-09-02T09:00:00Z,-3",
                "K1,email,C5,2026-09-01T09:00:00Z,,,,",
                "K1,email,C6,2026-09-01T09:00:00Z,,,,",
                "K1,email,C7,2026-09-01T09:00:00Z,,,,",
            ]
        )
        + "\n",
    )
    report = ingest_campaigns(spark, conf, tables, now=NOW)
    assert report.by_reason == {
        "invalid_channel": 1,
        "response_before_send": 1,
        "negative_revenue": 1,
    }
    write(
        landing,
        "campaigns/campaign_history_2026-10-05.csv",
        "\n".join(
            [
                "campaign_id,channel,customer_id,sent_at,opened_at,clicked_at,converted_at,revenue",
                "K1,email,C1,2026-09-01T09:00:00Z,2026-09-01T10:00:00Z,2026-09-01T10:05:00Z,2026-09-03T10:00:00Z,42.50",
            ]
        )
        + "\n",
    )
    ingest_campaigns(spark, conf, tables, now=NOW)
    contacts = {r[c.CUSTOMER_ID]: r for r in tables.read("campaign_contacts").collect()}
    assert sorted(contacts) == ["C1", "C5", "C6", "C7"]
    assert str(contacts["C1"][c.REVENUE]) == "42.50" and contacts["C5"][c.REVENUE] is None
    # Exports from before holdouts were recorded have no group column: every row a contact.
    assert {r[c.GROUP] for r in contacts.values()} == {c.TREATMENT}
    write(
        landing,
        "campaigns/campaign_history_2026-10-06.csv",
        "\n".join(
            [
                "campaign_id,channel,customer_id,sent_at,opened_at,clicked_at,converted_at,"
                "revenue,group",
                "K2,email,C1,2026-09-10T09:00:00Z,,,,,treatment",
                "K2,email,C5,2026-09-10T09:00:00Z,,,,,Control",
                "K2,email,C6,2026-09-10T09:00:00Z,2026-09-10T10:00:00Z,,,,control",
                "K2,email,C7,2026-09-10T09:00:00Z,,,,,holdout",
            ]
        )
        + "\n",
    )
    report = ingest_campaigns(spark, conf, tables, now=NOW)
    assert report.by_reason == {"control_with_response": 1, "invalid_group": 1}
    k2 = tables.read("campaign_contacts").where(F.col(c.CAMPAIGN_ID) == "K2")
    assert {(r[c.CUSTOMER_ID], r[c.GROUP]) for r in k2.collect()} == {
        ("C1", c.TREATMENT),
        ("C5", c.CONTROL),
    }


@job_tier
def test_every_table_opens_with_deltalake_and_matches_spark(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    write(
        conf.paths.landing,
        "clickstream/date=2026-10-30/hour=10/a.jsonl",
        event_line("e1") + "\n" + event_line("e2") + "\n",
    )
    ingest_clickstream(spark, conf, tables, now=NOW)
    for key in ("clickstream_events", "clickstream_quarantine", "ingest_batches"):
        table = DeltaTable(tables.path(key))
        assert table.to_pyarrow_table().num_rows == tables.read(key).count()

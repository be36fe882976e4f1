"""The audience job on the generated sample: the consent invariant and the funnel (a rerun of
the date is tests/e2e/test_rerun_on_the_sample.py's)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.audiences import build
from campaignlake.audiences.campaigns import (
    load_campaigns,
)
from campaignlake.audiences.runs import AudienceReport

if TYPE_CHECKING:
    from tests.conftest import SampleModels


@pytest.mark.job
def test_audiences_on_the_sample_respect_consent_and_the_funnel_adds_up(
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

"""The lift readout on the generated sample recovers the treatment effect the generator
planted (known exactly: the generator draws both potential outcomes of every customer)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from campaignlake import columns as c
from campaignlake.config import Conf, MeasurementConf
from campaignlake.measurement.runs import measure_campaigns
from campaignlake.tables import Tables
from tests.conftest import PLANTED_LIFT_FILE, SAMPLE_AS_OF


@pytest.mark.job
def test_the_readout_recovers_the_planted_lift_within_its_interval(
    spark: SparkSession, sample_warehouse: tuple[Conf, Tables]
) -> None:
    base, tables = sample_warehouse
    planted = json.loads((Path(base.paths.landing).parent / PLANTED_LIFT_FILE).read_text())
    # The sample's holdouts are 60-100 customers: below the shipped minimum of 100.
    conf = dataclasses.replace(base, measurement=MeasurementConf(min_group_size=50))
    report = measure_campaigns(spark, conf, tables, as_of=SAMPLE_AS_OF)
    measured = {r[c.CAMPAIGN_ID]: r for r in report.campaigns if r[c.STATUS] == "measured"}
    # Every campaign whose 7-day window closed by the sample's last day is measured.
    assert len(measured) >= 2 and set(measured) <= set(planted)
    for campaign, row in measured.items():
        assert row[c.CONVERSION_CI_LOW] <= planted[campaign] <= row[c.CONVERSION_CI_HIGH], (
            campaign,
            planted[campaign],
            row,
        )
        # The behaviour outcome counts what attribution cannot see: purchases of the held out.
        assert row[c.CONTROL_RATE] > 0
        # Attribution credits the message with every purchase after it, not only the extra.
        assert row[c.ATTRIBUTED_CONVERSIONS] > row[c.INCREMENTAL_CONVERSIONS]

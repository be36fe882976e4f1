"""The audience job refuses an unsafe campaign before it runs any of it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from campaignlake.audiences.runs import build_audiences
from campaignlake.config import Conf
from campaignlake.errors import ConfigError
from campaignlake.tables import Tables
from tests.literals import SEND, VALID_CAMPAIGN


def test_build_audiences_refuses_an_unsafe_campaign_before_running_it(
    spark: SparkSession, conf: Conf, tmp_path: Path
) -> None:
    folder = tmp_path / "campaigns"
    folder.mkdir()
    marker = "campaignlake.test.reflect_ran"
    unsafe = VALID_CAMPAIGN.replace(
        'eligibility: "affinity_fashion > 0.1"',
        f"eligibility: \"reflect('java.lang.System', 'setProperty', '{marker}', 'yes') "
        f'IS NOT NULL"',
    )
    (folder / "unsafe.yaml").write_text(unsafe)
    conf = dataclasses.replace(
        conf, audiences=dataclasses.replace(conf.audiences, campaigns_dir=str(folder))
    )
    with pytest.raises(ConfigError, match=r"unsafe\.yaml: eligibility: function 'reflect'"):
        build_audiences(spark, conf, Tables(spark, conf), as_of=SEND.replace(day=1))
    system = spark.sparkContext._jvm.java.lang.System  # type: ignore[union-attr]
    assert system.getProperty(marker) is None

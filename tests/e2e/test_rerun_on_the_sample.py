"""The same date run again, every stage recomputed (``run_pipeline --recompute``): the daily
jobs apply the models in service, so they commit nothing and rewrite every export byte for
byte."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import SparkSession

from campaignlake.audiences.runs import AudienceReport, build_audiences
from campaignlake.catalog import TABLE_KEYS
from campaignlake.features.runs import build_features
from campaignlake.models.runs import score_customers
from campaignlake.recommend.runs import recommend
from campaignlake.text.runs import build_text_features
from tests.conftest import SAMPLE_AS_OF

if TYPE_CHECKING:
    from tests.conftest import SampleModels


@pytest.mark.job
def test_a_recomputed_rerun_of_the_date_commits_nothing_and_rewrites_the_same_exports(
    spark: SparkSession, sample_models: SampleModels, sample_audiences: AudienceReport
) -> None:
    conf, tables = sample_models.conf, sample_models.tables
    versions = {key: tables.version(key) for key in TABLE_KEYS if tables.exists(key)}
    exports = Path(conf.paths.exports)
    written = {path: path.read_bytes() for path in exports.rglob("*") if path.is_file()}
    assert len(written) >= 2 * len(sample_audiences.results) > 0  # exports and audits

    text = build_text_features(spark, conf, tables, as_of=SAMPLE_AS_OF)
    # Another day's clock: what a run records of its own time is not a decision.
    later = datetime(2026, 11, 2, 7, tzinfo=timezone.utc)
    build_features(spark, conf, tables, as_of=SAMPLE_AS_OF, now=later)
    score_customers(spark, conf, tables, as_of=SAMPLE_AS_OF)
    recommend(spark, conf, tables, as_of=SAMPLE_AS_OF)
    build_audiences(spark, conf, tables, as_of=SAMPLE_AS_OF)

    assert text.model_version == sample_models.text.model_version
    assert not any(result.committed for result in text.writes.values())
    assert {key: tables.version(key) for key in versions} == versions
    assert {path: path.read_bytes() for path in exports.rglob("*") if path.is_file()} == written
    assert not list(exports.rglob("*.crc"))  # no checksum files beside what a sender reads

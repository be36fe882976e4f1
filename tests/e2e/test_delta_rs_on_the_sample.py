"""The other table layouts end to end: the generated sample ingested, featurised, scored,
recommended and turned into audiences with the pip-only engine (``storage.engine: delta-rs``),
or with every table given by catalog name (``<schema>.<table>`` in the session catalog, as
Unity Catalog names them), gives the same audiences and byte-identical exports as the native
engine's run of the suite on tables by path."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.audiences.runs import AudienceReport, build_audiences
from campaignlake.catalog import TABLE_KEYS
from campaignlake.config import PathsConf
from campaignlake.features.runs import build_features
from campaignlake.ingest.runs import (
    ingest_campaigns,
    ingest_clickstream,
    ingest_crm,
    ingest_products,
    ingest_reviews,
)
from campaignlake.models.runs import score_customers
from campaignlake.recommend.runs import recommend
from campaignlake.tables import Tables
from campaignlake.text.runs import build_text_features
from tests.conftest import SAMPLE_AS_OF
from tests.literals import assert_frames_equal

if TYPE_CHECKING:
    from tests.conftest import SampleModels


#: The schema of the session catalog the named-table run writes to.
NAMED_SCHEMA = "sample_by_name"


@pytest.mark.system
@pytest.mark.parametrize(
    "engine, by_name", [("delta-rs", False), ("spark", True)], ids=["delta-rs", "tables-by-name"]
)
def test_another_table_layout_builds_the_same_audiences_as_the_native_one_by_path(
    spark: SparkSession,
    sample_models: SampleModels,
    sample_audiences: AudienceReport,
    tmp_path: Path,
    engine: str,
    by_name: bool,
) -> None:
    native = sample_models.conf
    table_locations = native.tables
    if by_name:
        table_locations = dataclasses.replace(
            native.tables, **{key: f"{NAMED_SCHEMA}.{key}" for key in TABLE_KEYS}
        )
    conf = dataclasses.replace(
        native,
        storage=dataclasses.replace(native.storage, engine=engine),
        tables=table_locations,
        # The same landing files and the models the native run trained; its own tables.
        paths=PathsConf(
            landing=native.paths.landing,
            warehouse=str(tmp_path / "warehouse"),
            models=native.paths.models,
            exports=str(tmp_path / "exports"),
            reports=str(tmp_path / "reports"),
        ),
    )
    tables = Tables(spark, conf)
    assert tables.engine.name == engine
    now = datetime(2026, 11, 1, 6, tzinfo=timezone.utc)
    for ingest in (ingest_products, ingest_crm, ingest_campaigns, ingest_reviews,
                   ingest_clickstream):  # fmt: skip
        ingest(spark, conf, tables, now=now)
    # The text model the native run trained, applied through this layout.
    build_text_features(spark, conf, tables, as_of=SAMPLE_AS_OF)
    build_features(spark, conf, tables, as_of=SAMPLE_AS_OF, now=now)
    score_customers(spark, conf, tables, as_of=SAMPLE_AS_OF)
    recommend(spark, conf, tables, as_of=SAMPLE_AS_OF)
    report = build_audiences(spark, conf, tables, as_of=SAMPLE_AS_OF)

    for key in (catalog.PRODUCT_TOPICS, catalog.REVIEW_SENTIMENT, catalog.CUSTOMER_FEATURES,
                catalog.PROPENSITY_SCORES):  # fmt: skip
        assert_frames_equal(tables.read(key), sample_models.tables.read(key))
    # The same lists; ALS scores (float dot products summed in another order) agree to 1e-5.
    ours, theirs = (
        tables.read(catalog.RECOMMENDATIONS),
        sample_models.tables.read(catalog.RECOMMENDATIONS),
    )
    assert_frames_equal(ours.drop(c.SCORE), theirs.drop(c.SCORE))
    keys = [c.CUSTOMER_ID, c.RANK]
    gap = (
        ours.alias("o")
        .join(theirs.alias("t"), on=keys, how="inner")
        .agg(F.max(F.abs(F.col(f"o.{c.SCORE}") - F.col(f"t.{c.SCORE}"))))
        .first()[0]
    )
    assert gap is not None and gap < 1e-5
    assert_frames_equal(
        tables.read(catalog.CAMPAIGN_AUDIENCES),
        sample_models.tables.read(catalog.CAMPAIGN_AUDIENCES),
    )
    assert len(report.results) == len(sample_audiences.results) > 0
    for ours, theirs in zip(report.results, sample_audiences.results, strict=True):
        assert Path(ours.export_path).read_bytes() == Path(theirs.export_path).read_bytes()
    if by_name:
        # Every table went to the catalog, none to the warehouse folder.
        assert conf.named_tables() == list(TABLE_KEYS)
        listed = {t.name for t in spark.catalog.listTables(NAMED_SCHEMA)}
        assert {catalog.CUSTOMERS, catalog.CAMPAIGN_AUDIENCES, catalog.RECOMMENDATIONS} <= listed
        assert not (tmp_path / "warehouse").exists()

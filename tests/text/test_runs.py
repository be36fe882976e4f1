"""Which text model version the daily text job applies for a date (point in time)."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from pyspark.ml import PipelineModel
from pyspark.sql import SparkSession

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.errors import ModelNotFoundError
from campaignlake.models.registry import ModelStore
from campaignlake.schemas import PRODUCT_TOPICS
from campaignlake.tables import Tables
from campaignlake.text.runs import serving_version
from tests.literals import frame


def test_a_date_is_built_with_the_model_trained_by_then_and_keeps_the_one_it_was_built_with(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    conf = dataclasses.replace(conf, tracking=dataclasses.replace(conf.tracking, enabled=False))
    store = ModelStore(spark, conf.paths.models)
    for version, trained_to in (("v1", "2026-10-30"), ("v2", "2026-11-02")):
        store.save(conf.text.model_name, version, PipelineModel(stages=[]), {"as_of": trained_to})

    def serving(day: date, pinned: str | None = None) -> str:
        return serving_version(spark, conf, tables, day, pinned)

    # Without a registry the latest version serves, once its training data reaches the date.
    assert serving(date(2026, 11, 3)) == "v2"
    assert serving(date(2026, 11, 2)) == "v2"
    # A backfill of an earlier day gets the newest version trained on data up to that day.
    assert serving(date(2026, 10, 31)) == "v1"
    # A day already built keeps its version: a rerun writes what the first run wrote.
    built = {c.PRODUCT_ID: "P1", c.TOPIC_DISTRIBUTION: [1.0], c.MODEL_VERSION: "v1",
             c.AS_OF_DATE: date(2026, 11, 3)}  # fmt: skip
    tables.append(catalog.PRODUCT_TOPICS, frame(spark, PRODUCT_TOPICS, [built]))
    assert serving(date(2026, 11, 3)) == "v1"
    assert serving(date(2026, 11, 4)) == "v2"
    assert serving(date(2026, 11, 3), pinned="v2") == "v2"
    with pytest.raises(ModelNotFoundError, match=r"trained on data up to 2026-10-29.*v1, v2.*"
                       r"train_text_models --date 2026-10-29"):  # fmt: skip
        serving(date(2026, 10, 29))

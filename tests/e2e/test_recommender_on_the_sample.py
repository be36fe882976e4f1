"""The recommender jobs on the generated sample: ALS beats popularity on the holdout and every
customer gets k products."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import mlflow
import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.models.tracking import champion_version
from campaignlake.recommend.evaluation import POPULARITY_BASELINE
from campaignlake.recommend.runs import recommend

if TYPE_CHECKING:
    from tests.conftest import SampleModels


@pytest.mark.job
def test_recommender_beats_popularity_and_every_customer_gets_k_products(
    spark: SparkSession, sample_models: SampleModels
) -> None:
    conf, tables, report = sample_models.conf, sample_models.tables, sample_models.recommender
    as_of = date(2026, 10, 31)
    name = conf.recommendations.model_name
    als_ndcg = report.holdout[name]["ndcg_at_10"]
    assert als_ndcg > report.holdout[f"{name}.{POPULARITY_BASELINE}"]["ndcg_at_10"]
    # The per-customer holdout evaluates every customer with history on both sides of a cut,
    # and gold/model_metrics says how many.
    evaluated = int(report.holdout[name]["evaluated_customers"])
    recorded = (
        tables.read("model_metrics")
        .where((F.col(c.MODEL_NAME) == name) & (F.col(c.MODEL_VERSION) == report.model_version))
        .where(F.col(c.METRIC) == "evaluated_customers")
        .first()
    )
    assert evaluated > 300 and recorded is not None and int(recorded[c.VALUE]) == evaluated
    assert f"; {evaluated} customers evaluated" in report.describe()
    # The first registered version is the champion that recommend loads.
    assert report.promotion is not None and report.promotion.champion is None
    assert champion_version(conf, name) == report.model_version
    signature = mlflow.models.get_model_info(f"models:/{name}@champion").signature
    assert signature.inputs.input_names() == [c.CUSTOMER_INDEX, c.PRODUCT_INDEX]
    assert signature.outputs.input_names() == ["prediction"]
    index_before = {r[0]: r[1] for r in tables.read("customer_index").collect()}
    versions = {k: tables.version(k) for k in ("recommendations", "similar_products",
                                               "interactions", "customer_index")}  # fmt: skip

    # The fixture recommended for this date already: this run is a rerun and changes nothing.
    result = recommend(spark, conf, tables, as_of=as_of)
    assert result.model_version == report.model_version
    assert {k: tables.version(k) for k in versions} == versions
    recs = tables.read("recommendations")
    per_customer = recs.groupBy(c.CUSTOMER_ID).agg(
        F.count(F.lit(1)).alias("n"), F.count_distinct(c.PRODUCT_ID).alias("distinct")
    )
    erased = tables.read("deletion_requests").select(c.CUSTOMER_ID)
    customers = (
        tables.read("customers").select(c.CUSTOMER_ID).join(erased, c.CUSTOMER_ID, "left_anti")
    )
    assert per_customer.where("n != 10 OR distinct != 10").isEmpty()
    assert customers.join(per_customer, c.CUSTOMER_ID, "left_anti").isEmpty()
    assert erased.count() > 0 and recs.join(erased, c.CUSTOMER_ID, "left_semi").isEmpty()
    inactive = tables.read("products").where(~F.col(c.ACTIVE)).select(c.PRODUCT_ID)
    assert recs.join(inactive, c.PRODUCT_ID, "left_semi").isEmpty()
    bought = tables.read("interactions").where(F.col(c.EXCLUDED))
    assert recs.join(bought, [c.CUSTOMER_ID, c.PRODUCT_ID], "left_semi").isEmpty()
    assert result.by_source.get("als", 0) > 0
    similar = tables.read("similar_products")
    assert similar.where(f"{c.RANK} > {conf.recommendations.similar_products}").isEmpty()
    assert similar.where(f"{c.PRODUCT_ID} = {c.SIMILAR_PRODUCT_ID}").isEmpty()
    assert {r[0]: r[1] for r in tables.read("customer_index").collect()} == index_before

"""The scoring job's work: the latest (or a pinned) model version scores every customer's
features as of a date, once per configured offer (channel, promoted category), into
``gold/propensity_scores``. Deciles are per offer. A rerun replaces the (model, date) slice
only when its content differs."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf, OfferConf
from campaignlake.features.build import features_of
from campaignlake.models import response
from campaignlake.models.evaluation import with_deciles
from campaignlake.models.registry import ModelStore
from campaignlake.models.training import category_affinity
from campaignlake.schemas import PROPENSITY_SCORES
from campaignlake.tables import Tables, WriteResult, describe_writes


@dataclass
class ScoringReport:
    model_name: str
    model_version: str
    as_of: date
    rows: int = 0
    writes: dict[str, WriteResult] = field(default_factory=dict)

    def describe(self) -> str:
        return (
            f"score_customers {self.as_of}: {self.model_name} {self.model_version} → "
            f"{self.rows} scores; {describe_writes(self.writes)}"
        )


def offer_rows(features: DataFrame, offers: list[OfferConf]) -> DataFrame:
    """Every feature row once per offer, with the offer's channel, category and the
    customer's affinity to that category (the model's campaign context)."""
    spark = features.sparkSession
    offer_frame = spark.createDataFrame(
        [(o.channel, o.category) for o in offers], f"{c.CHANNEL} string, {c.CATEGORY} string"
    )
    return features.crossJoin(F.broadcast(offer_frame)).withColumn(
        c.CAMPAIGN_CATEGORY_AFFINITY, category_affinity(F.col(c.CATEGORY))
    )


def propensity_scores(
    features: DataFrame, model, model_name: str, model_version: str, offers: list[OfferConf]
) -> DataFrame:
    """Scores and per-offer deciles in the schema of ``gold/propensity_scores``."""
    keep = [c.CUSTOMER_ID, c.CHANNEL, c.CATEGORY, c.AS_OF_DATE]
    scored = response.score(model, offer_rows(features, offers), keep=keep)
    deciled = with_deciles(scored, by=(c.CHANNEL, c.CATEGORY))
    derived = {c.MODEL_NAME: F.lit(model_name), c.MODEL_VERSION: F.lit(model_version)}
    return deciled.select(
        *[derived.get(n, F.col(n)).alias(n) for n in PROPENSITY_SCORES.fieldNames()]
    )


def score_customers(
    spark: SparkSession,
    conf: Conf,
    tables: Tables | None = None,
    *,
    as_of: date,
    model_version: str | None = None,
) -> ScoringReport:
    """Score the features of ``as_of`` with the latest (or ``model_version``) response model."""
    tables = tables or Tables(spark, conf)
    name = conf.response_model.name
    stored = ModelStore(spark, conf.paths.models).load(name, model_version)
    features = features_of(tables, as_of)
    day = f"{c.AS_OF_DATE} = DATE'{as_of.isoformat()}'"
    scores = propensity_scores(
        features, stored.pipeline, name, stored.version, conf.scoring.offers
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        report = ScoringReport(model_name=name, model_version=stored.version, as_of=as_of)
        report.rows = scores.count()
        report.writes["propensity_scores"] = tables.replace_slice(
            "propensity_scores", scores, f"{day} AND {c.MODEL_NAME} = '{name}'"
        )
        return report
    finally:
        scores.unpersist()

"""Scoring transforms: every customer's features once per configured offer (channel, promoted
category), scored by a response model, with deciles per offer."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import OfferConf
from campaignlake.models import response
from campaignlake.models.evaluation import with_deciles
from campaignlake.models.training import category_affinity
from campaignlake.models.uplift import uplift_score
from campaignlake.schemas import PROPENSITY_SCORES


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
    features: DataFrame,
    model,
    model_name: str,
    model_version: str,
    offers: list[OfferConf],
    *,
    uplift: bool = False,
) -> DataFrame:
    """Scores and per-offer deciles in the schema of ``gold/propensity_scores``: the
    probability of a response, or with ``uplift`` the uplift model's predicted uplift."""
    keep = [c.CUSTOMER_ID, c.CHANNEL, c.CATEGORY, c.AS_OF_DATE]
    score = uplift_score if uplift else response.score
    scored = score(model, offer_rows(features, offers), keep=keep)
    deciled = with_deciles(scored, by=(c.CHANNEL, c.CATEGORY))
    derived = {c.MODEL_NAME: F.lit(model_name), c.MODEL_VERSION: F.lit(model_version)}
    return deciled.select(
        *[derived.get(n, F.col(n)).alias(n) for n in PROPENSITY_SCORES.fieldNames()]
    )

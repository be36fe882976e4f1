"""Training examples see nothing from their send onwards; a single campaign splits by a
stratified hash holdout."""

from __future__ import annotations

from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.feature_set import cutoff_of
from campaignlake.features.customer import customer_features
from campaignlake.models.training import (
    RANDOM_HOLDOUT,
    labelled_contacts,
    split_examples,
    with_campaign_context,
)
from tests.literals import AS_OF, FS


def test_training_examples_see_nothing_from_the_send_onwards(
    spark: SparkSession, feature_inputs: dict[str, DataFrame]
) -> None:
    contacts = labelled_contacts(
        feature_inputs["contacts"],
        cutoff=cutoff_of(AS_OF),
        attribution_days=5,
        label="converted",
        category_pattern=r"^CMP-[0-9]{8}-[a-z]+-([a-z_]+)$",
    )
    # The sms contact of 2026-10-12 has no closed attribution window yet: not an example.
    assert [(r[c.CAMPAIGN_ID], r[c.LABEL]) for r in contacts.collect()] == [
        ("CMP-20261005-email-books", 1)
    ]
    example = with_campaign_context(
        customer_features(contacts, feature_set=FS, **feature_inputs)
    ).first()
    # Sent 2026-10-05 09:00: the purchase session of 10-09 (the conversion) and the contact
    # itself are invisible; only the abandoned cart of 09-20 counts.
    assert example[c.CAMPAIGN_CATEGORY] == "books"
    assert (example["orders_30d"], example["sessions_30d"], example["cart_abandonments_30d"]) == (
        0,
        1,
        1,
    )
    assert example["email_sends_30d"] == 0 and example["days_since_last_purchase"] is None
    assert example[c.CAMPAIGN_CATEGORY_AFFINITY] == 0.0  # books: no interaction before the send
    assert example["affinity_toys"] == 1.0


def test_single_campaign_splits_by_a_stratified_hash_holdout(spark: SparkSession) -> None:
    rows = [("CMP-1", f"C{i}", datetime(2026, 10, 1), i % 4 == 0) for i in range(400)]
    examples = spark.createDataFrame(
        rows, f"{c.CAMPAIGN_ID} string, {c.CUSTOMER_ID} string, {c.CUTOFF_TS} timestamp, l boolean"
    ).withColumn(c.LABEL, F.col("l").cast("int"))
    split = split_examples(examples, attribution_days=7, validation_fraction=0.25, seed=3)
    assert split.method == RANDOM_HOLDOUT
    train, validation = split.train.collect(), split.validation.collect()
    assert len(train) + len(validation) == 400
    assert {r[c.CUSTOMER_ID] for r in train}.isdisjoint(r[c.CUSTOMER_ID] for r in validation)
    # Stratified exactly: a quarter of the 100 positives and a quarter of the 300 negatives.
    positives = sum(r[c.LABEL] for r in validation)
    assert (positives, len(validation) - positives) == (25, 75)
    reshuffled = split_examples(
        examples.repartition(7), attribution_days=7, validation_fraction=0.25, seed=3
    )
    assert {r[c.CUSTOMER_ID] for r in reshuffled.validation.collect()} == {
        r[c.CUSTOMER_ID] for r in validation
    }

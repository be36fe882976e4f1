"""Training examples for the response model, from the campaign history.

One example per past contact: the customer's features as of the send time (the send
timestamp is the cutoff, so nothing at or after it is visible) and the label from the
attribution window after the send. Only contacts whose attribution window closed before the
training cutoff are used: a later contact's label is not known yet.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.errors import TrainingDataError
from campaignlake.feature_set import CATEGORY_INTERACTIONS

RANDOM_HOLDOUT = "stratified_random_holdout"
CHRONOLOGICAL = "chronological_by_campaign"


def labelled_contacts(
    contacts: DataFrame,
    *,
    cutoff: datetime,
    attribution_days: int,
    label: str,
    category_pattern: str,
) -> DataFrame:
    """Contacts whose attribution window closed before ``cutoff``, with their label (the
    history's held-out customers were not contacted: the uplift model reads them).

    Parameters
    ----------
    contacts
        ``silver/campaign_contacts``.
    cutoff
        Nothing at or after it is used.
    attribution_days
        The label looks this many days after the send.
    label
        ``converted`` (``converted_at`` in the window) or ``clicked`` (``clicked_at``).
    category_pattern
        A regular expression whose first group, applied to ``campaign_id``, is the category
        the campaign promoted (null when it does not match).

    Returns
    -------
    DataFrame
        ``customer_id``, ``cutoff_ts`` (the send time), ``campaign_id``, ``channel``,
        ``campaign_category``, ``label`` (0 or 1).
    """
    sent = F.col(c.SENT_AT)
    window_end = sent + F.make_interval(days=F.lit(attribution_days))
    response = F.col(c.CONVERTED_AT if label == "converted" else c.CLICKED_AT)
    category = F.regexp_extract(F.col(c.CAMPAIGN_ID), category_pattern, 1)
    contacted = ~F.col(c.GROUP).eqNullSafe(F.lit(c.CONTROL))
    return contacts.where((window_end <= F.lit(cutoff)) & sent.isNotNull() & contacted).select(
        c.CUSTOMER_ID,
        sent.alias(c.CUTOFF_TS),
        c.CAMPAIGN_ID,
        c.CHANNEL,
        F.when(category != "", category).alias(c.CAMPAIGN_CATEGORY),
        F.coalesce((response >= sent) & (response < window_end), F.lit(False))
        .cast("int")
        .alias(c.LABEL),
    )


def category_affinity(category: Column) -> Column:
    """The customer's share of interactions in ``category`` (0 without any interaction), from
    the features' ``category_interactions`` map."""
    counts = F.col(CATEGORY_INTERACTIONS)
    total = F.aggregate(F.map_values(counts), F.lit(0).cast("long"), lambda acc, x: acc + x)
    share = F.coalesce(F.try_element_at(counts, category), F.lit(0)) / total
    return F.coalesce(F.when(total > 0, share), F.lit(0.0)).cast("double")


def with_campaign_context(features: DataFrame) -> DataFrame:
    """Add ``campaign_category_affinity`` for the row's ``campaign_category``."""
    return features.withColumn(
        c.CAMPAIGN_CATEGORY_AFFINITY, category_affinity(F.col(c.CAMPAIGN_CATEGORY))
    )


@dataclass(frozen=True)
class Split:
    """Training and validation examples and how they were split."""

    train: DataFrame
    validation: DataFrame
    method: str
    validation_campaigns: tuple[str, ...]


def split_examples(
    examples: DataFrame, *, attribution_days: int, validation_fraction: float, seed: int
) -> Split:
    """Chronological when there are two campaigns or more: the latest campaign validates and
    the contacts whose attribution window closed before its first send train. With a single
    campaign: a per-class hash sample of ``validation_fraction`` validates (stratified, and
    the same rows whatever the partitioning)."""
    sends = (
        examples.groupBy(c.CAMPAIGN_ID)
        .agg(F.min(c.CUTOFF_TS).alias("first_send"))
        .orderBy(F.desc("first_send"), F.desc(c.CAMPAIGN_ID))
        .collect()  # one row per campaign
    )
    if not sends:
        raise TrainingDataError(
            "no campaign contact has a closed attribution window before the training date: "
            "silver/campaign_contacts is empty or every send is too recent"
        )
    if len(sends) >= 2:
        latest = sends[0]
        window_end = F.col(c.CUTOFF_TS) + F.make_interval(days=F.lit(attribution_days))
        validation = examples.where(F.col(c.CAMPAIGN_ID) == latest[c.CAMPAIGN_ID])
        train = examples.where(
            (F.col(c.CAMPAIGN_ID) != latest[c.CAMPAIGN_ID])
            & (window_end <= F.lit(latest["first_send"]))
        )
        return Split(train, validation, CHRONOLOGICAL, (latest[c.CAMPAIGN_ID],))
    marked = stratified_holdout(examples, validation_fraction, seed)
    return Split(
        marked.where(~F.col(_HELD_OUT)).drop(_HELD_OUT),
        marked.where(F.col(_HELD_OUT)).drop(_HELD_OUT),
        RANDOM_HOLDOUT,
        (sends[0][c.CAMPAIGN_ID],),
    )


_HELD_OUT = "__held_out"


def stratified_holdout(examples: DataFrame, fraction: float, seed: int) -> DataFrame:
    """``examples`` with ``__held_out``: within each label, the ``round(fraction × n)`` rows
    first by a seeded hash of (campaign, customer), so positives and negatives are held out in
    the same proportion, and the same rows whatever the partitioning."""
    bucket = F.xxhash64(F.col(c.CAMPAIGN_ID), F.col(c.CUSTOMER_ID), F.lit(seed))
    in_class = Window.partitionBy(c.LABEL)
    position = F.row_number().over(in_class.orderBy(bucket, c.CAMPAIGN_ID, c.CUSTOMER_ID))
    wanted = F.round(F.count(F.lit(1)).over(in_class) * F.lit(fraction))
    return examples.withColumn(_HELD_OUT, position <= wanted)


def class_counts(examples: DataFrame) -> tuple[int, int]:
    """(negatives, positives)."""
    row = examples.agg(
        F.count_if(F.col(c.LABEL) == 0).alias("neg"), F.count_if(F.col(c.LABEL) == 1).alias("pos")
    ).first()
    return int(row["neg"]), int(row["pos"])  # type: ignore[index]


def with_class_weights(examples: DataFrame, negatives: int, positives: int) -> DataFrame:
    """``weight``: positives weigh negatives/positives, so both classes weigh the same."""
    if positives == 0 or negatives == 0:
        raise TrainingDataError(
            f"the training contacts hold {positives} positive and {negatives} negative labels; "
            "a response model needs both"
        )
    return examples.withColumn(
        c.WEIGHT, F.when(F.col(c.LABEL) == 1, F.lit(negatives / positives)).otherwise(F.lit(1.0))
    )

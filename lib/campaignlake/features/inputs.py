"""The feature inputs: which tables customer features are computed from, and what is checked
and computed over them once they are read (by the jobs that need features: the feature build
and the response model's training).
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.errors import MissingInputError
from campaignlake.feature_set import FeatureSet
from campaignlake.features.customer import customer_features

#: The tables features are computed from.
FEATURE_INPUTS = (
    catalog.CLICKSTREAM_EVENTS,
    catalog.PRODUCTS,
    catalog.CAMPAIGN_CONTACTS,
    catalog.CUSTOMER_HISTORY,
    catalog.DELETION_REQUESTS,
    catalog.REVIEWS,
    catalog.REVIEW_SENTIMENT,
    catalog.PRODUCT_TOPICS,
)
#: The inputs without which there are no customers: CRM. A company without clickstream,
#: catalogue or campaign history still gets features (those parts are zeros and nulls).
REQUIRED_FEATURE_INPUTS = (catalog.CUSTOMER_HISTORY, catalog.DELETION_REQUESTS)


def newest_data_date(inputs: dict[str, DataFrame]) -> date | None:
    """The day of the newest ingested record among events, CRM versions and contacts.

    Parameters
    ----------
    inputs
        The :data:`FEATURE_INPUTS` by table key.

    Returns
    -------
    date or None
        ``None`` when none of them has a record.
    """
    days = [
        inputs[catalog.CLICKSTREAM_EVENTS].agg(F.max(c.EVENT_DATE)),
        inputs[catalog.CUSTOMER_HISTORY].agg(F.to_date(F.max(c.UPDATED_AT))),
        inputs[catalog.CAMPAIGN_CONTACTS].agg(F.to_date(F.max(c.SENT_AT))),
    ]
    found = [row[0] for frame in days for row in frame.collect() if row[0] is not None]
    return max(found) if found else None


def check_as_of(inputs: dict[str, DataFrame], as_of: date) -> None:
    """Refuse an as-of date after the newest ingested data: its features would describe a
    day nobody has data for (and a typo such as 2099 would write them).

    Raises
    ------
    MissingInputError
        Naming the date, the newest data and what to do.
    """
    newest = newest_data_date(inputs)
    if newest is None or as_of > newest:
        raise MissingInputError(
            f"--date {as_of} is after the newest ingested data "
            f"({newest or 'none'}): ingest that day's landing files first, or pass a date "
            f"on or before {newest or 'the first ingested day'}"
        )


def text_as_of(inputs: dict[str, DataFrame], as_of: date) -> dict[str, DataFrame]:
    """``inputs`` with the text tables as ``build_text_features`` left them for ``as_of``:
    the product topics of the newest date on or before it, and the review sentiment of the
    model version those topics came from (topic ids and scores of one model, point in time).

    Parameters
    ----------
    inputs
        The :data:`FEATURE_INPUTS` by table key.
    """
    topics = inputs[catalog.PRODUCT_TOPICS].where(F.col(c.AS_OF_DATE) <= F.lit(as_of))
    newest = topics.agg(F.max(c.AS_OF_DATE).alias("__newest"))
    of_date = topics.join(
        F.broadcast(newest), F.col(c.AS_OF_DATE) == F.col("__newest"), "left_semi"
    )
    model = of_date.select(c.MODEL_VERSION).distinct()
    scored = inputs[catalog.REVIEW_SENTIMENT]
    sentiment = scored.join(F.broadcast(model), on=c.MODEL_VERSION, how="left_semi").select(
        *scored.columns
    )
    return {**inputs, catalog.PRODUCT_TOPICS: of_date, catalog.REVIEW_SENTIMENT: sentiment}


def features_for(
    cutoffs: DataFrame, inputs: dict[str, DataFrame], feature_set: FeatureSet
) -> DataFrame:
    """:func:`~campaignlake.features.customer.customer_features` over the feature inputs.

    Parameters
    ----------
    cutoffs
        ``customer_id``, ``cutoff_ts`` and any key columns to carry along.
    inputs
        The :data:`FEATURE_INPUTS` by table key.
    feature_set
        Which features to compute.
    """
    return customer_features(
        cutoffs,
        events=inputs[catalog.CLICKSTREAM_EVENTS],
        products=inputs[catalog.PRODUCTS],
        contacts=inputs[catalog.CAMPAIGN_CONTACTS],
        history=inputs[catalog.CUSTOMER_HISTORY],
        deletion_requests=inputs[catalog.DELETION_REQUESTS],
        feature_set=feature_set,
        reviews=inputs[catalog.REVIEWS].join(
            inputs[catalog.REVIEW_SENTIMENT].select(c.REVIEW_ID, c.SENTIMENT),
            on=c.REVIEW_ID,
            how="left",
        ),
        product_topics=inputs[catalog.PRODUCT_TOPICS],
    )

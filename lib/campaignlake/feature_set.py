"""Which customer features exist, from the conf: their names, types and the features table's
schema. Below the table layer, so the table catalogue can declare ``gold/customer_features``
without importing the code that computes it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import TYPE_CHECKING

from pyspark.sql.types import (
    BooleanType,
    DataType,
    DateType,
    DecimalType,
    DoubleType,
    IntegerType,
    LongType,
    MapType,
    StringType,
    StructField,
    StructType,
)

from campaignlake import columns as c

if TYPE_CHECKING:
    from campaignlake.config import Conf

REVENUE_TYPE = DecimalType(16, 2)

DAYS_SINCE_LAST_PURCHASE = "days_since_last_purchase"
DAYS_SINCE_LAST_VISIT = "days_since_last_visit"
FAVOURITE_CATEGORY = "favourite_category"
DISTINCT_CATEGORIES = "distinct_categories"
CATEGORY_INTERACTIONS = "category_interactions"
TENURE_DAYS = "tenure_days"
AGE_BAND = "age_band"
HAS_PHONE = "has_phone"
DELETION_REQUESTED = "deletion_requested"

# Per-window counts, from sessions (prefix → what is counted).
SESSION_COUNTS = {
    "sessions": None,
    "page_views": "page_view",
    "product_views": "product_view",
    "searches": "search",
    "add_to_carts": "add_to_cart",
}


def windowed(name: str, days: int) -> str:
    """The name of feature ``name`` over a ``days``-day window, e.g. ``orders_30d``."""
    return f"{name}_{days}d"


def topic_affinity(topic: int) -> str:
    """The feature column of the customer's interest in text topic ``topic`` (0-based)."""
    return f"topic_affinity_{topic}"


REVIEW_SENTIMENT_MEAN = "review_sentiment_mean"


def attribute_column(name: str) -> str:
    """The feature column of CRM attribute ``name``."""
    return f"attr_{name}"


@dataclass(frozen=True)
class FeatureSet:
    """Which features exist: windows, top categories, devices, traffic mediums and CRM
    attributes come from the conf (``features`` and ``ingest.crm_attributes``)."""

    windows: tuple[int, ...]
    top_categories: tuple[str, ...]
    devices: tuple[str, ...]
    mediums: tuple[str, ...]
    attributes: tuple[tuple[str, str], ...] = ()
    #: Topic affinity columns: the most topics any text model of the conf may have (a model
    #: with fewer leaves the rest null).
    topics: int = 0
    #: The window of the recent negative reviews count.
    negative_review_days: int = 30

    @classmethod
    def from_conf(cls, conf: Conf) -> FeatureSet:
        """The feature set ``features`` and ``ingest.crm_attributes`` of ``conf`` describe."""
        features = conf.features
        return cls(
            windows=tuple(sorted(set(features.windows_days))),
            top_categories=tuple(features.top_categories),
            devices=tuple(features.devices),
            mediums=tuple(features.traffic_mediums),
            attributes=tuple((a.name, a.kind) for a in conf.ingest.crm_attributes),
            topics=max(conf.text.topics_k),
            negative_review_days=conf.text.negative_review_days,
        )

    @property
    def horizon(self) -> int:
        """The longest window: how far back any feature looks."""
        return max(self.windows)

    def columns(self) -> list[tuple[str, DataType, str]]:
        """(name, type, kind) of every feature; kind is numeric, categorical or other
        (kept in the table, not given to models)."""
        num, cat, other = "numeric", "categorical", "other"
        cols: list[tuple[str, DataType, str]] = [
            (DAYS_SINCE_LAST_PURCHASE, IntegerType(), num),
            (DAYS_SINCE_LAST_VISIT, IntegerType(), num),
        ]
        for w in self.windows:
            cols += [
                (windowed("orders", w), LongType(), num),
                (windowed("revenue", w), REVENUE_TYPE, num),
                *[(windowed(n, w), LongType(), num) for n in SESSION_COUNTS],
                (windowed("cart_abandonments", w), LongType(), num),
                (windowed("email_sends", w), LongType(), num),
                (windowed("email_open_rate", w), DoubleType(), num),
                (windowed("email_click_rate", w), DoubleType(), num),
                (windowed("campaign_contacts", w), LongType(), num),
            ]
        cols += [
            (windowed("avg_order_value", self.horizon), DoubleType(), num),
            *[(f"affinity_{cat}", DoubleType(), num) for cat in self.top_categories],
            (FAVOURITE_CATEGORY, StringType(), cat),
            (DISTINCT_CATEGORIES, IntegerType(), num),
            (CATEGORY_INTERACTIONS, MapType(StringType(), LongType()), other),
            *[(f"device_share_{d}", DoubleType(), num) for d in self.devices],
            *[(f"traffic_share_{m}", DoubleType(), num) for m in (*self.mediums, "direct")],
            (TENURE_DAYS, IntegerType(), num),
            (c.LOYALTY_TIER, StringType(), cat),
            (c.COUNTRY, StringType(), cat),
            (AGE_BAND, StringType(), cat),
            (c.EMAIL_OPT_IN, BooleanType(), num),
            (c.SMS_OPT_IN, BooleanType(), num),
            (c.PUSH_OPT_IN, BooleanType(), num),
            (c.EMAIL_VALID, BooleanType(), num),
            (HAS_PHONE, BooleanType(), num),
            (DELETION_REQUESTED, BooleanType(), other),
            *[(topic_affinity(t), DoubleType(), num) for t in range(self.topics)],
            (windowed("reviews", self.horizon), LongType(), num),
            (windowed("negative_reviews", self.negative_review_days), LongType(), num),
            (REVIEW_SENTIMENT_MEAN, DoubleType(), num),
        ]
        for name, kind in self.attributes:
            data_type = DoubleType() if kind == "numeric" else StringType()
            cols.append((attribute_column(name), data_type, kind))
        return cols

    def numeric(self) -> list[str]:
        """The numeric features, in table order."""
        return [n for n, _, kind in self.columns() if kind == "numeric"]

    def categorical(self) -> list[str]:
        """The categorical features, in table order."""
        return [n for n, _, kind in self.columns() if kind == "categorical"]

    def table_schema(self) -> StructType:
        """The schema of ``gold/customer_features``."""
        fields = [StructField(c.CUSTOMER_ID, StringType())]
        fields += [StructField(n, t) for n, t, _ in self.columns()]
        return StructType([*fields, StructField(c.AS_OF_DATE, DateType())])


def cutoff_of(as_of: date) -> datetime:
    """The exclusive cutoff of an as-of date: the following midnight, UTC."""
    return datetime.combine(as_of + timedelta(days=1), time.min, tzinfo=timezone.utc)

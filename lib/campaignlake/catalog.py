"""The table catalogue: every table's key, contract and the job that writes it, declared once.

A table is addressed by its key everywhere: ``tables.<key>`` in ``conf/<env>.yaml`` gives its
location, :class:`campaignlake.tables.Tables` reads and writes it by key, and the messages
that say "run X first" name the writer declared here. Code uses the constants
(``catalog.CUSTOMERS``), never the string.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyspark.sql.types import StructType

from campaignlake import columns as c
from campaignlake import schemas as s
from campaignlake.errors import SchemaMismatchError
from campaignlake.feature_set import FeatureSet

if TYPE_CHECKING:
    from campaignlake.config import Conf

CLICKSTREAM_EVENTS = "clickstream_events"
CLICKSTREAM_QUARANTINE = "clickstream_quarantine"
CUSTOMERS = "customers"
CUSTOMERS_QUARANTINE = "customers_quarantine"
CUSTOMER_HISTORY = "customer_history"
DELETION_REQUESTS = "deletion_requests"
PRODUCTS = "products"
PRODUCTS_QUARANTINE = "products_quarantine"
CAMPAIGN_CONTACTS = "campaign_contacts"
CAMPAIGN_CONTACTS_QUARANTINE = "campaign_contacts_quarantine"
INGEST_BATCHES = "ingest_batches"
CUSTOMER_FEATURES = "customer_features"
CUSTOMER_SEGMENTS = "customer_segments"
MODEL_METRICS = "model_metrics"
PROPENSITY_SCORES = "propensity_scores"
INTERACTIONS = "interactions"
CUSTOMER_INDEX = "customer_index"
PRODUCT_INDEX = "product_index"
RECOMMENDATIONS = "recommendations"
SIMILAR_PRODUCTS = "similar_products"
CAMPAIGN_AUDIENCES = "campaign_audiences"
ERASURES = "erasures"
TRIGGER_EVENTS = "trigger_events"
CAMPAIGN_RESULTS = "campaign_results"
REVIEWS = "reviews"
REVIEWS_QUARANTINE = "reviews_quarantine"
PRODUCT_TOPICS = "product_topics"
REVIEW_SENTIMENT = "review_sentiment"


@dataclass(frozen=True)
class TableSpec:
    """The contract of one Delta table.

    Parameters
    ----------
    schema
        Column names and types, in table order. Nullability is not enforced.
    partition_by
        Partition columns (a subset of the schema's columns).
    pii_columns
        Columns holding personal data; they never get min/max file statistics, so emails or
        names do not leak into the Delta log.
    properties
        Delta table properties set at creation (``delta.*`` keys).
    erase_by
        How the erasure job finds a customer's rows: the column holding the customer id, or
        ``raw_record`` for quarantine tables (whose raw records are searched for the id, the
        email and the phone). ``None``: the table holds no customer's data.
    erase_keeping_row
        Erase by blanking ``erase_by`` and keeping the row, matched on this key column: for a
        table whose rows must outlive the customer without naming them (an ALS index, which
        would otherwise be given to the next new customer along with the erased one's
        factors). ``None``: the erased rows are deleted.
    """

    schema: StructType
    partition_by: tuple[str, ...] = ()
    pii_columns: frozenset[str] = frozenset()
    properties: dict[str, str] = field(default_factory=dict)
    erase_by: str | None = None
    erase_keeping_row: str | None = None

    def __post_init__(self) -> None:
        """Check that the partition columns are in the schema."""
        names = self.schema.fieldNames()
        missing = [c for c in self.partition_by if c not in names]
        if missing:
            raise SchemaMismatchError(f"partition columns {missing} are not in the schema {names}")

    @property
    def data_columns(self) -> list[str]:
        """Columns stored inside the data files (all but the partition columns)."""
        return [c for c in self.schema.fieldNames() if c not in self.partition_by]


@dataclass(frozen=True)
class CatalogEntry:
    """One table of the catalogue.

    Parameters
    ----------
    written_by
        The jobs that write the table (names of :mod:`campaignlake.jobs.registry`), first the
        one to run when the table is missing.
    spec
        The table's contract; ``None`` for the one table whose columns depend on the conf
        (the features, see :func:`table_specs`).
    """

    written_by: tuple[str, ...]
    spec: TableSpec | None


_QUARANTINE = TableSpec(
    schema=s.QUARANTINE,
    partition_by=(c.QUARANTINE_DATE,),
    pii_columns=s.QUARANTINE_PII,
    erase_by=c.RAW_RECORD,
)
_BY_CUSTOMER = c.CUSTOMER_ID
_INGEST_JOBS = (
    "ingest_products", "ingest_crm", "ingest_campaigns", "ingest_reviews", "ingest_clickstream",
)  # fmt: skip


def _dated(schema: StructType, day: str = c.AS_OF_DATE) -> TableSpec:
    return TableSpec(schema=schema, partition_by=(day,), erase_by=_BY_CUSTOMER)


CATALOGUE: dict[str, CatalogEntry] = {
    CLICKSTREAM_EVENTS: CatalogEntry(
        ("ingest_clickstream",),
        TableSpec(
            schema=s.CLICKSTREAM_EVENTS,
            partition_by=(c.EVENT_DATE,),
            pii_columns=frozenset({c.USER_AGENT, c.RESCUED_DATA}),
            erase_by=_BY_CUSTOMER,
        ),
    ),
    CLICKSTREAM_QUARANTINE: CatalogEntry(("ingest_clickstream",), _QUARANTINE),
    CUSTOMERS: CatalogEntry(
        ("ingest_crm",),
        TableSpec(schema=s.CUSTOMERS, pii_columns=s.CUSTOMER_PII, erase_by=_BY_CUSTOMER),
    ),
    CUSTOMERS_QUARANTINE: CatalogEntry(("ingest_crm",), _QUARANTINE),
    DELETION_REQUESTS: CatalogEntry(
        ("ingest_crm",), TableSpec(schema=s.DELETION_REQUESTS, erase_by=_BY_CUSTOMER)
    ),
    PRODUCTS: CatalogEntry(("ingest_products",), TableSpec(schema=s.PRODUCTS)),
    PRODUCTS_QUARANTINE: CatalogEntry(("ingest_products",), _QUARANTINE),
    CAMPAIGN_CONTACTS: CatalogEntry(
        ("ingest_campaigns",), TableSpec(schema=s.CAMPAIGN_CONTACTS, erase_by=_BY_CUSTOMER)
    ),
    CAMPAIGN_CONTACTS_QUARANTINE: CatalogEntry(("ingest_campaigns",), _QUARANTINE),
    INGEST_BATCHES: CatalogEntry(_INGEST_JOBS, TableSpec(schema=s.INGEST_BATCHES)),
    CUSTOMER_HISTORY: CatalogEntry(
        ("ingest_crm",),
        TableSpec(schema=s.CUSTOMERS, pii_columns=s.CUSTOMER_PII, erase_by=_BY_CUSTOMER),
    ),
    CUSTOMER_FEATURES: CatalogEntry(("build_features",), None),
    CUSTOMER_SEGMENTS: CatalogEntry(("build_features",), _dated(s.CUSTOMER_SEGMENTS)),
    MODEL_METRICS: CatalogEntry(
        ("train_response_model", "train_recommender", "build_features", "train_text_models"),
        TableSpec(schema=s.MODEL_METRICS, partition_by=(c.MODEL_NAME,)),
    ),
    PROPENSITY_SCORES: CatalogEntry(("score_customers",), _dated(s.PROPENSITY_SCORES)),
    INTERACTIONS: CatalogEntry(("recommend",), _dated(s.INTERACTIONS)),
    # An erased customer's index stays, without its id: an index is never given again.
    CUSTOMER_INDEX: CatalogEntry(
        ("train_recommender", "recommend"),
        TableSpec(
            schema=s.CUSTOMER_INDEX, erase_by=_BY_CUSTOMER, erase_keeping_row=c.CUSTOMER_INDEX
        ),
    ),
    PRODUCT_INDEX: CatalogEntry(
        ("train_recommender", "recommend"), TableSpec(schema=s.PRODUCT_INDEX)
    ),
    RECOMMENDATIONS: CatalogEntry(("recommend",), _dated(s.RECOMMENDATIONS)),
    # ALS neighbours (method als, by recommend) and text neighbours (method content, by
    # build_text_features) side by side; each job replaces only its own method's slice.
    SIMILAR_PRODUCTS: CatalogEntry(
        ("recommend", "build_text_features"),
        TableSpec(schema=s.SIMILAR_PRODUCTS, partition_by=(c.AS_OF_DATE,)),
    ),
    CAMPAIGN_AUDIENCES: CatalogEntry(
        ("build_audiences",), _dated(s.CAMPAIGN_AUDIENCES, day=c.SEND_DATE)
    ),
    ERASURES: CatalogEntry(("erase_customers",), TableSpec(schema=s.ERASURES)),
    # Aggregates only: no customer's row, so nothing to erase (cells below the configured
    # minimum size are not broken down).
    CAMPAIGN_RESULTS: CatalogEntry(
        ("measure_campaigns",),
        TableSpec(schema=s.CAMPAIGN_RESULTS, partition_by=(c.AS_OF_DATE,)),
    ),
    REVIEWS: CatalogEntry(
        ("ingest_reviews",),
        TableSpec(schema=s.REVIEWS, pii_columns=s.REVIEW_PII, erase_by=_BY_CUSTOMER),
    ),
    REVIEWS_QUARANTINE: CatalogEntry(("ingest_reviews",), _QUARANTINE),
    # The text model's view of each date (as_of_date, and the model_version applied), read by
    # the features, the recommender and the audiences of that date.
    PRODUCT_TOPICS: CatalogEntry(
        ("build_text_features",),
        TableSpec(schema=s.PRODUCT_TOPICS, partition_by=(c.AS_OF_DATE,)),
    ),
    # Each review's sentiment under each model version that scored it (model_version,
    # review_id): a version's scores do not depend on the day they were computed.
    REVIEW_SENTIMENT: CatalogEntry(
        ("build_text_features",), TableSpec(schema=s.REVIEW_SENTIMENT, erase_by=_BY_CUSTOMER)
    ),
    TRIGGER_EVENTS: CatalogEntry(
        ("stream_triggers",),
        TableSpec(schema=s.TRIGGER_EVENTS, partition_by=(c.FIRED_DATE,), erase_by=_BY_CUSTOMER),
    ),
}

#: Every table key, in catalogue order: the keys ``tables:`` in ``conf/<env>.yaml`` must have.
TABLE_KEYS: tuple[str, ...] = tuple(CATALOGUE)


def writer_of(key: str) -> str:
    """The job to run when table ``key`` does not exist yet."""
    return CATALOGUE[key].written_by[0]


def table_specs(conf: Conf) -> dict[str, TableSpec]:
    """Every table's spec; the features table's columns depend on the conf (windows,
    categories, CRM attributes)."""
    features = _dated(FeatureSet.from_conf(conf).table_schema())
    return {
        key: entry.spec if entry.spec is not None else features for key, entry in CATALOGUE.items()
    }

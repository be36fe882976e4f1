"""Load and validate ``conf/<env>.yaml``.

Configuration is data: every path, table location, threshold and knob the jobs use comes from
here. The YAML is checked against the dataclasses below when it is loaded, so an unknown key,
a wrong type or a missing value fails at once with the file and the dotted key named, before
any Spark work starts.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, Union

import yaml

from campaignlake.catalog import TABLE_KEYS
from campaignlake.errors import ConfigError

CONF_DIR_ENV = "CAMPAIGNLAKE_CONF_DIR"
_URI_SCHEMES = ("s3://", "s3a://", "s3n://", "gs://", "abfs://", "abfss://", "dbfs:/", "file:/")


@dataclass(frozen=True)
class SparkConf:
    """How the session is built when campaignlake creates it (local runs, tests)."""

    master: str | None = None
    app_name: str = "campaignlake"
    shuffle_partitions: int | None = None
    driver_memory: str | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class S3CommitConf:
    """A safe commit mode for delta-rs on S3: conditional put or a DynamoDB lock."""

    conditional_put: Literal["etag"] | None = None
    locking_provider: Literal["dynamodb"] | None = None
    dynamodb_table: str | None = None


@dataclass(frozen=True)
class StorageConf:
    """Which Delta engine writes the tables, and how it commits (``storage``)."""

    engine: Literal["auto", "spark", "delta-rs"]
    commit_retries: int = 5
    #: What the maintenance job (``vacuum_tables``) keeps of older table versions.
    vacuum_retention_hours: int = 168
    stats_columns: int = 32
    s3_commit: S3CommitConf | None = None
    storage_options: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PathsConf:
    """Where the data lives: landing, warehouse, models, exports, reports and the streams'
    checkpoints (``paths``)."""

    landing: str
    warehouse: str
    models: str
    exports: str
    reports: str
    #: Structured Streaming checkpoints, one folder per stream ("": ``<warehouse>/_checkpoints``).
    checkpoints: str = ""
    #: The real-time triggers' messages, one folder per channel ("": ``<exports>/outbox``).
    outbox: str = ""

    @property
    def checkpoint_root(self) -> str:
        """Where the streams keep their checkpoints."""
        return self.checkpoints or f"{self.warehouse.rstrip('/')}/_checkpoints"

    @property
    def outbox_root(self) -> str:
        """Where the triggers' messages go when no Kafka outbox topic is configured."""
        return self.outbox or f"{self.exports.rstrip('/')}/outbox"


#: Table locations by catalogue key: a path relative to ``paths.warehouse``, a full URI, or a
#: table name in the session's catalog (``schema.table`` or Unity Catalog's
#: ``catalog.schema.table``). Its fields are the catalogue's keys
#: (:data:`campaignlake.catalog.TABLE_KEYS`), so a conf without a location for some table, or
#: with a key no table has, fails when loaded.
TablesConf = dataclasses.make_dataclass(
    "TablesConf", [(key, str) for key in TABLE_KEYS], frozen=True
)


@dataclass(frozen=True)
class CrmAttributeConf:
    """A column of the CRM export beyond the contract, carried into silver and the features."""

    name: str
    kind: Literal["numeric", "categorical"]


@dataclass(frozen=True)
class KafkaConf:
    """The Kafka topic event collectors publish the clickstream to (``streaming.kafka``)."""

    bootstrap_servers: str
    topic: str
    #: Where a new checkpoint starts: ``earliest`` (everything the topic retains) or ``latest``.
    starting_offsets: Literal["earliest", "latest"] = "earliest"
    #: At most this many records per micro-batch (a backlog is read in steps).
    max_offsets_per_trigger: int = 100000
    #: The topic the triggers' messages are published to (None: files under ``paths.outbox``).
    outbox_topic: str | None = None


@dataclass(frozen=True)
class StreamingConf:
    """How the streaming jobs read (``streaming``)."""

    #: At most this many new files per micro-batch, landing files or bronze's data files (a
    #: backlog is read in steps).
    max_files_per_trigger: int = 100
    #: The clickstream's Kafka topic; without it the stream reads the landing folder.
    kafka: KafkaConf | None = None
    #: Continuous mode: one micro-batch every this many seconds.
    trigger_seconds: int = 30
    #: The trigger rules' directory (``conf/triggers/*.yaml`` next to this file).
    triggers_dir: str = "triggers"
    #: How late (event time) an event may arrive and still count; later ones are counted as
    #: late and dropped by the trigger stream.
    watermark_minutes: int = 10
    #: An event's time counts as at most this many minutes after its arrival (``ingested_at``)
    #: for the triggers: a device clock ahead of the world would otherwise move the watermark,
    #: fire every pending trigger at once and make the on-time events that follow "late".
    max_ahead_of_arrival_minutes: int = 5
    #: A trigger decided more than this many minutes after it fell due (a backlog read after
    #: a restart) expires instead of firing: a cart message a day late is noise, or worse.
    #: ``null``: never (a replay of old events that should still fire).
    max_trigger_age_minutes: int | None = 240
    #: Shuffle partitions of the trigger stream: its state's partitions (fixed by the first
    #: run's checkpoint) and its micro-batches' joins. Micro-batches are small: few partitions
    #: keep the per-task overhead down.
    shuffle_partitions: int = 2
    #: Where a new trigger checkpoint starts reading bronze: ``latest`` (events appended from
    #: then on: a first deployment does not message old carts) or ``earliest`` (all of it).
    triggers_start: Literal["earliest", "latest"] = "latest"


@dataclass(frozen=True)
class IngestConf:
    """What ingestion accepts and how much it may reject (``ingest``)."""

    max_reject_rate: float
    max_future_skew_hours: int
    min_event_ts: str
    valid_countries: list[str]
    loyalty_tiers: list[str]
    channels: list[str]
    #: Extra CRM columns, in the order they follow the contract's columns in the header.
    crm_attributes: list[CrmAttributeConf] = field(default_factory=list)


@dataclass(frozen=True)
class FeaturesConf:
    """How customer features are computed (see README, "Customer features")."""

    windows_days: list[int]
    top_categories: list[str]
    devices: list[str]
    traffic_mediums: list[str]


@dataclass(frozen=True)
class SegmentsConf:
    """RFM quintiles and the behavioural KMeans segmentation."""

    kmeans_k_min: int
    kmeans_k_max: int
    kmeans_max_iter: int
    seed: int


@dataclass(frozen=True)
class GbtGridConf:
    """The GBT hyperparameter grid searched with TrainValidationSplit."""

    max_depth: list[int]
    max_iter: list[int]
    step_size: list[float]


@dataclass(frozen=True)
class ResponseModelConf:
    """The campaign-response (propensity) model."""

    name: str
    engine: Literal["mllib", "xgboost"]
    label: Literal["converted", "clicked"]
    attribution_days: int
    #: A regular expression whose first group is the product category a campaign promotes.
    campaign_category_pattern: str
    validation_fraction: float
    train_ratio: float
    parallelism: int
    seed: int
    grid: GbtGridConf
    #: Fixed GBT regularisation: campaign histories are small and noisy.
    min_instances_per_node: int = 20
    subsampling_rate: float = 0.8
    #: The most partitions the training examples are fitted in; fewer when there are fewer
    #: than ``fit_rows_per_partition`` rows a partition (:func:`frames.fit_partitions_for`).
    #: GBT draws its row samples per partition, so an environment with other values fits
    #: another model from the same data: keep both equal everywhere.
    fit_partitions: int = 8
    #: Rows a fitting partition holds before another is added: a GBT task costs a few
    #: milliseconds to start whatever it holds, so a small history fits in one partition.
    fit_rows_per_partition: int = 100_000
    #: ``uplift``: also train the uplift model (on past campaigns' control groups) beside the
    #: response model, score customers with both, and let campaigns ``rank_by: uplift``.
    objective: Literal["response", "uplift"] = "response"
    #: The uplift model's name (models folder, registry, scores).
    uplift_name: str = "campaign_uplift"


@dataclass(frozen=True)
class AlsGridConf:
    """The ALS grid chosen on the chronological holdout."""

    rank: list[int]
    reg_param: list[float]
    alpha: list[float]


@dataclass(frozen=True)
class HoldoutConf:
    """The chronological holdout the ALS grid is chosen on (``recommendations.holdout``)."""

    #: ``per_customer``: each customer's last ``fraction`` of interactions (customers with at
    #: least ``min_events``); ``last_days``: everyone's interactions of the last ``days``.
    split: Literal["per_customer", "last_days"]
    fraction: float = 0.2
    min_events: int = 5
    days: int = 14


@dataclass(frozen=True)
class RecommendationsConf:
    """Implicit-feedback ALS recommendations (see README, "Recommendations")."""

    model_name: str
    #: Interaction strength per event; event types not listed do not count.
    event_weights: dict[str, float]
    half_life_days: float
    history_days: int
    holdout: HoldoutConf
    k: int
    max_iter: int
    block_size: int
    #: ALS's user and item blocks: the partitions of each iteration's shuffle. The initial
    #: factors are drawn per block, so every environment that should fit the same model
    #: keeps the same count.
    num_blocks: int
    grid: AlsGridConf
    #: Grid points fitted at the same time (Spark jobs from driver threads).
    grid_parallelism: int
    #: A product the customer had one of these events for is never recommended to them.
    exclude_event_types: list[str]
    similar_products: int
    #: Products per block of the similar-products computation (a block × the catalogue of
    #: factors is one task's matrix product).
    similar_block_size: int
    seed: int
    #: Places in each list kept for products ALS cannot score yet (no interactions when the
    #: model was fitted), filled by text similarity to what the customer interacted with.
    cold_start_slots: int = 2


@dataclass(frozen=True)
class TextConf:
    """Text mining of product descriptions and reviews (``text``; README, "Text features and
    content-based recommendations")."""

    #: LDA topic counts tried; the one with the lowest log-perplexity on held-out documents wins.
    topics_k: list[int] = dataclasses.field(default_factory=lambda: [8, 12, 16])
    lda_max_iter: int = 25
    #: Share of documents held out to choose k (and of labelled reviews to test sentiment on).
    holdout_fraction: float = 0.2
    vocab_size: int = 20000
    #: A term must occur in this many documents to enter the vocabulary.
    min_doc_freq: int = 2
    #: Words removed besides Spark's English stop words.
    extra_stop_words: list[str] = dataclasses.field(default_factory=list)
    embedding_size: int = 32
    word2vec_min_count: int = 3
    word2vec_max_iter: int = 2
    #: Word2Vec's partitions: the vectors depend on it, so keep it equal in every environment.
    word2vec_partitions: int = 1
    sentiment_reg_param: float = 0.02
    #: A customer with a review rated 1–2 in this many days before the date has a recent
    #: negative review (a feature, and a campaign suppression option).
    negative_review_days: int = 30
    similar_products: int = 10
    similar_block_size: int = 2048
    model_name: str = "text_features"
    sentiment_model_name: str = "review_sentiment"
    seed: int = 5


@dataclass(frozen=True)
class OfferConf:
    """One (channel, category) context that customers are scored for."""

    channel: str
    category: str


@dataclass(frozen=True)
class ScoringConf:
    """The offers every customer is scored for (``scoring``)."""

    offers: list[OfferConf]


@dataclass(frozen=True)
class TrackingConf:
    """MLflow tracking and the model registry whose ``champion`` alias is in service."""

    enabled: bool
    experiment: str
    tracking_uri: str | None = None
    #: ``None``: a SQLite registry under ``paths.models`` locally, else the tracking server's.
    registry_uri: str | None = None
    #: Prefix of registered model names (Unity Catalog: ``<catalog>.<schema>``).
    registry_namespace: str | None = None
    #: Where a new experiment keeps its artifacts (models, reports): an object store such as
    #: ``s3://...``. ``None``: the tracking server's default. Required on a cluster whose
    #: tracking store is a database, which would otherwise put them on the driver's disk.
    artifact_location: str | None = None
    #: How much lower a new version's validation metric may be than the champion's, on the
    #: same data, for it to become the champion (0: never worse).
    champion_tolerance: float = 0.01


@dataclass(frozen=True)
class AudiencesConf:
    """How campaign audiences are built from the campaign files (see README, "Audiences")."""

    #: A run for date D builds the campaigns that send on D+1 … D+lead_days.
    lead_days: int
    #: A phone number an SMS can go to (E.164).
    phone_pattern: str
    #: Campaign YAML files; relative to the directory of this configuration file.
    campaigns_dir: str = "campaigns"


@dataclass(frozen=True)
class PiiConf:
    """How personal data is keyed: the HMAC key's environment variable (``pii``)."""

    hmac_key_env: str
    allow_development_key: bool


@dataclass(frozen=True)
class ErasureConf:
    """The right to erasure: when a deletion request is carried out and how completely."""

    #: Days between a request and its erasure (a window to revoke it; at most a month).
    grace_days: int
    #: Versions of an erased table older than this are vacuumed away, with the data they hold.
    vacuum_retention_hours: int
    #: Requests erased per run; the rest are erased by the next runs.
    max_per_run: int = 10_000


@dataclass(frozen=True)
class MeasurementConf:
    """The campaign lift readout (``measurement``); the attribution window is
    ``response_model.attribution_days``, so the uplift model learns the outcome measured."""

    #: What counts as converting, for both groups: ``category_purchase``, a purchase in the
    #: category the campaign promotes (from its id, ``response_model.campaign_category_pattern``;
    #: any purchase when the id names none), or ``any_purchase``.
    outcome: Literal["category_purchase", "any_purchase"] = "category_purchase"
    #: Of every confidence interval; a result is significant when its p-value is below 1 − this.
    confidence: float = 0.95
    #: The power the minimum detectable lift is stated for.
    power: float = 0.8
    #: A campaign or breakdown cell is measured only when both groups have this many customers.
    min_group_size: int = 100
    #: Breakdowns of each campaign's result (audience columns): ``rfm_segment``, ``decile``.
    breakdowns: list[str] = dataclasses.field(default_factory=lambda: ["rfm_segment", "decile"])
    #: Campaigns whose window closed more than this many days before the date are not re-read.
    max_age_days: int = 365


@dataclass(frozen=True)
class SampleConf:
    """The generated sample's size and shape (``sample``)."""

    seed: int
    customers: int
    products: int
    days: int
    end_date: str
    sessions_per_customer_per_week: float
    crm_exports: int
    campaigns: int
    bad_record_rate: float


@dataclass(frozen=True)
class Conf:
    """The whole validated configuration of one environment."""

    env: str
    spark: SparkConf
    storage: StorageConf
    paths: PathsConf
    tables: TablesConf
    ingest: IngestConf
    pii: PiiConf
    sample: SampleConf
    features: FeaturesConf
    segments: SegmentsConf
    response_model: ResponseModelConf
    scoring: ScoringConf
    recommendations: RecommendationsConf
    tracking: TrackingConf
    audiences: AudiencesConf
    erasure: ErasureConf
    streaming: StreamingConf = StreamingConf()
    measurement: MeasurementConf = MeasurementConf()
    text: TextConf = TextConf()
    source_file: str = ""

    def table_path(self, key: str) -> str:
        """The table configured under ``tables.<key>``: its name in the catalog, or its
        absolute location."""
        try:
            location = getattr(self.tables, key)
        except AttributeError:
            raise ConfigError(f"{self.source_file}: tables.{key}: no such table key") from None
        if is_table_name(location):
            return location
        return join_uri(self.paths.warehouse, location)

    def named_tables(self) -> list[str]:
        """The table keys configured by catalog name rather than by path."""
        return [k for k in TABLE_KEYS if is_table_name(getattr(self.tables, k))]

    @property
    def campaigns_dir(self) -> Path:
        """The directory of the campaign files (``audiences.campaigns_dir``)."""
        return Path(self.source_file).resolve().parent / self.audiences.campaigns_dir

    @property
    def triggers_dir(self) -> Path:
        """The directory of the trigger rule files (``streaming.triggers_dir``)."""
        return Path(self.source_file).resolve().parent / self.streaming.triggers_dir


_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*){1,2}")


def is_table_name(location: str) -> bool:
    """Whether a table location is a catalog name (``schema.table``, ``catalog.schema.table``)
    rather than a path: two or three dotted identifiers, no slash."""
    return bool(_TABLE_NAME.fullmatch(location))


def join_uri(base: str, location: str) -> str:
    """Join a relative location onto a base path or URI; full URIs and absolute paths pass."""
    if location.startswith(_URI_SCHEMES) or location.startswith("/"):
        return location
    return base.rstrip("/") + "/" + location.lstrip("/")


def find_conf_file(env: str, conf_dir: str | None = None) -> Path:
    """Locate ``<env>.yaml``: ``conf_dir``, then ``$CAMPAIGNLAKE_CONF_DIR``, then ``./conf``,
    then the ``conf/`` of the source checkout this package runs from."""
    candidates: list[Path] = []
    for directory in (conf_dir, os.environ.get(CONF_DIR_ENV)):
        if directory:
            candidates.append(Path(directory))
    candidates.append(Path.cwd() / "conf")
    candidates.append(Path(__file__).resolve().parents[2] / "conf")
    for directory in candidates:
        path = directory / f"{env}.yaml"
        if path.is_file():
            return path
    searched = ", ".join(str(c) for c in candidates)
    raise ConfigError(f"no configuration '{env}.yaml' found (searched: {searched})")


def load_conf(
    env: str = "local",
    conf_dir: str | None = None,
    variables: dict[str, str] | None = None,
) -> Conf:
    """Load and validate the configuration of ``env``.

    Relative paths under ``paths`` are resolved against the project root (the parent of the
    ``conf/`` directory), so local runs keep everything under ``<repo>/data``. ``${name}`` in a
    value is replaced by the variable ``name``: its default under the file's ``variables:``
    mapping, or the value given here (``--var name=value`` on the command line), so that one
    file serves every deployment target (a Databricks bundle passes its target's catalog and
    volume).

    Raises
    ------
    ConfigError
        When the file is missing or not YAML, or a key is unknown, missing or of the wrong type;
        the message names the file and the dotted key.
    """
    path = find_conf_file(env, conf_dir)
    return load_conf_file(path, variables)


def load_conf_file(path: str | Path, variables: dict[str, str] | None = None) -> Conf:
    """Load and validate one configuration file (see :func:`load_conf`)."""
    path = Path(path)
    raw = read_yaml_mapping(path)
    declared = raw.pop("variables", None) or {}
    values = _variable_values(declared, variables or {}, str(path))
    raw = _substitute(raw, values, str(path), "")
    conf = build_dataclass(Conf, raw, str(path), "")
    root = path.resolve().parent.parent
    paths = {
        f.name: _resolve_path(value, root) if (value := getattr(conf.paths, f.name)) else value
        for f in dataclasses.fields(PathsConf)
    }
    conf = dataclasses.replace(conf, paths=PathsConf(**paths))
    _check_semantics(conf, str(path))
    return conf


_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _variable_values(declared: Any, given: dict[str, str], source: str) -> dict[str, str | None]:
    """The file's declared variables (name -> default, ``null`` when it must be given) with
    the given values over them; a given name the file does not declare is an error."""
    if not isinstance(declared, dict):
        raise ConfigError(f"{source}: variables: expected a mapping of name to default")
    undeclared = sorted(set(given) - set(declared))
    if undeclared:
        names = ", ".join(sorted(declared)) or "none"
        raise ConfigError(
            f"{source}: variables.{undeclared[0]}: not declared in this file (declared: {names})"
        )
    defaults = {str(k): None if v is None else str(v) for k, v in declared.items()}
    return {**defaults, **given}


def _substitute(value: Any, variables: dict[str, str | None], source: str, key: str) -> Any:
    """``value`` with every ``${name}`` in its strings replaced by the variable's value."""
    if isinstance(value, dict):
        return {k: _substitute(v, variables, source, f"{key}{k}.") for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables, source, f"{key}[{i}].") for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in variables:
            raise ConfigError(f"{source}: {key.rstrip('.')}: unknown variable ${{{name}}}")
        if variables[name] is None:
            raise ConfigError(
                f"{source}: {key.rstrip('.')}: variable {name} has no default; "
                f"give it with --var {name}=..."
            )
        return str(variables[name])

    return _PLACEHOLDER.sub(replace, value)


def _resolve_path(value: str, root: Path) -> str:
    if value.startswith(_URI_SCHEMES) or value.startswith("/"):
        return value
    return str((root / value).resolve())


def _check_semantics(conf: Conf, source: str) -> None:
    """Check what the types alone cannot: ranges, references between sections, patterns.

    Raises
    ------
    ConfigError
        Naming the file and the first key that breaks a rule.
    """
    for holds, key, message in _rules(conf):
        if not holds:
            raise ConfigError(f"{source}: {key}: {message}")
    _check_development_key(conf, source)
    _check_tracking_uri(conf, source)
    _check_pattern(
        conf.response_model.campaign_category_pattern,
        f"{source}: response_model.campaign_category_pattern",
        groups=1,
    )
    _check_pattern(conf.audiences.phone_pattern, f"{source}: audiences.phone_pattern")


def _rules(conf: Conf) -> list[tuple[bool, str, str]]:
    """(holds, key, what it must be) of every value rule, in the order they are reported."""
    segments, recs, model = conf.segments, conf.recommendations, conf.response_model
    windows, weights = conf.features.windows_days, recs.event_weights
    unknown = [o.channel for o in conf.scoring.offers if o.channel not in conf.ingest.channels]
    named = conf.named_tables()
    s3 = conf.storage.s3_commit
    measurement = conf.measurement
    text = conf.text
    return [
        (bool(text.topics_k) and min(text.topics_k) >= 2, "text.topics_k",
         "give one or more topic counts of 2 or more"),
        (0.0 < text.holdout_fraction < 0.5, "text.holdout_fraction", "must be in (0, 0.5)"),
        (text.embedding_size >= 2 and text.word2vec_partitions >= 1, "text",
         "embedding_size must be 2 or more and word2vec_partitions 1 or more"),
        (text.negative_review_days >= 1 and text.similar_products >= 1, "text",
         "negative_review_days and similar_products must be 1 or more"),
        (0 <= recs.cold_start_slots < recs.k, "recommendations.cold_start_slots",
         "must be 0 or more and below k"),
        (0.5 < measurement.confidence < 1.0, "measurement.confidence",
         "must be between 0.5 and 1 (0.95 for a 95% interval)"),
        (0.5 <= measurement.power < 1.0, "measurement.power", "must be between 0.5 and 1"),
        (measurement.min_group_size >= 2, "measurement.min_group_size", "must be at least 2"),
        (set(measurement.breakdowns) <= {"rfm_segment", "decile"}, "measurement.breakdowns",
         f"must name rfm_segment or decile, not {measurement.breakdowns}"),
        (conf.streaming.max_files_per_trigger >= 1, "streaming.max_files_per_trigger",
         "must be at least 1"),
        (conf.streaming.trigger_seconds >= 1, "streaming.trigger_seconds", "must be at least 1"),
        (conf.streaming.watermark_minutes >= 0, "streaming.watermark_minutes",
         "must be 0 or more"),
        (conf.streaming.max_ahead_of_arrival_minutes >= 0,
         "streaming.max_ahead_of_arrival_minutes", "must be 0 or more"),
        (conf.streaming.max_trigger_age_minutes is None
         or 1 <= conf.streaming.max_trigger_age_minutes <= 43200,
         "streaming.max_trigger_age_minutes",
         "must be between 1 and 43200 (30 days), or null (never)"),
        (conf.streaming.shuffle_partitions >= 1, "streaming.shuffle_partitions",
         "must be 1 or more"),
        (conf.streaming.kafka is None or conf.streaming.kafka.max_offsets_per_trigger >= 1,
         "streaming.kafka.max_offsets_per_trigger", "must be at least 1"),
        (0.0 <= conf.ingest.max_reject_rate <= 1.0, "ingest.max_reject_rate",
         "must be between 0 and 1"),
        (conf.storage.commit_retries >= 0, "storage.commit_retries", "must be 0 or more"),
        (bool(windows) and min(windows) > 0, "features.windows_days",
         "give one or more positive day counts"),
        (2 <= segments.kmeans_k_min <= segments.kmeans_k_max, "segments.kmeans_k_min",
         "need 2 <= k_min <= k_max"),
        (recs.k >= 1 and recs.half_life_days > 0, "recommendations",
         "k and half_life_days must be positive"),
        (0.0 < recs.holdout.fraction < 1.0, "recommendations.holdout.fraction",
         "must be in (0, 1)"),
        (recs.holdout.min_events >= 2, "recommendations.holdout.min_events",
         "must be 2 or more (one event to train on, one to hold out)"),
        (recs.holdout.days >= 1, "recommendations.holdout.days", "must be 1 or more"),
        (recs.num_blocks >= 1 and recs.grid_parallelism >= 1 and recs.similar_block_size >= 1,
         "recommendations",
         "num_blocks, grid_parallelism and similar_block_size must be 1 or more"),
        (all(v > 0 for v in [*recs.grid.rank, *recs.grid.reg_param, *recs.grid.alpha])
         and bool(recs.grid.rank and recs.grid.reg_param and recs.grid.alpha),
         "recommendations.grid", "give one or more positive values for rank, reg_param and alpha"),
        (bool(weights) and all(w > 0 for w in weights.values()),
         "recommendations.event_weights", "give positive weights"),
        (0.0 < model.validation_fraction < 1.0, "response_model.validation_fraction",
         "must be in (0, 1)"),
        (0.0 < model.train_ratio < 1.0, "response_model.train_ratio", "must be in (0, 1)"),
        (model.fit_partitions >= 1, "response_model.fit_partitions", "must be 1 or more"),
        (model.fit_rows_per_partition >= 1, "response_model.fit_rows_per_partition",
         "must be 1 or more"),
        (conf.erasure.grace_days >= 0 and conf.erasure.vacuum_retention_hours >= 0, "erasure",
         "grace_days and vacuum_retention_hours must be 0 or more"),
        (conf.erasure.max_per_run >= 1, "erasure.max_per_run", "must be 1 or more"),
        (conf.storage.vacuum_retention_hours >= 0, "storage.vacuum_retention_hours",
         "must be 0 or more"),
        (not unknown, "scoring.offers", f"unknown channel {unknown[0]!r}" if unknown else ""),
        (conf.audiences.lead_days >= 1, "audiences.lead_days", "must be 1 or more"),
        (conf.tracking.champion_tolerance >= 0, "tracking.champion_tolerance",
         "must be 0 or more"),
        (not (s3 and s3.locking_provider == "dynamodb" and not s3.dynamodb_table),
         "storage.s3_commit.dynamodb_table", "required with locking_provider dynamodb"),
        (conf.storage.engine != "delta-rs" or not named, f"tables.{named[0] if named else ''}",
         "the delta-rs engine writes paths only; give a path, or use storage.engine spark "
         "for catalog table names"),
    ]  # fmt: skip


def _check_development_key(conf: Conf, source: str) -> None:
    master = conf.spark.master or ""
    if conf.pii.allow_development_key and not master.startswith("local"):
        raise ConfigError(
            f"{source}: pii.allow_development_key: the public development key may only be "
            "allowed with a local session (spark.master: local[...]); this environment "
            f"({master or 'the platform session'}) must take the key from "
            f"${conf.pii.hmac_key_env}"
        )


#: Tracking URIs MLflow can log runs to: a workspace, a tracking server, a database or a local
#: file store. Object stores (s3://, abfss://, dbfs:/) hold artifacts, not runs.
TRACKING_URI_SCHEMES = (
    "databricks", "http://", "https://", "file:", "sqlite:", "postgresql", "mysql", "mssql",
    "arn:aws:sagemaker:",
)  # fmt: skip


def _check_tracking_uri(conf: Conf, source: str) -> None:
    """A tracking URI that cannot work fails now, not after a model has trained for an hour."""
    if not conf.tracking.enabled:
        return
    uri = conf.tracking.tracking_uri
    key = f"{source}: tracking.tracking_uri"
    supported = (
        "give databricks (Databricks), http(s)://<tracking server>, a SageMaker MLflow "
        "tracking server's ARN, sqlite:///<file>, a database URI, or file:<local folder>"
    )
    if uri is None:
        if conf.paths.models.startswith(_URI_SCHEMES):
            raise ConfigError(
                f"{key}: null means a file store under paths.models, but paths.models is "
                f"{conf.paths.models} where MLflow cannot keep runs; {supported}"
            )
        return
    if not uri.startswith(TRACKING_URI_SCHEMES):
        raise ConfigError(f"{key}: MLflow cannot track runs at {uri!r}; {supported}")
    _check_artifact_location(conf, source, uri)
    registry = conf.tracking.registry_uri
    if registry is not None and not registry.startswith(TRACKING_URI_SCHEMES):
        raise ConfigError(
            f"{source}: tracking.registry_uri: MLflow cannot keep a model registry at "
            f"{registry!r}; give databricks-uc (Unity Catalog), databricks, an http(s):// "
            "tracking server, or a database URI (sqlite:///<file>)"
        )


#: Tracking stores without an artifact store of their own: an experiment created there keeps
#: its artifacts in ./mlruns of the process that created it.
DATABASE_TRACKING_SCHEMES = ("sqlite:", "postgresql", "mysql", "mssql")


def _check_artifact_location(conf: Conf, source: str, uri: str) -> None:
    """On a cluster, a database-backed tracking store needs artifacts off the driver's disk,
    which goes with the cluster (and which the executors writing a Spark model cannot reach)."""
    master = conf.spark.master or ""
    location = conf.tracking.artifact_location
    if master.startswith("local") or not uri.startswith(DATABASE_TRACKING_SCHEMES):
        return
    if location is None or not location.startswith(_URI_SCHEMES) or location.startswith("file:"):
        raise ConfigError(
            f"{source}: tracking.artifact_location: the tracking store {uri.split(':')[0]} "
            "keeps no artifacts of its own, and on a cluster "
            f"({master or 'the platform session'}) {location or './mlruns'} is the driver's "
            "disk, lost with the cluster; give an object store location such as "
            "s3://<bucket>/mlflow-artifacts"
        )


def _check_pattern(pattern: str, where: str, groups: int = 0) -> None:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"{where}: not a regular expression: {exc}") from exc
    if compiled.groups < groups:
        raise ConfigError(f"{where}: needs one capture group")


class _StringDatesLoader(yaml.SafeLoader):
    """YAML without implicit timestamps: dates stay strings until the dataclass field asks
    for a date, so a bad date fails with its key named instead of inside the YAML parser."""


_StringDatesLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml_mapping(path: Path) -> dict[str, Any]:
    """The top-level mapping of a YAML configuration file, with ``source_file`` (its path)
    added for error messages.

    Raises
    ------
    ConfigError
        When the file is not YAML or not a mapping, or sets ``source_file`` itself.
    """
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    if "source_file" in raw:
        raise ConfigError(f"{path}: source_file: unknown key")
    return {**raw, "source_file": str(path)}


def load_yaml(text: str) -> Any:
    """Parse configuration YAML (safe, dates as strings)."""
    return yaml.load(text, Loader=_StringDatesLoader)


T = typing.TypeVar("T")


class _Definition(typing.Protocol):
    """A definition loaded from its own file: a campaign, a trigger rule."""

    @property
    def id(self) -> str: ...

    @property
    def source_file(self) -> str: ...


D = typing.TypeVar("D", bound=_Definition)


def load_definition_files(
    folder: Path, load: Callable[[Path], D], what: str, key: str
) -> dict[str, D]:
    """Every ``*.yaml``/``*.yml`` definition in ``folder``, one per file, by id (its ``id``
    attribute), in file name order.

    Raises
    ------
    ConfigError
        When ``folder`` is missing (naming the conf ``key`` that points to it), a file is
        invalid (``load`` raises), or two files define the same id.
    """
    if not folder.is_dir():
        raise ConfigError(f"{folder}: no {what} directory ({key})")
    found: dict[str, D] = {}
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        definition = load(path)
        if definition.id in found:
            raise ConfigError(
                f"{path}: id: {what} {definition.id!r} is also defined in "
                f"{found[definition.id].source_file}"
            )
        found[definition.id] = definition
    return found


def build_dataclass(cls: type[T], data: Any, source: str, prefix: str) -> T:
    """Build dataclass ``cls`` from a YAML mapping, naming ``source`` and the key on errors."""
    where = prefix.rstrip(".") or "(top level)"
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: {where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{source}: {prefix}{unknown[0]}: unknown key")
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        key = f"{prefix}{f.name}"
        if f.name not in data:
            has_default = (
                f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
            )
            if not has_default:
                raise ConfigError(f"{source}: {key}: missing value")
            continue
        values[f.name] = _coerce(hints[f.name], data[f.name], source, key)
    return cls(**values)


def _coerce(tp: Any, value: Any, source: str, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        non_none = [a for a in args if a is not type(None)]
        return _coerce(non_none[0], value, source, key)
    if value is None:
        raise ConfigError(f"{source}: {key}: missing value (null)")
    if origin is Literal:
        if value not in args:
            allowed = ", ".join(str(a) for a in args)
            raise ConfigError(f"{source}: {key}: expected one of {allowed}, got {value!r}")
        return value
    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, source, f"{key}.")
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{source}: {key}: expected a list, got {type(value).__name__}")
        return [_coerce(args[0], v, source, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{source}: {key}: expected a mapping, got {type(value).__name__}")
        return {str(k): _coerce(args[1], v, source, f"{key}.{k}") for k, v in value.items()}
    if tp is Any:
        return value
    if tp not in _SCALARS:
        raise ConfigError(f"{source}: {key}: unsupported type {tp}")
    expected, convert = _SCALARS[tp]
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source}: {key}: expected {expected}, got {value!r}") from None


def _strict(accepts: Callable[[Any], bool], convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A converter that refuses what ``accepts`` does not (YAML's ``1`` is not ``true``)."""

    def run(value: Any) -> Any:
        if not accepts(value):
            raise TypeError(value)
        return convert(value)

    return run


def _to_date(value: Any) -> date:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    return date.fromisoformat(str(value))


#: Scalar field types: what the error says was expected, and the conversion.
_SCALARS: dict[Any, tuple[str, Callable[[Any], Any]]] = {
    date: ("a date YYYY-MM-DD", _to_date),
    bool: ("true or false", _strict(lambda v: isinstance(v, bool), bool)),
    int: ("an integer", _strict(lambda v: isinstance(v, int) and not isinstance(v, bool), int)),
    float: (
        "a number",
        _strict(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool), float),
    ),
    str: ("a string", _strict(lambda v: not isinstance(v, (dict, list)), str)),
}

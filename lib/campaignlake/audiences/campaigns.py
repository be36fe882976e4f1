"""Campaign definitions: ``conf/campaigns/*.yaml``, one campaign per file, validated on load.

A campaign names its channel, the product category it promotes, its send date, who is
eligible (a Spark SQL boolean expression over customer features and segments), the response
model whose scores rank customers, how many to select, how many recommended products to
attach, its frequency cap and its control-group fraction. Every error names the file and the
key; the eligibility expression is checked against the features schema before any data is
read, so a typo fails at once with the column named.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

from pyspark.errors import AnalysisException, ParseException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import BooleanType, StructType

from campaignlake.config import (
    Conf,
    build_dataclass,
    load_definition_files,
    read_yaml_mapping,
)
from campaignlake.errors import ConfigError
from campaignlake.expressions import check_safe_expression
from campaignlake.models.registry import ModelStore

#: Campaign ids appear in paths and file names.
#: Matched whole (fullmatch: ``$`` alone would accept a final newline, which would then name
#: an export folder).
_CAMPAIGN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
#: Upper bounds of the numbers a campaign file gives: beyond them a value is a typo, and Spark
#: would take it as an overflowing int or interval.
MAX_TOP_N = 100_000_000
MAX_PRIORITY = 1_000_000
MAX_DAYS = 3650
MAX_CONTACTS_30D = 1000


@dataclass(frozen=True)
class SelectionConf:
    """Who is selected among the eligible, best scores first: the ``top_n`` best, those
    scoring at least ``min_score``, or both (the ``top_n`` best of those above the score)."""

    top_n: int | None = None
    min_score: float | None = None


@dataclass(frozen=True)
class FrequencyCapConf:
    """Contact pressure: a customer contacted in the last ``min_days_since_last_contact``
    days, or ``max_contacts_30d`` times in the last 30 days, is suppressed. ``scope`` says
    whether contacts on every channel count or only those on the campaign's channel."""

    min_days_since_last_contact: int | None = None
    max_contacts_30d: int | None = None
    scope: Literal["all", "channel"] = "all"

    def problems(self) -> list[tuple[str, str]]:
        """(key under ``frequency_cap``, what is wrong) of each invalid value."""
        found = []
        days = self.min_days_since_last_contact
        if days is not None and not 1 <= days <= MAX_DAYS:
            found.append(("min_days_since_last_contact", f"must be between 1 and {MAX_DAYS}"))
        contacts = self.max_contacts_30d
        if contacts is not None and not 1 <= contacts <= MAX_CONTACTS_30D:
            found.append(("max_contacts_30d", f"must be between 1 and {MAX_CONTACTS_30D}"))
        return found


@dataclass(frozen=True)
class Campaign:
    """One campaign, as its YAML file defines it."""

    id: str
    name: str
    channel: Literal["email", "sms", "push"]
    #: The promoted product category; the response model scores customers for it.
    category: str
    send_date: date
    selection: SelectionConf
    #: How many recommended products each contacted customer gets (0 = none).
    products: int
    control_fraction: float
    #: A Spark SQL boolean expression over customer features and segments.
    eligibility: str = "true"
    frequency_cap: FrequencyCapConf = field(default_factory=FrequencyCapConf)
    #: Campaigns sending on the same day are built in (priority, id) order; a customer in an
    #: earlier one's audience counts as contacted for the frequency caps of the later ones.
    priority: int = 100
    #: ``propensity``: rank by the response model's probability of a response; ``uplift``:
    #: by the uplift model's predicted uplift (needs ``response_model.objective: uplift``).
    rank_by: Literal["propensity", "uplift"] = "propensity"
    #: The model whose scores rank customers; by default the conf's response model
    #: (``rank_by: propensity``) or uplift model (``rank_by: uplift``).
    model: str = ""
    #: Suppress customers who rated a product 1–2 in this many days before the send date
    #: (None: no such suppression).
    suppress_negative_review_days: int | None = None
    source_file: str = ""

    @property
    def order_key(self) -> tuple[date, int, str]:
        """Sort key of the build order: send date, then priority, then id."""
        return (self.send_date, self.priority, self.id)


def load_campaign_file(path: str | Path, conf: Conf) -> Campaign:
    """Load and validate one campaign file against the environment's configuration.

    Raises
    ------
    ConfigError
        When the file is not YAML, or a key is unknown, missing, of the wrong type or has a
        value the environment cannot serve (an unscored offer, more products than are
        recommended); the message names the file and the key.
    """
    path = Path(path)
    campaign = build_dataclass(Campaign, read_yaml_mapping(path), str(path), "")
    _check_campaign(campaign, conf)
    if not campaign.model:
        model = conf.response_model
        name = model.uplift_name if campaign.rank_by == "uplift" else model.name
        campaign = dataclasses.replace(campaign, model=name)
    return campaign


def _check_campaign(campaign: Campaign, conf: Conf) -> None:
    source = campaign.source_file

    def fail(key: str, problem: str) -> None:
        raise ConfigError(f"{source}: {key}: {problem}")

    if not _CAMPAIGN_ID.fullmatch(campaign.id):
        fail("id", "use letters, digits, '.', '_' and '-' only (it names export folders)")
    if not campaign.name.strip():
        fail("name", "must not be empty")
    if campaign.channel not in conf.ingest.channels:
        fail("channel", f"{campaign.channel!r} is not in ingest.channels of {conf.source_file}")
    offers = {(o.channel, o.category) for o in conf.scoring.offers}
    if (campaign.channel, campaign.category) not in offers:
        fail(
            "category",
            f"the offer ({campaign.channel}, {campaign.category}) is not scored: add "
            f"{{channel: {campaign.channel}, category: {campaign.category}}} to scoring.offers "
            f"in {conf.source_file}",
        )
    selection = campaign.selection
    if selection.top_n is None and selection.min_score is None:
        fail("selection", "give top_n, min_score or both")
    uplift = campaign.rank_by == "uplift"
    if uplift and conf.response_model.objective != "uplift":
        fail(
            "rank_by",
            f"uplift needs response_model.objective: uplift in {conf.source_file} (the "
            "uplift model is trained and scored only then)",
        )
    if uplift and campaign.model and campaign.model != conf.response_model.uplift_name:
        fail(
            "model",
            f"{campaign.model!r} with rank_by: uplift; the uplift model is "
            f"{conf.response_model.uplift_name!r} (leave model out)",
        )
    lowest = -1.0 if uplift else 0.0
    if selection.min_score is not None and not lowest <= selection.min_score <= 1.0:
        fail("selection.min_score", f"must be between {lowest:g} and 1")
    if not 0 <= campaign.products <= conf.recommendations.k:
        fail("products", f"must be between 0 and recommendations.k ({conf.recommendations.k})")
    if not 0.0 <= campaign.control_fraction < 1.0:
        fail("control_fraction", "must be at least 0 and below 1")
    for key, problem in _limit_problems(campaign):
        fail(key, problem)
    if not campaign.eligibility.strip():
        fail("eligibility", "must not be empty (use 'true' for everyone)")


def _limit_problems(campaign: Campaign) -> list[tuple[str, str]]:
    """(key, what is wrong) of each count, priority or suppression setting of ``campaign``
    outside its bounds."""
    found = [
        (f"frequency_cap.{key}", problem) for key, problem in campaign.frequency_cap.problems()
    ]
    top_n = campaign.selection.top_n
    if top_n is not None and not 1 <= top_n <= MAX_TOP_N:
        found.append(("selection.top_n", f"must be between 1 and {MAX_TOP_N:,}"))
    if not -MAX_PRIORITY <= campaign.priority <= MAX_PRIORITY:
        found.append(("priority", f"must be between {-MAX_PRIORITY:,} and {MAX_PRIORITY:,}"))
    days = campaign.suppress_negative_review_days
    if days is not None and not 1 <= days <= MAX_DAYS:
        found.append(
            (
                "suppress_negative_review_days",
                f"must be between 1 and {MAX_DAYS} (leave it out for none)",
            )
        )
    return found


def load_campaigns(conf: Conf, directory: str | Path | None = None) -> list[Campaign]:
    """Every campaign under ``directory`` (default: ``conf.campaigns_dir``), in build order
    (send date, priority, id).

    Raises
    ------
    ConfigError
        When a file is invalid, or two files define the same campaign id.
    """
    folder = Path(directory) if directory is not None else conf.campaigns_dir
    campaigns = load_definition_files(
        folder, lambda path: load_campaign_file(path, conf), "campaign", "audiences.campaigns_dir"
    )
    return sorted(campaigns.values(), key=lambda c: c.order_key)


def check_eligibility(spark: SparkSession, campaign: Campaign, schema: StructType) -> None:
    """Resolve the eligibility expression against ``schema`` without reading any data.

    Raises
    ------
    ConfigError
        When the expression does not parse, leaves the safe expression language
        (:func:`campaignlake.expressions.check_safe_expression`: the message names the
        offending function), names a column the schema lacks (the message names it, with
        Spark's suggestions), or is not boolean.
    """
    where = f"{campaign.source_file}: eligibility"
    check_safe_expression(spark, campaign.eligibility, where)
    empty = spark.createDataFrame([], schema)
    try:
        resolved = empty.select(F.expr(campaign.eligibility).alias("eligible")).schema
    except ParseException as exc:
        raise ConfigError(f"{where}: not a Spark SQL expression: {_first_line(exc)}") from None
    except AnalysisException as exc:
        parameters = exc.getMessageParameters() or {}
        column = parameters.get("objectName")
        if column:
            proposal = parameters.get("proposal")
            hint = f" (did you mean one of {proposal}?)" if proposal else ""
            raise ConfigError(f"{where}: unknown column {column}{hint}") from None
        raise ConfigError(f"{where}: {_first_line(exc)}") from None
    data_type = resolved["eligible"].dataType
    if not isinstance(data_type, BooleanType):
        raise ConfigError(f"{where}: must be a boolean expression, got {data_type.simpleString()}")


def check_models(campaigns: list[Campaign], store: ModelStore) -> None:
    """Every campaign's model has a saved version.

    Raises
    ------
    ConfigError
        Naming the campaign file, the ``model`` key and where the model was looked for.
    """
    known: dict[str, bool] = {}
    for campaign in campaigns:
        if campaign.model not in known:
            known[campaign.model] = bool(store.versions(campaign.model))
        if not known[campaign.model]:
            raise ConfigError(
                f"{campaign.source_file}: model: no trained model {campaign.model!r} under "
                f"{store.root} (train it with campaignlake train_response_model)"
            )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0]


def due_campaigns(
    campaigns: list[Campaign], as_of: date, lead_days: int, campaign_id: str | None = None
) -> list[Campaign]:
    """The campaigns a run for ``as_of`` builds: those sending on as_of+1 … as_of+lead_days,
    or only ``campaign_id``, which must send after ``as_of`` (an audience only uses data from
    before its send date).

    Raises
    ------
    ConfigError
        When ``campaign_id`` is unknown or sends on or before ``as_of``.
    """
    if campaign_id is not None:
        chosen = [cmp for cmp in campaigns if cmp.id == campaign_id]
        if not chosen:
            known = ", ".join(cmp.id for cmp in campaigns) or "none"
            raise ConfigError(f"--campaign {campaign_id}: no such campaign (known: {known})")
        if chosen[0].send_date <= as_of:
            raise ConfigError(
                f"{chosen[0].source_file}: send_date: {chosen[0].send_date} is not after the "
                f"run date {as_of}; build it with --date "
                f"{chosen[0].send_date - timedelta(days=1)} or earlier"
            )
        return chosen
    last = as_of + timedelta(days=lead_days)
    return [cmp for cmp in campaigns if as_of < cmp.send_date <= last]

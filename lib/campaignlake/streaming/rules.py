"""Trigger rules: ``conf/triggers/*.yaml``, one rule per file, validated on load.

A rule says which behaviour fires it (its ``kind``), how long to wait in event time before it
fires (``delay_minutes``), what cancels it, the channel of its message, how many products the
message carries, when not to send (``quiet_hours``), the frequency cap it shares with the batch
audiences and its control-group fraction. Every error names the file and the key.

The kinds:

- ``cart_abandonment``: an ``add_to_cart`` with no ``checkout`` or ``purchase`` by the same
  customer within ``delay_minutes`` (each further ``add_to_cart`` restarts the wait; a
  ``remove_from_cart`` of the last product in it cancels it). The message carries the cart.
- ``browse_abandonment``: ``min_views`` ``product_view`` events in one category within one
  session, and no ``add_to_cart`` within ``delay_minutes`` of the last of them. The message
  carries the customer's top recommendations in that category, then products similar to the
  ones viewed.
- ``post_purchase``: a ``purchase``, ``delay_minutes`` later; nothing cancels it. The message
  carries products similar to the one bought (never the one bought).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from campaignlake.audiences.campaigns import FrequencyCapConf
from campaignlake.config import Conf, build_dataclass, load_definition_files, read_yaml_mapping
from campaignlake.errors import ConfigError

CART_ABANDONMENT = "cart_abandonment"
BROWSE_ABANDONMENT = "browse_abandonment"
POST_PURCHASE = "post_purchase"
KINDS = (CART_ABANDONMENT, BROWSE_ABANDONMENT, POST_PURCHASE)

#: Rule ids name output folders and idempotency tokens.
#: Matched whole (fullmatch: ``$`` alone would accept a final newline).
_RULE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_CLOCK = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
#: A message waits at most 30 days; a browse needs at most this many product views.
MAX_DELAY_MINUTES = 30 * 24 * 60
MAX_MIN_VIEWS = 1000
#: Names Python's tz database knows and Spark's (Java's) does not: the database's own aliases
#: and variants, not regions.
_NOT_IN_SPARK = ("Factory", "posixrules", "localtime")
_NOT_IN_SPARK_PREFIXES = ("posix/", "right/")


@dataclass(frozen=True)
class QuietHoursConf:
    """No message between ``start`` and ``end`` (``HH:MM``, local time in ``timezone``); a
    window that wraps midnight (21:00–08:00) is allowed."""

    start: str
    end: str
    timezone: str = "UTC"

    def minutes(self) -> tuple[int, int]:
        """``start`` and ``end`` as minutes after midnight."""
        return _minutes(self.start), _minutes(self.end)


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


@dataclass(frozen=True)
class TriggerRule:
    """One trigger rule, as its YAML file defines it."""

    id: str
    kind: Literal["cart_abandonment", "browse_abandonment", "post_purchase"]
    channel: Literal["email", "sms", "push"]
    #: How long (event time) after its cause the rule fires unless cancelled.
    delay_minutes: int
    #: How many products the message carries.
    products: int = 3
    #: Browse abandonment: product views in one category within one session that start it.
    min_views: int = 3
    quiet_hours: QuietHoursConf | None = None
    frequency_cap: FrequencyCapConf = field(default_factory=FrequencyCapConf)
    control_fraction: float = 0.1
    enabled: bool = True
    source_file: str = ""


def load_rule_file(path: str | Path, conf: Conf) -> TriggerRule:
    """Load and validate one trigger rule file.

    Raises
    ------
    ConfigError
        When the file is not YAML, or a key is unknown, missing, of the wrong type or out of
        range; the message names the file and the key.
    """
    path = Path(path)
    rule = build_dataclass(TriggerRule, read_yaml_mapping(path), str(path), "")
    _check_rule(rule, conf)
    return rule


def _check_rule(rule: TriggerRule, conf: Conf) -> None:
    def fail(key: str, problem: str) -> None:
        raise ConfigError(f"{rule.source_file}: {key}: {problem}")

    if not _RULE_ID.fullmatch(rule.id):
        fail("id", "use letters, digits, '.', '_' and '-' only (it names outbox folders)")
    if rule.channel not in conf.ingest.channels:
        fail("channel", f"{rule.channel!r} is not in ingest.channels of {conf.source_file}")
    if not 1 <= rule.delay_minutes <= MAX_DELAY_MINUTES:
        fail("delay_minutes", f"must be between 1 and {MAX_DELAY_MINUTES} (30 days)")
    if not 1 <= rule.products <= 20:
        fail("products", "must be between 1 and 20")
    if rule.kind == BROWSE_ABANDONMENT and not 1 <= rule.min_views <= MAX_MIN_VIEWS:
        fail("min_views", f"must be between 1 and {MAX_MIN_VIEWS}")
    if not 0.0 <= rule.control_fraction < 1.0:
        fail("control_fraction", "must be at least 0 and below 1")
    for key, problem in rule.frequency_cap.problems():
        fail(f"frequency_cap.{key}", problem)
    quiet = rule.quiet_hours
    if quiet is not None:
        for key, clock in (("start", quiet.start), ("end", quiet.end)):
            if not _CLOCK.fullmatch(clock):
                fail(f"quiet_hours.{key}", f"{clock!r} is not a time of day HH:MM")
        if quiet.start == quiet.end:
            fail("quiet_hours", "start and end are equal: give a window, or no quiet_hours")
        if not spark_time_zone(quiet.timezone):
            fail(
                "quiet_hours.timezone",
                f"{quiet.timezone!r} is not an IANA time zone Spark knows (a region such as "
                "Europe/Berlin, or UTC)",
            )


def spark_time_zone(name: str) -> bool:
    """Whether ``name`` is a time zone of the IANA database that Spark (Java's ZoneId) takes
    too: not the database's own files and variants (``Factory``, ``posixrules``,
    ``localtime``, ``posix/…``, ``right/…``)."""
    if name in _NOT_IN_SPARK or name.startswith(_NOT_IN_SPARK_PREFIXES):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def load_rules(conf: Conf, directory: str | Path | None = None) -> list[TriggerRule]:
    """Every enabled rule under ``directory`` (default: ``conf.triggers_dir``), by id.

    Raises
    ------
    ConfigError
        When the directory is missing or has no enabled rule, a file is invalid, or two files
        define the same rule id.
    """
    folder = Path(directory) if directory is not None else conf.triggers_dir
    rules = load_definition_files(
        folder, lambda path: load_rule_file(path, conf), "trigger rule", "streaming.triggers_dir"
    )
    enabled = [rules[key] for key in sorted(rules) if rules[key].enabled]
    if not enabled:
        raise ConfigError(f"{folder}: no enabled trigger rule (*.yaml with enabled: true)")
    return enabled

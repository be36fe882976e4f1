"""What a job is: its declaration in :mod:`campaignlake.jobs.registry` and what it returns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

from campaignlake.config import Conf


class Describable(Protocol):
    """What every job returns: a report that describes itself in a few lines."""

    def describe(self) -> str:
        """A few lines saying what the job did."""


class RunDate(Enum):
    """How a job uses ``--date``."""

    #: The result depends on the date; the job refuses to run without one.
    REQUIRED = "required"
    #: Optional: ingestion takes every landing file without it (files dated later wait with it).
    OPTIONAL = "optional"
    #: The job takes no date.
    NONE = "none"


@dataclass(frozen=True)
class Flag:
    """A job's own command-line flag; ``dest`` is the keyword its function takes."""

    name: str
    dest: str
    help: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Job:
    """One job.

    Parameters
    ----------
    name
        The job's name on the command line and in Databricks tasks.
    run
        Its function: ``run(spark, conf, tables, *, as_of, **flags)``, or
        ``run(conf, *, as_of, **flags)`` when ``session`` is false. ``as_of`` is passed unless
        ``date`` is :attr:`RunDate.NONE`.
    summary
        What it does, for ``--help``.
    date
        How it uses ``--date``.
    flags
        Its own flags.
    stage
        The ``run_pipeline`` stage it belongs to (``None``: not part of the pipeline).
    trains
        For a training job, the name of the model it saves (from the conf): the pipeline
        runs it only when no version exists or with ``--retrain``.
    session
        Whether it needs a Spark session and the tables.
    """

    name: str
    run: Callable[..., Describable | list[Describable]]
    summary: str
    date: RunDate = RunDate.REQUIRED
    flags: tuple[Flag, ...] = ()
    stage: str | None = None
    trains: Callable[[Conf], str] | None = None
    session: bool = True

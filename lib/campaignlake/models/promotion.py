"""The champion gate: whether a newly trained model version replaces the one in service.

A new version (the challenger) becomes the ``champion`` only when its validation metric is not
worse than the current champion's by more than ``tracking.champion_tolerance``, both measured
on the challenger's validation split (the champion is scored again on the new data, so a
version trained on easier data cannot win by its own old number). Without a champion, or when
the champion cannot be measured on the new data (its features are gone), the challenger wins
and the reason says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: The registry alias scoring and recommending load by default.
CHAMPION = "champion"


@dataclass(frozen=True)
class Promotion:
    """One gate decision, for the training report and the registry's tags.

    Parameters
    ----------
    model
        The model's name.
    challenger
        The new version (``vN``).
    champion
        The version in service before this run (``None``: there was none).
    metric
        The metric compared; higher is better.
    challenger_value
        The challenger's metric on the new validation split.
    champion_value
        The champion's metric on the same split (``None``: it could not be measured).
    tolerance
        How much worse than the champion the challenger may be and still replace it.
    unmeasured_reason
        Why the champion could not be measured, when it could not.
    """

    model: str
    challenger: str
    champion: str | None
    metric: str
    challenger_value: float
    champion_value: float | None
    tolerance: float
    unmeasured_reason: str = ""

    @property
    def promoted(self) -> bool:
        """Whether the challenger becomes the champion."""
        if self.champion is None or self.champion_value is None:
            return True
        if math.isnan(self.champion_value):
            return not math.isnan(self.challenger_value)
        if math.isnan(self.challenger_value):
            return False
        return self.challenger_value >= self.champion_value - self.tolerance

    @property
    def serving(self) -> str:
        """The version in service after this decision."""
        return self.challenger if self.promoted else self.champion or self.challenger

    def describe(self) -> str:
        """The decision and why, in one line."""
        new = f"{self.metric} {self.challenger_value:.4f}"
        if self.champion is None:
            return f"{self.challenger} is champion: the first registered version ({new})"
        if self.champion_value is None:
            return (
                f"{self.challenger} is champion ({new}): champion {self.champion} could not be "
                f"measured on the new validation data ({self.unmeasured_reason})"
            )
        old = f"{self.champion_value:.4f}"
        if self.promoted:
            return (
                f"{self.challenger} is champion: {new} vs {old} for {self.champion} on the same "
                f"validation data, not worse by more than {self.tolerance:g}"
            )
        return (
            f"{self.champion} stays champion, {self.challenger} is a challenger: {new} vs "
            f"{old} for {self.champion} on the same validation data, worse by more than "
            f"{self.tolerance:g}"
        )


def describe_promotion(promotion: Promotion | None) -> str:
    """The gate's decision, or what serves without a registry."""
    if promotion is None:
        return "tracking is off, so the latest saved version serves"
    return promotion.describe()

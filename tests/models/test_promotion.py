"""The champion gate's rule and what it says about each decision."""

from __future__ import annotations

import math

import pytest

from campaignlake.models.promotion import Promotion, describe_promotion


def gate(challenger: float, champion: float | None, *, current: str | None = "v1") -> Promotion:
    return Promotion(
        model="campaign_response",
        challenger="v2",
        champion=current,
        metric="roc_auc",
        challenger_value=challenger,
        champion_value=champion,
        tolerance=0.01,
        unmeasured_reason="" if champion is not None else "column recency_days is gone",
    )


@pytest.mark.parametrize(
    ("challenger", "champion", "promoted"),
    [
        (0.75, 0.70, True),  # better
        (0.70, 0.70, True),  # the same (a retrain on unchanged data)
        (0.691, 0.70, True),  # worse, within the tolerance
        (0.689, 0.70, False),  # worse by more than the tolerance
        (math.nan, 0.70, False),  # the challenger could not be measured
        (0.60, math.nan, True),  # the champion scored nothing measurable on the new data
    ],
)
def test_a_challenger_replaces_the_champion_unless_worse_by_more_than_the_tolerance(
    challenger: float, champion: float, promoted: bool
) -> None:
    decision = gate(challenger, champion)
    assert decision.promoted is promoted
    assert decision.serving == ("v2" if promoted else "v1")


def test_each_decision_says_why() -> None:
    assert gate(0.7, None, current=None).describe() == (
        "v2 is champion: the first registered version (roc_auc 0.7000)"
    )
    assert gate(0.72, 0.70).describe() == (
        "v2 is champion: roc_auc 0.7200 vs 0.7000 for v1 on the same validation data, "
        "not worse by more than 0.01"
    )
    assert gate(0.60, 0.70).describe() == (
        "v1 stays champion, v2 is a challenger: roc_auc 0.6000 vs 0.7000 for v1 on the same "
        "validation data, worse by more than 0.01"
    )
    unmeasured = gate(0.60, None)
    assert unmeasured.promoted
    assert unmeasured.describe() == (
        "v2 is champion (roc_auc 0.6000): champion v1 could not be measured on the new "
        "validation data (column recency_days is gone)"
    )
    assert describe_promotion(None) == "tracking is off, so the latest saved version serves"

"""The lift arithmetic on hand-computed groups."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from campaignlake import columns as c
from campaignlake.measurement.lift import (
    INSUFFICIENT_SIZE,
    MEASURED,
    GroupTotals,
    conversion_lift,
    min_detectable_lift,
    result_row,
    revenue_lift,
)


def revenues(values: list[float], conversions: int = 0) -> GroupTotals:
    return GroupTotals(len(values), conversions, sum(values), sum(v * v for v in values))


def test_conversion_lift_matches_the_two_proportion_test() -> None:
    # 120/1000 against 100/1000: R's prop.test(c(120, 100), c(1000, 1000), correct = FALSE)
    # gives X-squared = 2.0429, p-value = 0.1529.
    estimate = conversion_lift(
        GroupTotals(1000, 120, 0.0, 0.0), GroupTotals(1000, 100, 0.0, 0.0), 0.95
    )
    assert estimate.lift == pytest.approx(0.02)
    assert estimate.relative == pytest.approx(0.2)
    assert estimate.p_value == pytest.approx(0.1529, abs=1e-4)
    # Wald interval: 0.02 ± 1.959964 × sqrt(0.12 × 0.88 / 1000 + 0.1 × 0.9 / 1000).
    half = 1.959964 * math.sqrt(0.12 * 0.88 / 1000 + 0.1 * 0.9 / 1000)
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx((0.02 - half, 0.02 + half))


def test_identical_groups_have_no_lift_and_p_value_one() -> None:
    group = GroupTotals(500, 50, 2500.0, 60000.0)
    conversion = conversion_lift(group, group, 0.95)
    assert conversion.lift == 0.0 and conversion.p_value == pytest.approx(1.0)
    assert conversion.ci_low < 0 < conversion.ci_high
    revenue = revenue_lift(group, group, 0.95)
    assert revenue.lift == 0.0 and revenue.p_value == pytest.approx(1.0)


def test_nobody_converting_in_either_group_is_no_effect() -> None:
    none = GroupTotals(300, 0, 0.0, 0.0)
    conversion = conversion_lift(none, none, 0.95)
    assert (conversion.lift, conversion.p_value, conversion.relative) == (0.0, 1.0, None)
    assert (conversion.ci_low, conversion.ci_high) == (0.0, 0.0)
    assert revenue_lift(none, none, 0.95).p_value == 1.0


def test_revenue_lift_is_welchs_t_test_from_sums() -> None:
    treated, held_out = [0.0, 10.0, 20.0, 30.0], [0.0, 0.0, 10.0, 10.0]
    estimate = revenue_lift(revenues(treated), revenues(held_out), 0.95)
    welch = stats.ttest_ind(treated, held_out, equal_var=False)
    assert estimate.lift == pytest.approx(10.0)
    assert estimate.relative == pytest.approx(2.0)
    assert estimate.p_value == pytest.approx(welch.pvalue)
    interval = welch.confidence_interval(0.95)
    assert (estimate.ci_low, estimate.ci_high) == pytest.approx((interval.low, interval.high))
    # se = sqrt(166.67 / 4 + 33.33 / 4) = sqrt(50); Welch–Satterthwaite df = 4.1538.
    t = stats.t.ppf(0.975, 4.153846)
    assert estimate.ci_high - estimate.lift == pytest.approx(t * math.sqrt(50), rel=1e-5)


def test_min_detectable_lift_shrinks_with_the_control_group() -> None:
    treatment = GroupTotals(9000, 900, 0.0, 0.0)
    small = min_detectable_lift(treatment, GroupTotals(1000, 100, 0.0, 0.0), 0.95, 0.8)
    large = min_detectable_lift(treatment, GroupTotals(9000, 900, 0.0, 0.0), 0.95, 0.8)
    # (1.959964 + 0.841621) × sqrt(0.1 × 0.9 × (1/9000 + 1/1000)) = 2.801585 × 0.01
    assert small == pytest.approx(0.02801585, abs=1e-7)
    assert large < small


def test_a_cell_below_the_minimum_size_is_not_measured() -> None:
    cell = {c.CAMPAIGN_ID: "CMP", c.BREAKDOWN: "decile", c.BREAKDOWN_VALUE: "1"}
    row = result_row(
        cell,
        GroupTotals(500, 60, 0.0, 0.0),
        GroupTotals(99, 5, 0.0, 0.0),
        min_group_size=100,
        confidence=0.95,
        power=0.8,
    )
    assert row[c.STATUS] == INSUFFICIENT_SIZE
    assert (row[c.TREATMENT_CUSTOMERS], row[c.CONTROL_CUSTOMERS]) == (500, 99)
    assert c.CONVERSION_LIFT not in row and c.TREATMENT_CONVERSIONS not in row
    no_control = result_row(
        cell, GroupTotals(500, 60, 0.0, 0.0), None, min_group_size=100, confidence=0.95,
        power=0.8,
    )  # fmt: skip
    assert no_control[c.STATUS] == INSUFFICIENT_SIZE and no_control[c.CONTROL_CUSTOMERS] == 0
    measured = result_row(
        cell, GroupTotals(500, 60, 0.0, 0.0), GroupTotals(100, 5, 0.0, 0.0), min_group_size=100,
        confidence=0.95, power=0.8,
    )  # fmt: skip
    assert measured[c.STATUS] == MEASURED
    assert measured[c.INCREMENTAL_CONVERSIONS] == pytest.approx((0.12 - 0.05) * 500)
    assert measured[c.SIGNIFICANT] is True

"""Lift of treatment over control, with confidence intervals and p-values.

Spark aggregates each campaign's outcomes per group (and per breakdown cell) into sums; the
statistics are computed from those few sums on the driver:

* **conversion**: difference of the two rates with a Wald (unpooled) interval, and the
  two-sided p-value of the pooled two-proportion z-test;
* **revenue per customer**: difference of the two means with Welch's interval and t-test
  (unequal variances, Welch–Satterthwaite degrees of freedom), from n, Σx and Σx²;
* **minimum detectable lift**: the smallest absolute conversion lift the groups' sizes detect
  with the configured power at the configured confidence (two-sided), at the pooled rate.

Relative lift is the absolute lift over the control's value (null when that is 0).
Incremental conversions and revenue are the absolute lifts times the treatment size: what the
campaign added among the customers it contacted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from scipy import stats

from campaignlake import columns as c
from campaignlake.measurement.outcomes import ATTRIBUTED, WINDOW_START

ALL = "all"
MEASURED = "measured"
INSUFFICIENT_SIZE = "insufficient_size"
CELL = (c.CAMPAIGN_ID, c.BREAKDOWN, c.BREAKDOWN_VALUE)


@dataclass(frozen=True)
class GroupTotals:
    """One group's sums in one cell."""

    customers: int
    conversions: int
    revenue: float
    revenue_squares: float
    attributed: int = 0

    @property
    def rate(self) -> float:
        """Conversion rate."""
        return self.conversions / self.customers if self.customers else math.nan

    @property
    def mean_revenue(self) -> float:
        """Revenue per customer."""
        return self.revenue / self.customers if self.customers else math.nan

    @property
    def revenue_variance(self) -> float:
        """Sample variance of revenue per customer (n − 1)."""
        n = self.customers
        if n < 2:
            return math.nan
        return max(0.0, (self.revenue_squares - n * self.mean_revenue**2) / (n - 1))


@dataclass(frozen=True)
class Estimate:
    """A treatment − control difference."""

    lift: float
    relative: float | None
    ci_low: float
    ci_high: float
    p_value: float


def _relative(lift: float, control: float) -> float | None:
    return lift / control if control else None


def conversion_lift(treatment: GroupTotals, control: GroupTotals, confidence: float) -> Estimate:
    """Difference of conversion rates: Wald interval, pooled two-proportion z-test."""
    p_t, p_c = treatment.rate, control.rate
    n_t, n_c = treatment.customers, control.customers
    lift = p_t - p_c
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    se = math.sqrt(p_t * (1 - p_t) / n_t + p_c * (1 - p_c) / n_c)
    pooled = (treatment.conversions + control.conversions) / (n_t + n_c)
    se_null = math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c))
    # Both rates 0 (or both 1): the groups do not differ, whatever their sizes.
    p_value = 1.0 if se_null == 0 else float(2 * stats.norm.sf(abs(lift) / se_null))
    return Estimate(lift, _relative(lift, p_c), lift - z * se, lift + z * se, p_value)


def revenue_lift(treatment: GroupTotals, control: GroupTotals, confidence: float) -> Estimate:
    """Difference of mean revenue per customer: Welch interval and t-test."""
    lift = treatment.mean_revenue - control.mean_revenue
    a = treatment.revenue_variance / treatment.customers
    b = control.revenue_variance / control.customers
    se = math.sqrt(a + b)
    if se == 0:
        return Estimate(lift, _relative(lift, control.mean_revenue), lift, lift, 1.0)
    df = (a + b) ** 2 / (a**2 / (treatment.customers - 1) + b**2 / (control.customers - 1))
    t = float(stats.t.ppf(0.5 + confidence / 2, df))
    p_value = float(2 * stats.t.sf(abs(lift) / se, df))
    return Estimate(
        lift, _relative(lift, control.mean_revenue), lift - t * se, lift + t * se, p_value
    )


def min_detectable_lift(
    treatment: GroupTotals, control: GroupTotals, confidence: float, power: float
) -> float:
    """The smallest absolute conversion lift these group sizes detect (two-sided test)."""
    n_t, n_c = treatment.customers, control.customers
    pooled = (treatment.conversions + control.conversions) / (n_t + n_c)
    z = float(stats.norm.ppf(0.5 + confidence / 2) + stats.norm.ppf(power))
    return float(z * math.sqrt(pooled * (1 - pooled) * (1 / n_t + 1 / n_c)))


def group_totals(outcomes: DataFrame, breakdowns: tuple[str, ...]) -> DataFrame:
    """Sums per campaign, breakdown cell and group: the whole campaign (breakdown ``all``)
    and one cell per value of each ``breakdowns`` column (rows where it is null are left out
    of that breakdown).

    Parameters
    ----------
    outcomes
        :func:`campaignlake.measurement.outcomes.behaviour_outcomes` rows.
    """
    cells = [outcomes.withColumn(c.BREAKDOWN, F.lit(ALL)).withColumn(c.BREAKDOWN_VALUE, F.lit(ALL))]
    for column in breakdowns:
        cells.append(
            outcomes.where(F.col(column).isNotNull())
            .withColumn(c.BREAKDOWN, F.lit(column))
            .withColumn(c.BREAKDOWN_VALUE, F.col(column).cast("string"))
        )
    stacked = cells[0]
    for cell in cells[1:]:
        stacked = stacked.unionByName(cell)
    revenue = F.col(c.REVENUE).cast("double")
    return stacked.groupBy(c.CAMPAIGN_ID, c.BREAKDOWN, c.BREAKDOWN_VALUE, c.GROUP).agg(
        F.first(c.CHANNEL).alias(c.CHANNEL),
        F.min(WINDOW_START).alias(WINDOW_START),
        F.max(c.WINDOW_END).alias(c.WINDOW_END),
        F.count(F.lit(1)).alias("customers"),
        F.sum(c.CONVERTED).alias("conversions"),
        F.sum(revenue).alias("revenue"),
        F.sum(revenue * revenue).alias("revenue_squares"),
        F.sum(ATTRIBUTED).alias(ATTRIBUTED),
    )


def result_row(
    cell: dict[str, Any],
    treatment: GroupTotals | None,
    control: GroupTotals | None,
    *,
    min_group_size: int,
    confidence: float,
    power: float,
) -> dict[str, Any]:
    """One ``gold/campaign_results`` row (without ``as_of_date``) from a cell's two groups.

    A cell where either group has fewer than ``min_group_size`` customers (or none) gets
    status ``insufficient_size``, its sizes and no statistics.
    """
    row: dict[str, Any] = {**cell}
    t = treatment or GroupTotals(0, 0, 0.0, 0.0)
    k = control or GroupTotals(0, 0, 0.0, 0.0)
    row.update(
        {
            c.TREATMENT_CUSTOMERS: t.customers,
            c.CONTROL_CUSTOMERS: k.customers,
            c.ATTRIBUTED_CONVERSIONS: t.attributed,
        }
    )
    if min(t.customers, k.customers) < max(2, min_group_size):
        row[c.STATUS] = INSUFFICIENT_SIZE
        return row
    conversion = conversion_lift(t, k, confidence)
    revenue = revenue_lift(t, k, confidence)
    row.update(
        {
            c.STATUS: MEASURED,
            c.TREATMENT_CONVERSIONS: t.conversions,
            c.CONTROL_CONVERSIONS: k.conversions,
            c.TREATMENT_RATE: t.rate,
            c.CONTROL_RATE: k.rate,
            c.CONVERSION_LIFT: conversion.lift,
            c.CONVERSION_LIFT_RELATIVE: conversion.relative,
            c.CONVERSION_CI_LOW: conversion.ci_low,
            c.CONVERSION_CI_HIGH: conversion.ci_high,
            c.CONVERSION_P_VALUE: conversion.p_value,
            c.TREATMENT_REVENUE_PER_CUSTOMER: t.mean_revenue,
            c.CONTROL_REVENUE_PER_CUSTOMER: k.mean_revenue,
            c.REVENUE_LIFT: revenue.lift,
            c.REVENUE_LIFT_RELATIVE: revenue.relative,
            c.REVENUE_CI_LOW: revenue.ci_low,
            c.REVENUE_CI_HIGH: revenue.ci_high,
            c.REVENUE_P_VALUE: revenue.p_value,
            c.INCREMENTAL_CONVERSIONS: conversion.lift * t.customers,
            c.INCREMENTAL_REVENUE: revenue.lift * t.customers,
            c.SIGNIFICANT: conversion.p_value < 1 - confidence,
            c.MIN_DETECTABLE_LIFT: min_detectable_lift(t, k, confidence, power),
        }
    )
    return row


def result_rows(
    totals: list[dict[str, Any]], *, min_group_size: int, confidence: float, power: float
) -> list[dict[str, Any]]:
    """One result row per cell of :func:`group_totals` rows (as dicts), cells in order."""
    cells: dict[tuple, dict[str, Any]] = {}
    for r in totals:
        key = tuple(r[k] for k in CELL)
        cell = cells.setdefault(
            key,
            {
                **{k: r[k] for k in CELL},
                c.CHANNEL: r[c.CHANNEL],
                c.SENT_AT: r[WINDOW_START],
                c.WINDOW_END: r[c.WINDOW_END],
            },
        )
        cell[r[c.GROUP]] = GroupTotals(
            int(r["customers"]),
            int(r["conversions"]),
            float(r["revenue"]),
            float(r["revenue_squares"]),
            int(r[ATTRIBUTED]),
        )
    rows = []
    for key in sorted(cells, key=lambda k: (k[0], k[1] != ALL, k[1], k[2])):
        cell = cells[key]
        treatment, control = cell.pop(c.TREATMENT, None), cell.pop(c.CONTROL, None)
        rows.append(
            result_row(
                cell,
                treatment,
                control,
                min_group_size=min_group_size,
                confidence=confidence,
                power=power,
            )
        )
    return rows

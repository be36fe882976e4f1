"""Ranking metrics at k, computed with Spark's array built-ins (definitions in README,
"Recommendation metrics").

For a customer with relevant (held-out) items R and a recommended list r_1..r_k, hit_i = 1 when
r_i ∈ R:

* precision@k = Σ hit_i / k
* recall@k = Σ hit_i / |R|
* NDCG@k = Σ hit_i / log2(i + 1)  ÷  Σ_{i=1..min(|R|, k)} 1 / log2(i + 1)
* AP@k = Σ_i hit_i · precision@i / min(|R|, k); MAP@k is its mean

Each is averaged over the customers that have relevant items; a customer without
recommendations scores 0.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from campaignlake import columns as c

RECOMMENDED = "recommended"
RELEVANT = "relevant"


def _sum(values: Column) -> Column:
    return F.aggregate(values, F.lit(0.0), lambda acc, x: acc + x)


def ranking_metrics(recommended: DataFrame, relevant: DataFrame, k: int) -> dict[str, float]:
    """Mean precision@k, recall@k, NDCG@k and MAP@k, and how many customers were evaluated.

    Parameters
    ----------
    recommended
        ``customer_id`` and ``recommended``: product ids in rank order.
    relevant
        ``customer_id`` and ``relevant``: the customer's held-out product ids (non-empty).
    """
    joined = relevant.join(recommended, on=c.CUSTOMER_ID, how="left").select(
        F.col(RELEVANT),
        F.slice(F.coalesce(F.col(RECOMMENDED), F.array().cast("array<string>")), 1, k).alias(
            RECOMMENDED
        ),
    )
    hits = F.transform(
        F.col(RECOMMENDED), lambda item: F.array_contains(F.col(RELEVANT), item).cast("double")
    )
    n_hits = _sum(hits)
    ideal_length = F.least(F.size(F.col(RELEVANT)), F.lit(k))
    dcg = _sum(F.transform(hits, lambda hit, i: hit / F.log2(i + 2)))
    idcg = _sum(F.transform(F.sequence(F.lit(1), ideal_length), lambda i: 1.0 / F.log2(i + 1)))
    precision_at = F.transform(hits, lambda hit, i: hit * _sum(F.slice(hits, 1, i + 1)) / (i + 1))
    per_customer = joined.select(
        (n_hits / k).alias("precision"),
        (n_hits / F.size(F.col(RELEVANT))).alias("recall"),
        (dcg / idcg).alias("ndcg"),
        (_sum(precision_at) / ideal_length).alias("ap"),
    )
    row = per_customer.agg(
        F.avg("precision").alias("precision"),
        F.avg("recall").alias("recall"),
        F.avg("ndcg").alias("ndcg"),
        F.avg("ap").alias("map"),
        F.count(F.lit(1)).alias("customers"),
    ).first()
    return {
        f"precision_at_{k}": float(row["precision"] or 0.0),  # type: ignore[index]
        f"recall_at_{k}": float(row["recall"] or 0.0),  # type: ignore[index]
        f"ndcg_at_{k}": float(row["ndcg"] or 0.0),  # type: ignore[index]
        f"map_at_{k}": float(row["map"] or 0.0),  # type: ignore[index]
        "evaluated_customers": float(row["customers"]),  # type: ignore[index]
    }


def ids_in_rank_order() -> Column:
    """Aggregate: the group's ``product_id`` values as an array ordered by ``rank``."""
    ranked = F.array_sort(F.collect_list(F.struct(c.RANK, c.PRODUCT_ID)))
    return F.transform(ranked, lambda item: item[c.PRODUCT_ID])

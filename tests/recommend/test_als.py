"""Complete recommendation lists: distinct, active products, never an excluded one."""

from __future__ import annotations

from decimal import Decimal

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.recommend import als
from campaignlake.schemas import PRODUCTS
from tests.literals import frame


def test_lists_are_complete_distinct_active_and_never_hold_excluded_products(
    spark: SparkSession,
) -> None:
    catalog = frame(
        spark,
        PRODUCTS,
        [
            {
                c.PRODUCT_ID: f"P{i}",
                c.CATEGORY: "books" if i <= 3 else "toys",
                c.PRICE: Decimal(1),
                c.ACTIVE: i != 2,
            }
            for i in range(1, 7)
        ],
    )
    strengths = spark.createDataFrame(
        [
            ("C1", "P1", 9.0, True),
            ("C2", "P1", 5.0, False),
            ("C2", "P4", 4.0, False),
            ("C3", "P5", 1.0, False),
            ("C1", "P2", 8.0, False),
        ],
        f"{c.CUSTOMER_ID} string, {c.PRODUCT_ID} string, {c.STRENGTH} double, {c.EXCLUDED} boolean",
    )
    popular = als.popularity(strengths, catalog)
    assert [r[c.PRODUCT_ID] for r in popular.orderBy("__position").collect()] == [
        "P1", "P4", "P5", "P3", "P6",
    ]  # fmt: skip
    als_candidates = spark.createDataFrame(
        [("C2", "P6", 0.9, 1), ("C2", "P2", 0.8, 2), ("C2", "P3", 0.7, 3)],
        f"{c.CUSTOMER_ID} string, {c.PRODUCT_ID} string, {c.SCORE} double, __position int",
    )
    customers = spark.createDataFrame([("C1",), ("C2",), ("C9",)], f"{c.CUSTOMER_ID} string")
    excluded = strengths.where(F.col(c.EXCLUDED)).select(c.CUSTOMER_ID, c.PRODUCT_ID)
    lists = als.complete_lists(
        customers,
        als=als_candidates,
        popular=popular,
        favourites=als.favourite_categories(strengths, catalog),
        excluded=excluded,
        k=3,
        depth=4,
    )
    got = {(r[c.CUSTOMER_ID], r[c.RANK]): (r[c.PRODUCT_ID], r[c.SOURCE]) for r in lists.collect()}
    assert got == {
        # C1 bought P1 (excluded) and favours books (P2 is inactive): P3, then overall.
        ("C1", 1): ("P3", "popular_in_category"),
        ("C1", 2): ("P4", "popular"),
        ("C1", 3): ("P5", "popular"),
        # C2 is known to ALS: its active candidates first (P2 is inactive), then books.
        ("C2", 1): ("P6", "als"),
        ("C2", 2): ("P3", "als"),
        ("C2", 3): ("P1", "popular_in_category"),
        # C9 is new: overall popular products.
        ("C9", 1): ("P1", "popular"),
        ("C9", 2): ("P4", "popular"),
        ("C9", 3): ("P5", "popular"),
    }

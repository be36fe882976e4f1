"""Complete recommendation lists: distinct, active products, never an excluded one."""

from __future__ import annotations

import math
from decimal import Decimal

import numpy as np
import pytest
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
    excluded_schema = f"{c.CUSTOMER_ID} string, {c.PRODUCT_ID} string"
    customers = spark.createDataFrame(
        [("C1",), ("C2",), ("C8",), ("C9",)], f"{c.CUSTOMER_ID} string"
    )
    # C8 excluded the two most popular products elsewhere: their list reaches further down.
    excluded = (
        strengths.where(F.col(c.EXCLUDED))
        .select(c.CUSTOMER_ID, c.PRODUCT_ID)
        .union(spark.createDataFrame([("C8", "P1"), ("C8", "P4")], excluded_schema))
    )
    lists = als.complete_lists(
        customers,
        als=als_candidates,
        popular=popular,
        favourites=als.favourite_categories(strengths, catalog),
        excluded=excluded,
        k=3,
        depth=5,
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
        # C8 is new and excluded P1 and P4: the next overall popular products.
        ("C8", 1): ("P5", "popular"),
        ("C8", 2): ("P3", "popular"),
        ("C8", 3): ("P6", "popular"),
        # C9 is new: overall popular products.
        ("C9", 1): ("P1", "popular"),
        ("C9", 2): ("P4", "popular"),
        ("C9", 3): ("P5", "popular"),
    }


def test_blocked_similar_products_are_the_exact_cosine_neighbours(spark: SparkSession) -> None:
    factors = {
        "P0": [1.0, 0.0, 0.0],
        "P1": [0.9, 0.1, 0.0],
        "P2": [0.0, 1.0, 0.0],
        "P3": [0.0, 2.0, 0.1],
        "P4": [0.0, 2.0, 0.1],  # the same direction as P3: equal similarities, ties by id
        "P5": [0.0, 0.0, 0.0],  # no direction: no neighbours, nobody's neighbour
        "P6": [-1.0, 0.0, 0.5],
        "P7": [0.5, 0.5, 0.5],  # inactive: has neighbours, is nobody's
        "P8": [0.2, -0.3, 1.0],
    }
    index = {product: i for i, product in enumerate(factors)}
    item_factors = spark.createDataFrame(
        [(index[p], v) for p, v in factors.items()], "id int, features array<float>"
    )
    product_index = spark.createDataFrame(
        list(index.items()), f"{c.PRODUCT_ID} string, {c.PRODUCT_INDEX} int"
    )
    active = spark.createDataFrame([(p,) for p in factors if p != "P7"], f"{c.PRODUCT_ID} string")
    n = 3
    # block_size 2: five blocks, every pair of them multiplied.
    found = als.similar_products(item_factors, product_index, active, n, block_size=2).collect()

    def cosine(a: list[float], b: list[float]) -> float:
        a32, b32 = [float(np.float32(x)) for x in a], [float(np.float32(x)) for x in b]
        dot = sum(x * y for x, y in zip(a32, b32, strict=True))
        return dot / (math.sqrt(sum(x * x for x in a32)) * math.sqrt(sum(y * y for y in b32)))

    with_direction = [p for p, v in factors.items() if any(v)]
    expected = {}
    for product in with_direction:
        others = [q for q in with_direction if q not in (product, "P7")]
        ranked = sorted(others, key=lambda q: (-round(cosine(factors[product], factors[q]), 12), q))
        expected[product] = ranked[:n]
    got: dict[str, list[str]] = {}
    for row in sorted(found, key=lambda r: (r[c.PRODUCT_ID], r[c.RANK])):
        got.setdefault(row[c.PRODUCT_ID], []).append(row[c.SIMILAR_PRODUCT_ID])
        reference = cosine(factors[row[c.PRODUCT_ID]], factors[row[c.SIMILAR_PRODUCT_ID]])
        assert row[c.SIMILARITY] == pytest.approx(reference, abs=1e-9)
    assert got == expected
    assert got["P2"] == ["P3", "P4", "P1"] and got["P3"][0] == "P4"
    assert "P5" not in got and all("P7" not in neighbours for neighbours in got.values())

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


def test_a_new_product_is_recommended_to_customers_who_liked_similar_ones(
    spark: SparkSession,
) -> None:
    # P1-P4 are established; NEW has no interaction (ALS cannot score it). Its text
    # neighbours are P1 (close) and P2 (farther); P3 and P4 are unrelated to it.
    catalog = frame(
        spark,
        PRODUCTS,
        [
            {c.PRODUCT_ID: p, c.CATEGORY: "home", c.PRICE: Decimal(1), c.ACTIVE: True}
            for p in ("P1", "P2", "P3", "P4", "P5", "NEW")
        ],
    )
    strengths = spark.createDataFrame(
        [
            ("LIKES_P1", "P1", 3.0, False),
            ("LIKES_P2", "P2", 1.0, False),
            ("LIKES_P2", "P3", 5.0, False),
            ("OTHER", "P3", 4.0, False),
            ("OTHER", "P4", 2.0, False),
        ],
        f"{c.CUSTOMER_ID} string, {c.PRODUCT_ID} string, {c.STRENGTH} double, {c.EXCLUDED} boolean",
    )
    similar = spark.createDataFrame(
        [
            ("NEW", "P1", 0.9), ("NEW", "P2", 0.5), ("P1", "NEW", 0.9), ("P3", "P4", 0.8),
            ("P4", "P3", 0.8),
        ],
        f"{c.PRODUCT_ID} string, {c.SIMILAR_PRODUCT_ID} string, {c.SIMILARITY} double",
    )  # fmt: skip
    cold = spark.createDataFrame([("NEW",)], f"{c.PRODUCT_ID} string")
    content = als.content_candidates(strengths, similar, cold, slots=1)
    assert {
        (r[c.CUSTOMER_ID], r[c.PRODUCT_ID], round(r[c.SCORE], 6)) for r in content.collect()
    } == {
        ("LIKES_P1", "NEW", 2.7),  # strength 3 × similarity 0.9
        ("LIKES_P2", "NEW", 0.5),  # strength 1 × similarity 0.5
    }
    als_candidates = spark.createDataFrame(
        [("LIKES_P1", p, 1.0 - i / 10, i) for i, p in enumerate(["P2", "P3", "P4"], start=1)],
        f"{c.CUSTOMER_ID} string, {c.PRODUCT_ID} string, {c.SCORE} double, __position int",
    )
    customers = spark.createDataFrame(
        [("LIKES_P1",), ("LIKES_P2",), ("OTHER",)], f"{c.CUSTOMER_ID} string"
    )
    lists = als.complete_lists(
        customers,
        als=als_candidates,
        popular=als.popularity(strengths, catalog),
        favourites=None,
        excluded=spark.createDataFrame([], f"{c.CUSTOMER_ID} string, {c.PRODUCT_ID} string"),
        k=3,
        depth=6,
        content=content,
        content_slots=1,
    )
    got = {(r[c.CUSTOMER_ID], r[c.RANK]): (r[c.PRODUCT_ID], r[c.SOURCE]) for r in lists.collect()}
    assert got == {
        # ALS's first k - 1 products, then the cold-start place, then ALS's tail.
        ("LIKES_P1", 1): ("P2", "als"),
        ("LIKES_P1", 2): ("P3", "als"),
        ("LIKES_P1", 3): ("NEW", "content_cold_start"),
        # Unknown to ALS: the cold product first, then popularity.
        ("LIKES_P2", 1): ("NEW", "content_cold_start"),
        ("LIKES_P2", 2): ("P3", "popular"),
        ("LIKES_P2", 3): ("P1", "popular"),
        # Nothing they touched resembles NEW: no cold-start product.
        ("OTHER", 1): ("P3", "popular"),
        ("OTHER", 2): ("P1", "popular"),
        ("OTHER", 3): ("P4", "popular"),
    }


def test_similar_by_vectors_blocks_any_vectors_by_product_id(spark: SparkSession) -> None:
    vectors = spark.createDataFrame(
        [("A", [1.0, 0.0]), ("B", [0.8, 0.6]), ("C", [0.0, 1.0]), ("D", [0.0, 0.0])],
        f"{c.PRODUCT_ID} string, {c.EMBEDDING} array<double>",
    )
    active = spark.createDataFrame([("A",), ("B",), ("C",), ("D",)], f"{c.PRODUCT_ID} string")
    found = als.similar_by_vectors(vectors, active, 1, block_size=2, column=c.EMBEDDING)
    assert sorted((r[c.PRODUCT_ID], r[c.SIMILAR_PRODUCT_ID], round(r[c.SIMILARITY], 6))
                  for r in found.collect()) == [
        ("A", "B", 0.8), ("B", "A", 0.8), ("C", "B", 0.6),
    ]  # fmt: skip

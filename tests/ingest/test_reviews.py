"""Product reviews and descriptions: contact details masked before anything is stored, every
bad row quarantined with its reason, descriptions and tags parsed from the catalogue."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.ingest.csv_sources import CsvRules, parse_reviews
from campaignlake.ingest.runs import ingest_products, ingest_reviews
from campaignlake.pii import mask_contact_details
from campaignlake.tables import Tables
from tests.literals import NOW, write

REVIEW_HEADER = "review_id,customer_id,product_id,rating,title,text,created_at"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("mail me: Anna.Muller+shop@mail.example.co.uk!", "mail me: [email]!"),
        ("call +44 7700 900123 or (030) 1234-5678", "call [phone] or [phone]"),
        ("+49/151/2345678.", "[phone]."),
        ("5 stars, 2 weeks, paid 129.99 for 3", "5 stars, 2 weeks, paid 129.99 for 3"),
        ("order 12345 arrived", "order 12345 arrived"),
        (None, None),
        # Addresses spelled out, spaced, bracketed, with letters beyond ASCII.
        ("john dot doe at example dot com", "[email]"),
        ("write to me at john dot doe at example dot com!", "write to me at [email]!"),
        ("john(at)example(dot)com or j.d[at]example[dot]org", "[email] or [email]"),
        ("john @ example.com", "[email]"),
        ("Jürgen.Müller@exämple.de schrieb", "[email] schrieb"),
        ("looked at it. Great value at this price, 2 at 19.99", None),
        # Digits beyond ASCII; cards by their Luhn digit, IBANs by their checksum; nothing
        # of a long number is left behind.
        ("ruf an: ０１５１ ２３４５６７８", "ruf an: [phone]"),
        ("card 4111 1111 1111 1111 thanks", "card [card] thanks"),
        ("4111111111111111", "[card]"),
        ("card 4111 1111 1111 1112", "card [number]"),
        ("IBAN DE89 3704 0044 0532 0130 00 pls", "IBAN [iban] pls"),
        ("DE89370400440532013000", "[iban]"),
        ("DE89 3704 0044 0532 0130 02", "DE89 [number]"),  # fails both checks
        ("0301234567 0401234567", "[number]"),
    ],
)
def test_contact_details_in_free_text_are_masked(
    spark: SparkSession, text: str | None, masked: str | None
) -> None:
    df = spark.createDataFrame([(text,)], "text string")
    expected = text if masked is None and text is not None else masked
    assert df.select(mask_contact_details(F.col("text"))).first()[0] == expected


def test_parsed_reviews_are_masked_typed_and_rejected_with_a_reason(spark: SparkSession) -> None:
    raw = (
        spark.createDataFrame(
            [
                (
                    "R1",
                    "C1",
                    "P1",
                    "5",
                    "Great",
                    "love it, write me at a@b.example",
                    "2026-10-01T10:00:00Z",
                ),
                ("R2", "C1", "P1", "4.5", "Hmm", "half stars", "2026-10-01T10:00:00Z"),
                ("R3", "C2", "P2", "0", "Bad", "zero", "2026-10-01T10:00:00Z"),
                ("R4", "C2", "", "2", "Bad", "which product", "2026-10-01T10:00:00Z"),
                ("R5", "C3", "P3", "1", None, None, "2026-10-01T10:00:00Z"),
                ("R6", "C3", "P3", "3", "Later", "from the future", "2026-12-24T10:00:00Z"),
                ("R7", "C3", "P3", " 2 ", "Meh", "ring +33 6 12 34 56 78", "yesterday"),
            ],
            "review_id string, customer_id string, product_id string, rating string, title string, "
            "text string, created_at string",
        )
        .withColumn("_corrupt_record", F.lit(None).cast("string"))
        .withColumn(c.SOURCE_FILE, F.lit("reviews/reviews_2026-10-02.csv"))
    )
    rules = CsvRules(
        ingested_at=datetime(2026, 10, 31, tzinfo=timezone.utc), max_future_skew_hours=24,
        loyalty_tiers=(), channels=(), countries=(),
    )  # fmt: skip
    got = {r[c.REVIEW_ID]: r for r in parse_reviews(raw, rules).collect()}
    assert {k: r[c.REASON] for k, r in got.items()} == {
        "R1": None,
        "R2": "invalid_rating",
        "R3": "invalid_rating",
        "R4": "missing_product_id",
        "R5": None,  # a rating without words still says how the customer felt
        "R6": "future_created_at",
        "R7": "unparseable_created_at",
    }
    assert got["R1"][c.TEXT] == "love it, write me at [email]"
    assert got["R1"][c.RATING] == 5 and got["R5"][c.RATING] == 1
    assert got["R7"][c.TEXT] == "ring [phone]"
    # The raw record keeps the row as it came, for quarantine (erasure searches it).
    assert "+33 6 12 34 56 78" in got["R7"][c.RAW_RECORD]


@pytest.mark.job
def test_reviews_and_described_products_are_ingested(
    spark: SparkSession, conf: Conf, tables: Tables
) -> None:
    write(
        conf.paths.landing,
        "products/products_2026-10-01.csv",
        "product_id,name,category,brand,price,active,description,tags\n"
        'P1,Lamp,home,Acme,19.99,true,"A brass lamp, warm light.",Lighting | Brass||\n'
        "P2,Mug,home,Acme,5.00,true,,\n",
    )
    write(
        conf.paths.landing,
        "products/products_2026-09-01.csv",
        "product_id,name,category,brand,price,active\nP3,Old,home,Acme,1.00,true\n",
    )
    ingest_products(spark, conf, tables, now=NOW)
    products = {r[c.PRODUCT_ID]: r for r in tables.read("products").collect()}
    assert products["P1"][c.DESCRIPTION] == "A brass lamp, warm light."
    assert products["P1"][c.TAGS] == ["lighting", "brass"]
    assert (products["P2"][c.DESCRIPTION], products["P2"][c.TAGS]) == (None, [])
    # An export from before descriptions existed is still read.
    assert (products["P3"][c.DESCRIPTION], products["P3"][c.TAGS]) == (None, [])

    write(
        conf.paths.landing,
        "reviews/reviews_2026-10-08.csv",
        REVIEW_HEADER + "\n"
        'R1,C1,P1,5,Lovely,"Bright, call me on 0151 2345 6789",2026-10-05T09:00:00Z\n'
        "R2,C1,P1,9,Broken,rated nine,2026-10-05T09:00:00Z\n",
    )
    write(
        conf.paths.landing,
        "reviews/reviews_2026-10-15.csv",
        REVIEW_HEADER + "\nR1,C1,P1,4,Lovely,Edited: still bright,2026-10-05T09:00:00Z\n",
    )
    report = ingest_reviews(spark, conf, tables, now=NOW)
    reviews = {r[c.REVIEW_ID]: r for r in tables.read("reviews").collect()}
    # The later export of R1 (an edit) wins; the out-of-range rating is quarantined.
    assert set(reviews) == {"R1"}
    assert (reviews["R1"][c.RATING], reviews["R1"][c.TEXT]) == (4, "Edited: still bright")
    assert report.by_reason == {"invalid_rating": 1, "stale_duplicate": 1}
    quarantined = tables.read("reviews_quarantine").where(F.col(c.REASON) == "invalid_rating")
    assert quarantined.count() == 1

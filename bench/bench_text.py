"""Benchmark: the text jobs at scale (ingesting reviews, train_text_models and
build_text_features).

Not a test. Writes a catalogue of ``--products`` described products and ``--reviews`` reviews
with :mod:`campaignlake.sample.texts` (the sample's vocabularies: descriptions that follow
category and brand, reviews whose words follow a weak rating, with noise, emoji, links and
contact details) as landing CSV files, then times

* ``ingest_products`` and ``ingest_reviews`` (parse, mask contact details, upsert, quarantine);
* ``train_text_models`` with the shipped ``text`` conf: terms and TF-IDF, LDA for each k of
  ``text.topics_k``, Word2Vec, the sentiment classifier, the saves;
* ``build_text_features``: the saved version applied (product profiles, review sentiment, the
  blocked text neighbours of every product) and the writes.

Prints Markdown rows for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import platform
import shutil
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from campaignlake.config import PathsConf, load_conf
from campaignlake.ingest.runs import ingest_products, ingest_reviews
from campaignlake.sample import texts
from campaignlake.sample.generator import BRANDS, CATEGORIES
from campaignlake.session import get_spark
from campaignlake.tables import Tables
from campaignlake.text.runs import build_text_features, train_text_models

END = date(2026, 10, 31)
ROOT = Path(__file__).resolve().parent / "out" / "text"


def write_landing(landing: Path, products: int, reviews: int, seed: int) -> None:
    """The catalogue and the reviews as landing CSV exports."""
    rng = np.random.default_rng(seed)
    category = np.array(CATEGORIES)[np.arange(products) % len(CATEGORIES)]
    brand = np.array(BRANDS)[rng.integers(0, len(BRANDS), products)]
    descriptions, tags = texts.describe_products(rng, category, brand)
    ids = np.char.add("P", np.char.zfill(np.arange(1, products + 1).astype(str), 7))
    (landing / "products").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "product_id": ids,
            "name": np.char.add(np.char.add(np.char.capitalize(category), " item "),
                                np.arange(1, products + 1).astype(str)),
            "category": category,
            "brand": brand,
            "price": np.round(rng.lognormal(3, 0.6, products), 2),
            "active": np.where(rng.random(products) < 0.95, "true", "false"),
            "description": descriptions.to_numpy(),
            "tags": tags.to_numpy(),
        }
    ).to_csv(landing / "products" / f"products_{END}.csv", index=False)  # fmt: skip
    # Long-tailed: a few products and customers write most reviews.
    product = np.minimum(rng.zipf(1.3, reviews) - 1, products - 1)
    customers = max(1, reviews // 4)
    purchases = pd.DataFrame(
        {
            "cust": np.minimum(rng.zipf(1.5, reviews) - 1, customers - 1),
            "product": rng.permutation(products)[product],
            "ts": np.datetime64(END)
            - rng.integers(1, 365 * 86400, reviews).astype("timedelta64[s]"),
        }
    )
    # Every purchase is reviewed here (REVIEW_SHARE applies to the sample's purchases).
    written = texts.reviews(
        rng, pd.concat([purchases] * 4, ignore_index=True), category, np.datetime64(END)
    ).head(reviews)
    (landing / "reviews").mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "review_id": [f"R{i:08d}" for i in range(len(written))],
            "customer_id": [f"C{c:07d}" for c in written["cust"].to_numpy()],
            "product_id": ids[written["product"].to_numpy()],
            "rating": written["rating"].to_numpy(),
            "title": written["title"].to_numpy(),
            "text": written["text"].to_numpy(),
            "created_at": pd.to_datetime(written["created_at"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
    ).to_csv(landing / "reviews" / f"reviews_{END}.csv", index=False)


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--products", type=int, default=100_000)
    parser.add_argument("--reviews", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()

    root = ROOT / f"{args.products}-{args.reviews}"
    shutil.rmtree(root, ignore_errors=True)
    started = time.perf_counter()
    write_landing(root / "landing", args.products, args.reviews, args.seed)
    generated = time.perf_counter() - started
    base = load_conf("local")
    names = ("landing", "warehouse", "models", "exports", "reports")
    conf = dataclasses.replace(base, paths=PathsConf(**{k: str(root / k) for k in names}))
    spark = get_spark(conf)
    tables = Tables(spark, conf)
    timings = {}
    for job in (ingest_products, ingest_reviews):
        started = time.perf_counter()
        print(job(spark, conf, tables, as_of=END).describe())
        timings[job.__name__] = time.perf_counter() - started
    started = time.perf_counter()
    report = train_text_models(spark, conf, tables, as_of=END)
    timings["train_text_models"] = time.perf_counter() - started
    print(report.describe())
    started = time.perf_counter()
    print(build_text_features(spark, conf, tables, as_of=END).describe())
    timings["build_text_features"] = time.perf_counter() - started

    print()
    print(f"machine: {platform.machine()}, {spark.sparkContext.defaultParallelism} cores; "
          f"landing files written in {generated:.0f} s")  # fmt: skip
    print(
        "| products | reviews | terms | k tried → chosen | sentiment ROC AUC (held out) | "
        "ingest_products | ingest_reviews | train_text_models | build_text_features |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    auc = report.sentiment.get("roc_auc", float("nan"))
    print(
        f"| {report.products:,} | {report.reviews:,} | {report.vocabulary:,} | "
        f"{sorted(report.perplexities)} → {report.topics_k} | {auc:.3f} | "
        f"{timings['ingest_products']:.0f} s | {timings['ingest_reviews']:.0f} s | "
        f"{timings['train_text_models']:.0f} s | {timings['build_text_features']:.0f} s |"
    )
    spark.stop()


if __name__ == "__main__":
    main()

"""The sample generator: deterministic for a seed, every bad-record kind present."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pandas as pd

from campaignlake.sample.generator import SampleSpec, generate

SPEC = SampleSpec(
    seed=7,
    customers=120,
    products=40,
    days=20,
    end_date=date(2026, 10, 31),
    sessions_per_customer_per_week=2.0,
    crm_exports=2,
    campaigns=3,
    bad_record_rate=0.02,
)


def digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_other_seed_other_data(tmp_path: Path) -> None:
    generate(SPEC, tmp_path / "a")
    generate(SPEC, tmp_path / "b")
    generate(SampleSpec(**{**SPEC.__dict__, "seed": 8}), tmp_path / "c")
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "a") != digest(tmp_path / "c")


def test_layout_and_broken_records(tmp_path: Path) -> None:
    summary = generate(SPEC, tmp_path)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert "products/products_2026-10-31.csv" in files
    assert "crm/customers_2026-10-12.csv" in files and "crm/customers_2026-10-31.csv" in files
    assert "crm/deletion_requests_2026-10-31.csv" in files
    assert "campaigns/campaign_history_2026-10-31.csv" in files
    assert any(f.startswith("clickstream/date=2026-10-31/hour=") for f in files)
    raw = b"".join(p.read_bytes() for p in (tmp_path / "clickstream").rglob("*.jsonl"))
    assert summary.events > 1000 and summary.bad_clickstream_lines >= 9
    assert b"31/02/2026 25:61" in raw and b"2099-01-01" in raw and b"teleport" in raw
    assert b'"quantity": "two"' in raw and b'"experiment": "checkout-v2"' in raw
    assert b"Montr\xe9al" in raw  # a latin-1 line, not UTF-8
    crm = pd.read_csv(tmp_path / "crm/customers_2026-10-31.csv", dtype=str)
    assert crm["customer_id"].isna().any() and (crm["birth_year"] == "nineteen-eighty").any()
    assert crm["customer_id"].dropna().duplicated().any()  # stale duplicates


def test_events_are_filed_by_hour_and_response_follows_affinity(tmp_path: Path) -> None:
    spec = SampleSpec(**{**SPEC.__dict__, "customers": 1500, "days": 60, "bad_record_rate": 0.0})
    generate(spec, tmp_path)
    history = pd.read_csv(tmp_path / "campaigns/campaign_history_2026-10-31.csv")
    # Held-out customers were never contacted: no response of theirs is recorded.
    held_out = history[history["group"] == "control"]
    assert 0.15 < len(held_out) / len(history) < 0.35
    assert held_out[["opened_at", "clicked_at", "converted_at", "revenue"]].isna().all().all()
    contacts = history[history["group"] == "treatment"].copy()
    products = pd.read_csv(tmp_path / "products/products_2026-10-31.csv")
    rows = []
    for path in sorted((tmp_path / "clickstream").rglob("*.jsonl")):
        bucket = f"{path.parent.parent.name}/{path.parent.name}"
        # json per line: pandas' read_json takes four times as long on ~1,400 small files.
        with path.open() as lines:
            rows += [{**json.loads(line), "bucket": bucket} for line in lines]
    events = pd.DataFrame(rows)
    # Every event sits in the file of its own UTC date and hour, as a collector drops them.
    utc = pd.to_datetime(events["event_ts"], utc=True)
    assert (utc.dt.strftime("date=%Y-%m-%d/hour=%H") == events["bucket"]).all()
    views = events[events["event_type"] == "product_view"].merge(
        products[["product_id", "category"]], on="product_id"
    )
    share = pd.crosstab(views["customer_id"], views["category"], normalize="index")
    contacts["category"] = contacts["campaign_id"].str.split("-").str[-1]
    contacts["affinity"] = [
        share.at[cust, cat] if cust in share.index and cat in share.columns else 0.0
        for cust, cat in zip(contacts["customer_id"], contacts["category"], strict=True)
    ]
    contacts["converted"] = contacts["converted_at"].notna()
    high = contacts[contacts["affinity"] >= contacts["affinity"].quantile(0.75)]["converted"].mean()
    low = contacts[contacts["affinity"] <= contacts["affinity"].quantile(0.25)]["converted"].mean()
    assert 0.02 < contacts["converted"].mean() < 0.4
    assert high > 2 * low

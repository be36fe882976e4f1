"""The pipeline's closing lines say where its tables are: a folder, catalog schemas, or both."""

from __future__ import annotations

import dataclasses

from campaignlake import catalog
from campaignlake.catalog import TABLE_KEYS
from campaignlake.config import Conf
from campaignlake.jobs.pipeline import PipelineReport, _tables_at


def test_the_closing_lines_name_the_warehouse_or_the_catalog_schemas(conf: Conf) -> None:
    assert _tables_at(conf) == f"under {conf.paths.warehouse}"
    named = dataclasses.replace(
        conf, tables=dataclasses.replace(conf.tables, **{k: f"dev.{k}" for k in TABLE_KEYS})
    )
    assert _tables_at(named) == "in the catalog schema dev"
    mixed = dataclasses.replace(
        conf, tables=dataclasses.replace(conf.tables, **{catalog.CUSTOMERS: "main.crm.customers"})
    )
    assert _tables_at(mixed) == (
        f"under {conf.paths.warehouse} and in the catalog schema main.crm (1 of them)"
    )
    report = PipelineReport(tables_at=_tables_at(named), models="/m", report="/r/report.html")
    assert report.describe() == (
        "tables are in the catalog schema dev; models under /m\nreport: /r/report.html"
    )

"""Export files for the sending tools: one CSV per campaign and send date, and the audit
summary (JSON) of the campaign's funnel, under ``paths.exports/<campaign>/<send date>/``."""

from __future__ import annotations

import json
import uuid
from typing import Any

from pyspark.sql import DataFrame

from campaignlake.audiences.campaigns import Campaign
from campaignlake.hadoop_fs import HadoopFs

AUDIT_FILE = "audit.json"


def export_dir(exports_root: str, campaign: Campaign) -> str:
    """``<exports>/<campaign id>/<send date>``."""
    return f"{exports_root.rstrip('/')}/{campaign.id}/{campaign.send_date.isoformat()}"


def csv_path(exports_root: str, campaign: Campaign) -> str:
    """The sending tool's file: ``<campaign id>_<send date>_<channel>.csv`` in the export dir."""
    name = f"{campaign.id}_{campaign.send_date.isoformat()}_{campaign.channel}.csv"
    return f"{export_dir(exports_root, campaign)}/{name}"


def audit_path(exports_root: str, campaign: Campaign) -> str:
    """The audit summary of the campaign's funnel, beside its CSV."""
    return f"{export_dir(exports_root, campaign)}/{AUDIT_FILE}"


def write_single_csv(rows: DataFrame, path: str, fs: HadoopFs, *, order_by: str) -> None:
    """Write ``rows`` as one CSV file with a header at ``path``, in ``order_by`` order (that
    column is not written), replacing any earlier file.

    Spark writes into a temporary directory beside the target with one task (a sending tool
    wants one file), and the part file is then moved into place, so a failed write never
    leaves a half-written export under the final name.
    """
    staging = f"{path}.{uuid.uuid4().hex}.tmp"
    columns = [name for name in rows.columns if name != order_by]
    try:
        (
            rows.coalesce(1)
            .sortWithinPartitions(order_by)
            .select(*columns)
            .write.mode("overwrite")
            .option("header", True)
            .option("escape", '"')
            .option("emptyValue", "")
            .csv(staging)
        )
        parts = [name for name in fs.list(staging) if name.startswith("part-")]
        if parts:
            fs.move(f"{staging}/{parts[0]}", path)
        else:
            fs.write_text(path, ",".join(columns) + "\n")
    finally:
        fs.delete(staging)


def write_audit(path: str, summary: dict[str, Any], fs: HadoopFs) -> None:
    """The audit summary as stable, readable JSON (keys sorted: reruns write the same bytes)."""
    fs.write_text(path, json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n")


def read_audit(path: str, fs: HadoopFs) -> dict[str, Any]:
    """The audit summary written by :func:`write_audit`."""
    return json.loads(fs.read_text(path))

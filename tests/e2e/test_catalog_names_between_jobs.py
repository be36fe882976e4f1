"""Tables by name in a metastore on disk (``conf/local-catalog.yaml``): separate job processes,
as a scheduler runs them, find the tables earlier jobs created by name, and the catalog keeps
them as Delta tables."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from tests.literals import CRM_HEADER, crm_row, write

REPO_ROOT = Path(__file__).resolve().parents[2]


def run_job(data_dir: Path, *args: str) -> str:
    """Run one job in its own process, as the console script does; its output."""
    command = [
        sys.executable, str(REPO_ROOT / "jobs" / "run.py"), *args, "--env", "local-catalog",
        "--conf-dir", str(REPO_ROOT / "conf"), "--var", f"data_dir={data_dir}",
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=data_dir, capture_output=True, text=True, timeout=600,
        env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


@pytest.mark.system
def test_jobs_in_separate_processes_find_tables_by_name(tmp_path: Path) -> None:
    data = tmp_path / "data"
    landing = data / "landing"
    # The shipped local confs declare two CRM columns beyond the contract.
    write(
        str(landing),
        "crm/customers_2026-10-01.csv",
        "\n".join([f"{CRM_HEADER},lifetime_points,acquisition_channel",
                   crm_row("C1", "ana@example.com", "2026-10-01T08:00:00Z") + ",120,search",
                   crm_row("C2", "bo@example.com", "2026-10-01T08:00:00Z") + ",5,social"]) + "\n",
    )  # fmt: skip
    crm = run_job(data, "ingest_crm")
    assert "ingest_crm" in crm and "2 accepted" in crm, crm
    # A second process reads the customers and deletion requests the first created by name.
    erased = run_job(data, "erase_customers", "--date", "2026-10-30")
    assert "no deletion request is due" in erased, erased

    catalog_dir = data / "catalog" / "campaignlake_dev.db"
    customers = DeltaTable(str(catalog_dir / "customers")).to_pyarrow_table()
    assert sorted(customers.column("customer_id").to_pylist()) == ["C1", "C2"]
    assert DeltaTable(str(catalog_dir / "erasures")).version() == 0  # created by the second job
    # Nothing was written by path under the warehouse folder: every table is in the catalog.
    assert not (data / "warehouse").exists()
    assert (data / "metastore_db").is_dir()

"""Deployment: the wheel carries every job as a console entry point, the Databricks bundle's
tasks all name entry points that exist in that wheel, and the cluster configurations load."""

from __future__ import annotations

import importlib
import subprocess
import sys
import zipfile
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml

from campaignlake.config import load_conf

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "-w", str(out), str(REPO_ROOT)],
        check=True,
    )  # fmt: skip
    (built,) = out.glob("campaignlake-*.whl")
    return built


def console_scripts(wheel: Path) -> dict[str, str]:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        parser = ConfigParser()
        parser.read_string(archive.read(name).decode("utf-8"))
    return dict(parser["console_scripts"])


def bundle_tasks() -> list[tuple[str, dict]]:
    bundle = yaml.safe_load((REPO_ROOT / "databricks.yml").read_text())
    tasks = []
    for pattern in bundle["include"]:
        for path in sorted(REPO_ROOT.glob(pattern)):
            for job_key, job in yaml.safe_load(path.read_text())["resources"]["jobs"].items():
                tasks += [(job_key, task) for task in job["tasks"]]
    return tasks


def test_the_wheel_has_every_module_and_an_entry_point_per_job(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        packaged = {n for n in archive.namelist() if n.endswith(".py")}
    sources = {p.relative_to(REPO_ROOT / "lib").as_posix()
               for p in (REPO_ROOT / "lib" / "campaignlake").rglob("*.py")}  # fmt: skip
    assert sources <= packaged
    scripts = console_scripts(wheel)
    jobs = {p.stem for p in (REPO_ROOT / "jobs").glob("*.py")}
    assert {name.removeprefix("campaignlake-").replace("-", "_") for name in scripts} == jobs
    for target in scripts.values():
        module, attribute = target.split(":")
        assert callable(getattr(importlib.import_module(module), attribute))


def test_every_bundle_task_runs_an_entry_point_of_the_wheel(wheel: Path) -> None:
    scripts = console_scripts(wheel)
    tasks = bundle_tasks()
    assert tasks
    for job_key, task in tasks:
        wheel_task = task["python_wheel_task"]
        assert wheel_task["package_name"] == "campaignlake"
        assert wheel_task["entry_point"] in scripts, (job_key, task["task_key"])
        parameters = wheel_task["parameters"]
        assert parameters[parameters.index("--env") + 1] == "databricks"
        assert "--conf-dir" in parameters
        # Maintenance is the one job that does not take a run date.
        assert ("--date" in parameters) == (task["task_key"] != "vacuum_tables")
        assert task["libraries"] == [{"whl": "../dist/*.whl"}]
    daily = {task["task_key"]: task for job_key, task in tasks if job_key == "campaignlake_daily"}
    for task in daily.values():
        for dependency in task.get("depends_on", []):
            assert dependency["task_key"] in daily
    stages = ["ingest_clickstream", "build_features", "score_customers", "recommend",
              "build_audiences", "build_report"]  # fmt: skip
    assert set(stages) <= set(daily)
    assert {d["task_key"] for d in daily["build_audiences"]["depends_on"]} == {
        "score_customers", "recommend"
    }  # fmt: skip
    # Erasure runs after every ingestion and before anything is computed from the data.
    assert {d["task_key"] for d in daily["erase_customers"]["depends_on"]} == {
        "ingest_products", "ingest_crm", "ingest_campaigns", "ingest_clickstream"
    }  # fmt: skip
    assert daily["build_features"]["depends_on"] == [{"task_key": "erase_customers"}]
    weekly = {task["task_key"] for job_key, task in tasks if job_key != "campaignlake_daily"}
    assert "vacuum_tables" in weekly


def test_the_bundle_has_dev_and_prod_targets_and_a_daily_schedule() -> None:
    bundle = yaml.safe_load((REPO_ROOT / "databricks.yml").read_text())
    assert set(bundle["targets"]) == {"dev", "prod"}
    assert bundle["targets"]["prod"]["mode"] == "production"
    jobs = yaml.safe_load((REPO_ROOT / "resources" / "campaignlake_jobs.yml").read_text())
    schedule = jobs["resources"]["jobs"]["campaignlake_daily"]["schedule"]
    assert schedule["quartz_cron_expression"].split()[3:5] == ["*", "*"]
    assert schedule["pause_status"] == "UNPAUSED"


def test_cluster_configurations_load_and_databricks_uses_the_spark_engine() -> None:
    databricks = load_conf("databricks", conf_dir=str(REPO_ROOT / "conf"))
    emr = load_conf("emr", conf_dir=str(REPO_ROOT / "conf"))
    assert databricks.storage.engine == "spark" and databricks.spark.master is None
    assert emr.spark.master is None
    assert emr.paths.warehouse.startswith("s3://")

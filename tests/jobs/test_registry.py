"""Deployment: the wheel carries the package and the ``campaignlake`` console script, every
Databricks task runs a job declared in the registry with the date it needs, and the cluster
configurations load."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from configparser import ConfigParser
from pathlib import Path

import pytest
import yaml

from campaignlake.config import load_conf
from campaignlake.jobs.cli import parser
from campaignlake.jobs.job import RunDate
from campaignlake.jobs.registry import JOBS, STAGES, job_named
from tests.test_bundle import bundle_tasks
from tests.test_config import DEPLOYED

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def test_the_wheel_has_every_module_and_one_console_script_for_every_job(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        packaged = {n for n in archive.namelist() if n.endswith(".py")}
    sources = {p.relative_to(REPO_ROOT / "lib").as_posix()
               for p in (REPO_ROOT / "lib" / "campaignlake").rglob("*.py")}  # fmt: skip
    assert sources <= packaged
    assert console_scripts(wheel) == {"campaignlake": "campaignlake.jobs.cli:entry_point"}
    # The one spark-submit entry, and a sub-command for every declared job.
    assert [p.name for p in (REPO_ROOT / "jobs").glob("*.py")] == ["run.py"]
    commands = parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert list(commands) == [job.name for job in JOBS]


def test_the_pipeline_stages_come_from_the_registry_in_order() -> None:
    assert STAGES == (
        "ingest", "erase", "text", "features", "train", "score", "recommend", "audiences",
        "measure", "report",
    )  # fmt: skip
    staged = [job.name for job in JOBS if job.stage]
    assert staged.index("erase_customers") == staged.index("ingest_clickstream") + 1
    assert staged.index("build_features") > staged.index("erase_customers")
    # Text features feed the customer features and the recommender's cold-start source.
    assert staged.index("erase_customers") < staged.index("build_text_features")
    assert staged.index("build_text_features") < staged.index("build_features")
    # The text job applies what the text training saved (a first run trains before applying).
    assert staged.index("train_text_models") + 1 == staged.index("build_text_features")
    assert {job.name for job in JOBS if job.trains} == {
        "train_text_models", "train_response_model", "train_uplift_model", "train_recommender"
    }  # fmt: skip
    # The uplift model is compared with the response model in service: trained after it.
    assert staged.index("train_uplift_model") > staged.index("train_response_model")


def test_every_bundle_task_runs_an_entry_point_of_the_wheel(wheel: Path) -> None:
    scripts = console_scripts(wheel)
    tasks = bundle_tasks()
    assert tasks
    for job_key, task in tasks:
        wheel_task = task["python_wheel_task"]
        assert wheel_task["package_name"] == "campaignlake"
        assert wheel_task["entry_point"] in scripts, (job_key, task["task_key"])
        parameters = wheel_task["parameters"]
        job = job_named(parameters[0])
        assert job.name == task["task_key"]
        assert parameters[parameters.index("--env") + 1] == "databricks"
        assert "--conf-dir" in parameters
        assert ("--date" in parameters) == (job.date is not RunDate.NONE), job.name
        # The parameters parse as the job's command line (with the date Databricks fills in).
        filled = ["2026-10-31" if "{{" in str(p) else str(p) for p in parameters]
        parser().parse_args(filled)
        assert task["libraries"] == [{"whl": "../dist/*.whl"}]
    daily = {task["task_key"]: task for job_key, task in tasks if job_key == "campaignlake_daily"}
    for task in daily.values():
        for dependency in task.get("depends_on", []):
            assert dependency["task_key"] in daily
    stages = ["ingest_clickstream", "build_features", "score_customers", "recommend",
              "build_audiences", "measure_campaigns", "build_report"]  # fmt: skip
    assert set(stages) <= set(daily)
    # Campaigns built today are in the audiences the readout reads.
    assert {d["task_key"] for d in daily["measure_campaigns"]["depends_on"]} == {"build_audiences"}
    assert {d["task_key"] for d in daily["build_audiences"]["depends_on"]} == {
        "score_customers", "recommend"
    }  # fmt: skip
    # Erasure runs after every ingestion and before anything is computed from the data.
    assert {d["task_key"] for d in daily["erase_customers"]["depends_on"]} == {
        "ingest_products", "ingest_crm", "ingest_campaigns", "ingest_reviews",
        "ingest_clickstream",
    }  # fmt: skip
    # The text features come before the customer features (topic affinity, review sentiment).
    assert daily["build_text_features"]["depends_on"] == [{"task_key": "erase_customers"}]
    assert daily["build_features"]["depends_on"] == [{"task_key": "build_text_features"}]
    weekly = {task["task_key"] for job_key, task in tasks if job_key != "campaignlake_daily"}
    assert {"vacuum_tables", "train_text_models"} <= weekly


def test_the_daily_job_runs_every_day() -> None:
    jobs = yaml.safe_load((REPO_ROOT / "resources" / "campaignlake_jobs.yml").read_text())
    schedule = jobs["resources"]["jobs"]["campaignlake_daily"]["schedule"]
    assert schedule["quartz_cron_expression"].split()[3:5] == ["*", "*"]


def test_cluster_configurations_load_and_databricks_uses_the_spark_engine() -> None:
    databricks = load_conf(
        "databricks", conf_dir=str(REPO_ROOT / "conf"), variables=DEPLOYED["databricks"]
    )
    emr = load_conf("emr", conf_dir=str(REPO_ROOT / "conf"), variables=DEPLOYED["emr"])
    assert databricks.storage.engine == "spark" and databricks.spark.master is None
    assert emr.spark.master is None
    assert emr.paths.warehouse.startswith("s3://")

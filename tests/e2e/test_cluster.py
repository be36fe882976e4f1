"""A real cluster run: a Spark standalone master and one worker on 127.0.0.1, started from the
pyspark package; the pipeline is submitted with spark-submit and the --py-files archive that
``make pyfiles`` builds, and the audience it builds must equal the local-mode run's for that
campaign on the same input. The daemons are stopped by their process ids."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pyspark
import pytest
import yaml
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.audiences.runs import AudienceReport
from campaignlake.config import Conf, PathsConf, SparkConf
from campaignlake.pii import DEVELOPMENT_KEY
from campaignlake.session import DELTA_CATALOG, DELTA_EXTENSION, delta_package
from campaignlake.tables import Tables
from campaignlake.tables.spark_delta import SparkDeltaEngine
from tests.literals import assert_frames_equal

pytestmark = [pytest.mark.system, pytest.mark.cluster]

if TYPE_CHECKING:
    from tests.conftest import SampleModels


REPO_ROOT = Path(__file__).resolve().parents[2]


SPARK_HOME = Path(pyspark.__file__).parent


#: Tables the cluster recomputes from scratch (the pipeline runs from the audiences stage on;
#: the ingested data, features, scores and recommendations are the local run's).
RECOMPUTED = ("gold/campaign_audiences",)


#: The campaign the cluster builds. It is the only one sending on its date, so its audience
#: does not depend on the others (same-day campaigns count each other's contacts); one
#: campaign keeps the test inside the suite's time budget.
CLUSTER_CAMPAIGN = "autumn_fashion_email.yaml"


CLUSTER_CAMPAIGN_ID = "CMP-20261101-email-fashion"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def daemon_env() -> dict[str, str]:
    return {
        **os.environ,
        "SPARK_HOME": str(SPARK_HOME),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
        "PYSPARK_DRIVER_PYTHON": sys.executable,
    }


def wait_for(check, what: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"timed out waiting for {what}")


@dataclasses.dataclass(frozen=True)
class Standalone:
    master_url: str
    ui_port: int

    def state(self) -> dict:
        """The master's JSON status page: workers, running and completed applications."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.ui_port}/json/", timeout=2) as page:
            return json.load(page)


@pytest.fixture(scope="module")
def standalone_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    """A master and one worker (2 cores, 2 GB) on 127.0.0.1, stopped by process id after."""
    logs = tmp_path_factory.mktemp("standalone")
    port, ui_port, worker_ui = free_port(), free_port(), free_port()
    spark_class = str(SPARK_HOME / "bin" / "spark-class")
    master_url = f"spark://127.0.0.1:{port}"
    started: list[subprocess.Popen] = []
    try:
        started.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
             "--port", str(port), "--webui-port", str(ui_port)],
            env=daemon_env(), stdout=(logs / "master.log").open("w"), stderr=subprocess.STDOUT,
        ))  # fmt: skip
        wait_for(lambda: socket.create_connection(("127.0.0.1", port), 1).close() is None, "master")
        started.append(subprocess.Popen(
            [spark_class, "org.apache.spark.deploy.worker.Worker", master_url, "--host",
             "127.0.0.1", "--cores", "2", "--memory", "2g", "--webui-port", str(worker_ui),
             "--work-dir", str(logs / "work")],
            env=daemon_env(), stdout=(logs / "worker.log").open("w"), stderr=subprocess.STDOUT,
        ))  # fmt: skip

        cluster = Standalone(master_url, ui_port)
        wait_for(lambda: cluster.state().get("aliveworkers", 0) >= 1, "the worker to register")
        yield cluster
    finally:
        for process in reversed(started):
            process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def moved_paths(conf: Conf, root: Path) -> PathsConf:
    """Every path under ``root`` except the landing folder, which stays where it is (the
    copied ingestion manifest names its files)."""
    names = ("warehouse", "models", "exports", "reports")
    return PathsConf(landing=conf.paths.landing, **{name: str(root / name) for name in names})


def cluster_conf_file(conf: Conf, root: Path) -> Path:
    """The sample's configuration as a YAML file whose paths point at ``root`` and whose
    session is the one spark-submit configures (``spark.master: null``). Like every
    non-local environment it takes the PII key from the environment, never the
    development key."""
    moved = dataclasses.replace(
        conf,
        env="cluster",
        spark=SparkConf(master=None, app_name="campaignlake-cluster-test"),
        paths=moved_paths(conf, root),
        pii=dataclasses.replace(conf.pii, allow_development_key=False),
    )
    data = dataclasses.asdict(moved)
    data.pop("source_file")
    conf_dir = root / "conf"
    campaigns = conf_dir / conf.audiences.campaigns_dir
    campaigns.mkdir(parents=True)
    shutil.copy(conf.campaigns_dir / CLUSTER_CAMPAIGN, campaigns / CLUSTER_CAMPAIGN)
    path = conf_dir / "cluster.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_pipeline_on_a_standalone_cluster_builds_the_local_audiences(
    spark: SparkSession,
    sample_models: SampleModels,
    sample_audiences: AudienceReport,
    standalone_cluster: Standalone,
    tmp_path: Path,
) -> None:

    conf = sample_models.conf
    for name in ("warehouse", "models"):
        shutil.copytree(getattr(conf.paths, name), tmp_path / name)
    for table in RECOMPUTED:
        shutil.rmtree(tmp_path / "warehouse" / table)
    conf_file = cluster_conf_file(conf, tmp_path)
    subprocess.run(["make", "-s", "pyfiles", f"PYTHON={sys.executable}"], cwd=REPO_ROOT, check=True)
    archive = REPO_ROOT / "dist" / "campaignlake-pyfiles.zip"

    submitted = subprocess.run(
        [str(SPARK_HOME / "bin" / "spark-submit"), "--master", standalone_cluster.master_url,
         "--deploy-mode", "client", "--py-files", str(archive),
         # Delta reaches the driver and the executors the way a user ships it.
         "--packages", delta_package(),
         "--conf", f"spark.sql.extensions={DELTA_EXTENSION}",
         "--conf", f"spark.sql.catalog.spark_catalog={DELTA_CATALOG}",
         "--conf", f"spark.pyspark.python={sys.executable}",
         "--conf", "spark.sql.shuffle.partitions=1", "--conf", "spark.ui.enabled=false",
         "--conf", "spark.executor.memory=1g", "--conf", "spark.driver.memory=1g",
         str(REPO_ROOT / "jobs" / "run.py"), "run_pipeline", "--env", "cluster",
         "--from-stage", "audiences", "--conf-dir", str(conf_file.parent), "--date", "2026-10-31"],
        # The same key as the local run's, delivered as a secret is: in the environment.
        env={**daemon_env(), conf.pii.hmac_key_env: DEVELOPMENT_KEY},
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    print(submitted.stdout)
    assert submitted.returncode == 0, submitted.stdout[-3000:] + submitted.stderr[-3000:]
    assert "== build_audiences" in submitted.stdout and "== build_report" in submitted.stdout
    assert "storage engine: spark;" in submitted.stdout
    # The work ran on the standalone cluster's executors, not in a local session.
    apps = standalone_cluster.state()["completedapps"]
    assert [app["name"] for app in apps] == ["campaignlake-cluster-test"]

    remote = Tables(
        spark,
        dataclasses.replace(conf, paths=moved_paths(conf, tmp_path)),
        engine=SparkDeltaEngine(spark, commit_retries=2),
    )
    ordered = [c.CAMPAIGN_ID, c.CUSTOMER_ID]
    built = [r for r in sample_audiences.results if r.campaign.id == CLUSTER_CAMPAIGN_ID]
    local = (
        sample_models.tables.read("campaign_audiences")
        .where(F.col(c.CAMPAIGN_ID) == CLUSTER_CAMPAIGN_ID)
        .orderBy(*ordered)
    )
    on_cluster = remote.read("campaign_audiences").orderBy(*ordered)
    assert len(built) == 1 and local.count() == built[0].funnel["audience"] > 0
    assert_frames_equal(on_cluster, local, ordered=True)
    local_csv = Path(built[0].export_path)
    cluster_csv = tmp_path / "exports" / local_csv.relative_to(conf.paths.exports)
    assert cluster_csv.read_bytes() == local_csv.read_bytes()
    assert (tmp_path / "reports" / "2026-10-31" / "report.html").is_file()

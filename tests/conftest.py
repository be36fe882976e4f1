"""One session-scoped local SparkSession for the whole suite, and per-test configurations
whose every path points into a fresh temporary directory."""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import pickle
import shutil
import sys
from collections.abc import Iterator
from datetime import date, datetime, timezone
from importlib import metadata
from pathlib import Path

import pytest
from pyspark.sql import DataFrame, SparkSession

from campaignlake.audiences.runs import AudienceReport, build_audiences
from campaignlake.config import AlsGridConf, Conf, GbtGridConf, PathsConf, load_conf
from campaignlake.features.runs import build_features
from campaignlake.ingest.runs import (
    ingest_campaigns,
    ingest_clickstream,
    ingest_crm,
    ingest_products,
    ingest_reviews,
)
from campaignlake.models.runs import (
    ScoringReport,
    TrainingReport,
    score_customers,
    train_response_model,
)
from campaignlake.recommend.runs import RecommenderReport, recommend, train_recommender
from campaignlake.sample.generator import SampleSpec, generate
from campaignlake.session import delta_settings
from campaignlake.tables import Tables
from campaignlake.tables.delta_rs import DeltaRsEngine
from campaignlake.tables.spark_delta import SparkDeltaEngine
from campaignlake.text.runs import (
    TextReport,
    TextTrainingReport,
    build_text_features,
    train_text_models,
)
from tests.literals import feature_inputs as literal_feature_inputs

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    builder = (
        SparkSession.builder.master("local[2]")
        .appName("campaignlake-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "1")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.local.dir", str(tmp_path_factory.mktemp("spark-local")))
        # Tables addressed by name (schema.table) are created in the session catalog here.
        .config("spark.sql.warehouse.dir", str(tmp_path_factory.mktemp("spark-warehouse")))
        .config("spark.driver.memory", "2g")
        .config("spark.sql.sources.parallelPartitionDiscovery.parallelism", "2")
        .config("spark.databricks.delta.snapshotPartitions", "1")
    )
    # The native delta-spark engine, as on Databricks and EMR: Delta's jars from Maven Central.
    for key, value in delta_settings().items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture
def conf(tmp_path: Path) -> Conf:
    """conf/local.yaml with every path moved under this test's temporary directory; tiny
    literal inputs have high reject rates, so the threshold is 50%."""
    base = load_conf("local", conf_dir=str(REPO_ROOT / "conf"))
    paths = PathsConf(
        landing=str(tmp_path / "landing"),
        warehouse=str(tmp_path / "warehouse"),
        models=str(tmp_path / "models"),
        exports=str(tmp_path / "exports"),
        reports=str(tmp_path / "reports"),
    )
    # CRM attributes are declared per test that uses them.
    ingest = dataclasses.replace(base.ingest, max_reject_rate=0.5, crm_attributes=[])
    return dataclasses.replace(base, paths=paths, ingest=ingest)


@pytest.fixture
def engine(spark: SparkSession) -> SparkDeltaEngine:
    """The native engine, the default wherever Delta's jars are on the classpath."""
    return SparkDeltaEngine(spark, commit_retries=2)


@pytest.fixture
def delta_rs(spark: SparkSession) -> DeltaRsEngine:
    """The pip-only engine: Spark writes the files, deltalake commits."""
    return DeltaRsEngine(spark, commit_retries=2)


@pytest.fixture
def tables(spark: SparkSession, conf: Conf, engine: SparkDeltaEngine) -> Tables:
    return Tables(spark, conf, engine=engine)


SAMPLE_AS_OF = date(2026, 10, 31)
#: Next to the sample warehouse's landing folder: campaign id → planted conversion lift.
PLANTED_LIFT_FILE = "planted_lift.json"
#: Where the shared sample is built, and its pristine copy kept between pytest processes
#: (``make test`` builds it, ``make test-system`` and the next ``make test`` reuse it while
#: the code, the configuration and the engines' versions are the same).
SAMPLE_CACHE = REPO_ROOT / "build" / "test-sample"
_SAMPLE_REPORTS = "reports.pickle"


@dataclasses.dataclass(frozen=True)
class SampleRun:
    """What building the shared sample reported: kept beside its pristine copy."""

    training: TrainingReport
    scoring: ScoringReport
    recommender: RecommenderReport
    text_training: TextTrainingReport
    text: TextReport
    audiences: AudienceReport


@dataclasses.dataclass(frozen=True)
class SampleModels:
    """The sample warehouse after features, both models, scores and recommendations."""

    conf: Conf
    tables: Tables
    training: TrainingReport
    scoring: ScoringReport
    recommender: RecommenderReport
    text_training: TextTrainingReport
    text: TextReport


def sample_fingerprint() -> str:
    """A digest of everything the shared sample depends on: the package's code, the shipped
    configuration, this file, and the versions of Python, Spark, Delta and MLflow."""
    digest = hashlib.sha256()
    sources = [*sorted((REPO_ROOT / "lib").rglob("*.py")), *sorted((REPO_ROOT / "conf").rglob("*"))]
    for path in [*sources, Path(__file__)]:
        if path.is_file():
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes())
    for package in ("pyspark", "delta-spark", "mlflow-skinny"):
        digest.update(f"{package}={metadata.version(package)}".encode())
    digest.update(sys.version.encode())
    return digest.hexdigest()[:16]


def sample_confs(root: Path) -> tuple[Conf, Conf]:
    """conf/local.yaml with its paths under ``root``, and the same with the one-point grids
    and small searches the shared sample's models are built with."""
    base = load_conf("local", conf_dir=str(REPO_ROOT / "conf"))
    names = ("landing", "warehouse", "models", "exports", "reports")
    base = dataclasses.replace(base, paths=PathsConf(**{k: str(root / k) for k in names}))
    models = dataclasses.replace(
        base,
        segments=dataclasses.replace(base.segments, kmeans_k_max=4),
        response_model=dataclasses.replace(
            base.response_model,
            grid=GbtGridConf(max_depth=[3], max_iter=[20], step_size=[0.2]),
        ),
        recommendations=dataclasses.replace(
            base.recommendations, grid=AlsGridConf(rank=[16], reg_param=[0.1], alpha=[20.0]),
            max_iter=8,
        ),
        # The largest k stays the conf's: it decides the features table's topic columns.
        text=dataclasses.replace(
            base.text, topics_k=[6, max(base.text.topics_k)], lda_max_iter=15
        ),
    )  # fmt: skip
    return base, models


def build_sample(spark: SparkSession, root: Path) -> SampleRun:
    """A small generated sample (1,200 customers, 60 days, 3 campaigns) ingested, then text
    features, features and segments, a response model, scores, an ALS model,
    recommendations and the shipped campaigns' audiences for SAMPLE_AS_OF (local mode)."""
    base, conf = sample_confs(root)
    summary = generate(
        SampleSpec(
            seed=5, customers=1200, products=100, days=60, end_date=SAMPLE_AS_OF,
            sessions_per_customer_per_week=1.5, crm_exports=2, campaigns=3,
            bad_record_rate=0.0,
        ),
        root / "landing",
    )  # fmt: skip
    # The true effect the generator planted, for the tests that check the readout finds it.
    (root / PLANTED_LIFT_FILE).write_text(json.dumps(summary.planted_lift))
    tables = Tables(spark, conf, engine=SparkDeltaEngine(spark, commit_retries=2))
    now = datetime(2026, 11, 1, 6, tzinfo=timezone.utc)
    for ingest in (ingest_products, ingest_crm, ingest_campaigns, ingest_reviews,
                   ingest_clickstream):  # fmt: skip
        ingest(spark, base, tables, now=now)
    text_training = train_text_models(spark, conf, tables, as_of=SAMPLE_AS_OF, now=now)
    text = build_text_features(spark, conf, tables, as_of=SAMPLE_AS_OF)
    build_features(spark, conf, tables, as_of=SAMPLE_AS_OF, now=now)
    training = train_response_model(spark, conf, tables, as_of=SAMPLE_AS_OF, now=now)
    scoring = score_customers(spark, conf, tables, as_of=SAMPLE_AS_OF)
    recommender = train_recommender(spark, conf, tables, as_of=SAMPLE_AS_OF, now=now)
    recommend(spark, conf, tables, as_of=SAMPLE_AS_OF)
    audiences = build_audiences(spark, conf, tables, as_of=SAMPLE_AS_OF)
    return SampleRun(training, scoring, recommender, text_training, text, audiences)


@pytest.fixture(scope="session")
def shared_sample(
    spark: SparkSession, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, SampleRun]]:
    """The shared sample's root folder and reports, built once per set of sources.

    It is built at one fixed path (MLflow's registry and the ingestion manifest record
    absolute paths) and copied aside as it stands before any test touches it; a later pytest
    process restores that copy instead of rebuilding. A second process running beside the
    first builds its own sample in a temporary folder."""
    SAMPLE_CACHE.mkdir(parents=True, exist_ok=True)
    with (SAMPLE_CACHE / "lock").open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            root = tmp_path_factory.mktemp("sample")
            yield root, build_sample(spark, root)
            return
        root, pristine = SAMPLE_CACHE / "live", SAMPLE_CACHE / sample_fingerprint()
        shutil.rmtree(root, ignore_errors=True)
        if (pristine / _SAMPLE_REPORTS).is_file():
            shutil.copytree(pristine / "root", root)
            run = pickle.loads((pristine / _SAMPLE_REPORTS).read_bytes())
        else:
            for stale in SAMPLE_CACHE.iterdir():
                if stale.is_dir():
                    shutil.rmtree(stale)
            run = build_sample(spark, root)
            shutil.copytree(root, pristine / "root")
            # Written last: a copy without its reports is an interrupted one, never used.
            (pristine / _SAMPLE_REPORTS).write_bytes(pickle.dumps(run))
        yield root, run


@pytest.fixture(scope="session")
def sample_warehouse(
    spark: SparkSession, shared_sample: tuple[Path, SampleRun]
) -> tuple[Conf, Tables]:
    """The shared sample's warehouse with conf/local.yaml's settings: each test module that
    trains models of its own trains them in it."""
    base, _ = sample_confs(shared_sample[0])
    return base, Tables(spark, base, engine=SparkDeltaEngine(spark, commit_retries=2))


@pytest.fixture(scope="session")
def sample_models(spark: SparkSession, shared_sample: tuple[Path, SampleRun]) -> SampleModels:
    """Features, segments, a response model, scores, an ALS model and recommendations for
    SAMPLE_AS_OF, built with one-point grids for every test that needs them."""
    root, run = shared_sample
    _, conf = sample_confs(root)
    tables = Tables(spark, conf, engine=SparkDeltaEngine(spark, commit_retries=2))
    return SampleModels(
        conf, tables, run.training, run.scoring, run.recommender, run.text_training, run.text
    )


@pytest.fixture(scope="session")
def sample_audiences(shared_sample: tuple[Path, SampleRun]) -> AudienceReport:
    """The shipped campaigns' audiences built on the sample models (local mode)."""
    return shared_sample[1].audiences


@pytest.fixture
def feature_inputs(spark: SparkSession) -> dict[str, DataFrame]:
    """The literal feature inputs of :func:`tests.literals.feature_inputs`."""
    return literal_feature_inputs(spark)

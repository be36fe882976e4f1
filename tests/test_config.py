"""Configuration loading: every error names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaignlake.config import load_conf, load_conf_file
from campaignlake.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL = (REPO_ROOT / "conf" / "local.yaml").read_text()


#: What a deployment passes with --var (the bundle's target values, an EMR step's server).
DEPLOYED = {
    "local": {},
    "databricks": {"catalog": "prod", "schema": "campaignlake"},
    "emr": {"mlflow_tracking_uri": "https://mlflow.example.com"},
}


def write_conf(tmp_path: Path, text: str) -> Path:
    (tmp_path / "conf").mkdir(exist_ok=True)
    path = tmp_path / "conf" / "test.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("env", ["local", "databricks", "emr"])
def test_shipped_confs_load(env: str) -> None:
    conf = load_conf(env, conf_dir=str(REPO_ROOT / "conf"), variables=DEPLOYED[env])
    assert conf.env == env
    assert conf.table_path("clickstream_events") in (
        f"{conf.paths.warehouse}/bronze/clickstream_events",
        "prod.campaignlake.clickstream_events",  # Databricks: a Unity Catalog table
    )


def test_the_local_catalog_conf_names_every_table_in_one_schema() -> None:
    conf = load_conf(
        "local-catalog", conf_dir=str(REPO_ROOT / "conf"), variables={"data_dir": "/x"}
    )
    assert conf.table_path("customers") == "campaignlake_dev.customers"
    assert conf.storage.engine == "spark" and conf.paths.landing == "/x/landing"
    assert conf.spark.extra["spark.sql.warehouse.dir"] == "/x/catalog"


def test_local_paths_resolve_under_the_repository(tmp_path: Path) -> None:
    conf = load_conf_file(write_conf(tmp_path, LOCAL))
    assert conf.paths.warehouse == str((tmp_path / "data" / "warehouse").resolve())
    assert conf.table_path("customers") == f"{conf.paths.warehouse}/silver/customers"
    assert conf.storage.engine == "auto" and conf.spark.master == "local[*]"


def test_databricks_tables_are_unity_catalog_tables_of_the_target() -> None:
    conf = load_conf(
        "databricks", conf_dir=str(REPO_ROOT / "conf"), variables=DEPLOYED["databricks"]
    )
    assert conf.table_path("customers") == "prod.campaignlake.customers"
    assert conf.spark.master is None
    assert conf.storage.engine == "spark" and conf.pii.allow_development_key is False


def test_databricks_files_live_in_the_targets_unity_catalog_volumes() -> None:
    conf = load_conf(
        "databricks",
        conf_dir=str(REPO_ROOT / "conf"),
        variables={"catalog": "dev", "schema": "campaignlake_ana"},
    )
    assert (conf.paths.landing, conf.paths.models, conf.paths.exports, conf.paths.reports) == (
        "/Volumes/dev/campaignlake_ana/landing",
        "/Volumes/dev/campaignlake_ana/models",
        "/Volumes/dev/campaignlake_ana/exports",
        "/Volumes/dev/campaignlake_ana/reports",
    )
    assert conf.tracking.experiment == "/Shared/campaignlake-dev-campaignlake_ana"


def test_a_variable_a_deployment_must_give_fails_naming_key_and_flag() -> None:
    with pytest.raises(
        ConfigError,
        match=r"databricks\.yaml: paths\.landing: variable catalog has no default; "
        r"give it with --var catalog=\.\.\.",
    ):
        load_conf("databricks", conf_dir=str(REPO_ROOT / "conf"))


def test_variables_have_defaults_and_refuse_names_the_file_does_not_declare(
    tmp_path: Path,
) -> None:
    text = LOCAL.replace("env: local\n", "env: local\nvariables:\n  root: data\n", 1)
    text = text.replace("  warehouse: data/warehouse", "  warehouse: ${root}/lake", 1)
    assert "${root}/lake" in text
    path = write_conf(tmp_path, text)
    assert load_conf_file(path).paths.warehouse == str((tmp_path / "data" / "lake").resolve())
    assert load_conf_file(path, {"root": "/srv"}).paths.warehouse == "/srv/lake"
    with pytest.raises(ConfigError, match=r"variables\.rooot: not declared in this file"):
        load_conf_file(path, {"rooot": "/srv"})
    with pytest.raises(
        ConfigError, match=r"test\.yaml: paths\.models: unknown variable \$\{where\}"
    ):
        load_conf_file(
            write_conf(tmp_path, text.replace("  models: data/models", "  models: ${where}"))
        )


@pytest.mark.parametrize(
    ("models", "uri", "message"),
    [
        # EMR's old default: runs "under" an S3 path, which MLflow refuses after training.
        ("s3://lake/models", "null", r"null means a file store under paths\.models, but "
         r"paths\.models is s3://lake/models where MLflow cannot keep runs"),
        ("data/models", "s3://lake/mlruns", r"MLflow cannot track runs at 's3://lake/mlruns'"),
        ("data/models", "dbfs:/mlruns", r"MLflow cannot track runs at 'dbfs:/mlruns'"),
    ],
)  # fmt: skip
def test_a_tracking_uri_that_cannot_work_fails_when_the_conf_loads(
    tmp_path: Path, models: str, uri: str, message: str
) -> None:
    text = LOCAL.replace("  models: data/models", f"  models: {models}", 1)
    text = text.replace("  tracking_uri: null", f"  tracking_uri: {uri}", 1)
    with pytest.raises(ConfigError, match=r"test\.yaml: tracking\.tracking_uri: " + message):
        load_conf_file(write_conf(tmp_path, text))


def test_a_database_tracking_store_on_a_cluster_needs_an_artifact_location_off_the_driver(
    tmp_path: Path,
) -> None:
    text = LOCAL.replace("  tracking_uri: null", "  tracking_uri: postgresql://db/mlflow", 1)
    text = text.replace('  master: "local[*]"', "  master: null", 1)
    text = text.replace("  allow_development_key: true", "  allow_development_key: false", 1)
    with pytest.raises(
        ConfigError,
        match=r"test\.yaml: tracking\.artifact_location: the tracking store postgresql keeps no "
        r"artifacts of its own, and on a cluster \(the platform session\) \./mlruns is the "
        r"driver's disk",
    ):
        load_conf_file(write_conf(tmp_path, text))
    located = text.replace(
        "  registry_uri: null", "  registry_uri: null\n  artifact_location: s3://lake/mlflow", 1
    )
    assert load_conf_file(write_conf(tmp_path, located)).tracking.artifact_location == (
        "s3://lake/mlflow"
    )
    # A laptop keeps the artifacts next to its own store.
    assert load_conf_file(write_conf(tmp_path, LOCAL.replace(
        "  tracking_uri: null", "  tracking_uri: sqlite:///data/mlflow.db", 1
    ))).tracking.artifact_location is None  # fmt: skip


@pytest.mark.parametrize(
    "uri", ["databricks", "https://mlflow.example.com", "sqlite:///data/mlflow.db",
            "arn:aws:sagemaker:eu-west-1:123456789012:mlflow-tracking-server/cl"],
)  # fmt: skip
def test_tracking_uris_mlflow_supports_load(tmp_path: Path, uri: str) -> None:
    text = LOCAL.replace("  models: data/models", "  models: s3://lake/models", 1)
    text = text.replace("  tracking_uri: null", f"  tracking_uri: {uri}", 1)
    assert load_conf_file(write_conf(tmp_path, text)).tracking.tracking_uri == uri


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("  engine: auto ", "  engine: duckdb "),
            r"test\.yaml: storage\.engine: expected one of auto, spark, delta-rs, got 'duckdb'",
        ),
        (
            ("  max_reject_rate: 0.05", "  max_reject_rate: lots"),
            r"test\.yaml: ingest\.max_reject_rate: expected a number, got 'lots'",
        ),
        (
            ("  max_reject_rate: 0.05", "  max_reject_rate: 2"),
            r"ingest\.max_reject_rate: must be between 0 and 1",
        ),
        (("  seed: 42", "  seed: 42\n  colour: blue"), r"test\.yaml: sample\.colour: unknown key"),
        (
            ("  topics_k: [8, 12, 16]", "  topics_k: [1, 8]"),
            r"test\.yaml: text\.topics_k: give one or more topic counts of 2 or more",
        ),
        (
            ("  cold_start_slots: 2 ", "  cold_start_slots: 10 "),
            r"test\.yaml: recommendations\.cold_start_slots: must be 0 or more and below k",
        ),
        (
            ("  fit_partitions: 8 ", "  fit_partitions: 0 "),
            r"test\.yaml: response_model\.fit_partitions: must be 1 or more",
        ),
        (("  customers: silver/customers\n", ""), r"test\.yaml: tables\.customers: missing value"),
        (
            ("  allow_development_key: true", "  allow_development_key: yes please"),
            r"pii\.allow_development_key: expected true or false",
        ),
        (
            ('  master: "local[*]"', "  master: null"),
            r"test\.yaml: pii\.allow_development_key: the public development key may only be "
            r"allowed with a local session .*the platform session",
        ),
        (
            ('  master: "local[*]"', "  master: spark://10.0.0.1:7077"),
            r"pii\.allow_development_key: .*spark://10\.0\.0\.1:7077\) must take the key",
        ),
    ],
)
def test_invalid_conf_names_file_and_key(
    tmp_path: Path, change: tuple[str, str], message: str
) -> None:
    old, new = change
    assert old in LOCAL
    with pytest.raises(ConfigError, match=message):
        load_conf_file(write_conf(tmp_path, LOCAL.replace(old, new, 1)))


def test_missing_conf_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no configuration 'staging\.yaml' found"):
        load_conf("staging", conf_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_conf_file(write_conf(tmp_path, "env: [unclosed"))

"""Configuration loading: every error names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from campaignlake.config import load_conf, load_conf_file
from campaignlake.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]
LOCAL = (REPO_ROOT / "conf" / "local.yaml").read_text()


def write_conf(tmp_path: Path, text: str) -> Path:
    (tmp_path / "conf").mkdir(exist_ok=True)
    path = tmp_path / "conf" / "test.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("env", ["local", "databricks", "emr"])
def test_shipped_confs_load(env: str) -> None:
    conf = load_conf(env, conf_dir=str(REPO_ROOT / "conf"))
    assert conf.env == env
    assert conf.table_path("clickstream_events").endswith("/bronze/clickstream_events")


def test_local_paths_resolve_under_the_repository(tmp_path: Path) -> None:
    conf = load_conf_file(write_conf(tmp_path, LOCAL))
    assert conf.paths.warehouse == str((tmp_path / "data" / "warehouse").resolve())
    assert conf.table_path("customers") == f"{conf.paths.warehouse}/silver/customers"
    assert conf.storage.engine == "auto" and conf.spark.master == "local[*]"


def test_cluster_conf_keeps_uris() -> None:
    conf = load_conf("databricks", conf_dir=str(REPO_ROOT / "conf"))
    assert conf.table_path("customers").startswith("s3://") and conf.spark.master is None
    assert conf.storage.engine == "spark" and conf.pii.allow_development_key is False


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

"""The Databricks bundle: every resource is a valid Databricks definition in every target (checked
with Databricks' own typed bundle classes), and a deploy is safe: dev is paused and writes only
its own data, prod runs as a service principal from a private folder with explicit rights."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from databricks.bundles.jobs import Job, JobPermission
from databricks.bundles.schemas import Schema
from databricks.bundles.volumes import Volume

from campaignlake.config import load_conf

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE = yaml.safe_load((REPO_ROOT / "databricks.yml").read_text())
TYPES = {"jobs": Job, "schemas": Schema, "volumes": Volume}
#: What the workspace fills in when a user deploys (for resolving ${...} in the test).
WORKSPACE = {"workspace.current_user.short_name": "ana", "bundle.name": "campaignlake"}


def merged(base: Any, override: Any) -> Any:
    """A target's override over the bundle's definition: mappings merge key by key."""
    if isinstance(base, dict) and isinstance(override, dict):
        return {k: merged(base[k], override[k]) if k in base and k in override
                else override.get(k, base.get(k)) for k in {**base, **override}}  # fmt: skip
    return override


def resources(target: str) -> dict[str, dict[str, Any]]:
    """Every resource of ``target``: the included files with the target's overrides."""
    found: dict[str, dict[str, Any]] = {}
    for pattern in BUNDLE["include"]:
        for path in sorted(REPO_ROOT.glob(pattern)):
            found = merged(found, yaml.safe_load(path.read_text())["resources"])
    return merged(found, BUNDLE["targets"][target].get("resources", {}))


def bundle_tasks() -> list[tuple[str, dict]]:
    """(job key, task) of every task of every job."""
    return [(key, task) for key, job in resources("dev")["jobs"].items() for task in job["tasks"]]


def variables(target: str) -> dict[str, str]:
    """The bundle's variables as ``target`` resolves them (defaults, then the target's)."""
    declared = {k: v.get("default") for k, v in BUNDLE["variables"].items()}
    values = {**declared, **BUNDLE["targets"][target].get("variables", {})}
    missing = sorted(k for k, v in values.items() if v is None)
    assert missing in ([], ["service_principal_id"]), f"{target}: no value for {missing}"
    return {k: str(v) for k, v in values.items() if v is not None}


def deployed_schema(target: str) -> str:
    """The schema's name as the CLI deploys it: development mode prefixes Unity Catalog
    schemas with ``dev_<user>_``."""
    name = variables(target)["schema"]
    if BUNDLE["targets"][target]["mode"] == "development":
        return f"dev_{WORKSPACE['workspace.current_user.short_name']}_{name}"
    return name


def resolve(text: str, target: str) -> str:
    """``text`` with the bundle's ``${var.x}``, workspace and schema references filled in
    with what ``target`` deploys."""
    known = {f"var.{k}": v for k, v in variables(target).items()} | WORKSPACE
    known["resources.schemas.campaignlake.name"] = deployed_schema(target)
    known["resources.schemas.campaignlake.catalog_name"] = variables(target)["catalog"]
    for _ in range(3):  # variables may refer to workspace values
        text = re.sub(r"\$\{([a-z_.]+)\}", lambda m: known.get(m.group(1), m.group(0)), text)
    return text


def task_variables(task: dict, target: str) -> dict[str, str]:
    """The ``--var name=value`` pairs a task passes, as ``target`` resolves them."""
    parameters = [resolve(p, target) for p in task["python_wheel_task"]["parameters"]]
    return dict(parameters[i + 1].split("=", 1) for i, p in enumerate(parameters) if p == "--var")


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_every_resource_is_a_valid_databricks_definition(target: str) -> None:
    for kind, definitions in resources(target).items():
        for key, definition in definitions.items():
            try:
                TYPES[kind].from_dict(definition)
            except (ValueError, TypeError) as exc:
                pytest.fail(f"{target}: resources.{kind}.{key}: {exc}")
    for grant in BUNDLE["targets"][target].get("permissions", []):
        JobPermission.from_dict(grant)


def test_a_dev_deploy_is_paused_and_writes_only_its_own_catalog_schema_and_tables() -> None:
    dev, prod = BUNDLE["targets"]["dev"], BUNDLE["targets"]["prod"]
    assert dev["mode"] == "development" and prod["mode"] == "production"
    # Development mode pauses schedules and continuous jobs only when pause_status is unset.
    for key, job in resources("dev")["jobs"].items():
        trigger = job.get("schedule", job.get("continuous", {}))
        assert "pause_status" not in trigger, f"jobs.{key} would run in dev"
    for key, job in resources("prod")["jobs"].items():
        trigger = job.get("schedule", job.get("continuous"))
        assert trigger is not None and trigger["pause_status"] == "UNPAUSED", key

    def deployed(target: str) -> set[str]:
        """Every location the jobs of ``target`` write, from the conf loaded as a task does."""
        given = task_variables(bundle_tasks()[0][1], target)
        conf = load_conf("databricks", conf_dir=str(REPO_ROOT / "conf"), variables=given)
        paths = conf.paths
        tables = (conf.table_path(k) for k in conf.tables.__dataclass_fields__)
        return {paths.landing, paths.models, paths.exports, paths.reports, paths.checkpoints,
                conf.tracking.experiment, *tables}  # fmt: skip

    dev_locations, prod_locations = deployed("dev"), deployed("prod")
    assert not dev_locations & prod_locations
    assert all("ana" in location for location in dev_locations), sorted(dev_locations)


def test_prod_runs_as_a_service_principal_from_a_private_folder_with_explicit_rights() -> None:
    prod = BUNDLE["targets"]["prod"]
    assert prod["run_as"] == {"service_principal_name": "${var.service_principal_id}"}
    assert "default" not in BUNDLE["variables"]["service_principal_id"]
    root = prod["workspace"]["root_path"]
    assert root.startswith("/Workspace/Users/${var.service_principal_id}/"), root
    assert "/Shared" not in root
    assert {g["level"] for g in prod["permissions"]} == {"CAN_VIEW"}
    for key, job in resources("prod")["jobs"].items():
        levels = {g["level"] for g in job["permissions"]}
        assert levels <= {"CAN_VIEW", "CAN_MANAGE_RUN"}, key
    assert all(g.get("group_name") != "users" for g in prod["permissions"])


@pytest.mark.parametrize("target", ["dev", "prod"])
def test_every_task_writes_the_deployed_schema_and_its_declared_volumes(target: str) -> None:
    """A development deploy renames the schema; every task, table and volume path follows."""
    catalog, schema = variables(target)["catalog"], deployed_schema(target)
    declared = {
        (resolve(v["catalog_name"], target), resolve(v["schema_name"], target), v["name"])
        for v in resources(target)["volumes"].values()
    }
    for job_key, task in bundle_tasks():
        given = task_variables(task, target)
        assert given == {"catalog": catalog, "schema": schema}, (job_key, task["task_key"])
    conf = load_conf("databricks", conf_dir=str(REPO_ROOT / "conf"), variables=given)
    # The warehouse folder is unused on Databricks: every table has a Unity Catalog name.
    paths = conf.paths
    for path in (paths.landing, paths.models, paths.exports, paths.reports, paths.checkpoints):
        volume = tuple(path.split("/")[2:5])
        assert path.startswith("/Volumes/") and volume in declared, (path, sorted(declared))
    for key in conf.tables.__dataclass_fields__:
        assert conf.table_path(key).startswith(f"{catalog}.{schema}."), key
    if target == "dev":
        assert schema == "dev_ana_campaignlake"

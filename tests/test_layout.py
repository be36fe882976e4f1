"""The package's shape: one module per package does table I/O, and the import contracts that
keep it so hold and would catch a pure module reaching for the table layer."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # the dev extra installs tomli on Python 3.10
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "lib" / "campaignlake"
#: The packages between the job layer and the table layer.
DOMAIN_PACKAGES = (
    "audiences", "erasure", "features", "ingest", "maintenance", "measurement", "models",
    "recommend", "report", "sample", "streaming", "text",
)  # fmt: skip
#: Runs modules allowed to use another's: the clickstream stream ingests each micro-batch
#: with the ingestion job's function.
SHARED_RUNS = ("campaignlake.streaming.runs",)
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())
    return {c["type"]: c for c in config["tool"]["importlinter"]["contracts"]}


def domain_modules() -> list[str]:
    return sorted(
        f"campaignlake.{package}.{path.stem}"
        for package in DOMAIN_PACKAGES
        for path in (PACKAGE / package).glob("*.py")
        if path.stem != "__init__"
    )


def test_only_runs_modules_import_the_table_layer_and_the_contract_names_every_other() -> None:
    pure = [m for m in domain_modules() if not m.endswith(".runs")]
    runs = [m for m in domain_modules() if m.endswith(".runs") and m not in SHARED_RUNS]
    assert contracts()["forbidden"]["source_modules"] == pure
    assert contracts()["forbidden"]["forbidden_modules"] == ["campaignlake.tables"]
    assert sorted(contracts()["independence"]["modules"]) == runs
    layered = " | ".join(contracts()["layers"]["layers"])
    for package in DOMAIN_PACKAGES:
        assert f"campaignlake.{package}" in layered


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(REPO_ROOT / "pyproject.toml"), "--no-cache"],
        cwd=tree,
        env={"PYTHONPATH": str(tree / "lib"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_contracts_hold_and_break_when_a_pure_module_imports_the_table_layer(
    tmp_path: Path,
) -> None:
    copy = tmp_path / "lib" / "campaignlake"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert lint_imports(tmp_path).returncode == 0

    segments = copy / "features" / "segments.py"
    segments.write_text(
        segments.read_text() + "\nfrom campaignlake.tables import Tables  # noqa: E402\n"
    )
    broken = lint_imports(tmp_path)
    assert broken.returncode == 1
    assert "Pure modules never import the table layer BROKEN" in broken.stdout
    assert "campaignlake.features.segments -> campaignlake.tables" in broken.stdout


#: What Databricks and EMR runtimes install themselves: the wheel must not pin or cap them.
PLATFORM_PACKAGES = ("pyspark", "delta-spark", "pyarrow", "mlflow", "mlflow-skinny", "deltalake")


def test_the_wheel_leaves_the_platforms_packages_to_the_platform() -> None:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name = requirement.split(";")[0]
        for operator in ("==", "<", ">=", "~=", "!=", ">"):
            name = name.split(operator)[0]
        if name.strip() in PLATFORM_PACKAGES:
            assert "<" not in requirement and "==" not in requirement, requirement
            assert name.strip() != "deltalake", "deltalake belongs in the delta-rs extra"
    extras = project["optional-dependencies"]
    assert any(r.startswith("deltalake==") for r in extras["delta-rs"])
    assert any(r.startswith("pyarrow") and "<" in r for r in extras["local"])


def test_the_package_imports_without_the_fallback_engines_library() -> None:
    # The job entry point and the table layer load without deltalake (only the delta-rs
    # engine imports it, when it is selected).
    probe = (
        "import sys, campaignlake.tables, campaignlake.jobs.cli; "
        "sys.exit('deltalake' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

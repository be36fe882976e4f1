"""The one SparkSession factory.

Local runs (``spark.master`` set in the conf) get campaignlake's local defaults, Delta's JVM
package among them (resolved from Maven Central by Spark's own ``spark.jars.packages`` and
cached in the Ivy cache, so a second run needs no network). On a cluster
(``spark.master: null``) the session that spark-submit, Databricks or EMR configured is taken as
it is; only the settings campaignlake's semantics depend on (UTC session time zone, Parquet
TIMESTAMP_MICROS) are added, and only when the platform did not set them explicitly.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlparse

import pyspark
from pyspark.sql import SparkSession

from campaignlake.config import Conf

#: Settings whose values change results, not just speed: always UTC dates and microsecond
#: timestamps that every Delta reader understands.
SEMANTIC_DEFAULTS: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}


DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"


def scala_binary_version() -> str:
    """The Scala binary version of the installed Spark (``2.13`` for Spark 4, ``2.12`` for the
    Spark 3.5 builds on PyPI), read off the ``scala-library`` jar that pyspark ships."""
    jars = Path(pyspark.__file__).parent / "jars"
    for jar in jars.glob("scala-library-*.jar"):
        found = re.match(r"scala-library-(\d+\.\d+)\.", jar.name)
        if found:
            return found.group(1)
    return "2.13" if pyspark.__version__.startswith("4.") else "2.12"


def delta_package() -> str | None:
    """The Maven coordinates of delta-spark matching the installed ``delta-spark`` pip package
    and Spark's Scala version; ``None`` without the pip package (pip-only, delta-rs)."""
    try:
        version = importlib.metadata.version("delta-spark")
    except importlib.metadata.PackageNotFoundError:
        return None
    return f"io.delta:delta-spark_{scala_binary_version()}:{version}"


def kafka_package() -> str:
    """The Maven coordinates of Spark's Kafka source and sink for the installed Spark."""
    return f"org.apache.spark:spark-sql-kafka-0-10_{scala_binary_version()}:{pyspark.__version__}"


def delta_settings(extra_packages: str = "") -> dict[str, str]:
    """Delta's JVM package, SQL extension and catalog for a session built here (empty when the
    delta-spark pip package is not installed)."""
    package = delta_package()
    if package is None:
        return {}
    packages = ",".join(p for p in (package, extra_packages) if p)
    return {
        "spark.jars.packages": packages,
        "spark.sql.extensions": DELTA_EXTENSION,
        "spark.sql.catalog.spark_catalog": DELTA_CATALOG,
    }


#: Spark's logging on the console of a session built here: errors (warnings with --verbose),
#: from the JVM's start on, so that the lines Spark logs before the session exists (and its
#: notice that it uses its default profile) stay off the console as well.
_LOG4J2 = """\
rootLogger.level = {level}
# The Python gateway's logger at the root's level: Spark then does not announce a shell level.
logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer
logger.gateway.level = {level}
rootLogger.appenderRef.console.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{{yy/MM/dd HH:mm:ss}} %p %c{{1}}: %m%n%ex
"""


def _log_level(verbose: bool) -> str:
    return "warn" if verbose else "error"


def log_config_file(verbose: bool) -> Path:
    """Where the log4j2 configuration of a local session is written (see :data:`_LOG4J2`)."""
    name = f"log4j2-{_log_level(verbose)}.properties"
    return Path(tempfile.gettempdir()) / "campaignlake-spark" / name


def local_defaults(conf: Conf, *, verbose: bool = False) -> dict[str, str]:
    """Spark settings for a session campaignlake builds itself in local mode (``verbose``:
    Spark's own warnings on the console too, which otherwise shows errors only)."""
    settings = {
        "spark.driver.extraJavaOptions": (
            f"-Dlog4j2.configurationFile=file:{log_config_file(verbose)}"
        ),
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.adaptive.enabled": "true",
        "spark.local.dir": os.path.join(tempfile.gettempdir(), "campaignlake-spark"),
        # Arrow moves batches between the JVM and the Python writers of the delta-rs engine.
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # Above this many paths (or subdirectories) Spark lists files with a job of one task
        # per path; on one machine the driver lists a local tree many times faster.
        "spark.sql.sources.parallelPartitionDiscovery.threshold": "100000",
        # Delta's VACUUM lists a table with this many tasks (default 10,000): minutes for a
        # small table on a laptop, where a few tasks list it in a second.
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": "8",
        # Delta rebuilds a table's state from its log with this many tasks (default 50): a
        # laptop's small tables need a few.
        "spark.databricks.delta.snapshotPartitions": "4",
        # Spark packs small files into a read task up to max(openCost, size / cores): at the
        # default 4 MB opening cost, a table of a few hundred small files (a laptop's Delta
        # tables, the sample's landing folders) is read one file per task.
        "spark.sql.files.openCostInBytes": str(128 * 1024),
        # Compressing cached columns costs more CPU than it saves on a laptop (a quarter of the
        # clickstream ingest's time, BENCHMARKS.md); caches spill to local disk when memory is
        # short.
        "spark.sql.inMemoryColumnarStorage.compressed": "false",
        **SEMANTIC_DEFAULTS,
    }
    if conf.spark.shuffle_partitions:
        settings["spark.sql.shuffle.partitions"] = str(conf.spark.shuffle_partitions)
    if conf.spark.driver_memory:
        settings["spark.driver.memory"] = conf.spark.driver_memory
    extra = dict(conf.spark.extra)
    packages = [p for p in (extra.pop("spark.jars.packages", ""),) if p]
    # A Kafka connector of the user's own in spark.jars.packages (a pinned release) wins.
    if conf.streaming.kafka is not None and "spark-sql-kafka" not in ",".join(packages):
        packages.append(kafka_package())
    if conf.storage.engine != "delta-rs":
        # The native engine is the one Databricks and EMR run; delta-rs (pip only) needs no jars.
        settings.update(delta_settings(",".join(packages)))
    elif packages:
        settings["spark.jars.packages"] = ",".join(packages)
    settings.update(extra)
    return settings


PACKAGES = "spark.jars.packages"
JARS = "spark.jars"


def _resolved_jars_file(packages: str) -> Path:
    digest = hashlib.sha256(packages.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "campaignlake-spark" / f"jars-{digest}.txt"


def remember_resolved_jars(packages: str, jars: str) -> None:
    """Record the local jar files Spark resolved ``packages`` to (its ``spark.jars`` after a
    start with ``spark.jars.packages``), for :func:`with_resolved_jars`."""
    files = [j for j in jars.split(",") if j]
    if not packages or not files:
        return
    target = _resolved_jars_file(packages)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(f".{os.getpid()}")
    temporary.write_text("\n".join(files))
    temporary.replace(target)


def with_resolved_jars(settings: dict[str, str]) -> dict[str, str]:
    """``settings`` with ``spark.jars.packages`` replaced by the jar files an earlier start
    resolved them to, when every one of them is still there: a start then skips Ivy's
    resolution (a second, and a screenful of its report on the console)."""
    packages = settings.get(PACKAGES)
    if not packages:
        return settings
    recorded = _resolved_jars_file(packages)
    if not recorded.exists():
        return settings
    jars = [j for j in recorded.read_text().splitlines() if j]
    if not jars or not all(Path(urlparse(j).path).is_file() for j in jars):
        return settings
    resolved = {k: v for k, v in settings.items() if k != PACKAGES}
    given = [j for j in settings.get(JARS, "").split(",") if j]
    resolved[JARS] = ",".join(dict.fromkeys([*given, *jars]))
    return resolved


def get_spark(conf: Conf, *, verbose: bool = False) -> SparkSession:
    """Return the session for this run.

    Parameters
    ----------
    conf
        The loaded configuration; ``conf.spark.master`` decides between a local session built
        here and the platform's session.
    verbose
        For a session built here: log Spark's warnings to the console (by default only its
        errors, so that a job's console shows its stages, results and errors).

    Returns
    -------
    SparkSession
        The active session if one exists (Databricks, a notebook, the test suite), else a new one.
    """
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if conf.spark.master:
        # Python workers must use this interpreter, where pyarrow and campaignlake are installed.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        if conf.spark.master.startswith("local"):
            # A laptop's hostname may resolve to a non-loopback address; local mode needs none.
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        builder = SparkSession.builder.master(conf.spark.master).appName(conf.spark.app_name)
        log_config = log_config_file(verbose)
        log_config.parent.mkdir(parents=True, exist_ok=True)
        log_config.write_text(_LOG4J2.format(level=_log_level(verbose)))
        settings = local_defaults(conf, verbose=verbose)
        packages = settings.get(PACKAGES, "")
        settings = with_resolved_jars(settings)
        for key, value in settings.items():
            builder = builder.config(key, value)
        spark = builder.getOrCreate()
        if PACKAGES in settings:
            remember_resolved_jars(packages, spark.sparkContext.getConf().get(JARS, ""))
        return spark
    spark = SparkSession.builder.appName(conf.spark.app_name).getOrCreate()
    launched = spark.sparkContext.getConf()
    for key, value in SEMANTIC_DEFAULTS.items():
        if not launched.contains(key):
            spark.conf.set(key, value)
    return spark

"""Benchmark: campaignlake's table layer against bare delta-spark doing the same operation.

Not a test. In one local session, on a 10-row and a 100,000-row table of the catalogue's
``propensity_scores`` shape (partitioned by ``as_of_date``), each operation runs through
:class:`campaignlake.tables.Tables` (one for the session, as the jobs of a pipeline run share
one, so a table's schema and properties are checked on its first write only) and through bare
delta-spark (``DataFrameWriter`` / ``DeltaTable``), alternating, ``--repeats`` times each;
every timed call starts from the same freshly written table, whose setup is not timed. It
prints a Markdown table for BENCHMARKS.md with the medians, the ratio and the number of Spark
jobs each side ran (the last call's), and writes ``bench/out/tables.json``
(``{"<operation>_<rows>": {"campaignlake_s", "delta_s", "ratio", ...}}``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake.catalog import table_specs
from campaignlake.config import Conf, PathsConf, load_conf
from campaignlake.session import get_spark
from campaignlake.tables import Tables

OUT = Path(__file__).resolve().parent / "out"
KEY = catalog.PROPENSITY_SCORES
MERGE_KEYS = ["customer_id", "as_of_date"]
DAY_1, DAY_2, DAY_3 = date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1)
OPERATIONS = ("append", "overwrite", "replaceWhere", "merge", "delete")
REPLACED = f"as_of_date = '{DAY_2}'"
DELETED = "decile = 1"


def scores(spark: SparkSession, rows: int, *, first_id: int = 0, seed: int = 1) -> DataFrame:
    """``rows`` score rows, half on each of two days, in the table's column order."""
    columns = table_specs(load_conf("local"))[KEY].schema
    return (
        spark.range(first_id, first_id + rows, numPartitions=2)
        .select(
            F.format_string("C%08d", "id").alias("customer_id"),
            F.lit("response").alias("model_name"),
            F.lit("1").alias("model_version"),
            F.lit("email").alias("channel"),
            F.lit("electronics").alias("category"),
            F.rand(seed).alias("score"),
            (F.col("id") % 10 + 1).cast("int").alias("decile"),
            F.when(F.col("id") % 2 == 0, F.lit(DAY_1)).otherwise(F.lit(DAY_2)).alias("as_of_date"),
        )
        .select(*columns.fieldNames())
    )


def jobs_run(spark: SparkSession, group: str) -> int:
    """How many Spark jobs ran under ``group``."""
    return len(spark.sparkContext.statusTracker().getJobIdsForGroup(group))


def timed(spark: SparkSession, group: str, work: Callable[[], object]) -> tuple[float, int]:
    spark.sparkContext.setJobGroup(group, group)
    started = time.perf_counter()
    work()
    elapsed = time.perf_counter() - started
    spark.sparkContext.setJobGroup("bench-setup", "bench-setup")
    return elapsed, jobs_run(spark, group)


@dataclass(frozen=True)
class Inputs:
    """The frames one table size's operations write (checkpointed: not recomputed per call)."""

    initial: DataFrame
    appended: DataFrame
    replacement: DataFrame
    day_slice: DataFrame
    merge_source: DataFrame

    @classmethod
    def of(cls, spark: SparkSession, rows: int) -> Inputs:
        frames = cls(
            initial=scores(spark, rows),
            appended=scores(spark, rows, first_id=rows, seed=2).withColumn(
                "as_of_date", F.lit(DAY_3)
            ),
            replacement=scores(spark, rows, seed=3),
            day_slice=scores(spark, rows, seed=3).where(F.col("as_of_date") == F.lit(DAY_2)),
            # Half the keys exist (with new scores), half are new.
            merge_source=scores(spark, rows, first_id=rows // 2, seed=4),
        )
        checkpointed = {k: v.localCheckpoint() for k, v in frames.__dict__.items()}
        for frame in checkpointed.values():
            frame.count()
        return cls(**checkpointed)


def through_tables(tables: Tables, inputs: Inputs, operation: str) -> object:
    """``operation`` through campaignlake's table layer."""
    if operation == "append":
        return tables.append(KEY, inputs.appended)
    if operation == "overwrite":
        return tables.overwrite(KEY, inputs.replacement)
    if operation == "replaceWhere":
        return tables.overwrite_where(KEY, inputs.day_slice, REPLACED)
    if operation == "merge":
        return tables.upsert(KEY, inputs.merge_source, MERGE_KEYS)
    return tables.delete(KEY, DELETED)


def through_delta(spark: SparkSession, path: str, inputs: Inputs, operation: str) -> object:
    """``operation`` through bare delta-spark, as a user without campaignlake writes it."""
    if operation == "append":
        return inputs.appended.write.format("delta").mode("append").save(path)
    if operation == "overwrite":
        return inputs.replacement.write.format("delta").mode("overwrite").save(path)
    if operation == "replaceWhere":
        writer = inputs.day_slice.write.format("delta").mode("overwrite")
        return writer.option("replaceWhere", REPLACED).save(path)
    table = DeltaTable.forPath(spark, path)
    if operation == "merge":
        on = " AND ".join(f"s.{k} = t.{k}" for k in MERGE_KEYS)
        merge = table.alias("t").merge(inputs.merge_source.alias("s"), on)
        return merge.whenMatchedUpdateAll().whenNotMatchedInsertAll().execute()
    return table.delete(DELETED)


def reset(spark: SparkSession, conf: Conf, bare_path: str, inputs: Inputs) -> None:
    """Both tables hold ``inputs.initial`` again (setup, not timed). A fresh ``Tables``
    creates campaignlake's table as a first write does (partitioning, properties)."""
    fresh = Tables(spark, conf)
    shutil.rmtree(fresh.path(KEY), ignore_errors=True)
    shutil.rmtree(bare_path, ignore_errors=True)
    fresh.overwrite(KEY, inputs.initial)
    writer = inputs.initial.write.format("delta").partitionBy("as_of_date").mode("overwrite")
    writer.save(bare_path)


def measure(
    spark: SparkSession, conf: Conf, tables: Tables, bare_path: str, rows: int, repeats: int
) -> dict[str, dict[str, float]]:
    """Each operation on a ``rows``-row table, both sides alternating, ``repeats`` times."""
    inputs = Inputs.of(spark, rows)
    reset(spark, conf, bare_path, inputs)
    # The session's Tables checks the table once, as a job's first write of it does.
    tables.ensure(KEY)
    results = {}
    for operation in OPERATIONS:
        times: dict[str, list[float]] = {"campaignlake": [], "delta": []}
        jobs = {"campaignlake": 0, "delta": 0}
        sides: list[tuple[str, Callable[[], object]]] = [
            ("campaignlake", lambda op=operation: through_tables(tables, inputs, op)),
            ("delta", lambda op=operation: through_delta(spark, bare_path, inputs, op)),
        ]
        for repeat in range(repeats):
            for side, work in sides if repeat % 2 == 0 else sides[::-1]:
                reset(spark, conf, bare_path, inputs)
                elapsed, count = timed(spark, f"bench-{side}-{operation}-{rows}-{repeat}", work)
                times[side].append(elapsed)
                jobs[side] = count
        ours, theirs = statistics.median(times["campaignlake"]), statistics.median(times["delta"])
        results[f"{operation}_{rows}"] = {
            "campaignlake_s": round(ours, 3),
            "delta_s": round(theirs, 3),
            "ratio": round(ours / theirs, 2),
            "campaignlake_jobs": jobs["campaignlake"],
            "delta_jobs": jobs["delta"],
        }
        print(f"{operation} {rows}: {results[f'{operation}_{rows}']}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10, 100_000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    root = OUT / "tables"
    shutil.rmtree(root, ignore_errors=True)
    base = load_conf("local")
    names = ("landing", "warehouse", "models", "exports", "reports")
    conf = dataclasses.replace(base, paths=PathsConf(**{n: str(root / n) for n in names}))
    spark = get_spark(conf)
    tables = Tables(spark, conf)
    bare_path = str(root / "bare" / "propensity_scores")
    results: dict[str, dict[str, float]] = {}
    for rows in args.rows:
        results.update(measure(spark, conf, tables, bare_path, rows, args.repeats))

    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "tables.json").write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(
        f"\n{date.today()}, {platform.processor() or platform.machine()}, "
        f"pyspark {spark.version}, median of {args.repeats}"
    )
    print("| operation | rows | campaignlake s | delta-spark s | ratio | Spark jobs (cl / delta) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, figures in results.items():
        operation, rows = name.rsplit("_", 1)
        print(
            f"| {operation} | {int(rows):,} | {figures['campaignlake_s']:.2f} | "
            f"{figures['delta_s']:.2f} | {figures['ratio']:.2f}× | "
            f"{figures['campaignlake_jobs']} / {figures['delta_jobs']} |"
        )
    spark.stop()


if __name__ == "__main__":
    main()

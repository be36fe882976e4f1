"""Benchmark: campaignlake's table layer against bare delta-spark doing the same operation.

Not a test. In one local session, on a 10-row and a 100,000-row table of the catalogue's
``propensity_scores`` shape (partitioned by ``as_of_date``), each operation runs through
:class:`campaignlake.tables.Tables` (one for the session, as the jobs of a pipeline run share
one, so a table's schema and properties are checked on its first write only) and through bare delta-spark (``DataFrameWriter`` / ``DeltaTable``),
alternating, ``--repeats`` times each; every timed call starts from the same freshly written
table, whose setup is not timed. It prints a Markdown table for BENCHMARKS.md with the medians,
the ratio and the number of Spark jobs each side ran, and writes ``bench/out/tables.json``
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
from datetime import date
from pathlib import Path

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake.catalog import table_specs
from campaignlake.config import PathsConf, load_conf
from campaignlake.session import get_spark
from campaignlake.tables import Tables

OUT = Path(__file__).resolve().parent / "out"
KEY = catalog.PROPENSITY_SCORES
MERGE_KEYS = ["customer_id", "as_of_date"]
DAY_1, DAY_2, DAY_3 = date(2026, 10, 30), date(2026, 10, 31), date(2026, 11, 1)
OPERATIONS = ("append", "overwrite", "replaceWhere", "merge", "delete")


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
    path = tables.path(KEY)
    bare_path = str(root / "bare" / "propensity_scores")

    results: dict[str, dict[str, float]] = {}
    for rows in args.rows:
        initial = scores(spark, rows).localCheckpoint()
        appended = scores(spark, rows, first_id=rows, seed=2).withColumn(
            "as_of_date", F.lit(DAY_3)
        ).localCheckpoint()
        replacement = scores(spark, rows, seed=3).localCheckpoint()
        day_slice = replacement.where(F.col("as_of_date") == F.lit(DAY_2)).localCheckpoint()
        # Half the keys exist (with new scores), half are new.
        merge_source = scores(spark, rows, first_id=rows // 2, seed=4).localCheckpoint()
        for frame in (initial, appended, replacement, day_slice, merge_source):
            frame.count()
        where = f"as_of_date = '{DAY_2}'"

        def campaignlake(operation: str) -> Callable[[], object]:
            def run() -> object:
                if operation == "append":
                    return tables.append(KEY, appended)
                if operation == "overwrite":
                    return tables.overwrite(KEY, replacement)
                if operation == "replaceWhere":
                    return tables.overwrite_where(KEY, day_slice, where)
                if operation == "merge":
                    return tables.upsert(KEY, merge_source, MERGE_KEYS)
                return tables.delete(KEY, "decile = 1")

            return run

        def bare(operation: str) -> Callable[[], object]:
            def run() -> object:
                if operation == "append":
                    return appended.write.format("delta").mode("append").save(bare_path)
                if operation == "overwrite":
                    return replacement.write.format("delta").mode("overwrite").save(bare_path)
                if operation == "replaceWhere":
                    return (
                        day_slice.write.format("delta")
                        .mode("overwrite")
                        .option("replaceWhere", where)
                        .save(bare_path)
                    )
                table = DeltaTable.forPath(spark, bare_path)
                if operation == "merge":
                    on = " AND ".join(f"s.{k} = t.{k}" for k in MERGE_KEYS)
                    return (
                        table.alias("t")
                        .merge(merge_source.alias("s"), on)
                        .whenMatchedUpdateAll()
                        .whenNotMatchedInsertAll()
                        .execute()
                    )
                return table.delete("decile = 1")

            return run

        def reset() -> None:
            # Both tables start each timed call from the same rows (setup, not timed).
            shutil.rmtree(path, ignore_errors=True)
            shutil.rmtree(bare_path, ignore_errors=True)
            tables.overwrite(KEY, initial)
            (
                initial.write.format("delta")
                .partitionBy("as_of_date")
                .mode("overwrite")
                .save(bare_path)
            )

        for operation in OPERATIONS:
            ours: list[float] = []
            theirs: list[float] = []
            jobs = {"campaignlake": 0, "delta": 0}
            for repeat in range(args.repeats):
                sides = [("campaignlake", campaignlake, ours), ("delta", bare, theirs)]
                if repeat % 2:
                    sides.reverse()
                for side, make, times in sides:
                    reset()
                    elapsed, count = timed(
                        spark, f"bench-{side}-{operation}-{rows}-{repeat}", make(operation)
                    )
                    times.append(elapsed)
                    jobs[side] = count
            mine, delta = statistics.median(ours), statistics.median(theirs)
            results[f"{operation}_{rows}"] = {
                "campaignlake_s": round(mine, 3),
                "delta_s": round(delta, 3),
                "ratio": round(mine / delta, 2),
                "campaignlake_jobs": jobs["campaignlake"],
                "delta_jobs": jobs["delta"],
            }
            print(f"{operation} {rows}: {results[f'{operation}_{rows}']}", flush=True)

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

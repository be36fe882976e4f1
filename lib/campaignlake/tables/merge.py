"""Upsert and delete-by-matching planning that both engines share, so that "nothing to
change", "duplicate key" and "the rows a source matches" mean the same on delta-spark and on
delta-rs."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from campaignlake.errors import DuplicateKeyError

#: The column carrying each row's data file name while an upsert is planned.
FILE_NAME_COLUMN = "__campaignlake_file"
#: The column carrying how many upsert source rows share the row's key.
REPEATS_COLUMN = "__campaignlake_repeats"


def raise_on_repeated_key(changes: DataFrame, keys: list[str], table: str) -> None:
    """Raise :class:`DuplicateKeyError` naming a key the upsert source repeats, found among
    ``changes`` (from :func:`effective_changes`, which keeps every row of a repeated key)."""
    repeated = changes.where(F.col(REPEATS_COLUMN) > 1).limit(1).collect()
    if repeated:
        key = ", ".join(f"{k}={repeated[0][k]!r}" for k in keys)
        raise DuplicateKeyError(
            f"{table}: the upsert source has {repeated[0][REPEATS_COLUMN]} rows for {key}; "
            "deduplicate the source by its key first"
        )


def effective_changes(
    source: DataFrame, target: DataFrame, keys: list[str], update_condition: str | None
) -> DataFrame:
    """Source rows that an upsert would actually write: new keys, and matched keys where
    ``update_condition`` holds (every matched key when there is none). Each row carries the
    matched target row's file name when the target has one (null for inserts), and how many
    source rows share its key (``__campaignlake_repeats``): the rows of a repeated key are
    all kept, so that one look at the changes finds both "nothing to do" and a duplicate key
    (:func:`raise_on_repeated_key`), without another pass over the source.
    """
    present = "__campaignlake_present"
    marked = target.withColumn(present, F.lit(True))
    if FILE_NAME_COLUMN not in marked.columns:
        marked = marked.withColumn(FILE_NAME_COLUMN, F.lit(None).cast("string"))
    counted = source.withColumn(REPEATS_COLUMN, F.count(F.lit(1)).over(Window.partitionBy(*keys)))
    joined = counted.alias("s").join(
        marked.alias("t"),
        on=[F.col(f"s.`{k}`").eqNullSafe(F.col(f"t.`{k}`")) for k in keys],
        how="left",
    )
    is_new = F.col(f"t.`{present}`").isNull()
    repeated = F.col(f"s.`{REPEATS_COLUMN}`") > 1
    keep = (
        F.lit(True)
        if update_condition is None
        else is_new | repeated | F.coalesce(F.expr(update_condition), F.lit(False))
    )
    return joined.where(keep).select(
        *[F.col(f"s.`{c}`").alias(c) for c in source.columns],
        F.col(f"t.`{FILE_NAME_COLUMN}`").alias(FILE_NAME_COLUMN),
        F.col(f"s.`{REPEATS_COLUMN}`").alias(REPEATS_COLUMN),
    )


def rows_matching(table: DataFrame, source: DataFrame, condition: str) -> DataFrame:
    """The rows of ``table`` for which some row of ``source`` meets ``condition`` (Spark SQL over
    aliases ``t``, the table, and ``s``, the source): what a delete by matching removes."""
    return table.alias("t").join(source.alias("s"), F.expr(condition), "left_semi")

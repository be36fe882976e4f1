"""Upsert planning that both engines share, so that "nothing to change" and "duplicate key"
mean the same on delta-spark and on delta-rs."""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from campaignlake.errors import DuplicateKeyError

#: The column carrying each row's data file name while an upsert is planned.
FILE_NAME_COLUMN = "__campaignlake_file"


def check_unique_keys(source: DataFrame, keys: list[str], table: str) -> None:
    """Raise :class:`DuplicateKeyError` when the upsert source repeats a key."""
    duplicate = source.groupBy(*keys).count().where(F.col("count") > 1).limit(1).collect()
    if duplicate:
        key = ", ".join(f"{k}={duplicate[0][k]!r}" for k in keys)
        raise DuplicateKeyError(
            f"{table}: the upsert source has {duplicate[0]['count']} rows for {key}; "
            "deduplicate the source by its key first"
        )


def effective_changes(
    source: DataFrame, target: DataFrame, keys: list[str], update_condition: str | None
) -> DataFrame:
    """Source rows that an upsert would actually write: new keys, and matched keys where
    ``update_condition`` holds (every matched key when there is none). Each row carries the
    matched target row's file name when the target has one (null for inserts).
    """
    present = "__campaignlake_present"
    marked = target.withColumn(present, F.lit(True))
    if FILE_NAME_COLUMN not in marked.columns:
        marked = marked.withColumn(FILE_NAME_COLUMN, F.lit(None).cast("string"))
    joined = source.alias("s").join(
        marked.alias("t"),
        on=[F.col(f"s.`{k}`").eqNullSafe(F.col(f"t.`{k}`")) for k in keys],
        how="left",
    )
    is_new = F.col(f"t.`{present}`").isNull()
    keep = (
        F.lit(True)
        if update_condition is None
        else is_new | F.coalesce(F.expr(update_condition), F.lit(False))
    )
    return joined.where(keep).select(
        *[F.col(f"s.`{c}`").alias(c) for c in source.columns],
        F.col(f"t.`{FILE_NAME_COLUMN}`").alias(FILE_NAME_COLUMN),
    )

"""DataFrame helpers shared by several packages."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as F
from pyspark.sql.types import LongType, StructType

from campaignlake import columns as c
from campaignlake.schemas import MODEL_METRICS


def with_row_numbers(df: DataFrame, order: list[Column], column: str) -> DataFrame:
    """``df`` with ``column`` = 1, 2, 3, … in ``order`` (which must be a total order, e.g.
    ending with a key column, for the numbers to be deterministic).

    Consecutive numbers without a global window (which would move every row into one
    partition): rows are range-partitioned by ``order``, numbered within each partition and
    shifted by the sizes of the partitions before them; one small row per partition is all
    that is aggregated across partitions (each partition's offset sums the sizes of the
    partitions before it, a join of that small frame with itself rather than a window
    without a partition).
    """
    parted = df.repartitionByRange(*order).withColumn("__rn_part", F.spark_partition_id())
    within = Window.partitionBy("__rn_part").orderBy(*order)
    numbered = parted.withColumn("__rn_within", F.row_number().over(within))
    sizes = numbered.groupBy("__rn_part").agg(F.count(F.lit(1)).alias("__rn_size"))
    earlier = sizes.select(
        F.col("__rn_part").alias("__rn_earlier"), F.col("__rn_size").alias("__rn_earlier_size")
    )
    offsets = (
        sizes.join(F.broadcast(earlier), on=F.col("__rn_earlier") < F.col("__rn_part"), how="left")
        .groupBy("__rn_part")
        .agg(F.coalesce(F.sum("__rn_earlier_size"), F.lit(0)).alias("__rn_offset"))
    )
    return (
        numbered.join(F.broadcast(offsets), on="__rn_part", how="inner")
        .withColumn(column, (F.col("__rn_offset") + F.col("__rn_within")).cast(LongType()))
        .drop("__rn_part", "__rn_within", "__rn_offset")
    )


#: The most partitions of a model's fitting input: fixed, not the core count, so that a
#: laptop and a cluster lay the rows out alike.
FIT_PARTITIONS = 8
#: Rows a fitting partition holds before another is added (:func:`fit_partitions_for`).
FIT_ROWS_PER_PARTITION = 100_000


def fit_partitions_for(
    rows: int, most: int = FIT_PARTITIONS, rows_per_partition: int = FIT_ROWS_PER_PARTITION
) -> int:
    """Partitions for fitting ``rows`` rows: one per ``rows_per_partition`` (rounded up), at
    least one and at most ``most``. It depends on the data alone, so a laptop and a cluster
    choose the same; and a small input is not cut into tasks that each cost more to start
    (MLlib ships the model state with every task) than to run."""
    return max(1, min(most, -(-rows // rows_per_partition)))


def fit_layout(df: DataFrame, keys: list[str], partitions: int = FIT_PARTITIONS) -> DataFrame:
    """``df`` hash-partitioned by ``keys`` into ``partitions`` and sorted by them within each.

    MLlib's fits sample, seed and sum per partition (k-means|| initialisation, GBT row
    subsampling and split candidates, TrainValidationSplit's random split, the order of ALS's
    per-block sums), so a model depends on how its input is partitioned and ordered. This
    layout depends only on the data: ``keys`` must identify a row, and the number of
    partitions is explicit, so adaptive execution does not change it either.
    """
    return df.repartition(partitions, *keys).sortWithinPartitions(*keys)


def metrics_rows(
    spark: SparkSession,
    model_version: str,
    created_at: datetime,
    rows: Iterable[tuple[str, str, str, float]],
) -> DataFrame:
    """``(model_name, split, metric, value)`` tuples of one model version as rows of
    ``gold/model_metrics``."""
    return spark.createDataFrame(
        [(name, model_version, split, metric, float(value), created_at)
         for name, split, metric, value in rows],
        MODEL_METRICS,
    )  # fmt: skip


def in_schema(df: DataFrame, schema: StructType) -> DataFrame:
    """``df``'s columns of ``schema``, in its order and cast to its types (ML outputs such as
    ``vector_to_array`` give arrays without nulls, which a table's nullable arrays accept)."""
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])


def purchase_revenue() -> Column:
    """A purchase event's revenue: its ``amount`` when the collector sends one (unit prices
    are rounded, so price × quantity can miss it by cents, and a discount shows only there),
    else price × quantity (a missing quantity counts as 1). The one definition the features
    and the campaign readout share."""
    return F.coalesce(F.col(c.AMOUNT), F.col(c.PRICE) * F.coalesce(F.col(c.QUANTITY), F.lit(1)))

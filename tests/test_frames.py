"""Model inputs get a layout that depends only on the data, so a fit gives the same model on a
laptop and on a cluster, whatever partitioning the rows arrived with."""

from __future__ import annotations

from pyspark.ml.classification import GBTClassifier
from pyspark.ml.feature import VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from campaignlake.frames import fit_layout, fit_partitions_for

SCHEMA = StructType(
    [
        StructField("campaign_id", StringType(), False),
        StructField("customer_id", StringType(), False),
        StructField("recency", DoubleType(), False),
        StructField("affinity", DoubleType(), False),
        StructField("label", IntegerType(), False),
    ]
)


def examples(spark: SparkSession) -> DataFrame:
    """300 literal examples whose label follows affinity and recency, with some noise."""
    rows = []
    for i in range(300):
        recency = float((i * 37) % 90)
        affinity = ((i * 53) % 100) / 100
        label = int(affinity > 0.5 and recency < 60) if i % 7 else int(i % 2 == 0)
        rows.append((f"cmp-{i % 3}", f"cust-{i:04d}", recency, affinity, label))
    return spark.createDataFrame(rows, SCHEMA)


def rows_by_partition(df: DataFrame) -> list[list[str]]:
    tagged = df.select(F.spark_partition_id().alias("p"), "customer_id", "campaign_id")
    return [
        [f"{r['campaign_id']}/{r['customer_id']}" for r in rows]
        for rows in tagged.rdd.glom().collect()
    ]


def test_the_layout_is_the_same_whatever_the_input_partitioning(spark: SparkSession) -> None:
    keys = ["campaign_id", "customer_id"]
    data = examples(spark)
    one = rows_by_partition(fit_layout(data.repartition(1), keys, partitions=4))
    many = rows_by_partition(fit_layout(data.repartition(7, "recency"), keys, partitions=4))
    assert one == many
    assert len(one) == 4 and all(part == sorted(part) for part in one)
    assert sum(len(part) for part in one) == 300


def test_gbt_on_the_layout_fits_the_same_model_from_any_partitioning(
    spark: SparkSession,
) -> None:
    keys = ["campaign_id", "customer_id"]
    assembler = VectorAssembler(inputCols=["recency", "affinity"], outputCol="features")
    # Row subsampling draws per partition, with the partition's index in the seed.
    gbt = GBTClassifier(labelCol="label", maxIter=4, maxDepth=2, seed=7, subsamplingRate=0.7)
    data = assembler.transform(examples(spark))

    def probabilities(arrived: DataFrame) -> list[tuple[str, float]]:
        model = gbt.fit(fit_layout(arrived, keys, partitions=4))
        scored = model.transform(data).select(
            "customer_id", vector_to_array("probability").getItem(1).alias("p")
        )
        return sorted((r["customer_id"], round(r["p"], 12)) for r in scored.collect())

    assert probabilities(data.coalesce(1)) == probabilities(data.repartition(5, "affinity"))


def test_fitting_partitions_follow_the_row_count_up_to_the_cap() -> None:
    assert fit_partitions_for(0, most=8, rows_per_partition=100_000) == 1
    assert fit_partitions_for(1_600, most=8, rows_per_partition=100_000) == 1
    assert fit_partitions_for(100_000, most=8, rows_per_partition=100_000) == 1
    assert fit_partitions_for(100_001, most=8, rows_per_partition=100_000) == 2
    assert fit_partitions_for(5_000_000, most=8, rows_per_partition=100_000) == 8

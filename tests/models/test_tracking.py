"""The signature a logged model carries: inputs and outputs, typed from Spark's types."""

from __future__ import annotations

import pytest
from pyspark.sql.types import (
    ArrayType,
    DoubleType,
    FloatType,
    IntegerType,
    StringType,
    StructField,
    StructType,
)

from campaignlake.models.tracking import model_signature

INPUTS = StructType(
    [StructField("recency_days", IntegerType()), StructField("channel", StringType())]
)


def test_the_signature_has_the_inputs_and_the_prediction_it_returns() -> None:
    signature = model_signature(INPUTS, StructType([StructField("prediction", FloatType())]))
    assert signature.inputs.input_names() == ["recency_days", "channel"]
    assert [t.name for t in signature.inputs.input_types()] == ["integer", "string"]
    assert signature.outputs.input_names() == ["prediction"]
    assert [t.name for t in signature.outputs.input_types()] == ["float"]


def test_a_column_without_an_mlflow_type_is_named() -> None:
    outputs = StructType([StructField("prediction", DoubleType())])
    odd = StructType([StructField("history", ArrayType(StringType()))])
    with pytest.raises(TypeError, match="model input history: no MLflow type for array<string>"):
        model_signature(odd, outputs)
    with pytest.raises(TypeError, match="model output history"):
        model_signature(INPUTS, odd)

"""The campaign-response model: a Spark ML Pipeline ending in GBTClassifier, and its baselines.

Stages: cast every numeric input to double (booleans become 0/1) and fill missing categories
with ``__missing__`` → median imputation → StringIndexer + OneHotEncoder (unseen categories
get their own slot) → VectorAssembler → classifier. The logistic-regression baseline shares
the preparation and adds standard scaling; the recency rule needs no training.
"""

from __future__ import annotations

from dataclasses import dataclass

from pyspark import StorageLevel
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import (
    Imputer,
    OneHotEncoder,
    SQLTransformer,
    StandardScaler,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.functions import vector_to_array
from pyspark.ml.tuning import ParamGridBuilder, TrainValidationSplit, TrainValidationSplitModel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import ResponseModelConf
from campaignlake.feature_set import DAYS_SINCE_LAST_PURCHASE, FeatureSet

FEATURES = "features"
SCALED = "scaled_features"
PROBABILITY = "probability"
MISSING_CATEGORY = "__missing__"
_NUM = "num__"
_IMPUTED = "imp__"
_CAT = "cat__"
_INDEX = "idx__"
_ONE_HOT = "ohe__"


@dataclass(frozen=True)
class ModelInputs:
    """The columns a response model reads."""

    numeric: tuple[str, ...]
    categorical: tuple[str, ...]

    @classmethod
    def for_features(cls, feature_set: FeatureSet) -> ModelInputs:
        """Every numeric and categorical feature plus the campaign context (channel and the
        customer's affinity to the promoted category)."""
        return cls(
            numeric=(*feature_set.numeric(), c.CAMPAIGN_CATEGORY_AFFINITY),
            categorical=(*feature_set.categorical(), c.CHANNEL),
        )

    def without(self, dropped: set[str]) -> ModelInputs:
        """These inputs without the ``dropped`` features."""
        return ModelInputs(
            numeric=tuple(n for n in self.numeric if n not in dropped),
            categorical=tuple(n for n in self.categorical if n not in dropped),
        )


def all_null_columns(examples: DataFrame, inputs: ModelInputs) -> set[str]:
    """Numeric inputs without a single value in ``examples``: nothing to impute them from."""
    row = examples.agg(*[F.count(F.col(n)).alias(n) for n in inputs.numeric]).first()
    return {n for n in inputs.numeric if row[n] == 0}  # type: ignore[index]


def preparation(inputs: ModelInputs) -> list:
    """Pipeline stages from raw feature columns to the ``features`` vector."""
    casts = [f"CAST(`{n}` AS DOUBLE) AS `{_NUM}{n}`" for n in inputs.numeric]
    categories = [
        f"COALESCE(CAST(`{n}` AS STRING), '{MISSING_CATEGORY}') AS `{_CAT}{n}`"
        for n in inputs.categorical
    ]
    select = SQLTransformer(statement=f"SELECT *, {', '.join(casts + categories)} FROM __THIS__")
    imputer = Imputer(
        inputCols=[_NUM + n for n in inputs.numeric],
        outputCols=[_IMPUTED + n for n in inputs.numeric],
        strategy="median",
    )
    indexer = StringIndexer(
        inputCols=[_CAT + n for n in inputs.categorical],
        outputCols=[_INDEX + n for n in inputs.categorical],
        handleInvalid="keep",
        stringOrderType="alphabetAsc",
    )
    encoder = OneHotEncoder(
        inputCols=[_INDEX + n for n in inputs.categorical],
        outputCols=[_ONE_HOT + n for n in inputs.categorical],
        handleInvalid="keep",
    )
    assembler = VectorAssembler(
        inputCols=[_IMPUTED + n for n in inputs.numeric]
        + [_ONE_HOT + n for n in inputs.categorical],
        outputCol=FEATURES,
    )
    return [select, imputer, indexer, encoder, assembler]


def gbt_search(conf: ResponseModelConf, *, weight_column: str | None) -> TrainValidationSplit:
    """GBT on the ``features`` vector with a TrainValidationSplit over depth, iterations and
    step size (ROC AUC), with rows weighted by ``weight_column`` or not at all.

    The response model is unweighted: boosting on the log loss ranks a rare class without
    help, and its probabilities stay calibrated to the base rate. Balancing weights
    (positives × negatives/positives, 7.8 on the bench set) let a handful of positives decide a
    leaf that needs only ``min_instances_per_node`` rows, which cost ROC AUC there (0.7255
    weighted against 0.7285 unweighted, BENCHMARKS.md). The uplift model's weights are part
    of its method (treated and held-out groups weigh the same), so it passes them."""
    gbt = GBTClassifier(
        featuresCol=FEATURES,
        labelCol=c.LABEL,
        seed=conf.seed,
        minInstancesPerNode=conf.min_instances_per_node,
        subsamplingRate=conf.subsampling_rate,
    )
    if weight_column is not None:
        gbt.setWeightCol(weight_column)
    grid = (
        ParamGridBuilder()
        .addGrid(gbt.maxDepth, conf.grid.max_depth)
        .addGrid(gbt.maxIter, conf.grid.max_iter)
        .addGrid(gbt.stepSize, conf.grid.step_size)
        .build()
    )
    return TrainValidationSplit(
        estimator=gbt,
        estimatorParamMaps=grid,
        evaluator=BinaryClassificationEvaluator(labelCol=c.LABEL, metricName="areaUnderROC"),
        trainRatio=conf.train_ratio,
        parallelism=conf.parallelism,
        seed=conf.seed,
    )


@dataclass(frozen=True)
class Fitted:
    """A searched GBT behind its preparation, and the training examples as prepared."""

    #: Preparation stages and the best GBT refitted on all the training examples.
    model: PipelineModel
    #: The grid point the search chose, by parameter name.
    params: dict[str, float]
    #: The preparation alone (fitted once on the training examples).
    preparation: PipelineModel
    #: ``label``, ``weight``, the row's keys and ``features``, persisted: unpersist when done.
    prepared: DataFrame


def fit_gbt(
    train: DataFrame, inputs: ModelInputs, conf: ResponseModelConf, *, weight_column: str | None
) -> Fitted:
    """Fit the preparation once on ``train``, then search and refit GBT on the prepared
    vectors (a grid of one point is fitted on all of ``train`` directly), its rows weighted by
    ``weight_column`` or not (:func:`gbt_search`). Every grid point and the refit see the same
    imputation and encoding (fitted on all of ``train``), and none of them refits it."""
    prep = Pipeline(stages=preparation(inputs)).fit(train)
    # The keys keep TrainValidationSplit's per-partition sort (before its random split) a
    # total order, so its split does not depend on ties.
    keys = [k for k in (c.CAMPAIGN_ID, c.CUSTOMER_ID) if k in train.columns]
    prepared = (
        prep.transform(train)
        .select(*keys, c.LABEL, c.WEIGHT, FEATURES)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    search = gbt_search(conf, weight_column=weight_column)
    grid = search.getEstimatorParamMaps()
    if len(grid) == 1:
        # Nothing to choose: the split's fit would be thrown away for the refit on all rows.
        gbt, params = search.getEstimator().fit(prepared, grid[0]), grid[0]
    else:
        fitted = search.fit(prepared)
        gbt = fitted.bestModel
        params = fitted.getEstimatorParamMaps()[_best_index(fitted)]
    return Fitted(
        model=PipelineModel(stages=[*prep.stages, gbt]),
        params={p.name: float(v) for p, v in params.items()},
        preparation=prep,
        prepared=prepared,
    )


def logistic_baseline(fitted: Fitted) -> PipelineModel:
    """The same fitted preparation, standard scaling and a lightly regularised logistic
    regression, trained on the examples ``fitted`` was."""
    head = Pipeline(
        stages=[
            StandardScaler(inputCol=FEATURES, outputCol=SCALED, withMean=True, withStd=True),
            LogisticRegression(
                featuresCol=SCALED, labelCol=c.LABEL, weightCol=c.WEIGHT, regParam=0.01
            ),
        ]
    ).fit(fitted.prepared)
    return PipelineModel(stages=[*fitted.preparation.stages, *head.stages])


def score(model: PipelineModel, rows: DataFrame, *, keep: list[str]) -> DataFrame:
    """``keep`` columns of ``rows`` and ``score``: the model's probability of a response."""
    return model.transform(rows).select(
        *keep, vector_to_array(F.col(PROBABILITY)).getItem(1).alias(c.SCORE)
    )


def recency_rule(rows: DataFrame, *, keep: list[str]) -> DataFrame:
    """The rule marketers use without a model: the more recent the last purchase, the higher
    the score; customers who never bought score 0."""
    days = F.col(DAYS_SINCE_LAST_PURCHASE).cast("double")
    return rows.select(*keep, F.coalesce(1.0 / (1.0 + days), F.lit(0.0)).alias(c.SCORE))


def _best_index(search: TrainValidationSplitModel) -> int:
    """The index of the grid point TrainValidationSplit chose."""
    metrics = search.validationMetrics
    return max(range(len(metrics)), key=lambda i: metrics[i])


def feature_importances(model: PipelineModel, inputs: ModelInputs) -> dict[str, float]:
    """The GBT's importance per input feature (one-hot slots summed back to their column)."""
    gbt = model.stages[-1]
    importances = gbt.featureImportances.toArray()
    result: dict[str, float] = {}
    slot = 0
    for name in inputs.numeric:
        result[name] = float(importances[slot])
        slot += 1
    encoder = model.stages[3]
    # handleInvalid="keep" adds a slot for unseen values and dropLast removes one: the
    # encoded width of a column is its category count.
    for name, width in zip(inputs.categorical, encoder.categorySizes, strict=True):
        result[name] = float(importances[slot : slot + width].sum())
        slot += width
    if slot != len(importances):
        raise ValueError(f"feature vector has {len(importances)} slots, the inputs {slot}")
    return dict(sorted(result.items(), key=lambda kv: -kv[1]))

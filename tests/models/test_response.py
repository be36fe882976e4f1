"""The response model's search is built from the configuration it is given."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pyspark.ml.classification import GBTClassifier

from campaignlake.config import GbtGridConf, load_conf
from campaignlake.models.response import gbt_search

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_the_search_fits_gbt_with_the_configured_regularisation_and_grid(spark) -> None:
    base = load_conf("local", conf_dir=str(REPO_ROOT / "conf")).response_model
    model_conf = dataclasses.replace(
        base,
        min_instances_per_node=37,
        subsampling_rate=0.6,
        grid=GbtGridConf(max_depth=[2, 4], max_iter=[10], step_size=[0.1]),
    )
    search = gbt_search(model_conf, weight_column=None)
    gbt = search.getEstimator()
    assert isinstance(gbt, GBTClassifier)
    # The response model is unweighted; the uplift model weighs its groups.
    assert not gbt.isSet(gbt.weightCol)
    weighted = gbt_search(model_conf, weight_column="weight").getEstimator()
    assert weighted.getWeightCol() == "weight"
    assert gbt.getMinInstancesPerNode() == 37
    assert gbt.getSubsamplingRate() == 0.6
    assert gbt.getSeed() == model_conf.seed
    assert sorted(p[gbt.maxDepth] for p in search.getEstimatorParamMaps()) == [2, 4]

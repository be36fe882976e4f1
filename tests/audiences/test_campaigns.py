"""Campaign files: loading and validation with the file and key named, the build order, the
campaigns a run builds, and the safe eligibility language."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest
from pyspark.sql import SparkSession

from campaignlake.audiences import build
from campaignlake.audiences.campaigns import (
    FrequencyCapConf,
    SelectionConf,
    check_eligibility,
    check_models,
    due_campaigns,
    load_campaign_file,
    load_campaigns,
)
from campaignlake.config import Conf
from campaignlake.errors import ConfigError
from campaignlake.models.registry import ModelStore
from tests.literals import FEATURE_SCHEMA, SEGMENT_SCHEMA, VALID_CAMPAIGN, campaign


def test_a_valid_campaign_file_loads_with_typed_values(conf: Conf, tmp_path: Path) -> None:
    path = tmp_path / "fashion.yaml"
    path.write_text(VALID_CAMPAIGN)
    loaded = load_campaign_file(path, conf)
    assert loaded.send_date == date(2026, 11, 2)
    assert loaded.selection == SelectionConf(top_n=100, min_score=None)
    assert loaded.frequency_cap == FrequencyCapConf(3, 2, "all")
    assert loaded.priority == 100 and loaded.source_file == str(path)


@pytest.mark.parametrize(
    ("edit", "error"),
    [
        (
            ("products: 3", "products: 3\naudience_size: 4"),
            r"bad\.yaml: audience_size: unknown key",
        ),
        (("products: 3", "products: three"), r"bad\.yaml: products: expected an integer"),
        (
            ("products: 3", "products: 3\nsuppress_negative_review_days: 0"),
            r"bad\.yaml: suppress_negative_review_days: must be between 1 and 3650",
        ),
        (
            ("model: campaign_response\n", "model: campaign_response\nrank_by: uplift\n"),
            r"bad\.yaml: model: 'campaign_response' with rank_by: uplift; the uplift model is "
            r"'campaign_uplift'",
        ),
        (("model: campaign_response\n", "rank_by: lift\n"), r"bad\.yaml: rank_by: expected one"),
        (("channel: email", "channel: fax"), r"bad\.yaml: channel: expected one of email, sms"),
        (
            ("send_date: 2026-11-02", "send_date: 2026-13-02"),
            r"bad\.yaml: send_date: expected a date",
        ),
        (
            ("category: fashion", "category: toys"),
            r"bad\.yaml: category: the offer \(email, toys\) is not scored",
        ),
        (
            ("products: 3", "products: 11"),
            r"bad\.yaml: products: must be between 0 and recommendations\.k \(10\)",
        ),
        (
            ("selection: {top_n: 100}", "selection: {}"),
            r"bad\.yaml: selection: give top_n, min_score or both",
        ),
        (
            ("control_fraction: 0.1", "control_fraction: 1.5"),
            r"bad\.yaml: control_fraction: must be",
        ),
        (
            ("max_contacts_30d: 2", "max_contacts_30d: 0"),
            r"bad\.yaml: frequency_cap\.max_contacts_30d",
        ),
        (("id: CMP-TEST-email-fashion", "id: ../etc"), r"bad\.yaml: id: use letters"),
        # A final newline would name an export folder ("$" alone matches before it).
        (
            ("id: CMP-TEST-email-fashion", 'id: "CMP-TEST-email-fashion\\n"'),
            r"bad\.yaml: id: use letters",
        ),
        (
            ("selection: {top_n: 100}", "selection: {top_n: 1000000000000}"),
            r"bad\.yaml: selection\.top_n: must be between 1 and 100,000,000",
        ),
        (
            ("products: 3", "products: 3\npriority: 10000000000000000000000000000000000000000"),
            r"bad\.yaml: priority: must be between -1,000,000 and 1,000,000",
        ),
        (
            ("min_days_since_last_contact: 3", "min_days_since_last_contact: 99999"),
            r"bad\.yaml: frequency_cap\.min_days_since_last_contact: must be between 1 and 3650",
        ),
    ],
)
def test_campaign_file_errors_name_the_file_and_the_key(
    conf: Conf, tmp_path: Path, edit: tuple[str, str], error: str
) -> None:
    path = tmp_path / "bad.yaml"
    assert edit[0] in VALID_CAMPAIGN
    path.write_text(VALID_CAMPAIGN.replace(edit[0], edit[1]))
    with pytest.raises(ConfigError, match=error):
        load_campaign_file(path, conf)


def test_rank_by_picks_the_model_whose_scores_rank_customers(conf: Conf, tmp_path: Path) -> None:
    path = tmp_path / "uplift.yaml"
    path.write_text(
        VALID_CAMPAIGN.replace("model: campaign_response\n", "rank_by: uplift\n").replace(
            "selection: {top_n: 100}", "selection: {top_n: 100, min_score: 0.0}"
        )
    )
    ranked = load_campaign_file(path, conf)
    assert (ranked.rank_by, ranked.model) == ("uplift", conf.response_model.uplift_name)
    assert ranked.selection.min_score == 0.0
    path.write_text(VALID_CAMPAIGN.replace("model: campaign_response\n", ""))
    assert load_campaign_file(path, conf).model == conf.response_model.name
    response_only = dataclasses.replace(
        conf, response_model=dataclasses.replace(conf.response_model, objective="response")
    )
    path.write_text(VALID_CAMPAIGN.replace("model: campaign_response\n", "rank_by: uplift\n"))
    with pytest.raises(
        ConfigError, match=r"uplift\.yaml: rank_by: uplift needs response_model\.objective"
    ):
        load_campaign_file(path, response_only)


def test_duplicate_campaign_ids_and_build_order(conf: Conf, tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(
        VALID_CAMPAIGN.replace("send_date: 2026-11-02", "send_date: 2026-11-03")
    )
    (tmp_path / "b.yaml").write_text(
        VALID_CAMPAIGN.replace("CMP-TEST-email-fashion", "CMP-B") + "priority: 5\n"
    )
    (tmp_path / "c.yaml").write_text(VALID_CAMPAIGN.replace("CMP-TEST-email-fashion", "CMP-C"))
    assert [x.id for x in load_campaigns(conf, tmp_path)] == [
        "CMP-B",
        "CMP-C",
        "CMP-TEST-email-fashion",
    ]
    (tmp_path / "d.yaml").write_text(VALID_CAMPAIGN)
    with pytest.raises(
        ConfigError,
        match=r"d\.yaml: id: campaign 'CMP-TEST-email-fashion' is also defined in .*a\.yaml",
    ):
        load_campaigns(conf, tmp_path)


def test_the_shipped_campaigns_are_valid(conf: Conf) -> None:
    shipped = load_campaigns(conf)
    assert len(shipped) >= 2
    assert {x.channel for x in shipped} >= {"email", "sms"}


def test_due_campaigns_are_those_sending_within_the_lead_window() -> None:
    first, second, later = (
        campaign(id="A", send_date=date(2026, 11, 1)),
        campaign(id="B"),
        campaign(id="C", send_date=date(2026, 11, 9)),
    )
    everything = [first, second, later]
    assert due_campaigns(everything, date(2026, 10, 31), 2) == [first, second]
    assert due_campaigns(everything, date(2026, 10, 31), 1) == [first]
    assert due_campaigns(everything, date(2026, 10, 31), 1, "C") == [later]
    with pytest.raises(
        ConfigError,
        match=r"send_date: 2026-11-01 is not after the run date 2026-11-01; build it with "
        r"--date 2026-10-31",
    ):
        due_campaigns(everything, date(2026, 11, 1), 3, "A")
    with pytest.raises(ConfigError, match=r"--campaign Z: no such campaign \(known: A, B, C\)"):
        due_campaigns(everything, date(2026, 10, 31), 3, "Z")


def test_eligibility_is_checked_against_the_schema_before_reading(spark: SparkSession) -> None:
    schema = build.eligibility_schema(FEATURE_SCHEMA, SEGMENT_SCHEMA)
    good = campaign(
        eligibility="affinity_fashion > 0.2 AND rfm_segment = 'loyal'", source_file="x.yaml"
    )
    check_eligibility(spark, good, schema)
    typo = dataclasses.replace(good, eligibility="affinty_fashion > 0.2")
    with pytest.raises(
        ConfigError,
        match=r"x\.yaml: eligibility: unknown column `affinty_fashion` "
        r"\(did you mean .*`affinity_fashion`",
    ):
        check_eligibility(spark, typo, schema)
    with pytest.raises(
        ConfigError, match=r"x\.yaml: eligibility: must be a boolean expression, got bigint"
    ):
        check_eligibility(spark, dataclasses.replace(good, eligibility="orders_30d + 1"), schema)
    with pytest.raises(ConfigError, match=r"x\.yaml: eligibility: not a Spark SQL expression"):
        check_eligibility(spark, dataclasses.replace(good, eligibility="orders_30d >"), schema)


UNSAFE_ELIGIBILITY = {
    # The expression of the security report: a native library load and a file read.
    "(reflect('java.lang.System','load','/tmp/libx.so') is null OR tenure_days >= 0) AND "
    "exists(select 1 from text.`/etc/passwd` where value like 'root:%')": "'reflect'",
    "java_method('java.lang.System', 'getenv', 'HOME') = 'x'": "'java_method'",
    "tenure_days > (select max(tenure_days) from parquet.`/tmp/x`)": "a subquery",
    "exists(select 1 from text.`/etc/passwd`)": r"a subquery \(EXISTS\)",
    "tenure_days IN (select 1)": r"a subquery \(IN \(SELECT",
    "my_catalog.my_udf(tenure_days) > 1": "'my_catalog.my_udf'",
    "exists(array(1), x -> x > 0)": "'exists'",
    "rand() > 0.5": "'rand'",
    "count(tenure_days) > 1": "'count'",
}


@pytest.mark.parametrize("expression, offender", list(UNSAFE_ELIGIBILITY.items()))
def test_eligibility_outside_the_safe_language_is_refused_naming_file_key_and_function(
    spark: SparkSession, expression: str, offender: str
) -> None:
    schema = build.eligibility_schema(FEATURE_SCHEMA, SEGMENT_SCHEMA)
    unsafe = campaign(eligibility=expression, source_file="conf/campaigns/x.yaml")
    with pytest.raises(
        ConfigError, match=rf"conf/campaigns/x\.yaml: eligibility: .*{offender}.* not allowed"
    ):
        check_eligibility(spark, unsafe, schema)


def test_safe_eligibility_with_functions_operators_and_case_is_accepted(
    spark: SparkSession,
) -> None:
    schema = build.eligibility_schema(FEATURE_SCHEMA, SEGMENT_SCHEMA)
    safe = campaign(
        eligibility=(
            "coalesce(affinity_fashion, 0) * 2 >= 0.3 AND lower(rfm_segment) IN ('loyal', 'x') "
            "AND NOT (orders_30d BETWEEN 5 AND 9) AND CASE WHEN orders_30d > 1 THEN true "
            "ELSE abs(orders_30d - 1) < 2 END AND rfm_segment LIKE 'l%' "
            "AND CAST(orders_30d AS DOUBLE) IS NOT NULL"
        ),
        source_file="x.yaml",
    )
    check_eligibility(spark, safe, schema)


def test_a_campaign_naming_an_untrained_model_fails_with_file_and_key(
    spark: SparkSession, tmp_path: Path
) -> None:
    store = ModelStore(spark, str(tmp_path / "models"))
    with pytest.raises(ConfigError, match=r"y\.yaml: model: no trained model 'next_best_offer'"):
        check_models([campaign(model="next_best_offer", source_file="y.yaml")], store)

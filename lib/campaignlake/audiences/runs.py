"""The audiences' table I/O: for a date D, build every campaign that sends on D+1 …
D+``audiences.lead_days`` (or the one asked for) from the features, segments, scores and
recommendations of D, write its slice of ``gold/campaign_audiences``, its export CSV and
its audit summary."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.audiences import build
from campaignlake.audiences.campaigns import (
    Campaign,
    check_eligibility,
    check_models,
    due_campaigns,
    load_campaigns,
)
from campaignlake.audiences.exports import audit_path, csv_path, write_audit, write_single_csv
from campaignlake.config import Conf
from campaignlake.errors import CommitConflictError, MissingInputError
from campaignlake.hadoop_fs import HadoopFs
from campaignlake.models.registry import ModelStore
from campaignlake.pii import hmac_key_frame, resolve_hmac_key
from campaignlake.tables import SLICE_UNCHANGED, Tables, Txn, WriteResult, describe_writes

log = logging.getLogger(__name__)

#: The tables an audience is built from (their versions go into each audit summary).
INPUTS = (
    catalog.CUSTOMER_FEATURES,
    catalog.CUSTOMER_SEGMENTS,
    catalog.PROPENSITY_SCORES,
    catalog.RECOMMENDATIONS,
    catalog.CUSTOMERS,
    catalog.DELETION_REQUESTS,
    catalog.CAMPAIGN_CONTACTS,
    catalog.PRODUCTS,
)
#: The idempotency token of every audience write, versioned by the ``gold/campaign_audiences``
#: version the audience was built from: a build that read version V commits only while no
#: other build committed from V or later (Delta refuses or skips the second such commit).
AUDIENCES_TXN = "campaignlake.build_audiences"


@dataclass
class CampaignResult:
    """One campaign's audience: its funnel (the audit summary), export path and table write."""

    campaign: Campaign
    funnel: dict[str, Any]
    export_path: str
    write: WriteResult


@dataclass
class AudienceReport:
    """What one ``build_audiences`` run built."""

    as_of: date
    #: The first and last send dates the run builds.
    window: tuple[date, date]
    results: list[CampaignResult] = field(default_factory=list)

    def describe(self) -> str:
        """One line per campaign: the funnel, the write and the export."""
        if not self.results:
            start, end = self.window
            return f"build_audiences {self.as_of}: no campaign sends between {start} and {end}"
        lines = [f"build_audiences {self.as_of}:"]
        for result in self.results:
            funnel = result.funnel
            suppressed = ", ".join(f"{k} {v}" for k, v in funnel["suppressed"].items() if v)
            lines.append(
                f"  {result.campaign.id} ({result.campaign.channel}, sends "
                f"{result.campaign.send_date}): eligible {funnel['eligible']} → selected "
                f"{funnel['selected']} → suppressed {funnel['suppressed_total']}"
                f"{f' ({suppressed})' if suppressed else ''} → control {funnel['control']}, "
                f"exported {funnel['exported']}; "
                f"{describe_writes({catalog.CAMPAIGN_AUDIENCES: result.write})}; "
                f"{result.export_path}"
            )
        return "\n".join(lines)


def build_audiences(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    campaign_id: str | None = None,
) -> AudienceReport:
    """Build, write and export the audiences of the campaigns due after ``as_of``.

    Raises
    ------
    ConfigError
        When a due campaign's eligibility or model is invalid, or ``campaign_id`` is unknown.
    MissingInputError
        When an input table, or the features of ``as_of``, do not exist yet.
    """
    campaigns = load_campaigns(conf)
    due = due_campaigns(campaigns, as_of, conf.audiences.lead_days, campaign_id)
    report = AudienceReport(
        as_of=as_of,
        window=(as_of + timedelta(days=1), as_of + timedelta(days=conf.audiences.lead_days)),
    )
    if not due:
        return report
    schema = build.eligibility_schema(
        tables.spec(catalog.CUSTOMER_FEATURES).schema, tables.spec(catalog.CUSTOMER_SEGMENTS).schema
    )
    for campaign in due:
        check_eligibility(spark, campaign, schema)
    check_models(due, ModelStore(spark, conf.paths.models))
    tables.require(INPUTS, "campaign audiences")

    day = F.col(c.AS_OF_DATE) == F.lit(as_of)
    inputs = _Inputs(
        features=tables.read_day(catalog.CUSTOMER_FEATURES, c.AS_OF_DATE, as_of),
        segments=tables.read(catalog.CUSTOMER_SEGMENTS).where(day),
        scores=tables.read(catalog.PROPENSITY_SCORES).where(day),
        recommendations=tables.read(catalog.RECOMMENDATIONS).where(day),
        customers=tables.read(catalog.CUSTOMERS),
        deletion_requests=tables.read(catalog.DELETION_REQUESTS),
        contacts=tables.read(catalog.CAMPAIGN_CONTACTS),
        products=tables.read(catalog.PRODUCTS),
        reviews=tables.read_or_empty(catalog.REVIEWS),
        versions={key: tables.version(key) for key in INPUTS},
    )
    fs = HadoopFs(spark)
    key = hmac_key_frame(spark, resolve_hmac_key(conf.pii))
    for campaign in due:
        earlier = [cmp for cmp in campaigns if cmp.order_key < campaign.order_key]
        for _ in range(conf.storage.commit_retries + 1):
            result = _build_one(tables, fs, conf, inputs, campaign, earlier, as_of=as_of, key=key)
            if result is not None:
                break
            log.warning(
                "%s: another build_audiences committed to gold/campaign_audiences while this "
                "audience was built; building it again from the new state",
                campaign.id,
            )
        else:
            raise CommitConflictError(
                f"{campaign.source_file}: gold/campaign_audiences kept changing while the "
                f"audience of {campaign.id} was built ({conf.storage.commit_retries + 1} "
                "tries): nothing of it was written or exported; run build_audiences again"
            )
        report.results.append(result)
    return report


@dataclass(frozen=True)
class _Inputs:
    features: DataFrame
    segments: DataFrame
    scores: DataFrame
    recommendations: DataFrame
    customers: DataFrame
    deletion_requests: DataFrame
    contacts: DataFrame
    products: DataFrame
    reviews: DataFrame
    versions: dict[str, int]


def _earlier_audiences(
    tables: Tables, campaign: Campaign, earlier: list[Campaign], version: int | None
) -> DataFrame | None:
    """Audiences built for campaigns that come before ``campaign`` (any campaign sending on
    an earlier date, and the campaigns ordered before it on its own send date), as
    ``gold/campaign_audiences`` held them at ``version``."""
    if version is None:
        return None
    same_day = [cmp.id for cmp in earlier if cmp.send_date == campaign.send_date]
    start = campaign.send_date - timedelta(days=build.lookback_days(campaign))
    send = F.col(c.SEND_DATE)
    before = (send < F.lit(campaign.send_date)) & (send >= F.lit(start))
    if same_day:
        before = before | (
            (send == F.lit(campaign.send_date)) & F.col(c.CAMPAIGN_ID).isin(same_day)
        )
    return tables.read(catalog.CAMPAIGN_AUDIENCES, version=version).where(before)


def _build_one(
    tables: Tables,
    fs: HadoopFs,
    conf: Conf,
    inputs: _Inputs,
    campaign: Campaign,
    earlier: list[Campaign],
    *,
    as_of: date,
    key: DataFrame,
) -> CampaignResult | None:
    """Build, write and export one campaign's audience; ``None`` when another build committed
    to ``gold/campaign_audiences`` since this one read it (nothing was written: build again).
    The export and the funnel's groups are read back from the committed slice, so they are
    what the table holds, whatever was committed around it."""
    audiences = catalog.CAMPAIGN_AUDIENCES
    read_version = tables.version(audiences) if tables.exists(audiences) else None
    offer = (
        (F.col(c.MODEL_NAME) == F.lit(campaign.model))
        & (F.col(c.CHANNEL) == F.lit(campaign.channel))
        & (F.col(c.CATEGORY) == F.lit(campaign.category))
    )
    scores = inputs.scores.where(offer)
    model_versions = [row[0] for row in scores.select(c.MODEL_VERSION).distinct().take(2)]
    if len(model_versions) != 1:
        raise MissingInputError(
            f"{campaign.source_file}: gold/propensity_scores has no scores of model "
            f"{campaign.model!r} for ({campaign.channel}, {campaign.category}) on {as_of}: run "
            f"score_customers --date {as_of} first"
        )
    eligible = build.eligible_customers(
        inputs.features, inputs.segments, campaign.eligibility
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        history = build.contact_history(
            inputs.contacts, _earlier_audiences(tables, campaign, earlier, read_version)
        )
        annotated = (
            build.selected_customers(eligible, scores, campaign.selection)
            .transform(
                lambda df: build.with_products(df, inputs.recommendations, campaign.products)
            )
            .transform(
                lambda df: build.with_suppression_reasons(
                    df,
                    inputs.customers,
                    inputs.deletion_requests,
                    build.contact_pressure(history, campaign),
                    campaign=campaign,
                    phone_pattern=conf.audiences.phone_pattern,
                    reviews=inputs.reviews,
                )
            )
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        eligible_count = eligible.count()
        reasons = dict(annotated.groupBy(c.SUPPRESSION_REASON).count().collect())
    finally:
        eligible.unpersist()
    try:
        contactable = annotated.where(F.col(c.SUPPRESSION_REASON).isNull())
        audience = build.audience_rows(
            build.with_groups(contactable, campaign.id, campaign.control_fraction),
            campaign,
            model_version=model_versions[0],
            as_of=as_of,
        ).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            slice_predicate = (
                f"{c.CAMPAIGN_ID} = '{campaign.id}' AND "
                f"{c.SEND_DATE} = DATE'{campaign.send_date.isoformat()}'"
            )
            txn = Txn(AUDIENCES_TXN, 0 if read_version is None else read_version + 1)
            write = tables.replace_slice(audiences, audience, slice_predicate, txn=txn)
        finally:
            audience.unpersist()
    finally:
        annotated.unpersist()
    if not write.committed and write.skipped_reason != SLICE_UNCHANGED:
        return None
    committed = (
        tables.read(audiences, version=write.version)
        .where(slice_predicate)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        groups = dict(committed.groupBy(c.GROUP).count().collect())
        export_path = csv_path(conf.paths.exports, campaign)
        rows = build.export_rows(
            committed.where(F.col(c.GROUP) == F.lit(build.TREATMENT)),
            inputs.customers,
            inputs.products,
            channel=campaign.channel,
            product_count=campaign.products,
            key=key,
        )
        write_single_csv(rows, export_path, fs, order_by=c.RANK)
    finally:
        committed.unpersist()
    funnel = _funnel(
        campaign, eligible_count, reasons, groups, model_versions[0], as_of, inputs.versions
    )
    write_audit(audit_path(conf.paths.exports, campaign), funnel, fs)
    return CampaignResult(campaign=campaign, funnel=funnel, export_path=export_path, write=write)


def _funnel(
    campaign: Campaign,
    eligible: int,
    reasons: dict[str | None, int],
    groups: dict[str, int],
    model_version: str,
    as_of: date,
    input_versions: dict[str, int],
) -> dict[str, Any]:
    suppressed = {reason: int(reasons.get(reason, 0)) for reason in build.SUPPRESSION_REASONS}
    audience = sum(groups.values())
    control = int(groups.get(build.CONTROL, 0))
    return {
        "campaign_id": campaign.id,
        "name": campaign.name,
        "channel": campaign.channel,
        "category": campaign.category,
        "send_date": campaign.send_date.isoformat(),
        "as_of_date": as_of.isoformat(),
        "model": {"name": campaign.model, "version": model_version},
        "eligible": eligible,
        "selected": int(sum(reasons.values())),
        "suppressed": suppressed,
        "suppressed_total": sum(suppressed.values()),
        "audience": audience,
        "control": control,
        "treatment": int(groups.get(build.TREATMENT, 0)),
        # Every treatment row is exported: suppression has already required an address.
        "exported": int(groups.get(build.TREATMENT, 0)),
        "control_fraction": campaign.control_fraction,
        "control_share": round(control / audience, 6) if audience else 0.0,
        "input_table_versions": input_versions,
    }

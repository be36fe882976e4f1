"""The report's table I/O: gather small aggregates of a run (table volumes, quarantine reasons,
model metrics, segment sizes, audience funnels) and write ``paths.reports/<date>/report.html``.
Only aggregates reach the driver."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.audiences.campaigns import due_campaigns, load_campaigns
from campaignlake.audiences.exports import audit_path, read_audit
from campaignlake.config import Conf
from campaignlake.hadoop_fs import HadoopFs
from campaignlake.measurement.lift import ALL
from campaignlake.models.evaluation import LOGISTIC_BASELINE, MODEL, RECENCY_RULE, VALIDATION
from campaignlake.models.tracking import champion_version, log_report
from campaignlake.models.uplift import RANDOM_RANKER, RESPONSE_RANKER
from campaignlake.recommend.evaluation import HOLDOUT, POPULARITY_BASELINE, WITH_COLD_START
from campaignlake.report.html import ReportData, render
from campaignlake.streaming.triggers import funnel_by_rule
from campaignlake.tables import Tables
from campaignlake.text.mining import ALL_DOCUMENTS, CHOSEN_K, PERPLEXITY_OF_K

REPORT_FILE = "report.html"
VOLUME_TABLES = (
    catalog.CLICKSTREAM_EVENTS,
    catalog.CUSTOMERS,
    catalog.PRODUCTS,
    catalog.REVIEWS,
    catalog.CAMPAIGN_CONTACTS,
    catalog.DELETION_REQUESTS,
    catalog.CUSTOMER_FEATURES,
    catalog.RECOMMENDATIONS,
    catalog.CAMPAIGN_AUDIENCES,
)
QUARANTINE_TABLES = (
    catalog.CLICKSTREAM_QUARANTINE,
    catalog.CUSTOMERS_QUARANTINE,
    catalog.PRODUCTS_QUARANTINE,
    catalog.REVIEWS_QUARANTINE,
    catalog.CAMPAIGN_CONTACTS_QUARANTINE,
)
_IMPORTANCE = "importance."


@dataclass
class ReportResult:
    """The report written and the numbers it shows."""

    as_of: date
    path: str
    data: ReportData
    #: The MLflow run the report was logged to as an artifact (None with tracking off).
    mlflow_run_id: str | None = None

    def describe(self) -> str:
        """Where the report is and what it covers."""
        logged = f"; MLflow run {self.mlflow_run_id}" if self.mlflow_run_id else ""
        return (
            f"build_report {self.as_of}: {self.path} ({len(self.data.funnels)} campaign "
            f"funnels, {len(self.data.volumes)} tables){logged}"
        )


def gather(spark: SparkSession, conf: Conf, tables: Tables, as_of: date) -> ReportData:
    """The report's numbers for ``as_of`` from the warehouse and the audit summaries."""
    data = ReportData(as_of=as_of.isoformat())
    for key in VOLUME_TABLES:
        if tables.exists(key):
            frame = tables.read(key)
            if c.AS_OF_DATE in frame.columns:
                frame = frame.where(F.col(c.AS_OF_DATE) == F.lit(as_of))
            data.volumes[key] = frame.count()
    for key in QUARANTINE_TABLES:
        if tables.exists(key):
            for reason, rows in tables.read(key).groupBy(c.REASON).count().collect():
                data.quarantine[(key, reason)] = rows
    if tables.exists(catalog.MODEL_METRICS):
        _model_metrics(tables, conf, data)
    if tables.exists(catalog.CUSTOMER_SEGMENTS):
        segments = tables.read(catalog.CUSTOMER_SEGMENTS).where(F.col(c.AS_OF_DATE) == F.lit(as_of))
        data.rfm_segments = dict(segments.groupBy(c.RFM_SEGMENT).count().collect())
        data.behaviour_segments = {
            f"cluster {k}": v for k, v in segments.groupBy(c.BEHAVIOUR_SEGMENT).count().collect()
        }
    if tables.exists(catalog.TRIGGER_EVENTS):
        fired = tables.read(catalog.TRIGGER_EVENTS).where(F.col(c.FIRED_DATE) == F.lit(as_of))
        data.trigger_funnels = funnel_by_rule(fired)
    if tables.exists(catalog.CAMPAIGN_RESULTS):
        results = tables.read(catalog.CAMPAIGN_RESULTS).where(F.col(c.AS_OF_DATE) == F.lit(as_of))
        # A few rows per campaign: its breakdown cells.
        rows = [r.asDict() for r in results.collect()]
        data.campaign_results = sorted(
            rows, key=lambda r: (r[c.BREAKDOWN] != ALL, r[c.CAMPAIGN_ID], r[c.BREAKDOWN],
                                 r[c.BREAKDOWN_VALUE])
        )  # fmt: skip
    fs = HadoopFs(spark)
    for campaign in due_campaigns(load_campaigns(conf), as_of, conf.audiences.lead_days):
        path = audit_path(conf.paths.exports, campaign)
        if fs.exists(path):
            data.funnels.append(read_audit(path, fs))
    return data


def _model_metrics(tables: Tables, conf: Conf, data: ReportData) -> None:
    """The serving version's metrics of the response model, the recommender and the uplift
    model and the text models (the registry's champion, or the latest version without a
    registry)."""
    response = conf.response_model.name
    recommender = conf.recommendations.model_name
    uplift = conf.response_model.uplift_name
    topics, sentiment = conf.text.model_name, conf.text.sentiment_model_name
    variants = {
        response: response, f"{response}.{LOGISTIC_BASELINE}": response,
        f"{response}.{RECENCY_RULE}": response, recommender: recommender,
        f"{recommender}.{POPULARITY_BASELINE}": recommender,
        f"{recommender}.{WITH_COLD_START}": recommender, uplift: uplift,
        f"{uplift}.{RESPONSE_RANKER}": uplift, f"{uplift}.{RANDOM_RANKER}": uplift,
        topics: topics, sentiment: sentiment,
    }  # fmt: skip
    metrics = tables.read(catalog.MODEL_METRICS).where(F.col(c.MODEL_NAME).isin(list(variants)))
    latest = dict(
        metrics.groupBy(c.MODEL_NAME)
        .agg(F.max_by(c.MODEL_VERSION, F.expr(f"int(substr({c.MODEL_VERSION}, 2))")))
        .collect()
    )
    for model in (response, recommender, uplift, topics):
        serving = champion_version(conf, model) or latest.get(model)
        if serving is not None:
            data.model_versions[model] = serving
    # The sentiment classifier is saved with the text models, under their version.
    if topics in data.model_versions:
        data.model_versions[sentiment] = data.model_versions[topics]
    wanted = F.lit(False)
    for name, owner in variants.items():
        if owner in data.model_versions:
            wanted = wanted | (
                (F.col(c.MODEL_NAME) == F.lit(name))
                & (F.col(c.MODEL_VERSION) == F.lit(data.model_versions[owner]))
            )
    splits = (VALIDATION, HOLDOUT, MODEL, ALL_DOCUMENTS)
    rows = metrics.where(wanted & F.col(c.SPLIT).isin(*splits)).collect()
    for row in rows:
        owner = variants[row[c.MODEL_NAME]]
        name, split, metric, value = row[c.MODEL_NAME], row[c.SPLIT], row[c.METRIC], row[c.VALUE]
        if owner == response and split == VALIDATION:
            data.response_metrics.setdefault(name, {})[metric] = value
        elif owner == response and split == MODEL and metric.startswith(_IMPORTANCE):
            data.importances[metric[len(_IMPORTANCE) :]] = value
        elif owner == recommender and split == HOLDOUT:
            data.ranking_metrics.setdefault(name, {})[metric] = value
        elif owner == uplift and split == VALIDATION:
            data.uplift_metrics.setdefault(name, {})[metric] = value
        elif owner == topics and metric.startswith(PERPLEXITY_OF_K):
            data.topic_perplexity[int(metric[len(PERPLEXITY_OF_K) :])] = value
        elif owner == topics and metric == CHOSEN_K:
            data.chosen_topics = int(value)
        elif owner == sentiment and split == HOLDOUT:
            data.sentiment_metrics[metric] = value


def build_report(spark: SparkSession, conf: Conf, tables: Tables, *, as_of: date) -> ReportResult:
    """Write the HTML report of the run for ``as_of``."""
    data = gather(spark, conf, tables, as_of)
    path = f"{conf.paths.reports.rstrip('/')}/{as_of.isoformat()}/{REPORT_FILE}"
    html = render(data)
    HadoopFs(spark).write_text(path, html)
    run_id = log_report(conf, as_of, html)
    return ReportResult(as_of=as_of, path=path, data=data, mlflow_run_id=run_id)

"""Every job, declared once: its name, the function it runs, its run date and its own flags.

The command line (``campaignlake <job>`` and ``spark-submit jobs/run.py <job>``), the stages
of ``run_pipeline`` and the deployment checks (every Databricks task names a job declared
here) are all derived from :data:`JOBS`. Adding a job is one :class:`Job` here, its function
in its package's ``runs`` module, and its documentation.
"""

from __future__ import annotations

from datetime import date

from pyspark.sql import SparkSession

from campaignlake.audiences.runs import build_audiences
from campaignlake.config import Conf
from campaignlake.erasure.runs import erase_customers
from campaignlake.features.runs import build_features
from campaignlake.ingest.runs import (
    ingest_campaigns,
    ingest_clickstream,
    ingest_crm,
    ingest_products,
    ingest_reviews,
)
from campaignlake.jobs.job import Flag, Job, RunDate
from campaignlake.jobs.pipeline import PipelineReport, run_stages
from campaignlake.maintenance.runs import vacuum_tables
from campaignlake.measurement.runs import measure_campaigns
from campaignlake.models.runs import score_customers, train_response_model, train_uplift_model
from campaignlake.recommend.runs import recommend, train_recommender
from campaignlake.report.runs import build_report
from campaignlake.sample.generator import generate_sample
from campaignlake.streaming.runs import stream_clickstream, stream_demo, stream_triggers
from campaignlake.tables import Tables
from campaignlake.text.runs import build_text_features, train_text_models

MODEL_VERSION = Flag(
    "--model-version", "model_version", "use this saved version (vN) instead of the latest"
)
_SAMPLE_FLAGS = (
    Flag("--seed", "seed", "random seed (default: conf)", {"type": int}),
    Flag("--customers", "customers", "number of customers", {"type": int}),
    Flag("--products", "products", "number of products", {"type": int}),
    Flag("--days", "days", "days of clickstream", {"type": int}),
    Flag(
        "--sessions-per-week",
        "sessions_per_customer_per_week",
        "activity per customer",
        {"type": float},
    ),
    Flag("--bad-record-rate", "bad_record_rate", "share of broken records", {"type": float}),
    Flag("--landing", "landing", "write here instead of paths.landing"),
    Flag("--if-missing", "if_missing", "do nothing if landing has data", {"action": "store_true"}),
)

#: The jobs, in the order ``run_pipeline`` runs those with a stage.
_JOBS: tuple[Job, ...] = (
    Job(
        "generate_sample",
        generate_sample,
        "Generate the sample raw exports (clickstream, CRM, products, campaign history) into "
        "the landing directory; deterministic for a seed.",
        date=RunDate.OPTIONAL,
        flags=_SAMPLE_FLAGS,
        session=False,
    ),
    Job(
        "ingest_products",
        ingest_products,
        "Ingest new product catalogue exports into silver/products.",
        date=RunDate.OPTIONAL,
        stage="ingest",
    ),
    Job(
        "ingest_crm",
        ingest_crm,
        "Ingest new CRM exports into silver/customers and deletion requests into "
        "silver/deletion_requests.",
        date=RunDate.OPTIONAL,
        stage="ingest",
    ),
    Job(
        "ingest_campaigns",
        ingest_campaigns,
        "Ingest new campaign history exports into silver/campaign_contacts.",
        date=RunDate.OPTIONAL,
        stage="ingest",
    ),
    Job(
        "ingest_reviews",
        ingest_reviews,
        "Ingest new product review exports into silver/reviews (e-mail addresses and phone "
        "numbers in the text masked).",
        date=RunDate.OPTIONAL,
        stage="ingest",
    ),
    Job(
        "ingest_clickstream",
        ingest_clickstream,
        "Ingest new clickstream JSON-lines files into bronze/clickstream_events.",
        date=RunDate.OPTIONAL,
        stage="ingest",
    ),
    Job(
        "erase_customers",
        erase_customers,
        "Carry out the deletion requests past their grace period: delete the customers' rows "
        "from every table, quarantine and export, vacuum the older versions that hold them, "
        "and record each erasure (by key hash) in meta/erasures.",
        # Before anything is computed from the data: an erased customer gets no features,
        # scores, recommendations or audience rows in the same run.
        stage="erase",
    ),
    Job(
        "train_text_models",
        train_text_models,
        "Fit the text models on product descriptions and reviews up to a date (terms, LDA "
        "topics with k by held-out perplexity and ids aligned to the champion's, Word2Vec, "
        "review sentiment) and save a new version, through the champion gate.",
        # Before the daily text job, which applies the version in service.
        stage="text",
        trains=lambda conf: conf.text.model_name,
    ),
    Job(
        "build_text_features",
        build_text_features,
        "Apply the text model in service (or the one the date was built with) to the catalogue "
        "and reviews: gold/product_topics for the date, gold/review_sentiment of the version "
        "and the text neighbours of every product in gold/similar_products (method content).",
        flags=(MODEL_VERSION,),
        # Before the features (topic affinity, review sentiment) and the recommender (the
        # cold-start source reads the text neighbours).
        stage="text",
    ),
    Job(
        "build_features",
        build_features,
        "Compute gold/customer_features and gold/customer_segments for a date.",
        stage="features",
    ),
    Job(
        "train_response_model",
        train_response_model,
        "Train, evaluate and save a new version of the campaign-response model.",
        stage="train",
        trains=lambda conf: conf.response_model.name,
    ),
    Job(
        "train_uplift_model",
        train_uplift_model,
        "Train the uplift model on past campaigns' treatment and control groups and compare "
        "its Qini with the response model's (response_model.objective: uplift).",
        stage="train",
        trains=lambda conf: conf.response_model.uplift_name,
    ),
    Job(
        "score_customers",
        score_customers,
        "Score every customer's features of a date with the response model into "
        "gold/propensity_scores.",
        flags=(MODEL_VERSION,),
        stage="score",
    ),
    Job(
        "train_recommender",
        train_recommender,
        "Choose ALS parameters on a chronological holdout and save a new recommender version.",
        stage="train",
        trains=lambda conf: conf.recommendations.model_name,
    ),
    Job(
        "recommend",
        recommend,
        "Write exactly k recommendations for every customer, and similar products, for a date.",
        flags=(MODEL_VERSION,),
        stage="recommend",
    ),
    Job(
        "build_audiences",
        build_audiences,
        "Build the audiences of the campaigns sending after a date (conf/campaigns/*.yaml) "
        "into gold/campaign_audiences, with one export CSV and one audit summary per campaign.",
        flags=(
            Flag(
                "--campaign", "campaign_id", "build only this campaign (it must send after --date)"
            ),
        ),
        stage="audiences",
    ),
    Job(
        "measure_campaigns",
        measure_campaigns,
        "Measure every campaign whose attribution window closed by a date: treatment against "
        "control, conversion and revenue lift with intervals, into gold/campaign_results.",
        stage="measure",
    ),
    Job(
        "build_report",
        build_report,
        "Write the static HTML report of the run for a date.",
        stage="report",
    ),
    Job(
        "stream_clickstream",
        stream_clickstream,
        "Ingest the clickstream landing folder as a Structured Streaming file source into "
        "bronze/clickstream_events, exactly once (checkpoint under paths.checkpoints): every "
        "new file, then stop; with --continuous, until stopped.",
        date=RunDate.NONE,
        flags=(
            Flag(
                "--continuous",
                "continuous",
                "keep running, one micro-batch every streaming.trigger_seconds",
                {"action": "store_true"},
            ),
        ),
    ),
    Job(
        "stream_triggers",
        stream_triggers,
        "Run the trigger rules (conf/triggers/*.yaml) over bronze/clickstream_events as a "
        "stream: cart and browse abandonment and post-purchase messages, consent-checked, "
        "capped and split, into gold/trigger_events exactly once and to the outbox; until "
        "stopped, or with --available-now what is there, then stop.",
        date=RunDate.NONE,
        flags=(
            Flag(
                "--available-now",
                "available_now",
                "process the events not yet seen, then stop (tests, scheduled runs)",
                {"action": "store_true"},
            ),
        ),
    ),
    Job(
        "stream_demo",
        stream_demo,
        "Replay bronze's last day of clickstream into the landing folder as a live feed (new "
        "event ids, one file per slice of the day) while stream_clickstream and "
        "stream_triggers run, and show the triggers' funnel per rule (make stream-demo).",
        date=RunDate.NONE,
        flags=(
            Flag("--seconds", "seconds", "how long the feed lasts", {"type": int, "default": 60}),
        ),
    ),
    Job(
        "vacuum_tables",
        vacuum_tables,
        "Vacuum every table past storage.vacuum_retention_hours: removes the files of older "
        "versions and of writes that crashed before their commit.",
        date=RunDate.NONE,
    ),
)

#: The pipeline's stages, in order (``run_pipeline --from-stage``).
STAGES: tuple[str, ...] = tuple(dict.fromkeys(job.stage for job in _JOBS if job.stage))
#: The stages that take in what is new (landing files, due deletion requests): a rerun always
#: runs them; the later ones only when something changed since the date's last complete run.
INTAKE_STAGES: tuple[str, ...] = ("ingest", "erase")


def _run_pipeline(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date | None,
    from_stage: str,
    retrain: bool,
    recompute: bool,
) -> PipelineReport:
    return run_stages(
        [job for job in _JOBS if job.stage], spark, conf, tables,
        as_of=as_of, from_stage=from_stage, retrain=retrain, stages=STAGES,
        intake=INTAKE_STAGES, recompute=recompute,
    )  # fmt: skip


#: Every job: the ones above and ``run_pipeline``.
JOBS: tuple[Job, ...] = (
    *_JOBS,
    Job(
        "run_pipeline",
        _run_pipeline,
        "Run the pipeline end to end for a date: sample data if there is none (local runs), "
        "then every stage in order, printing what each job did and how long it took. Training "
        "jobs run only when their model has no version yet, or with --retrain.",
        date=RunDate.OPTIONAL,
        flags=(
            Flag(
                "--from-stage",
                "from_stage",
                "start at this stage; the earlier stages' tables must exist (default: ingest)",
                {"choices": STAGES, "default": STAGES[0]},
            ),
            Flag(
                "--retrain",
                "retrain",
                "train new versions of the text models, the response and uplift models and the "
                "recommender",
                {"action": "store_true"},
            ),
            Flag(
                "--recompute",
                "recompute",
                "run every stage even when nothing changed since the date's last complete run",
                {"action": "store_true"},
            ),
        ),
    ),
)


def job_named(name: str) -> Job:
    """The declared job called ``name``.

    Raises
    ------
    KeyError
        When no job has that name.
    """
    for job in JOBS:
        if job.name == name:
            return job
    raise KeyError(name)

"""The text jobs' table I/O.

``train_text_models`` fits the term pipeline, the LDA topic model (k by held-out
log-perplexity, topic ids aligned to the champion's), Word2Vec and the review sentiment
classifier on the catalogue's descriptions and the reviews written before the date, and saves
them as one new model version (metrics once per version in ``gold/model_metrics``, an MLflow
run, the champion gate on the sentiment classifier's held-out ROC AUC).

``build_text_features`` applies one saved version: ``gold/product_topics`` for the date, the
review sentiment of that version in ``gold/review_sentiment`` and the text neighbours of every
product in ``gold/similar_products`` (method ``content``). The same inputs and the same version
give the same rows, so a rerun commits nothing; a date keeps the version it was first built
with (point in time), unless ``--model-version`` says otherwise."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyspark
from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.ml.clustering import LDAModel
from pyspark.ml.feature import CountVectorizerModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.errors import ModelNotFoundError
from campaignlake.feature_set import cutoff_of
from campaignlake.frames import in_schema, metrics_rows
from campaignlake.models.promotion import Promotion, describe_promotion
from campaignlake.models.registry import ModelStore, StoredModel
from campaignlake.models.tracking import champion_version, log_training_run, register_version
from campaignlake.recommend.als import similar_by_vectors
from campaignlake.recommend.evaluation import HOLDOUT
from campaignlake.tables import Tables, Txn, WriteResult, describe_writes
from campaignlake.text import mining

#: Positions in the saved text pipeline: the term stages, then LDA, then Word2Vec.
_VOCABULARY_STAGE, _LDA_STAGE, _WORD2VEC_STAGE = 2, 4, 5
#: ``gold/model_metrics``: the smallest similarity of a topic to the champion's topic whose
#: id it took (1: the same topics; low: a topic changed meaning).
TOPIC_MATCH_MIN = "topic_match_min"
CHAMPION_SPLIT = "champion"
#: What the champion gate compares: the sentiment classifier on held-out reviews.
GATE_METRIC = "sentiment_roc_auc"


@dataclass
class TextTrainingReport:
    """What one ``train_text_models`` run fitted, measured and saved."""

    as_of: date
    model_version: str = ""
    products: int = 0
    reviews: int = 0
    vocabulary: int = 0
    topics_k: int = 0
    perplexities: dict[int, float] = field(default_factory=dict)
    #: The stable id of each of the model's topics, in its order.
    topic_ids: tuple[int, ...] = ()
    #: The smallest similarity of a topic to the champion topic whose id it took (nan: none).
    topic_match_min: float = float("nan")
    embedding_words: int = 0
    sentiment: dict[str, float] = field(default_factory=dict)
    #: Why no sentiment model was trained (empty when one was).
    sentiment_skipped: str = ""
    #: The champion gate's decision (None with tracking off: the latest version serves).
    promotion: Promotion | None = None

    def describe(self) -> str:
        """The corpus, each model's numbers and the champion gate's decision."""
        perplexity = ", ".join(f"k={k}: {v:.3f}" for k, v in self.perplexities.items())
        if self.sentiment_skipped:
            sentiment = f"not trained ({self.sentiment_skipped})"
        else:
            s = self.sentiment
            sentiment = (
                f"ROC AUC {s['roc_auc']:.3f}, PR AUC {s['pr_auc']:.3f} on "
                f"{int(s['test_rows'])} held-out reviews ({int(s['train_rows'])} trained on)"
            )
        aligned = (
            "ids in the model's order (no champion to align to)"
            if math.isnan(self.topic_match_min)
            else f"ids aligned to the champion's topics (smallest match {self.topic_match_min:.2f})"
        )
        return "\n".join(
            [
                f"train_text_models {self.as_of}: {self.model_version}, {self.products} "
                f"products, {self.reviews} reviews, {self.vocabulary} terms",
                f"   LDA: k={self.topics_k} (held-out log-perplexity {perplexity}); {aligned}",
                f"   Word2Vec: {self.embedding_words} words embedded",
                f"   sentiment: {sentiment}",
                f"   champion gate: {describe_promotion(self.promotion)}",
            ]
        )


@dataclass
class TextReport:
    """What one ``build_text_features`` run applied and wrote."""

    as_of: date
    model_version: str
    products: int = 0
    reviews: int = 0
    writes: dict[str, WriteResult] = field(default_factory=dict)

    def describe(self) -> str:
        """The model version, the corpus and the writes, in one line."""
        return (
            f"build_text_features {self.as_of}: {self.model_version} applied to "
            f"{self.products} products and {self.reviews} reviews; "
            f"tables: {describe_writes(self.writes)}"
        )


def usable_reviews(tables: Tables, as_of: date) -> DataFrame:
    """The reviews written before the end of ``as_of``, without those of customers who asked
    to be erased (their words train nothing, whether or not the erasure has run yet)."""
    reviews = tables.read_or_empty(catalog.REVIEWS).where(
        F.col(c.CREATED_AT) < F.lit(cutoff_of(as_of))
    )
    if not tables.exists(catalog.DELETION_REQUESTS):
        return reviews
    erased = tables.read(catalog.DELETION_REQUESTS).select(c.CUSTOMER_ID)
    return reviews.join(erased, on=c.CUSTOMER_ID, how="left_anti")


def _corpus(tables: Tables, as_of: date) -> tuple[DataFrame, DataFrame, DataFrame]:
    """The catalogue, the usable reviews and their documents (products' and reviews')."""
    tables.require((catalog.PRODUCTS,), "text features")
    products = tables.read(catalog.PRODUCTS)
    reviews = usable_reviews(tables, as_of)
    documents = mining.product_documents(products).unionByName(mining.review_documents(reviews))
    return products, reviews, documents


def _review_terms(terms: DataFrame, reviews: DataFrame) -> DataFrame:
    """The review documents' terms with the review's customer, product, rating and time."""
    return terms.where(F.col(mining.DOC_KIND) == mining.REVIEW_DOC).join(
        reviews.select(
            F.col(c.REVIEW_ID).alias(mining.DOC_ID),
            c.CUSTOMER_ID, c.PRODUCT_ID, c.RATING, c.CREATED_AT,
        ),
        on=mining.DOC_ID,
        how="inner",
    )  # fmt: skip


def _champion_topics(
    store: ModelStore, name: str, champion: str | None
) -> tuple[dict[str, Any] | None, tuple[int, ...]]:
    """The serving text model's topic-term weights and stable topic ids (None: no model)."""
    if champion is None:
        return None, ()
    try:
        stored = store.load(name, champion)
    except ModelNotFoundError:
        return None, ()
    stages = stored.pipeline.stages
    vocabulary = stages[_VOCABULARY_STAGE].vocabulary  # type: ignore[attr-defined]
    lda: LDAModel = stages[_LDA_STAGE]  # type: ignore[assignment]
    ids = tuple(stored.metadata.get("topic_ids") or range(lda.getK()))
    return mining.topic_term_weights(lda, vocabulary), ids


def _champion_sentiment(
    store: ModelStore, conf: Conf, champion: str | None, review_docs: DataFrame
) -> tuple[float | None, str]:
    """The champion's sentiment classifier's ROC AUC on this run's held-out reviews, or why
    it cannot be measured."""
    if champion is None:
        return None, ""
    try:
        classifier = store.load(conf.text.sentiment_model_name, champion).pipeline
    except ModelNotFoundError:
        return None, f"{champion} has no sentiment classifier"
    return mining.held_out_sentiment_auc(classifier, review_docs, conf.text), ""


def train_text_models(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    now: datetime | None = None,
) -> TextTrainingReport:
    """Fit the text models on the catalogue and the reviews up to ``as_of`` and save them as a
    new version of ``text.model_name`` (and ``text.sentiment_model_name``), its topic ids
    aligned to the champion's.

    Raises
    ------
    MissingInputError
        When the catalogue has not been ingested.
    """
    text = conf.text
    created = now or datetime.now(timezone.utc)
    _, reviews, documents = _corpus(tables, as_of)
    terms_model = mining.fit_terms(documents, text)
    terms = terms_model.transform(documents).persist(StorageLevel.MEMORY_AND_DISK)
    report = TextTrainingReport(as_of=as_of)
    try:
        counts = {r[mining.DOC_KIND]: r["count"]
                  for r in terms.groupBy(mining.DOC_KIND).count().collect()}  # fmt: skip
        report.products = counts.get(mining.PRODUCT_DOC, 0)
        report.reviews = counts.get(mining.REVIEW_DOC, 0)
        vocabulary: CountVectorizerModel = terms_model.stages[_VOCABULARY_STAGE]  # type: ignore[assignment]
        report.vocabulary = len(vocabulary.vocabulary)
        topics = mining.choose_topics(terms, text)
        report.topics_k, report.perplexities = topics.k, topics.perplexities
        store = ModelStore(spark, conf.paths.models)
        registered = champion_version(conf, text.model_name)
        champion = registered or _latest(store, text.model_name)
        old_weights, old_ids = _champion_topics(store, text.model_name, champion)
        report.topic_ids, matches = mining.align_topics(
            mining.topic_term_weights(topics.model, vocabulary.vocabulary), old_weights, old_ids
        )
        matched = [m for m in matches if not math.isnan(m)]  # nan: a topic given a new id
        report.topic_match_min = min(matched) if matched else math.nan
        embeddings = mining.fit_embeddings(terms, text)
        report.embedding_words = embeddings.getVectors().count()
        try:
            sentiment = mining.fit_sentiment(_review_terms(terms, reviews), text)
        except ValueError as exc:
            sentiment, report.sentiment_skipped = None, str(exc)
        version = store.next_version(text.model_name)
        report.model_version = version
        metadata: dict[str, Any] = {
            "created_at": created.isoformat(),
            "as_of": as_of.isoformat(),
            "topics_k": topics.k,
            "topic_ids": list(report.topic_ids),
            "topic_match": matches,
            "aligned_to": champion,
            "log_perplexity": {str(k): v for k, v in topics.perplexities.items()},
            "sentiment": sentiment.metrics if sentiment else {},
            "input_table_versions": tables.versions((catalog.PRODUCTS, catalog.REVIEWS)),
            "spark_version": pyspark.__version__,
        }
        stages = [*terms_model.stages, topics.model, embeddings]
        path = store.save(text.model_name, version, PipelineModel(stages=stages), metadata)
        classifier = None
        if sentiment is not None:
            report.sentiment = sentiment.metrics
            classifier = PipelineModel(stages=[*terms_model.stages, sentiment.model])
            store.save(text.sentiment_model_name, version, classifier, metadata)
        rows = [(text.model_name, HOLDOUT, f"{mining.PERPLEXITY_OF_K}{k}", v)
                for k, v in topics.perplexities.items()]  # fmt: skip
        rows.append((text.model_name, mining.ALL_DOCUMENTS, mining.CHOSEN_K, float(topics.k)))
        if champion is not None:
            rows.append((text.model_name, CHAMPION_SPLIT, TOPIC_MATCH_MIN, report.topic_match_min))
        rows += [(text.sentiment_model_name, HOLDOUT, m, v) for m, v in report.sentiment.items()]
        tables.append(
            catalog.MODEL_METRICS,
            metrics_rows(spark, version, created, rows),
            txn=Txn(f"train:{text.model_name}", int(version[1:])),
        )
        tracked = log_training_run(
            conf,
            run_name=f"{text.model_name}-{version}",
            params={
                "topics_k": topics.k,
                "topic_ids": list(report.topic_ids),
                "vocabulary": report.vocabulary,
                "embedding_size": text.embedding_size,
                "sentiment_reg_param": text.sentiment_reg_param,
            },
            metrics={
                f"{HOLDOUT}.{GATE_METRIC if m == 'roc_auc' else 'sentiment_' + m}": v
                for m, v in report.sentiment.items()
            },
            tags={"model_name": text.model_name, "model_version": version, "path": path},
            metadata=metadata,
            # The classifier is what MLflow can serve (it predicts); the topic pipeline is in
            # the model store under the same version.
            model=classifier,
            model_inputs=StructType([StructField(mining.CLEAN, StringType())]),
        )
        if tracked is not None:
            review_docs = mining.review_documents(reviews).join(
                reviews.select(F.col(c.REVIEW_ID).alias(mining.DOC_ID), c.RATING), mining.DOC_ID
            )
            champion_value, unmeasured = _champion_sentiment(store, conf, registered, review_docs)
            report.promotion = Promotion(
                model=text.model_name,
                challenger=version,
                champion=registered,
                metric=GATE_METRIC,
                challenger_value=report.sentiment.get("roc_auc", float("nan")),
                champion_value=champion_value,
                tolerance=conf.tracking.champion_tolerance,
                unmeasured_reason=unmeasured,
            )
            register_version(conf, text.model_name, version, tracked, report.promotion)
        return report
    finally:
        terms.unpersist()


def _latest(store: ModelStore, name: str) -> str | None:
    """The newest complete version of ``name`` (None: none)."""
    versions = store.versions(name)
    return f"v{versions[-1]}" if versions else None


def serving_version(
    spark: SparkSession, conf: Conf, tables: Tables, as_of: date, pinned: str | None = None
) -> str:
    """The text model version ``build_text_features`` applies for ``as_of``: the pinned one;
    else the one the date's product topics were built with (a rerun of a date keeps its
    model); else the champion (the latest version without a registry) when it was trained on
    data up to ``as_of``; else the newest version that was.

    Raises
    ------
    ModelNotFoundError
        When no version was trained on data up to ``as_of``.
    """
    if pinned is not None:
        return pinned
    name = conf.text.model_name
    store = ModelStore(spark, conf.paths.models)
    available = {f"v{n}" for n in store.versions(name)}
    if tables.exists(catalog.PRODUCT_TOPICS):
        recorded = (
            tables.read(catalog.PRODUCT_TOPICS)
            .where(F.col(c.AS_OF_DATE) == F.lit(as_of))
            .select(c.MODEL_VERSION)
            .distinct()
            .collect()  # one version per date
        )
        if len(recorded) == 1 and recorded[0][0] in available:
            return str(recorded[0][0])
    trained_by = {
        version: date.fromisoformat(store.metadata(name, version)["as_of"]) for version in available
    }
    usable = sorted((v for v, day in trained_by.items() if day <= as_of), key=lambda v: int(v[1:]))
    champion = champion_version(conf, name) or _latest(store, name)
    if champion in usable:
        return str(champion)
    if not usable:
        raise ModelNotFoundError(
            f"no version of the text model '{name}' was trained on data up to {as_of} "
            f"(versions: {', '.join(sorted(available)) or 'none'}): run "
            f"`campaignlake train_text_models --date {as_of}` first"
        )
    return usable[-1]


def build_text_features(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    model_version: str | None = None,
) -> TextReport:
    """Apply a saved text model version (:func:`serving_version`) to the catalogue and the
    reviews up to ``as_of``: the date's product topics and embeddings, the version's review
    sentiment and the date's text neighbours, each written only where it changed."""
    text = conf.text
    products, reviews, documents = _corpus(tables, as_of)
    store = ModelStore(spark, conf.paths.models)
    version = serving_version(spark, conf, tables, as_of, model_version)
    model: StoredModel = store.load(text.model_name, version)
    stages = model.pipeline.stages
    terms = (
        PipelineModel(stages=stages[:_LDA_STAGE])
        .transform(documents)
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    cached = [terms]
    report = TextReport(as_of=as_of, model_version=version)
    try:
        review_terms = _review_terms(terms, reviews)
        with_date = F.lit(as_of).cast("date")
        trained_as_of = F.lit(date.fromisoformat(model.metadata["as_of"])).cast("date")
        sentiment_spec = tables.spec(catalog.REVIEW_SENTIMENT)
        if int(version[1:]) in store.versions(text.sentiment_model_name):
            classifier = store.load(text.sentiment_model_name, version).pipeline.stages[-1]
            scored = mining.review_sentiment(classifier, review_terms).select(  # type: ignore[arg-type]
                F.col(mining.DOC_ID).alias(c.REVIEW_ID),
                c.CUSTOMER_ID, c.PRODUCT_ID, c.RATING, c.CREATED_AT, c.SENTIMENT,
                F.lit(version).alias(c.MODEL_VERSION),
                # The date the model was trained up to: a review's score under one version
                # is the same whichever day scores it.
                trained_as_of.alias(c.AS_OF_DATE),
            ).persist(StorageLevel.MEMORY_AND_DISK)  # fmt: skip
        else:
            scored = spark.createDataFrame([], sentiment_spec.schema)
        cached.append(scored)
        product_terms = terms.where(F.col(mining.DOC_KIND) == mining.PRODUCT_DOC)
        profiles = (
            mining.product_profiles(
                mining.topic_mixture(
                    stages[_LDA_STAGE],  # type: ignore[arg-type]
                    product_terms,
                    model.metadata.get("topic_ids"),
                ),
                mining.document_embeddings(stages[_WORD2VEC_STAGE], product_terms),  # type: ignore[arg-type]
                scored.select(c.PRODUCT_ID, c.RATING, c.SENTIMENT),
            )
            .withColumn(c.MODEL_VERSION, F.lit(version))
            .withColumn(c.AS_OF_DATE, with_date)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        cached.append(profiles)
        counts = terms.groupBy(mining.DOC_KIND).count().collect()  # two kinds
        by_kind = {r[mining.DOC_KIND]: r["count"] for r in counts}
        report.products = by_kind.get(mining.PRODUCT_DOC, 0)
        report.reviews = by_kind.get(mining.REVIEW_DOC, 0)
        active = products.where(F.col(c.ACTIVE)).select(c.PRODUCT_ID)
        similar = (
            similar_by_vectors(
                profiles.join(active, c.PRODUCT_ID, "left_semi"),
                active,
                text.similar_products,
                text.similar_block_size,
                column=c.EMBEDDING,
            )
            .withColumn(c.METHOD, F.lit(c.CONTENT_METHOD))
            .withColumn(c.MODEL_VERSION, F.lit(version))
            .withColumn(c.AS_OF_DATE, with_date)
        )
        day = f"{c.AS_OF_DATE} = DATE'{as_of.isoformat()}'"
        report.writes[catalog.PRODUCT_TOPICS] = tables.replace_slice(
            catalog.PRODUCT_TOPICS,
            in_schema(profiles, tables.spec(catalog.PRODUCT_TOPICS).schema),
            day,
        )
        keys = [c.REVIEW_ID, c.MODEL_VERSION]
        changed = " OR ".join(
            f"NOT (s.`{name}` <=> t.`{name}`)"
            for name in sentiment_spec.schema.names
            if name not in keys
        )
        report.writes[catalog.REVIEW_SENTIMENT] = tables.upsert(
            catalog.REVIEW_SENTIMENT,
            in_schema(scored, sentiment_spec.schema),
            keys,
            # A review whose score under this version is as recorded is not written again.
            update_condition=changed,
        )
        report.writes[catalog.SIMILAR_PRODUCTS] = tables.replace_slice(
            catalog.SIMILAR_PRODUCTS,
            in_schema(similar, tables.spec(catalog.SIMILAR_PRODUCTS).schema),
            f"{day} AND {c.METHOD} = '{c.CONTENT_METHOD}'",
        )
        return report
    finally:
        for df in cached:
            df.unpersist()

"""The text job's table I/O: ``build_text_features`` fits the term pipeline, the LDA topic
model (k by held-out log-perplexity), Word2Vec and the review sentiment classifier on the
catalogue's descriptions and the reviews written before the date, and writes
``gold/product_topics``, ``gold/review_sentiment``, the text neighbours of every product into
``gold/similar_products`` (method ``content``) and the models' metrics into
``gold/model_metrics``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

import pyspark
from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import catalog
from campaignlake import columns as c
from campaignlake.config import Conf
from campaignlake.feature_set import cutoff_of
from campaignlake.frames import in_schema, metrics_rows
from campaignlake.models.registry import ModelStore
from campaignlake.recommend.als import similar_by_vectors
from campaignlake.recommend.evaluation import HOLDOUT
from campaignlake.tables import Tables, WriteResult, describe_writes
from campaignlake.text import mining


@dataclass
class TextReport:
    """What one ``build_text_features`` run fitted, measured and wrote."""

    as_of: date
    model_version: str = ""
    products: int = 0
    reviews: int = 0
    vocabulary: int = 0
    topics_k: int = 0
    perplexities: dict[int, float] = field(default_factory=dict)
    embedding_words: int = 0
    sentiment: dict[str, float] = field(default_factory=dict)
    #: Why no sentiment model was trained (empty when one was).
    sentiment_skipped: str = ""
    writes: dict[str, WriteResult] = field(default_factory=dict)

    def describe(self) -> str:
        """The corpus, each model's numbers and the writes."""
        perplexity = ", ".join(f"k={k}: {v:.3f}" for k, v in self.perplexities.items())
        if self.sentiment_skipped:
            sentiment = f"not trained ({self.sentiment_skipped})"
        else:
            s = self.sentiment
            sentiment = (
                f"ROC AUC {s['roc_auc']:.3f}, PR AUC {s['pr_auc']:.3f} on "
                f"{int(s['test_rows'])} held-out reviews ({int(s['train_rows'])} trained on)"
            )
        return "\n".join(
            [
                f"build_text_features {self.as_of}: {self.model_version}, {self.products} "
                f"products, {self.reviews} reviews, {self.vocabulary} terms",
                f"   LDA: k={self.topics_k} (held-out log-perplexity {perplexity})",
                f"   Word2Vec: {self.embedding_words} words embedded",
                f"   sentiment: {sentiment}",
                f"   tables: {describe_writes(self.writes)}",
            ]
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


def build_text_features(
    spark: SparkSession,
    conf: Conf,
    tables: Tables,
    *,
    as_of: date,
    now: datetime | None = None,
) -> TextReport:
    """Fit the text models on the catalogue and the reviews up to ``as_of`` and write product
    topics and embeddings, review sentiment, text neighbours and metrics (a new model
    version each run)."""
    tables.require((catalog.PRODUCTS,), "text features")
    text = conf.text
    created = now or datetime.now(timezone.utc)
    products = tables.read(catalog.PRODUCTS)
    reviews = usable_reviews(tables, as_of)
    documents = mining.product_documents(products).unionByName(mining.review_documents(reviews))
    terms_model = mining.fit_terms(documents, text)
    terms = terms_model.transform(documents).persist(StorageLevel.MEMORY_AND_DISK)
    cached = [terms]
    report = TextReport(as_of=as_of)
    try:
        counts = {r[mining.DOC_KIND]: r["count"]
                  for r in terms.groupBy(mining.DOC_KIND).count().collect()}  # fmt: skip
        report.products = counts.get(mining.PRODUCT_DOC, 0)
        report.reviews = counts.get(mining.REVIEW_DOC, 0)
        report.vocabulary = len(terms_model.stages[2].vocabulary)  # type: ignore[attr-defined]
        topics = mining.choose_topics(terms, text)
        report.topics_k, report.perplexities = topics.k, topics.perplexities
        embeddings = mining.fit_embeddings(terms, text)
        report.embedding_words = embeddings.getVectors().count()
        product_terms = terms.where(F.col(mining.DOC_KIND) == mining.PRODUCT_DOC)
        review_terms = terms.where(F.col(mining.DOC_KIND) == mining.REVIEW_DOC).join(
            reviews.select(
                F.col(c.REVIEW_ID).alias(mining.DOC_ID),
                c.CUSTOMER_ID, c.PRODUCT_ID, c.RATING, c.CREATED_AT,
            ),
            on=mining.DOC_ID,
            how="inner",
        )  # fmt: skip
        store = ModelStore(spark, conf.paths.models)
        version = store.next_version(text.model_name)
        report.model_version = version
        try:
            sentiment = mining.fit_sentiment(review_terms, text)
        except ValueError as exc:
            sentiment, report.sentiment_skipped = None, str(exc)
        with_date = F.lit(as_of).cast("date")
        if sentiment is not None:
            report.sentiment = sentiment.metrics
            scored = mining.review_sentiment(sentiment.model, review_terms).select(
                F.col(mining.DOC_ID).alias(c.REVIEW_ID),
                c.CUSTOMER_ID, c.PRODUCT_ID, c.RATING, c.CREATED_AT, c.SENTIMENT,
                F.lit(version).alias(c.MODEL_VERSION), with_date.alias(c.AS_OF_DATE),
            ).persist(StorageLevel.MEMORY_AND_DISK)  # fmt: skip
        else:
            scored = spark.createDataFrame([], tables.spec(catalog.REVIEW_SENTIMENT).schema)
        cached.append(scored)
        profiles = (
            mining.product_profiles(
                mining.topic_mixture(topics.model, product_terms),
                mining.document_embeddings(embeddings, product_terms),
                scored.select(c.PRODUCT_ID, c.RATING, c.SENTIMENT),
            )
            .withColumn(c.MODEL_VERSION, F.lit(version))
            .withColumn(c.AS_OF_DATE, with_date)
            .persist(StorageLevel.MEMORY_AND_DISK)
        )
        cached.append(profiles)
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
        metadata: dict[str, Any] = {
            "created_at": created.isoformat(),
            "as_of": as_of.isoformat(),
            "topics_k": topics.k,
            "log_perplexity": {str(k): v for k, v in topics.perplexities.items()},
            "sentiment": report.sentiment,
            "input_table_versions": tables.versions((catalog.PRODUCTS, catalog.REVIEWS)),
            "spark_version": pyspark.__version__,
        }
        stages = [*terms_model.stages, topics.model, embeddings]
        store.save(text.model_name, version, PipelineModel(stages=stages), metadata)
        if sentiment is not None:
            classifier = PipelineModel(stages=[*terms_model.stages, sentiment.model])
            store.save(text.sentiment_model_name, version, classifier, metadata)
        for key, rows_of_table in (
            (catalog.PRODUCT_TOPICS, profiles),
            (catalog.REVIEW_SENTIMENT, scored),
        ):
            report.writes[key] = tables.overwrite(
                key, in_schema(rows_of_table, tables.spec(key).schema)
            )
        day = f"{c.AS_OF_DATE} = DATE'{as_of.isoformat()}' AND {c.METHOD} = '{c.CONTENT_METHOD}'"
        report.writes[catalog.SIMILAR_PRODUCTS] = tables.replace_slice(
            catalog.SIMILAR_PRODUCTS,
            in_schema(similar, tables.spec(catalog.SIMILAR_PRODUCTS).schema),
            day,
        )
        rows = [(text.model_name, HOLDOUT, f"{mining.PERPLEXITY_OF_K}{k}", v)
                for k, v in topics.perplexities.items()]  # fmt: skip
        rows.append((text.model_name, mining.ALL_DOCUMENTS, mining.CHOSEN_K, float(topics.k)))
        rows += [(text.sentiment_model_name, HOLDOUT, m, v) for m, v in report.sentiment.items()]
        report.writes[catalog.MODEL_METRICS] = tables.append(
            catalog.MODEL_METRICS, metrics_rows(spark, version, created, rows)
        )
        return report
    finally:
        for df in cached:
            df.unpersist()

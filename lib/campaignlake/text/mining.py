"""Text mining with Spark MLlib: documents, terms, TF-IDF, LDA topics, Word2Vec embeddings and
review sentiment. Pure functions and model fits; the job's I/O is in
:mod:`campaignlake.text.runs`.

The corpus is every product's description (with its name and tags) and every review (title
and text). One term pipeline (normalise → tokenise → stop words → counts → IDF) is fitted on
all of it, so topics, embeddings and the sentiment classifier share one vocabulary.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import LogisticRegression, LogisticRegressionModel
from pyspark.ml.clustering import LDA, LDAModel
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import (
    IDF,
    CountVectorizer,
    RegexTokenizer,
    StopWordsRemover,
    Word2Vec,
    Word2VecModel,
)
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy.optimize import linear_sum_assignment

from campaignlake import columns as c
from campaignlake.config import TextConf
from campaignlake.pii import MASKS_IN_TEXT

DOC_ID = "doc_id"
DOC_KIND = "doc_kind"
DOCUMENT = "document"
CLEAN = "clean_text"
TOKENS = "tokens"
TERMS = "terms"
TERM_COUNTS = "term_counts"
TFIDF = "tfidf"
PRODUCT_DOC = "product"
REVIEW_DOC = "review"
#: ``gold/model_metrics`` names of the topic model: held-out log-perplexity of each k
#: (``log_perplexity_k<k>``) and the k chosen, measured over all documents.
PERPLEXITY_OF_K = "log_perplexity_k"
CHOSEN_K = "chosen_k"
ALL_DOCUMENTS = "all"
#: Links and the ingestion's masks carry no meaning for a topic or a sentiment.
_NOISE = rf"(https?://\S+|www\.\S+|{MASKS_IN_TEXT})"
#: Anything but letters (emoji, digits, punctuation) separates words.
_NOT_LETTERS = r"[^\p{L}]+"


def normalise(text: Column) -> Column:
    """Lower-cased words of ``text``: links and masked contact details removed, everything but
    letters turned into spaces (emoji and punctuation go; accented letters stay)."""
    without_noise = F.regexp_replace(F.lower(text), _NOISE, " ")
    return F.trim(F.regexp_replace(without_noise, _NOT_LETTERS, " "))


def product_documents(products: DataFrame) -> DataFrame:
    """One document per product: name, description and tags. ``doc_id`` is the product id."""
    words = F.concat_ws(" ", F.col(c.NAME), F.col(c.DESCRIPTION), F.array_join(F.col(c.TAGS), " "))
    return products.select(
        F.col(c.PRODUCT_ID).alias(DOC_ID),
        F.lit(PRODUCT_DOC).alias(DOC_KIND),
        normalise(words).alias(CLEAN),
    )


def review_documents(reviews: DataFrame) -> DataFrame:
    """One document per review: title and text. ``doc_id`` is the review id."""
    return reviews.select(
        F.col(c.REVIEW_ID).alias(DOC_ID),
        F.lit(REVIEW_DOC).alias(DOC_KIND),
        normalise(F.concat_ws(" ", F.col(c.TITLE), F.col(c.TEXT))).alias(CLEAN),
    )


def term_pipeline(text: TextConf) -> Pipeline:
    """Tokens (words of two letters or more) → terms (English stop words and
    ``text.extra_stop_words`` removed) → term counts (``vocab_size`` most frequent terms in at
    least ``min_doc_freq`` documents) → TF-IDF."""
    stop_words = [*StopWordsRemover.loadDefaultStopWords("english"), *text.extra_stop_words]
    return Pipeline(
        stages=[
            RegexTokenizer(inputCol=CLEAN, outputCol=TOKENS, pattern=r"\s+", minTokenLength=2),
            StopWordsRemover(inputCol=TOKENS, outputCol=TERMS, stopWords=stop_words),
            CountVectorizer(
                inputCol=TERMS,
                outputCol=TERM_COUNTS,
                vocabSize=text.vocab_size,
                minDF=float(text.min_doc_freq),
            ),
            IDF(inputCol=TERM_COUNTS, outputCol=TFIDF),
        ]
    )


def in_holdout(key: Column, fraction: float, seed: int) -> Column:
    """Whether a row is held out: a hash of its key, so the split does not depend on
    partitioning and a row stays on its side when the corpus grows."""
    return F.pmod(F.xxhash64(key, F.lit(seed)), F.lit(10_000)) < F.lit(int(fraction * 10_000))


@dataclass(frozen=True)
class TopicModel:
    """The LDA model chosen, and the held-out log-perplexity of every k tried."""

    model: LDAModel
    k: int
    perplexities: dict[int, float]


def choose_topics(documents: DataFrame, text: TextConf) -> TopicModel:
    """Fit LDA (online variational Bayes) for every k of ``text.topics_k`` on the documents
    not held out and keep the k with the lowest log-perplexity on the held-out ones (ties: the
    smaller k).

    Parameters
    ----------
    documents
        ``doc_id`` and ``term_counts`` (documents without any term are left out).
    """
    usable = documents.where(F.size(F.col(TERMS)) > 0)
    held = in_holdout(F.col(DOC_ID), text.holdout_fraction, text.seed)
    train = usable.where(~held).select(DOC_ID, TERM_COUNTS)
    test = usable.where(held).select(DOC_ID, TERM_COUNTS)
    fitted, perplexities = {}, {}
    for k in sorted(set(text.topics_k)):
        lda = LDA(
            k=k,
            maxIter=text.lda_max_iter,
            seed=text.seed,
            featuresCol=TERM_COUNTS,
            optimizer="online",
            # The online optimizer samples this share of documents per iteration: enough that
            # the iterations see the corpus more than once.
            subsamplingRate=min(1.0, 4.0 / text.lda_max_iter),
        )
        fitted[k] = lda.fit(train)
        perplexities[k] = fitted[k].logPerplexity(test)
    best = min(perplexities, key=lambda k: (perplexities[k], k))
    return TopicModel(fitted[best], best, perplexities)


def topic_term_weights(model: LDAModel, vocabulary: Sequence[str]) -> dict[str, np.ndarray]:
    """Each term's weight in every topic (topics in the model's order, each summing to 1 over
    the vocabulary): the model's parameters, a vocabulary-by-k matrix on the driver."""
    matrix = model.topicsMatrix().toArray()
    matrix = matrix / matrix.sum(axis=0, keepdims=True)
    return {term: matrix[i] for i, term in enumerate(vocabulary)}


def align_topics(
    new: dict[str, np.ndarray],
    old: dict[str, np.ndarray] | None,
    old_ids: Sequence[int] = (),
) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Stable ids for a new topic model's topics: each takes the id of the old model's topic
    whose term distribution it matches (cosine similarity over the union of both
    vocabularies; the one-to-one matching of largest total similarity), so
    ``topic_affinity_<t>`` keeps its meaning across retrains. New topics left over (the new
    model has more) take the smallest ids no old topic has.

    Parameters
    ----------
    new, old
        :func:`topic_term_weights` of the new model and of the one in service (None: there
        is none, and the ids are the model's own order).
    old_ids
        The stable id of each of the old model's topics, in its order.

    Returns
    -------
    tuple
        The stable id of each new topic, in the new model's order, and the similarity of each
        new topic to the old topic whose id it took (nan for a new id).
    """
    k_new = len(next(iter(new.values())))
    if not old:
        return tuple(range(k_new)), tuple(float("nan") for _ in range(k_new))
    terms = sorted(set(new) | set(old))
    k_old = len(next(iter(old.values())))
    a = np.array([new.get(t, np.zeros(k_new)) for t in terms])
    b = np.array([old.get(t, np.zeros(k_old)) for t in terms])
    norms = np.outer(np.linalg.norm(a, axis=0), np.linalg.norm(b, axis=0))
    similarity = (a.T @ b) / np.where(norms > 0, norms, 1.0)
    rows, cols = linear_sum_assignment(similarity, maximize=True)
    ids: list[int | None] = [None] * k_new
    matched = [float("nan")] * k_new
    for row, col in zip(rows, cols, strict=True):
        ids[row], matched[row] = int(old_ids[col]), float(similarity[row, col])
    free = (i for i in range(k_new + k_old) if i not in set(old_ids))
    return tuple(i if i is not None else next(free) for i in ids), tuple(matched)


def topic_mixture(
    model: LDAModel, documents: DataFrame, topic_ids: Sequence[int] | None = None
) -> DataFrame:
    """``doc_id``, ``topic_distribution`` (one weight per stable topic id, summing to 1; null
    for an id this model has no topic for) and ``dominant_topic`` (the id of the largest
    weight).

    Parameters
    ----------
    topic_ids
        The stable id of each of the model's topics (:func:`align_topics`); None: the model's
        own order.
    """
    ids = list(topic_ids) if topic_ids is not None else list(range(model.getK()))
    position = {topic: i for i, topic in enumerate(ids)}
    mixed = model.transform(documents.select(DOC_ID, TERM_COUNTS)).select(
        DOC_ID, vector_to_array(model.getTopicDistributionCol()).alias("__weights")
    )
    weights = F.col("__weights")
    # The largest (weight, -index) struct is the first topic of largest weight; Spark 3.5's
    # array_position takes no column as the value to find, so this stays in the Column API.
    heaviest = F.array_max(
        F.transform(weights, lambda weight, i: F.struct(weight.alias("w"), (-i).alias("i")))
    )
    stable = F.array(
        *[
            weights.getItem(position[topic]) if topic in position else F.lit(None).cast("double")
            for topic in range(max(ids) + 1)
        ]
    )
    id_of_position = F.array(*[F.lit(topic) for topic in ids])
    return mixed.select(
        DOC_ID,
        stable.alias(c.TOPIC_DISTRIBUTION),
        id_of_position[-heaviest["i"]].cast("int").alias(c.DOMINANT_TOPIC),
    )


def fit_embeddings(documents: DataFrame, text: TextConf) -> Word2VecModel:
    """Word2Vec (skip-gram) on the terms of every document, trained here: no model download."""
    return Word2Vec(
        vectorSize=text.embedding_size,
        minCount=text.word2vec_min_count,
        maxIter=text.word2vec_max_iter,
        numPartitions=text.word2vec_partitions,
        seed=text.seed,
        inputCol=TERMS,
        outputCol=c.EMBEDDING,
    ).fit(documents.select(TERMS))


def document_embeddings(model: Word2VecModel, documents: DataFrame) -> DataFrame:
    """``doc_id``, ``embedding``: the mean of the document's word vectors (Word2Vec's own
    transform; zeros when none of its words is in the vocabulary)."""
    return model.transform(documents.select(DOC_ID, TERMS)).select(
        DOC_ID, vector_to_array(F.col(c.EMBEDDING)).alias(c.EMBEDDING)
    )


def sentiment_label(rating: Column) -> Column:
    """The weak label of a review: 1 for a rating of 4–5, 0 for 1–2, null (unlabelled) for 3."""
    return F.when(rating >= 4, 1.0).when(rating <= 2, 0.0)


@dataclass(frozen=True)
class SentimentModel:
    """The review classifier and its held-out quality."""

    model: LogisticRegressionModel
    metrics: dict[str, float]


def _labelled(reviews: DataFrame, text: TextConf) -> tuple[DataFrame, Column]:
    """The reviews with a weak label (3-star ones left out) and whether each is held out:
    one split for fitting the classifier and for measuring any version of it."""
    labelled = reviews.withColumn(c.LABEL, sentiment_label(F.col(c.RATING))).where(
        F.col(c.LABEL).isNotNull()
    )
    return labelled, in_holdout(F.col(DOC_ID), text.holdout_fraction, text.seed)


def fit_sentiment(reviews: DataFrame, text: TextConf) -> SentimentModel:
    """Logistic regression on TF-IDF with the rating as weak label (3-star reviews left out),
    tested on the reviews held out by :func:`in_holdout`: ROC AUC, PR AUC and the row counts.

    Parameters
    ----------
    reviews
        ``doc_id``, ``tfidf`` and ``rating``.

    Raises
    ------
    ValueError
        When the training or the test reviews lack a class: no classifier can be judged.
    """
    labelled, held = _labelled(reviews, text)
    train, test = labelled.where(~held), labelled.where(held)
    counts = {
        (r["held"], r[c.LABEL]): r["count"]
        for r in labelled.groupBy(held.alias("held"), c.LABEL).count().collect()  # 4 rows
    }
    for side, name in ((False, "training"), (True, "test")):
        if not counts.get((side, 0.0)) or not counts.get((side, 1.0)):
            raise ValueError(
                f"the sentiment {name} reviews need both 1–2 and 4–5 star ratings; found "
                f"{counts.get((side, 0.0), 0)} negative and {counts.get((side, 1.0), 0)} positive"
            )
    model = LogisticRegression(
        featuresCol=TFIDF,
        labelCol=c.LABEL,
        regParam=text.sentiment_reg_param,
        elasticNetParam=0.0,
        maxIter=100,
    ).fit(train)
    scored = model.transform(test)
    metrics = {
        metric: BinaryClassificationEvaluator(
            labelCol=c.LABEL, rawPredictionCol="rawPrediction", metricName=metric
        ).evaluate(scored)
        for metric in ("areaUnderROC", "areaUnderPR")
    }
    return SentimentModel(
        model,
        {
            "roc_auc": metrics["areaUnderROC"],
            "pr_auc": metrics["areaUnderPR"],
            "train_rows": float(counts[(False, 0.0)] + counts[(False, 1.0)]),
            "test_rows": float(counts[(True, 0.0)] + counts[(True, 1.0)]),
        },
    )


def held_out_sentiment_auc(classifier: PipelineModel, reviews: DataFrame, text: TextConf) -> float:
    """ROC AUC of a saved sentiment pipeline (its own term stages, then the classifier) on the
    labelled reviews :func:`in_holdout` holds out: how the champion gate measures the version
    in service on a challenger's data.

    Parameters
    ----------
    reviews
        ``doc_id``, ``clean_text`` and ``rating`` (:func:`review_documents` and the rating).
    """
    labelled, held = _labelled(reviews, text)
    test = labelled.where(held)
    return BinaryClassificationEvaluator(
        labelCol=c.LABEL, rawPredictionCol="rawPrediction", metricName="areaUnderROC"
    ).evaluate(classifier.transform(test.select(DOC_ID, CLEAN, c.LABEL)))


def review_sentiment(model: LogisticRegressionModel, reviews: DataFrame) -> DataFrame:
    """``reviews`` with ``sentiment``: the classifier's probability that the review is
    positive (every review, 3-star ones included)."""
    return model.transform(reviews).withColumn(
        c.SENTIMENT, vector_to_array(F.col("probability")).getItem(1)
    )


def product_profiles(
    topics: DataFrame, embeddings: DataFrame, review_scores: DataFrame
) -> DataFrame:
    """One row per product: dominant topic, topic distribution, embedding, and its reviews'
    count, mean rating and mean sentiment (0 and nulls without reviews).

    Parameters
    ----------
    topics, embeddings
        :func:`topic_mixture` and :func:`document_embeddings` of the product documents.
    review_scores
        ``product_id``, ``rating``, ``sentiment`` of every review.
    """
    per_product = review_scores.groupBy(c.PRODUCT_ID).agg(
        F.count(F.lit(1)).alias(c.REVIEWS),
        F.avg(c.RATING).alias(c.MEAN_RATING),
        F.avg(c.SENTIMENT).alias(c.MEAN_SENTIMENT),
    )
    return (
        topics.join(embeddings, on=DOC_ID, how="inner")
        .withColumnRenamed(DOC_ID, c.PRODUCT_ID)
        .join(per_product, on=c.PRODUCT_ID, how="left")
        .select(
            c.PRODUCT_ID,
            c.DOMINANT_TOPIC,
            c.TOPIC_DISTRIBUTION,
            c.EMBEDDING,
            F.coalesce(F.col(c.REVIEWS), F.lit(0)).cast("long").alias(c.REVIEWS),
            c.MEAN_RATING,
            c.MEAN_SENTIMENT,
        )
    )


def fit_terms(documents: DataFrame, text: TextConf) -> PipelineModel:
    """The term pipeline fitted on ``documents`` (``doc_id``, ``doc_kind``, ``clean_text``)."""
    return term_pipeline(text).fit(documents)

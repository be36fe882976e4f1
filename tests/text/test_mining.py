"""Text mining on small literal corpora: normalisation, terms, LDA topics, Word2Vec
embeddings and the sentiment classifier."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from campaignlake import columns as c
from campaignlake.config import TextConf
from campaignlake.text import mining

TEXT = TextConf(
    topics_k=[2, 4],
    lda_max_iter=30,
    holdout_fraction=0.25,
    min_doc_freq=1,
    embedding_size=8,
    word2vec_min_count=1,
    word2vec_max_iter=5,
    seed=3,
)
GADGET_WORDS = ["battery", "charger", "screen", "cable", "wireless", "speaker"]
GARMENT_WORDS = ["cotton", "jacket", "denim", "collar", "linen", "scarf"]


def _corpus(spark: SparkSession) -> DataFrame:
    """Forty short documents: twenty about gadgets, twenty about garments (each a rotation of
    its vocabulary), as the term pipeline sees them."""
    rows = []
    for i in range(20):
        for kind, words in (("gadget", GADGET_WORDS), ("garment", GARMENT_WORDS)):
            rotated = words[i % 6 :] + words[: i % 6]
            rows.append((f"{kind}-{i:02d}", "product", " ".join(rotated[:4] * 2)))
    documents = spark.createDataFrame(
        rows, f"{mining.DOC_ID} string, {mining.DOC_KIND} string, {mining.CLEAN} string"
    )
    return mining.fit_terms(documents, TEXT).transform(documents)


def test_normalise_keeps_words_and_drops_links_masks_emoji_and_punctuation(
    spark: SparkSession,
) -> None:
    texts = spark.createDataFrame(
        [
            ("GREAT Jacket!! 😀 see https://shop.example.com/p/1 or www.example.org",),
            ("Écharpe très chaude, write to [email] or [phone]... 10/10",),
            ("paid with [card], refund to [iban] or [number]",),
            (None,),
        ],
        "text string",
    )
    got = [r[0] for r in texts.select(mining.normalise(F.col("text"))).collect()]
    assert got == [
        "great jacket see or",
        "écharpe très chaude write to or",
        "paid with refund to or",
        None,
    ]


def test_terms_drop_stop_words_and_short_tokens(spark: SparkSession) -> None:
    documents = spark.createDataFrame(
        [("d1", "review", "this is a really great jacket x"), ("d2", "review", "the jacket broke")],
        f"{mining.DOC_ID} string, {mining.DOC_KIND} string, {mining.CLEAN} string",
    )
    text = dataclasses.replace(TEXT, extra_stop_words=["really"])
    model = mining.fit_terms(documents, text)
    terms = model.transform(documents)
    got = {r[mining.DOC_ID]: r[mining.TERMS] for r in terms.collect()}
    assert got == {"d1": ["great", "jacket"], "d2": ["jacket", "broke"]}
    # Spark's IDF is log((documents + 1) / (documents with the term + 1)): "jacket", in both
    # documents, weighs nothing; "broke" log(3 / 2).
    vocabulary = model.stages[2].vocabulary  # type: ignore[attr-defined]
    d2 = next(r[mining.TFIDF] for r in terms.collect() if r[mining.DOC_ID] == "d2")
    weights = dict(zip(vocabulary, d2.toArray().tolist(), strict=True))
    assert weights == {"great": 0.0, "jacket": 0.0, "broke": pytest.approx(math.log(1.5))}


def test_lda_chooses_k_by_held_out_perplexity_and_separates_the_two_vocabularies(
    spark: SparkSession,
) -> None:
    terms = _corpus(spark)
    topics = mining.choose_topics(terms, TEXT)
    assert set(topics.perplexities) == {2, 4}
    assert topics.k == min(topics.perplexities, key=lambda k: (topics.perplexities[k], k))
    assert all(math.isfinite(v) for v in topics.perplexities.values())
    mixture = mining.topic_mixture(topics.model, terms)
    dominant = {
        r[mining.DOC_ID]: r[c.DOMINANT_TOPIC]
        for r in mixture.collect()
        if max(r[c.TOPIC_DISTRIBUTION]) > 0.5
    }
    gadget_topics = {t for d, t in dominant.items() if d.startswith("gadget")}
    garment_topics = {t for d, t in dominant.items() if d.startswith("garment")}
    assert len(dominant) >= 30
    assert gadget_topics and garment_topics and not gadget_topics & garment_topics
    sums = mixture.select(F.aggregate(c.TOPIC_DISTRIBUTION, F.lit(0.0), lambda a, x: a + x))
    assert all(r[0] == pytest.approx(1.0) for r in sums.collect())


def test_word2vec_document_embeddings_are_closer_within_a_vocabulary(spark: SparkSession) -> None:
    terms = _corpus(spark)
    model = mining.fit_embeddings(terms, TEXT)
    vectors = {r[mining.DOC_ID]: r[c.EMBEDDING] for r in
               mining.document_embeddings(model, terms).collect()}  # fmt: skip
    assert all(len(v) == TEXT.embedding_size for v in vectors.values())

    def cosine(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    within = cosine(vectors["gadget-00"], vectors["gadget-03"])
    across = cosine(vectors["gadget-00"], vectors["garment-00"])
    assert within > across


def _reviews(spark: SparkSession, ratings_and_words: list[tuple[int, str]]) -> DataFrame:
    documents = spark.createDataFrame(
        [(f"R{i:03d}", "review", words) for i, (_, words) in enumerate(ratings_and_words)],
        f"{mining.DOC_ID} string, {mining.DOC_KIND} string, {mining.CLEAN} string",
    )
    ratings = spark.createDataFrame(
        [(f"R{i:03d}", rating) for i, (rating, _) in enumerate(ratings_and_words)],
        f"{mining.DOC_ID} string, {c.RATING} int",
    )
    return mining.fit_terms(documents, TEXT).transform(documents).join(ratings, mining.DOC_ID)


def test_sentiment_learns_the_ratings_words_and_scores_every_review(spark: SparkSession) -> None:
    happy = ["love great jacket", "great excellent delivery", "love love it", "excellent fit"]
    unhappy = ["broke after week", "terrible refund please", "broke terrible", "refund broke"]
    rows = [(5 - i % 2, happy[i % 4]) for i in range(40)]
    rows += [(1 + i % 2, unhappy[i % 4]) for i in range(40)]
    rows += [(3, "okay jacket")] * 4
    reviews = _reviews(spark, rows)
    model = mining.fit_sentiment(reviews, TEXT)
    assert model.metrics["roc_auc"] == pytest.approx(1.0)
    # Three-star reviews are not labels: 80 labelled rows split between training and test.
    assert model.metrics["train_rows"] + model.metrics["test_rows"] == 80
    scored = mining.review_sentiment(model.model, reviews)
    mean = {
        r[0]: r[1]
        for r in scored.where(F.col(c.RATING) != 3)
        .groupBy((F.col(c.RATING) >= 4).alias("happy"))
        .agg(F.avg(c.SENTIMENT))
        .collect()
    }
    assert mean[True] > 0.8 > 0.2 > mean[False]
    assert scored.where(F.col(c.SENTIMENT).isNull()).isEmpty()
    assert scored.count() == 84


def test_sentiment_refuses_a_corpus_without_negative_reviews(spark: SparkSession) -> None:
    reviews = _reviews(spark, [(5, "love it"), (4, "great jacket"), (3, "okay")] * 10)
    with pytest.raises(ValueError, match="need both 1–2 and 4–5 star ratings; found 0 negative"):
        mining.fit_sentiment(reviews, TEXT)


def test_product_profiles_aggregate_each_products_reviews(spark: SparkSession) -> None:
    topics = spark.createDataFrame(
        [("P1", [0.7, 0.3], 0), ("P2", [0.1, 0.9], 1)],
        f"{mining.DOC_ID} string, {c.TOPIC_DISTRIBUTION} array<double>, {c.DOMINANT_TOPIC} int",
    )
    embeddings = spark.createDataFrame(
        [("P1", [1.0, 0.0]), ("P2", [0.0, 1.0])],
        f"{mining.DOC_ID} string, {c.EMBEDDING} array<double>",
    )
    scores = spark.createDataFrame(
        [("P1", 5, 0.9), ("P1", 2, 0.2)],
        f"{c.PRODUCT_ID} string, {c.RATING} int, {c.SENTIMENT} double",
    )
    got = {
        r[c.PRODUCT_ID]: r for r in mining.product_profiles(topics, embeddings, scores).collect()
    }
    assert (got["P1"][c.REVIEWS], got["P1"][c.MEAN_RATING]) == (2, 3.5)
    assert got["P1"][c.MEAN_SENTIMENT] == pytest.approx(0.55)
    assert (got["P2"][c.REVIEWS], got["P2"][c.MEAN_RATING], got["P2"][c.MEAN_SENTIMENT]) == (
        0, None, None,
    )  # fmt: skip


def test_topic_ids_follow_the_old_topics_term_distributions_and_left_over_topics_get_free_ids() -> (
    None
):
    old = {  # three topics over six terms; their stable ids are 4, 0 and 2
        "battery": np.array([0.5, 0.0, 0.0]),
        "charger": np.array([0.5, 0.0, 0.0]),
        "cotton": np.array([0.0, 0.5, 0.0]),
        "denim": np.array([0.0, 0.5, 0.0]),
        "tea": np.array([0.0, 0.0, 0.5]),
        "coffee": np.array([0.0, 0.0, 0.5]),
    }
    new = {  # the same topics in another order, one more, and a term the old model lacked
        "battery": np.array([0.0, 0.0, 0.45, 0.0]),
        "charger": np.array([0.0, 0.0, 0.45, 0.0]),
        "cable": np.array([0.0, 0.0, 0.1, 0.0]),
        "cotton": np.array([0.5, 0.0, 0.0, 0.0]),
        "denim": np.array([0.5, 0.0, 0.0, 0.0]),
        "tea": np.array([0.0, 0.0, 0.0, 0.5]),
        "coffee": np.array([0.0, 0.0, 0.0, 0.5]),
        "garden": np.array([0.0, 1.0, 0.0, 0.0]),
    }
    ids, matches = mining.align_topics(new, old, (4, 0, 2))
    assert ids == (0, 1, 4, 2)  # the garden topic takes the smallest id no old topic had
    assert matches[0] == pytest.approx(1.0) and matches[3] == pytest.approx(1.0)
    assert 0.9 < matches[2] < 1.0 and math.isnan(matches[1])
    # Fewer topics than the champion: each keeps its match's id, the others are unused.
    fewer = {term: weights[[0, 2]] for term, weights in new.items()}
    assert mining.align_topics(fewer, old, (4, 0, 2))[0] == (0, 4)
    # No champion: the model's own order.
    assert mining.align_topics(new, None)[0] == (0, 1, 2, 3)


def test_a_retrained_topic_model_keeps_the_champions_topic_ids(spark: SparkSession) -> None:
    terms = _corpus(spark)
    vocabulary = mining.fit_terms(terms.select(mining.DOC_ID, mining.DOC_KIND, mining.CLEAN),
                                  TEXT).stages[2].vocabulary  # type: ignore[attr-defined]  # fmt: skip
    two = dataclasses.replace(TEXT, topics_k=[2])
    champion = mining.choose_topics(terms, two).model
    # The champion's topics were given the stable ids 3 and 1 when it was aligned to its own
    # predecessor; the retrained model (another seed) finds the same two topics.
    champion_ids = (3, 1)
    retrained = mining.choose_topics(terms, dataclasses.replace(two, seed=11)).model
    ids, matches = mining.align_topics(
        mining.topic_term_weights(retrained, vocabulary),
        mining.topic_term_weights(champion, vocabulary),
        champion_ids,
    )
    assert sorted(ids) == [1, 3] and min(matches) > 0.9

    def dominant(model: object, topic_ids: tuple[int, ...]) -> dict[str, int]:
        mixture = mining.topic_mixture(model, terms, topic_ids)  # type: ignore[arg-type]
        rows = mixture.collect()
        # Ids without a topic are null, the others sum to one.
        assert all(r[c.TOPIC_DISTRIBUTION][0] is None and r[c.TOPIC_DISTRIBUTION][2] is None
                   for r in rows)  # fmt: skip
        return {r[mining.DOC_ID]: r[c.DOMINANT_TOPIC] for r in rows}

    before, after = dominant(champion, champion_ids), dominant(retrained, ids)
    assert set(before.values()) == {1, 3}
    agree = sum(before[d] == after[d] for d in before)
    assert agree >= 0.9 * len(before)

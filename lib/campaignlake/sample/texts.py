"""The sample's words: product descriptions and customer reviews with structure to learn.

* A description draws most of its words from its category's vocabulary, some from its brand's
  and the rest from words every product shares, so topics and embeddings can find categories
  and brands, and products of one category read alike.
* A review's wording follows its rating (positive, negative or lukewarm words, with some of
  the other kind as noise), names a few of the product's category words, and is written the
  way people write: some in capitals, some with emoji, links, an e-mail address or a phone
  number (which ingestion must mask).
* Ratings follow a hidden quality per product and a temper per customer, plus noise.

Everything is vectorised over products and reviews; loops run over vocabularies only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

CATEGORY_WORDS = {
    "electronics": "wireless battery charger bluetooth screen speaker headphones usb "
    "processor display camera cable",
    "fashion": "cotton jacket denim sleeve collar dress linen wool knit tailored shirt scarf",
    "home": "ceramic kitchen cushion lamp shelf blanket storage vase towel pillow candle rug",
    "beauty": "serum moisturiser fragrance lipstick skincare cream mascara lotion vitamin "
    "glow cleanser balm",
    "sports": "running trainers yoga fitness bottle cycling gym racket hiking breathable "
    "workout sweatband",
    "toys": "puzzle lego doll plush blocks board game kids playset robot colouring crayons",
    "books": "novel paperback hardcover author chapter thriller biography poetry fiction "
    "edition illustrated memoir",
    "grocery": "organic coffee tea pasta snack chocolate spice olive cereal honey granola sauce",
    "garden": "seeds planter hose compost shovel pruning soil outdoor bulbs trellis watering lawn",
    "pets": "kibble leash collar litter aquarium chew treats grooming scratching catnip "
    "harness kennel",
}
BRAND_WORDS = {
    "Acme": "reliable classic everyday",
    "Nordlys": "scandinavian minimalist nordic",
    "Verde": "sustainable recycled eco",
    "Kiroshi": "smart digital connected",
    "Maple&Co": "handmade artisan heritage",
    "Lumen": "bright modern sleek",
    "Orbit": "compact portable travel",
    "Tessa": "elegant premium luxury",
}
SHARED_WORDS = [
    "new",
    "design",
    "size",
    "colour",
    "gift",
    "pack",
    "set",
    "model",
    "range",
    "style",
    "easy",
    "perfect",
    "ideal",
    "season",
    "choice",
    "quality",
    "value",
]
POSITIVE = [
    "great",
    "love",
    "excellent",
    "amazing",
    "fantastic",
    "wonderful",
    "happy",
    "recommend",
    "brilliant",
    "superb",
    "delighted",
    "awesome",
]
NEGATIVE = [
    "broke",
    "disappointed",
    "poor",
    "terrible",
    "awful",
    "faulty",
    "useless",
    "refund",
    "returned",
    "waste",
    "cheaply",
    "flimsy",
]
LUKEWARM = ["okay", "fine", "average", "decent", "alright", "acceptable", "mediocre", "expected"]
FILLER = [
    "bought",
    "order",
    "delivery",
    "arrived",
    "item",
    "product",
    "price",
    "week",
    "daughter",
    "son",
    "gift",
]
EMOJI = ["😀", "👍", "😡", "🙁", "⭐⭐⭐⭐⭐", "❤️"]
#: The share of products launched in the period's last weeks (the cold-start products).
NEW_PRODUCT_SHARE = 0.08
#: Launches fall in the last ``LAUNCH_WINDOW_DAYS`` days, and at least 3 days before the end.
LAUNCH_WINDOW_DAYS = 21
#: The share of purchases that get a review.
REVIEW_SHARE = 0.3


def describe_products(
    rng: np.random.Generator, categories: np.ndarray, brands: np.ndarray
) -> tuple[pd.Series, pd.Series]:
    """A description and ``|``-separated tags for each product of ``categories`` and
    ``brands`` (arrays of names)."""
    n = len(categories)
    length = rng.integers(12, 28, n)
    width = int(length.max())
    kind = rng.choice(3, size=(n, width), p=[0.55, 0.15, 0.30])
    picks = rng.random((n, width))
    category_vocabulary = _vocabulary(CATEGORY_WORDS, categories)
    category_words = _pick(category_vocabulary, picks)
    brand_words = _pick(_vocabulary(BRAND_WORDS, brands), picks)
    shared = _pick(_vocabulary({"": " ".join(SHARED_WORDS)}, np.full(n, "")), picks)
    words = np.where(kind == 0, category_words, np.where(kind == 1, brand_words, shared))
    descriptions = _sentences(words, length).str.capitalize() + "."
    tags = _sentences(_pick(category_vocabulary, rng.random((n, 3))), np.full(n, 3), separator="|")
    return descriptions, tags


def _vocabulary(words: dict[str, str], keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's vocabulary (padded) and its size, by the row's key (unknown keys: filler)."""
    names = list(words)
    lists = [words[k].split() for k in names] + [FILLER]
    width = max(len(w) for w in lists)
    padded = np.array([w + [""] * (width - len(w)) for w in lists], dtype=object)
    which = pd.Series(keys).map({k: i for i, k in enumerate(names)}).fillna(len(names))
    which = which.to_numpy().astype(int)
    return padded[which], np.array([len(w) for w in lists])[which]


def _pick(vocabulary: tuple[np.ndarray, np.ndarray], picks: np.ndarray) -> np.ndarray:
    """A word per cell of ``picks`` (uniform in [0, 1)) from its row's vocabulary."""
    words, sizes = vocabulary
    columns = (picks * sizes[:, None]).astype(int)
    return np.take_along_axis(words, columns, axis=1)


def _sentences(words: np.ndarray, length: np.ndarray, separator: str = " ") -> pd.Series:
    """Each row's first ``length`` words joined."""
    kept = pd.DataFrame(words).where(np.arange(words.shape[1])[None, :] < length[:, None])
    return kept.stack().groupby(level=0).agg(separator.join).reindex(range(len(words)))


def launch_days(rng: np.random.Generator, active: np.ndarray, days: int) -> np.ndarray:
    """The day (from the period's start) each product went on sale: 0 for the established
    catalogue, late in the period for :data:`NEW_PRODUCT_SHARE` of the active products."""
    n = len(active)
    new = active & (rng.random(n) < NEW_PRODUCT_SHARE)
    first = max(1, days - LAUNCH_WINDOW_DAYS)
    last = max(first + 1, days - 3)
    return np.where(new, rng.integers(first, last, n), 0)


def reviews(
    rng: np.random.Generator,
    purchases: pd.DataFrame,
    categories: np.ndarray,
    end: np.datetime64,
) -> pd.DataFrame:
    """Reviews of a share of ``purchases`` (``cust``, ``product``, ``ts``): ``cust``,
    ``product``, ``rating``, ``title``, ``text``, ``created_at`` (before ``end``)."""
    n_products = len(categories)
    quality = rng.normal(0, 1, n_products)
    temper = rng.normal(0, 1, int(purchases["cust"].max()) + 1 if len(purchases) else 1)
    chosen = purchases[rng.random(len(purchases)) < REVIEW_SHARE]
    created = pd.to_datetime(chosen["ts"]).to_numpy() + (
        rng.integers(3600, 10 * 86400, len(chosen)).astype("timedelta64[s]")
    )
    keep = created < end
    chosen, created = chosen[keep], created[keep]
    m = len(chosen)
    product = chosen["product"].to_numpy()
    cust = chosen["cust"].to_numpy()
    score = 3.7 + 0.9 * quality[product] + 0.4 * temper[cust] + rng.normal(0, 0.9, m)
    rating = np.clip(np.round(score), 1, 5).astype(int)
    texts, titles = _review_words(rng, rating, categories[product])
    return pd.DataFrame(
        {
            "cust": cust,
            "product": product,
            "rating": rating,
            "title": titles,
            "text": texts,
            "created_at": created,
        }
    )


def _review_words(
    rng: np.random.Generator, rating: np.ndarray, categories: np.ndarray
) -> tuple[pd.Series, pd.Series]:
    m = len(rating)
    if m == 0:
        return pd.Series([], dtype=object), pd.Series([], dtype=object)
    length = rng.integers(6, 18, m)
    width = int(length.max())
    # Word kinds: 0 the writer's mood, 1 the other mood (noise), 2 the product's category,
    # 3 filler. The mood is the rating's, except for some writers whose words say otherwise
    # (irony, a rating given in haste): the label is weak, as real ratings are.
    kind = rng.choice(4, size=(m, width), p=[0.2, 0.08, 0.27, 0.45])
    picks = rng.random((m, width))
    mismatched = rng.random(m) < 0.12
    felt = np.where(mismatched, rng.integers(1, 6, m), rating)
    positive, negative = felt >= 4, felt <= 2
    own = np.where(positive, "positive", np.where(negative, "negative", "lukewarm"))
    other = np.where(positive, "negative", np.where(negative, "positive", "lukewarm"))
    moods = {"positive": " ".join(POSITIVE), "negative": " ".join(NEGATIVE),
             "lukewarm": " ".join(LUKEWARM)}  # fmt: skip
    filler = _pick(_vocabulary({"": " ".join(FILLER)}, np.full(m, "")), picks)
    own_vocabulary = _vocabulary(moods, own)
    words = np.select(
        [kind == 0, kind == 1, kind == 2],
        [_pick(own_vocabulary, picks), _pick(_vocabulary(moods, other), picks),
         _pick(_vocabulary(CATEGORY_WORDS, categories), picks)],
        filler,
    )  # fmt: skip
    text = _sentences(words, length).str.capitalize()
    shout = rng.random(m) < 0.1
    text = text.where(~shout, text.str.upper())
    emoji = np.array(EMOJI, dtype=object)[rng.integers(0, len(EMOJI), m)]
    text = text.where(~(rng.random(m) < 0.12), text + " " + emoji)
    number = pd.Series(np.arange(m)).astype(str)
    text = text.where(
        ~(rng.random(m) < 0.04), text + " see https://shop.example.com/review/" + number
    )
    text = text.where(~(rng.random(m) < 0.02), text + " write to me at reviewer" + number
                      + "@example.org")  # fmt: skip
    text = text.where(
        ~(rng.random(m) < 0.01), text + " or call +44 7700 900" + number.str[-3:].str.zfill(3)
    )
    title_words = _pick(own_vocabulary, rng.random((m, 2)))
    titles = _sentences(title_words, np.full(m, 2)).str.capitalize()
    return text, titles

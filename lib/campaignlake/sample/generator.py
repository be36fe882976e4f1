"""Realistic raw exports for ``data/landing/``, deterministic for a seed.

The data has structure later models must find:

* every customer has latent category preferences (a peaked Dirichlet draw) that decide what
  they view, put in their cart and buy, and an activity level that decides how often they visit;
* campaign response (open, click) depends on recency, frequency, engagement and the
  customer's affinity to the campaign's category, not additively (affinity counts most for
  engaged customers, a very recent buyer is saturated), plus noise; conversions appear in the
  clickstream as purchases carrying the campaign's UTM tags;
* every past campaign holds out a control group (25%), and the message's effect is planted
  and heterogeneous: engaged customers with affinity are persuaded, frequent recent buyers buy
  anyway (in both groups), and recent buyers without affinity are put off. Both potential
  outcomes of every audience member are drawn, so the true lift of each campaign is known
  (:attr:`SampleSummary.planted_lift`);
* CRM exports change over time: new customers, tier changes, opt-outs, stale replays and a few
  deletion requests;
* products have descriptions and tags, a few are launched in the last weeks (no interactions
  before their launch: the cold-start products), and a share of purchases is reviewed
  (:mod:`campaignlake.sample.texts`).

A configurable share of records is broken in every way real exports are broken (see
:data:`BAD_CLICKSTREAM_KINDS` and :data:`BAD_CRM_KINDS`). Everything is vectorised with numpy
and pandas; the only loops run over files, campaigns and categories, never over records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from campaignlake.config import Conf
from campaignlake.errors import InputError
from campaignlake.sample import texts

CATEGORIES = [
    "electronics",
    "fashion",
    "home",
    "beauty",
    "sports",
    "toys",
    "books",
    "grocery",
    "garden",
    "pets",
]
#: Changes whenever the same spec writes different data (cached benchmark sets compare it).
GENERATOR_VERSION = "2026-12-01.texts"
#: The held-out share of the sample's past campaigns, and the window their outcome is read in
#: (the conf's ``response_model.attribution_days`` as shipped).
SAMPLE_CONTROL_FRACTION = 0.25
ATTRIBUTION_DAYS = 7
BRANDS = ["Acme", "Nordlys", "Verde", "Kiroshi", "Maple&Co", "Lumen", "Orbit", "Tessa"]
COUNTRY_OFFSETS = {  # country -> (UTC offset hours, a few cities)
    "DE": (1, ["Berlin", "München", "Köln"]),
    "FR": (1, ["Paris", "Lyon", "Marseille"]),
    "GB": (0, ["London", "Leeds", "Bristol"]),
    "NL": (1, ["Amsterdam", "Utrecht"]),
    "ES": (1, ["Madrid", "Sevilla"]),
    "SE": (1, ["Stockholm", "Malmö"]),
    "US": (-5, ["New York", "Boston"]),
    "CA": (-5, ["Toronto", "Montréal"]),
}
FIRST_NAMES = ["Anna", "Ben", "Chloé", "David", "Emma", "Felix", "Greta", "Hugo", "Ines", "Jonas"]
LAST_NAMES = ["Müller", "Smith", "Dubois", "García", "Jansen", "Larsson", "Brown", "Rossi"]
TIERS = ["none", "bronze", "silver", "gold", "platinum"]
#: Values of the CRM export's ``acquisition_channel`` attribute.
ACQUISITION_CHANNELS = ["organic", "paid_search", "social", "referral", "retail_store"]
#: CRM columns beyond the contract, after ``updated_at`` (declared in ingest.crm_attributes).
CRM_ATTRIBUTES = ["lifetime_points", "acquisition_channel"]
DEVICES = ["mobile", "desktop", "tablet", "app"]
UTM = [  # (source, medium) of a session's entry
    (None, None),
    ("google", "cpc"),
    ("newsletter", "email"),
    ("facebook", "social"),
    ("instagram", "social"),
]
BAD_CLICKSTREAM_KINDS = [
    "malformed_json",
    "missing_event_id",
    "missing_customer_and_anonymous_id",
    "unparseable_timestamp",
    "future_timestamp",
    "negative_price",
    "wrong_type",
    "not_utf8",
    "unknown_event_type",
]
BAD_CRM_KINDS = ["invalid_email", "missing_customer_id", "wrong_type", "stale_duplicate"]


@dataclass(frozen=True)
class SampleSpec:
    """How much data to generate; the defaults come from ``sample`` in the conf."""

    seed: int
    customers: int
    products: int
    days: int
    end_date: date
    sessions_per_customer_per_week: float
    crm_exports: int
    campaigns: int
    bad_record_rate: float


@dataclass(frozen=True)
class SampleSummary:
    """What :func:`generate` wrote."""

    events: int
    customers: int
    products: int
    campaign_contacts: int
    reviews: int
    clickstream_files: int
    bad_clickstream_lines: int
    #: campaign id → the true conversion lift planted (see :func:`_campaigns`).
    planted_lift: dict[str, float]


def generate(spec: SampleSpec, landing: Path) -> SampleSummary:
    """Write the products catalog, CRM exports, clickstream and campaign history into
    ``landing``; the same spec always writes the same bytes."""
    rng = np.random.default_rng(spec.seed)
    start = spec.end_date - timedelta(days=spec.days - 1)
    # Texts and launches draw from their own stream: adding them left every other generated
    # value as it was.
    text_rng = np.random.default_rng([spec.seed, 19])
    products = _products(rng, spec.products)
    products["launch_day"] = texts.launch_days(text_rng, products["active"].to_numpy(), spec.days)
    products["description"], products["tags"] = texts.describe_products(
        text_rng, products["category"].to_numpy(), products["brand"].to_numpy()
    )
    customers = _customers(rng, spec, start)
    events = _sessions_and_events(rng, spec, start, customers, products)
    events = _before_launch_elsewhere(text_rng, events, products, start)
    contacts, campaign_events, planted = _campaigns(rng, spec, start, customers, products, events)
    # Positional from here on: the writers align columns by position, not by label.
    events = (
        pd.concat([events, campaign_events], ignore_index=True)
        .sort_values(["ts", "seq"], kind="stable")
        .reset_index(drop=True)
    )
    events["event_id"] = [f"evt-{spec.seed:04d}-{i:09d}" for i in range(len(events))]

    purchases = events.loc[events["event_type"] == "purchase", ["cust", "product", "ts"]]
    end = np.datetime64(spec.end_date + timedelta(days=1))
    reviews = texts.reviews(text_rng, purchases, products["category"].to_numpy(), end)
    _write_products(products, landing, spec.end_date)
    _write_reviews(reviews, customers, landing, spec.end_date)
    _write_crm(rng, spec, customers, landing, start)
    _write_campaigns(rng, contacts, landing, spec)
    files, bad = _write_clickstream(rng, spec, events, customers, landing)
    return SampleSummary(
        events=len(events),
        customers=len(customers),
        products=len(products),
        campaign_contacts=len(contacts),
        reviews=len(reviews),
        clickstream_files=files,
        bad_clickstream_lines=bad,
        planted_lift=planted,
    )


# ---------------------------------------------------------------------------- entities


def _products(rng: np.random.Generator, n: int) -> pd.DataFrame:
    category = np.arange(n) % len(CATEGORIES)
    base_price = np.array([180, 45, 60, 25, 55, 30, 15, 8, 35, 20])[category]
    price = np.round(base_price * rng.lognormal(0, 0.5, n), 2) + 0.99
    return pd.DataFrame(
        {
            "product_id": [f"P{i:05d}" for i in range(1, n + 1)],
            "name": [f"{CATEGORIES[c].title()} item {i}" for i, c in enumerate(category, start=1)],
            "category": np.array(CATEGORIES)[category],
            "category_idx": category,
            "brand": np.array(BRANDS)[rng.integers(0, len(BRANDS), n)],
            "price": np.round(price, 2),
            "active": rng.random(n) > 0.05,
            # Zipf-like popularity within a category.
            "popularity": 1.0 / (1 + rng.permutation(n) % 40) ** 1.1,
        }
    )


def _before_launch_elsewhere(
    rng: np.random.Generator, events: pd.DataFrame, products: pd.DataFrame, start: date
) -> pd.DataFrame:
    """Events on a product before its launch day moved to an established product of the same
    category (by popularity): a new product has no history."""
    product = events["product"].to_numpy().copy()
    day = (pd.to_datetime(events["ts"]).to_numpy() - np.datetime64(start)) // np.timedelta64(1, "D")
    launch = products["launch_day"].to_numpy()
    early = (product >= 0) & (launch[np.maximum(product, 0)] > day)
    category = products["category_idx"].to_numpy()
    for cat in range(len(CATEGORIES)):
        moved = early & (category[np.maximum(product, 0)] == cat)
        established = np.nonzero((category == cat) & (launch == 0) & products["active"].to_numpy())[
            0
        ]
        if moved.any() and len(established):
            weights = products["popularity"].to_numpy()[established]
            product[moved] = rng.choice(established, moved.sum(), p=weights / weights.sum())
    prices = products["price"].to_numpy()
    return events.assign(
        product=product,
        price=np.where(product >= 0, prices[np.maximum(product, 0)], np.nan),
    )


def _customers(rng: np.random.Generator, spec: SampleSpec, start: date) -> pd.DataFrame:
    n = spec.customers
    countries = np.array(list(COUNTRY_OFFSETS))
    country = countries[rng.integers(0, len(countries), n)]
    city = [COUNTRY_OFFSETS[c][1][i % len(COUNTRY_OFFSETS[c][1])] for i, c in enumerate(country)]
    # Two thirds signed up before the period, the rest during it.
    before = rng.integers(30, 3 * 365, n)
    during = rng.integers(0, spec.days, n)
    joined_during = rng.random(n) < 0.33
    signup = np.where(
        joined_during,
        np.datetime64(start) + during.astype("timedelta64[D]"),
        np.datetime64(start) - before.astype("timedelta64[D]"),
    )
    first = np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), n)]
    last = np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), n)]
    ids = np.array([f"C{i:06d}" for i in range(1, n + 1)])
    has_phone = rng.random(n) < 0.6
    tier_rank = np.minimum(rng.poisson(0.9, n), 4)
    # CRM attributes beyond the contract draw from their own stream, so adding them left
    # every other generated value as it was.
    extra = np.random.default_rng(spec.seed + 1)
    lifetime_points = np.round(tier_rank * 800 + extra.gamma(2.0, 250.0, n)).astype(int)
    acquisition = np.array(ACQUISITION_CHANNELS)[extra.integers(0, len(ACQUISITION_CHANNELS), n)]
    return pd.DataFrame(
        {
            "customer_id": ids,
            "email": (
                pd.Series(first).str.lower()
                + "."
                + pd.Series(last).str.lower()
                + "."
                + pd.Series(np.arange(n)).astype(str)
                + "@example.com"
            )
            .str.normalize("NFKD")
            .str.encode("ascii", "ignore")
            .str.decode("ascii")
            .to_numpy(),
            "first_name": first,
            "last_name": last,
            "country": country,
            "city": city,
            "signup_date": signup.astype("datetime64[D]"),
            "birth_year": rng.integers(1950, 2006, n),
            "loyalty_tier": np.array(TIERS)[tier_rank],
            "email_opt_in": rng.random(n) < 0.85,
            "sms_opt_in": has_phone & (rng.random(n) < 0.5),
            "push_opt_in": rng.random(n) < 0.35,
            "phone": np.where(has_phone, [f"+4915{i:08d}" for i in range(n)], None),
            "activity": rng.lognormal(0, 0.7, n),
            "buy_propensity": rng.beta(2, 8, n),
            "pref": list(rng.dirichlet(np.full(len(CATEGORIES), 0.3), n)),
            "utc_offset": np.array([COUNTRY_OFFSETS[c][0] for c in country]),
            "lifetime_points": lifetime_points,
            "acquisition_channel": acquisition,
        }
    )


def _sessions_and_events(
    rng: np.random.Generator,
    spec: SampleSpec,
    start: date,
    customers: pd.DataFrame,
    products: pd.DataFrame,
) -> pd.DataFrame:
    rate = customers["activity"].to_numpy() * spec.sessions_per_customer_per_week / 7.0
    counts = rng.poisson(rate[:, None] * np.ones(spec.days))  # customers x days
    cust_idx, day_idx = np.nonzero(counts)
    repeats = counts[cust_idx, day_idx]
    cust_idx = np.repeat(cust_idx, repeats)
    day_idx = np.repeat(day_idx, repeats)
    day = np.datetime64(start) + day_idx.astype("timedelta64[D]")
    active = day >= customers["signup_date"].to_numpy()[cust_idx].astype("datetime64[D]")
    cust_idx, day = cust_idx[active], day[active]
    n_sessions = len(cust_idx)
    session_start = day.astype("datetime64[s]") + rng.integers(
        6 * 3600, 23 * 3600, n_sessions
    ).astype("timedelta64[s]")
    buys = rng.random(n_sessions) < customers["buy_propensity"].to_numpy()[cust_idx]
    carts = buys | (rng.random(n_sessions) < 0.25)
    browse = 1 + rng.poisson(4, n_sessions)
    n_events = browse + carts.astype(int) + 2 * buys.astype(int)  # cart; checkout + purchase
    session = np.repeat(np.arange(n_sessions), n_events)
    pos = np.arange(len(session)) - np.repeat(np.cumsum(n_events) - n_events, n_events)
    n_ev = len(session)
    # Event type by position: browsing first, then cart, checkout, purchase.
    browse_types = np.array(["page_view", "product_view", "product_view", "search", "product_view"])
    etype = browse_types[rng.integers(0, len(browse_types), n_ev)].astype(object)
    etype[pos == 0] = "page_view"
    b = browse[session]
    etype[(pos == b) & carts[session]] = "add_to_cart"
    etype[(pos == b + 1) & buys[session]] = "checkout"
    etype[(pos == b + 2) & buys[session]] = "purchase"
    removed = (etype == "product_view") & (rng.random(n_ev) < 0.02)
    etype[removed] = "remove_from_cart"
    # Products follow the customer's category preferences and in-category popularity.
    ecust = cust_idx[session]
    prefs = np.stack(customers["pref"].to_numpy())
    cum = np.cumsum(prefs[ecust], axis=1)
    category = np.minimum((cum < rng.random(n_ev)[:, None]).sum(axis=1), len(CATEGORIES) - 1)
    # A session centres on one product for cart and purchase: the last viewed product.
    product = np.empty(n_ev, dtype=np.int64)
    for cat in range(len(CATEGORIES)):
        mask = category == cat
        in_cat = np.nonzero(
            (products["category_idx"] == cat).to_numpy() & products["active"].to_numpy()
        )[0]
        weights = products["popularity"].to_numpy()[in_cat]
        product[mask] = rng.choice(in_cat, mask.sum(), p=weights / weights.sum())
    focus = product[np.cumsum(n_events) - 1]  # session's last event product
    cart_like = np.isin(etype, ["add_to_cart", "checkout", "purchase"])
    product[cart_like] = focus[session[cart_like]]
    has_product = np.isin(etype, ["product_view", "add_to_cart", "remove_from_cart", "purchase"])
    gaps = rng.exponential(45, n_ev).astype("int64")
    offsets = np.cumsum(gaps) - np.repeat(
        np.cumsum(gaps)[np.cumsum(n_events) - n_events] - gaps[np.cumsum(n_events) - n_events],
        n_events,
    )
    ts = session_start[session] + offsets.astype("timedelta64[s]")
    # Before login, about one session in six carries only the anonymous id.
    anonymous = rng.random(n_sessions) < 0.15
    utm = rng.integers(0, len(UTM), n_sessions)
    prices = products["price"].to_numpy()
    return pd.DataFrame(
        {
            "seq": np.arange(n_ev),
            "event_type": etype,
            "ts": ts,
            "cust": ecust,
            "anonymous": anonymous[session],
            "session_id": [f"s-{spec.seed}-{s}" for s in session],
            "product": np.where(has_product, product, -1),
            "quantity": np.where(cart_like & has_product, 1 + rng.poisson(0.3, n_ev), 0),
            "price": np.where(has_product, prices[product], np.nan),
            "utm": utm[session],
            "device": np.array(DEVICES)[rng.integers(0, len(DEVICES), n_sessions)][session],
            "campaign": None,
        }
    )


def _campaigns(
    rng: np.random.Generator,
    spec: SampleSpec,
    start: date,
    customers: pd.DataFrame,
    products: pd.DataFrame,
    events: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """Campaign sends, held-out customers and their responses; returns the campaign history,
    the events responses cause, and each campaign's planted conversion lift (the mean, over
    its audience, of converting if sent minus converting if held out, where converting is
    buying in the campaign's category within :data:`ATTRIBUTION_DAYS` of the send)."""
    channels = ["email", "sms", "push"]
    consent = {"email": "email_opt_in", "sms": "sms_opt_in", "push": "push_opt_in"}
    first_send = start + timedelta(days=spec.days // 3)
    span = max(1, (spec.days - spec.days // 3) - 10)
    purchases = events[events["event_type"] == "purchase"]
    category_of = products["category_idx"].to_numpy()
    sessions = events[events["event_type"] == "page_view"]
    prefs = np.stack(customers["pref"].to_numpy())
    n = len(customers)
    contact_frames, event_frames = [], []
    planted: dict[str, float] = {}
    for k in range(spec.campaigns):
        send_day = first_send + timedelta(days=int(k * span / max(1, spec.campaigns - 1)))
        send_at = np.datetime64(datetime.combine(send_day, datetime.min.time())) + np.timedelta64(
            9, "h"
        )
        channel = channels[k % 3] if k % 2 else "email"
        cat = int(rng.integers(0, len(CATEGORIES)))
        campaign_id = f"CMP-{send_day:%Y%m%d}-{channel}-{CATEGORIES[cat]}"
        eligible = customers[consent[channel]].to_numpy() & (
            customers["signup_date"].to_numpy() < np.datetime64(send_day)
        )
        chosen = np.nonzero(eligible & (rng.random(n) < 0.45))[0]
        before = purchases[purchases["ts"] < send_at]
        last_buy = before.groupby("cust")["ts"].max()
        recency = (send_at - last_buy.reindex(range(n)).to_numpy()) / np.timedelta64(1, "D")
        recency = np.where(np.isnan(recency), 365.0, recency)
        freq = np.bincount(
            before[before["ts"] >= send_at - np.timedelta64(90, "D")]["cust"], minlength=n
        )
        recent_sessions = sessions[
            (sessions["ts"] < send_at) & (sessions["ts"] >= send_at - np.timedelta64(30, "D"))
        ]
        engagement = np.bincount(recent_sessions["cust"], minlength=n)
        affinity = prefs[:, cat]
        # Not purely additive, as real response is not: affinity pays off mostly for customers
        # who are engaged, and someone who bought in the last three days is saturated.
        engaged = engagement >= 3
        logit = (
            -4.0
            - 0.9 * np.log1p(recency) / np.log1p(365)
            - 1.0 * (recency < 3)
            + 0.6 * np.log1p(freq)
            + 0.35 * np.log1p(engagement)
            + affinity * np.where(engaged, 4.0, 1.5)
            + rng.normal(0, 0.5, n)
        )
        p_convert = 1 / (1 + np.exp(-logit))
        # Who the message changes (the planted treatment effect, heterogeneous as in real
        # campaigns): contacts convert with p_convert, the response signal (treatment only);
        # beyond that, customers who are not frequent recent buyers are persuaded the more
        # they are engaged and care for the category; frequent recent buyers mostly buy
        # anyway, in both groups (those who do not care for the category are put off: the
        # message cancels half their purchases).
        recent_buyer = (recency < 14) & (freq >= 2)
        p_persuade = 1 / (
            1 + np.exp(-(-3.2 + 6.0 * affinity * engaged + 0.3 * np.log1p(engagement)))
        )
        p_anyway = np.where(recent_buyer, 0.4 + 0.4 * affinity, 0.0)
        p_put_off = np.where(recent_buyer & (affinity < 0.1), 0.5, 0.0)
        c = chosen
        control = rng.random(len(c)) < SAMPLE_CONTROL_FRACTION
        opened = rng.random(len(c)) < np.minimum(0.95, 0.25 + 2.5 * p_convert[c])
        clicked = opened & (rng.random(len(c)) < np.minimum(0.95, 0.2 + 3.0 * p_convert[c]))
        persuaded = rng.random(len(c)) < p_convert[c] * np.where(clicked, 2.5, 0.6)
        persuaded |= (rng.random(len(c)) < p_persuade[c]) & ~recent_buyer[c]
        anyway = rng.random(len(c)) < p_anyway[c]
        put_off = rng.random(len(c)) < p_put_off[c]
        open_at = send_at + rng.integers(600, 48 * 3600, len(c)).astype("timedelta64[s]")
        click_at = open_at + rng.integers(5, 3600, len(c)).astype("timedelta64[s]")
        # At most 2 days to open, an hour to click and 4 days to buy: inside the 7-day window.
        convert_at = click_at + rng.integers(60, 4 * 24 * 3600, len(c)).astype("timedelta64[s]")
        anyway_at = send_at + rng.integers(3600, 6 * 24 * 3600, len(c)).astype("timedelta64[s]")
        in_cat = np.nonzero(
            (products["category_idx"] == cat).to_numpy() & products["active"].to_numpy()
        )[0]
        bought = rng.choice(in_cat, len(c))
        revenue = np.round(products["price"].to_numpy()[bought] * (1 + rng.poisson(0.3, len(c))), 2)
        # Both potential outcomes of every audience member, to state the true effect.
        window_end = send_at + np.timedelta64(ATTRIBUTION_DAYS, "D")
        organic = purchases[
            ~purchases["anonymous"]
            & (purchases["ts"] >= send_at)
            & (purchases["ts"] < window_end)
            & (category_of[purchases["product"].to_numpy()] == cat)
        ]
        buys_on_their_own = np.isin(c, organic["cust"].to_numpy())
        buys_anyway = buys_on_their_own | anyway
        buys_if_sent = buys_on_their_own | (anyway & ~put_off) | persuaded
        planted[campaign_id] = float(np.mean(buys_if_sent.astype(int) - buys_anyway.astype(int)))
        sent = ~control
        # The contacted buy after persuasion or anyway (unless put off); the held out anyway.
        converted = sent & (persuaded | (anyway & ~put_off))
        conversion_at = np.where(persuaded, convert_at, anyway_at)
        nat = np.datetime64("NaT")
        contact_frames.append(
            pd.DataFrame(
                {
                    "campaign_id": campaign_id,
                    "channel": channel,
                    "customer_id": customers["customer_id"].to_numpy()[c],
                    "sent_at": send_at,
                    "opened_at": np.where(sent & opened, open_at, nat),
                    "clicked_at": np.where(sent & clicked, click_at, nat),
                    "converted_at": np.where(converted, conversion_at, nat),
                    "revenue": np.where(converted, revenue, np.nan),
                    "group": np.where(sent, "treatment", "control"),
                }
            )
        )
        # Responses show up in the clickstream: opens and clicks for email, purchases for all;
        # a held-out customer's purchase is organic (no campaign tags).
        frames = []
        if channel == "email":
            frames.append(
                _response_events(
                    c[sent & opened],
                    open_at[sent & opened],
                    "email_open",
                    campaign_id,
                    -1,
                    0,
                    np.nan,
                )
            )
            frames.append(
                _response_events(
                    c[sent & clicked],
                    click_at[sent & clicked],
                    "email_click",
                    campaign_id,
                    -1,
                    0,
                    np.nan,
                )
            )
        held_out_buys = control & anyway
        for buys, tag in ((converted, campaign_id), (held_out_buys, None)):
            frames.append(
                _response_events(
                    c[buys],
                    conversion_at[buys],
                    "purchase",
                    tag if tag is not None else f"{campaign_id}-holdout",
                    bought[buys],
                    1,
                    products["price"].to_numpy()[bought[buys]],
                    tagged=tag is not None,
                )
            )
        event_frames += frames
    contacts = pd.concat(contact_frames, ignore_index=True)
    campaign_events = pd.concat(event_frames, ignore_index=True)
    campaign_events["seq"] = len(events) + np.arange(len(campaign_events))
    end = np.datetime64(datetime.combine(spec.end_date, datetime.max.time()))
    campaign_events = campaign_events[campaign_events["ts"] <= end]
    contacts = contacts[contacts["sent_at"] <= end]
    for column in ("opened_at", "clicked_at", "converted_at"):
        late = contacts[column] > end
        contacts.loc[late, column] = pd.NaT
    contacts.loc[contacts["converted_at"].isna(), "revenue"] = np.nan
    return contacts, campaign_events, planted


def _response_events(
    cust: np.ndarray,
    ts: np.ndarray,
    etype: str,
    campaign: str,
    product: object,
    qty: int,
    price: object,
    *,
    tagged: bool = True,
) -> pd.DataFrame:
    n = len(cust)
    return pd.DataFrame(
        {
            "event_type": etype,
            "ts": ts,
            "cust": cust,
            "anonymous": False,
            "session_id": [f"s-{campaign}-{i}" for i in range(n)],
            "product": np.broadcast_to(product, n),
            "quantity": qty,
            "price": np.broadcast_to(price, n),
            "utm": 2,
            "device": "mobile",
            "campaign": campaign if tagged else None,
        }
    )


# ---------------------------------------------------------------------------- writers


def _iso_with_offset(ts: pd.Series, offset_hours: pd.Series) -> pd.Series:
    """UTC instants as ISO-8601 local times with the customer's UTC offset."""
    local = ts + pd.to_timedelta(offset_hours, unit="h")
    sign = np.where(offset_hours < 0, "-", "+")
    suffix = pd.Series(sign, index=ts.index) + offset_hours.abs().map("{:02d}:00".format)
    return (
        local.dt.strftime("%Y-%m-%dT%H:%M:%S.")
        + (local.dt.microsecond // 1000).map("{:03d}".format)
        + suffix
    )


def _write_products(products: pd.DataFrame, landing: Path, end: date) -> None:
    out = landing / "products"
    out.mkdir(parents=True, exist_ok=True)
    columns = ["product_id", "name", "category", "brand", "price", "active", "description", "tags"]
    frame = products[columns].copy()
    frame["active"] = frame["active"].map({True: "true", False: "false"})
    bad = frame.iloc[:2].copy()
    bad["product_id"] = ["", "P99999"]
    bad["price"] = [9.99, -5.00]  # a missing id and a negative price
    pd.concat([frame, bad]).to_csv(out / f"products_{end:%Y-%m-%d}.csv", index=False)


def _write_reviews(
    reviews: pd.DataFrame, customers: pd.DataFrame, landing: Path, end: date
) -> None:
    """One export per week (named by its last day), plus two broken rows in the last."""
    out = landing / "reviews"
    out.mkdir(parents=True, exist_ok=True)
    created = pd.to_datetime(reviews["created_at"])
    frame = pd.DataFrame(
        {
            "review_id": [f"R{i:07d}" for i in range(1, len(reviews) + 1)],
            "customer_id": customers["customer_id"].to_numpy()[reviews["cust"].to_numpy()],
            "product_id": [f"P{p + 1:05d}" for p in reviews["product"].to_numpy()],
            "rating": reviews["rating"].astype(str).to_numpy(),
            "title": reviews["title"].to_numpy(),
            "text": reviews["text"].to_numpy(),
            "created_at": created.dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_numpy(),
        }
    )
    weeks_before_end = (np.datetime64(end) - created.to_numpy().astype("datetime64[D]")) // 7
    export = np.datetime64(end) - (weeks_before_end.astype(int) * 7).astype("timedelta64[D]")
    frame["export"] = pd.Series(export).dt.strftime("%Y-%m-%d").to_numpy()
    broken = pd.DataFrame(
        {
            "review_id": ["R9999998", "R9999999"],
            "customer_id": ["C000001", "C000002"],
            "product_id": ["P00001", ""],
            "rating": ["7", "4"],
            "title": ["Out of range", "No product"],
            "text": ["rated seven", "which one"],
            "created_at": [f"{end}T10:00:00Z"] * 2,
            "export": [str(end)] * 2,
        }
    )
    frame = pd.concat([frame, broken], ignore_index=True)
    for day, rows in frame.groupby("export", sort=True):
        rows.drop(columns="export").to_csv(out / f"reviews_{day}.csv", index=False)


def _write_crm(
    rng: np.random.Generator, spec: SampleSpec, customers: pd.DataFrame, landing: Path, start: date
) -> None:
    out = landing / "crm"
    out.mkdir(parents=True, exist_ok=True)
    columns = [
        "customer_id", "email", "first_name", "last_name", "country", "city", "signup_date",
        "birth_year", "loyalty_tier", "email_opt_in", "sms_opt_in", "push_opt_in", "phone",
        "updated_at", *CRM_ATTRIBUTES,
    ]  # fmt: skip
    contract = columns[: -len(CRM_ATTRIBUTES)]
    state = customers.copy()
    n_exports = max(1, spec.crm_exports)
    dates = [
        start + timedelta(days=int(i * (spec.days - 1) / max(1, n_exports - 1)))
        for i in range(n_exports)
    ]
    if n_exports == 1:
        dates = [spec.end_date]
    previous: pd.DataFrame | None = None
    for i, export_day in enumerate(dates):
        signed_up = state["signup_date"].to_numpy() <= np.datetime64(export_day)
        export_ts = pd.Timestamp(datetime.combine(export_day, datetime.min.time()))
        if previous is None:
            rows = state[signed_up].copy()
            rows["updated_at"] = export_ts - pd.to_timedelta(
                rng.integers(3600, 30 * 86400, len(rows)), unit="s"
            )
            rows.loc[rows["updated_at"] < pd.to_datetime(rows["signup_date"]), "updated_at"] = (
                pd.to_datetime(rows["signup_date"]) + pd.Timedelta(hours=1)
            )
        else:
            new = signed_up & ~state["customer_id"].isin(previous["customer_id"]).to_numpy()
            changed = signed_up & ~new & (rng.random(len(state)) < 0.08)
            # Changes: tier moves, opt-outs of email and sms.
            idx = np.nonzero(changed)[0]
            state.loc[state.index[idx], "loyalty_tier"] = np.array(TIERS)[
                np.minimum(rng.poisson(1.2, len(idx)), 4)
            ]
            opt_out = idx[rng.random(len(idx)) < 0.4]
            state.loc[state.index[opt_out], "email_opt_in"] = False
            state.loc[state.index[opt_out[: len(opt_out) // 2]], "sms_opt_in"] = False
            rows = state[new | changed].copy()
            rows["updated_at"] = export_ts - pd.to_timedelta(
                rng.integers(60, 86400, len(rows)), unit="s"
            )
        frame = rows[contract[:-1]].copy()
        frame["updated_at"] = rows["updated_at"]
        frame[CRM_ATTRIBUTES] = rows[CRM_ATTRIBUTES]
        bad_n = max(1, int(len(frame) * spec.bad_record_rate)) if spec.bad_record_rate > 0 else 0
        if bad_n:
            frame = _break_crm(rng, frame, bad_n)
        frame["signup_date"] = pd.to_datetime(frame["signup_date"]).dt.strftime("%Y-%m-%d")
        frame["updated_at"] = pd.to_datetime(frame["updated_at"]).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
        for flag in ("email_opt_in", "sms_opt_in", "push_opt_in"):
            frame[flag] = frame[flag].map({True: "true", False: "false"}).fillna("false")
        frame.to_csv(out / f"customers_{export_day:%Y-%m-%d}.csv", index=False, columns=columns)
        previous = rows if previous is None else pd.concat([previous, rows])
        if i == n_exports - 1:
            requested = state[signed_up].sample(n=max(1, len(state) // 500), random_state=spec.seed)
            pd.DataFrame(
                {
                    "customer_id": requested["customer_id"],
                    "requested_at": (export_ts - pd.Timedelta(hours=6)).strftime(
                        "%Y-%m-%dT%H:%M:%SZ"
                    ),
                }
            ).to_csv(out / f"deletion_requests_{export_day:%Y-%m-%d}.csv", index=False)


def _break_crm(rng: np.random.Generator, frame: pd.DataFrame, n: int) -> pd.DataFrame:
    frame = frame.copy()
    frame["birth_year"] = frame["birth_year"].astype(object)
    picks = rng.choice(len(frame), min(len(frame), n * len(BAD_CRM_KINDS)), replace=False)
    groups = np.array_split(picks, len(BAD_CRM_KINDS))
    idx = frame.index
    frame.loc[idx[groups[0]], "email"] = [
        "not-an-email",
        "john.doe@",
        "@example.com",
        "a b@example.com",
    ] * (len(groups[0]) // 4) + ["x@"] * (len(groups[0]) % 4)
    frame.loc[idx[groups[1]], "customer_id"] = ""
    frame.loc[idx[groups[2]], "birth_year"] = "nineteen-eighty"
    stale = frame.loc[idx[groups[3]]].copy()
    stale["updated_at"] = pd.to_datetime(stale["updated_at"]) - pd.Timedelta(days=40)
    stale["loyalty_tier"] = "none"
    return pd.concat([frame, stale])


def _write_campaigns(
    rng: np.random.Generator, contacts: pd.DataFrame, landing: Path, spec: SampleSpec
) -> None:
    out = landing / "campaigns"
    out.mkdir(parents=True, exist_ok=True)
    frame = contacts.copy()
    for column in ("sent_at", "opened_at", "clicked_at", "converted_at"):
        frame[column] = pd.to_datetime(frame[column]).dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    bad_n = max(1, int(len(frame) * spec.bad_record_rate / 4)) if spec.bad_record_rate > 0 else 0
    if bad_n:
        picks = rng.choice(len(frame), 3 * bad_n, replace=False)
        frame.loc[frame.index[picks[:bad_n]], "customer_id"] = ""
        frame.loc[frame.index[picks[bad_n : 2 * bad_n]], "channel"] = "fax"
        frame.loc[frame.index[picks[2 * bad_n :]], "sent_at"] = "last tuesday"
    frame.to_csv(out / f"campaign_history_{spec.end_date:%Y-%m-%d}.csv", index=False)


def _write_clickstream(
    rng: np.random.Generator,
    spec: SampleSpec,
    events: pd.DataFrame,
    customers: pd.DataFrame,
    landing: Path,
) -> tuple[int, int]:
    out = landing / "clickstream"
    cust = events["cust"].to_numpy()
    offset = pd.Series(customers["utc_offset"].to_numpy()[cust], index=events.index)
    ts = pd.to_datetime(events["ts"])
    anonymous = events["anonymous"].to_numpy()
    product = events["product"].to_numpy()
    utm = events["utm"].to_numpy()
    campaign = events["campaign"].to_numpy()
    from_campaign = pd.notna(campaign)
    utm_sources = np.array([u[0] for u in UTM], dtype=object)
    utm_mediums = np.array([u[1] for u in UTM], dtype=object)
    records = pd.DataFrame(
        {
            "event_id": events["event_id"].to_numpy(),
            "event_type": events["event_type"].to_numpy(),
            "event_ts": _iso_with_offset(ts, offset).to_numpy(),
            "customer_id": np.where(anonymous, None, customers["customer_id"].to_numpy()[cust]),
            "anonymous_id": np.array([f"anon-{c:07d}" for c in cust]),
            "session_id": events["session_id"].to_numpy(),
            "product_id": np.where(product >= 0, [f"P{p + 1:05d}" for p in product], None),
            "quantity": np.where(
                events["quantity"].to_numpy() > 0, events["quantity"].to_numpy(), None
            ),
            "price": np.where(product >= 0, events["price"].to_numpy(), None),
            "page_url": [f"https://shop.example.com/{t}" for t in events["event_type"].to_numpy()],
            "referrer": np.where(utm == 1, "https://www.google.com/", None),
            "utm_source": np.where(from_campaign, "newsletter", utm_sources[utm]),
            "utm_medium": np.where(from_campaign, "email", utm_mediums[utm]),
            "utm_campaign": campaign,
            "device": events["device"].to_numpy(),
            "user_agent": "Mozilla/5.0 (campaignlake sample)",
        }
    )
    lines = pd.Series(
        records.to_json(orient="records", lines=True, force_ascii=False).splitlines(),
        index=records.index,
    )
    lines = lines.str.encode("utf-8")
    bad = 0
    if spec.bad_record_rate > 0:
        lines, bad = _break_clickstream(rng, spec, lines, records)
    hour_key = ts.dt.strftime("date=%Y-%m-%d/hour=%H").reindex(lines.index)
    files = 0
    for key, group in lines.groupby(hour_key, sort=True):
        directory = out / key
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "events-0000.jsonl").write_bytes(b"\n".join(group.to_list()) + b"\n")
        files += 1
    return files, bad


def _break_clickstream(
    rng: np.random.Generator, spec: SampleSpec, lines: pd.Series, records: pd.DataFrame
) -> tuple[pd.Series, int]:
    n_bad = max(len(BAD_CLICKSTREAM_KINDS), int(len(lines) * spec.bad_record_rate))
    per_kind = max(1, n_bad // len(BAD_CLICKSTREAM_KINDS))
    picks = rng.choice(len(lines), per_kind * (len(BAD_CLICKSTREAM_KINDS) + 2), replace=False)
    groups = np.array_split(picks, len(BAD_CLICKSTREAM_KINDS) + 2)
    lines = lines.copy()
    idx = lines.index

    def rewrite(which: np.ndarray, **changes: object) -> None:
        base = records.loc[idx[which]].copy()
        for column, value in changes.items():
            base[column] = value
        lines.loc[idx[which]] = [
            json.dumps(
                {k: v for k, v in row.items() if not (isinstance(v, float) and np.isnan(v))},
                ensure_ascii=False,
            ).encode("utf-8")
            for row in base.to_dict("records")
        ]

    kinds = dict(zip(BAD_CLICKSTREAM_KINDS, groups, strict=False))
    lines.loc[idx[kinds["malformed_json"]]] = lines.loc[idx[kinds["malformed_json"]]].map(
        lambda b: b[: len(b) // 2]
    )
    rewrite(kinds["missing_event_id"], event_id="")
    rewrite(kinds["missing_customer_and_anonymous_id"], customer_id=None, anonymous_id=None)
    rewrite(kinds["unparseable_timestamp"], event_ts="31/02/2026 25:61")
    rewrite(kinds["future_timestamp"], event_ts="2099-01-01T00:00:00.000+00:00")
    rewrite(kinds["negative_price"], price=-12.5, product_id="P00001", event_type="product_view")
    rewrite(kinds["wrong_type"], quantity="two", product_id="P00001", event_type="add_to_cart")
    lines.loc[idx[kinds["not_utf8"]]] = lines.loc[idx[kinds["not_utf8"]]].map(
        lambda b: b.replace(b'"device"', '"city":"Montréal","device"'.encode("latin-1"))
    )
    rewrite(kinds["unknown_event_type"], event_type="teleport")
    # Valid records with unknown extra fields: kept, the extras rescued.
    rewrite(groups[-2], experiment="checkout-v2", ab_bucket=7)
    # Duplicates: the collector re-sent some events.
    dupes = lines.loc[idx[groups[-1]]]
    lines = pd.concat([lines, dupes])
    return lines, per_kind * len(BAD_CLICKSTREAM_KINDS)


def spec_from_conf(sample: object, **overrides: object) -> SampleSpec:
    """A :class:`SampleSpec` from the conf's ``sample`` section, with CLI overrides."""
    values = {
        "seed": sample.seed,  # type: ignore[attr-defined]
        "customers": sample.customers,  # type: ignore[attr-defined]
        "products": sample.products,  # type: ignore[attr-defined]
        "days": sample.days,  # type: ignore[attr-defined]
        "end_date": date.fromisoformat(sample.end_date),  # type: ignore[attr-defined]
        "sessions_per_customer_per_week": sample.sessions_per_customer_per_week,  # type: ignore[attr-defined]
        "crm_exports": sample.crm_exports,  # type: ignore[attr-defined]
        "campaigns": sample.campaigns,  # type: ignore[attr-defined]
        "bad_record_rate": sample.bad_record_rate,  # type: ignore[attr-defined]
    }
    values.update({k: v for k, v in overrides.items() if v is not None})
    return SampleSpec(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SampleRun:
    """What the ``generate_sample`` job did: the summary, or ``None`` when it left existing
    data alone."""

    landing: Path
    summary: SampleSummary | None

    def describe(self) -> str:
        """One line for the job's output."""
        if self.summary is None:
            return f"sample: {self.landing} already holds data, not generating"
        s = self.summary
        return (
            f"sample: {s.events} events in {s.clickstream_files} files "
            f"({s.bad_clickstream_lines} broken on purpose), {s.customers} customers, "
            f"{s.products} products, {s.campaign_contacts} campaign contacts, {s.reviews} "
            f"reviews -> {self.landing}"
            + "".join(
                f"\n   planted conversion lift {campaign}: {lift:+.4f}"
                for campaign, lift in s.planted_lift.items()
            )
        )


def generate_sample(
    conf: Conf,
    *,
    as_of: date | None = None,
    landing: str | None = None,
    if_missing: bool = False,
    **overrides: object,
) -> SampleRun:
    """Generate the sample raw exports into ``paths.landing`` (or ``landing``).

    Parameters
    ----------
    conf
        Its ``sample`` section gives the defaults.
    as_of
        The sample's last day (default: ``sample.end_date``).
    landing
        Write here instead of ``paths.landing``.
    if_missing
        Do nothing when the landing directory already holds data.
    **overrides
        :class:`SampleSpec` fields to override (``None`` keeps the conf's value).

    Raises
    ------
    InputError
        When the landing directory is not a local path.
    """
    target = Path(landing or conf.paths.landing)
    if "://" in str(target) or str(target).startswith("dbfs:"):
        raise InputError(f"the sample generator writes local files only, not {target}")
    if if_missing and target.exists() and any(target.iterdir()):
        return SampleRun(target, None)
    spec = spec_from_conf(conf.sample, end_date=as_of, **overrides)
    return SampleRun(target, generate(spec, target))


__all__ = [
    "BAD_CLICKSTREAM_KINDS",
    "BAD_CRM_KINDS",
    "SampleRun",
    "SampleSpec",
    "SampleSummary",
    "generate",
    "generate_sample",
    "spec_from_conf",
]

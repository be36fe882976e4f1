"""Render the run report: one self-contained HTML file (plots are inline PNGs), readable from
disk without a server. Rendering is pure: it takes :class:`ReportData` and returns text."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from campaignlake.recommend.evaluation import COLD_PAIRS, COLD_RECALL

DECILES = range(1, 11)
RANKING_METRICS = ("precision_at_10", "recall_at_10", "map_at_10", "ndcg_at_10")
FUNNEL_STEPS = ("eligible", "selected", "audience", "treatment", "control")


@dataclass
class ReportData:
    """Everything the report shows; small aggregates gathered by ``report.runs``."""

    as_of: str
    #: table key → row count
    volumes: dict[str, int] = field(default_factory=dict)
    #: (quarantine table key, reason) → rows
    quarantine: dict[tuple[str, str], int] = field(default_factory=dict)
    #: model name → version
    model_versions: dict[str, str] = field(default_factory=dict)
    #: response model variant (GBT, baselines) → metric → value, on the validation split
    response_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    #: feature → importance (the response model's)
    importances: dict[str, float] = field(default_factory=dict)
    #: recommender variant (ALS, popularity) → metric → value, on the holdout
    ranking_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    rfm_segments: dict[str, int] = field(default_factory=dict)
    behaviour_segments: dict[str, int] = field(default_factory=dict)
    #: one audit summary (``audit.json``) per campaign
    funnels: list[dict[str, Any]] = field(default_factory=list)
    #: real-time trigger rule → funnel step (candidates, cancelled, suppressed_*, control,
    #: sent) → triggers fired on the report date
    trigger_funnels: dict[str, dict[str, int]] = field(default_factory=dict)
    #: ``gold/campaign_results`` rows of the report date (as dicts), whole campaigns first
    campaign_results: list[dict[str, Any]] = field(default_factory=list)
    #: uplift ranker (the uplift model, the response model, random) → metric → value, on the
    #: uplift model's validation campaign
    uplift_metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    #: topic model: number of topics → log-perplexity on the held-out documents
    topic_perplexity: dict[int, float] = field(default_factory=dict)
    #: the number of topics the text job chose
    chosen_topics: int | None = None
    #: review sentiment classifier → metric (ROC AUC, PR AUC, row counts) on held-out reviews
    sentiment_metrics: dict[str, float] = field(default_factory=dict)


def render(data: ReportData) -> str:
    """The report as one HTML document."""
    sections = [
        _section("Inputs", _inputs(data)),
        _section("Response model", _response(data)),
        _section("Recommendations", _recommendations(data)),
        _section("Text and content", _text(data)),
        _section("Segments", _segments(data)),
        _section("Campaign audiences", _audiences(data)),
        _section("Real-time triggers", _triggers(data)),
        _section("Campaign results", _results(data)),
    ]
    title = f"campaignlake run report — {html.escape(data.as_of)}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>"
        f"<h1>{title}</h1>{''.join(sections)}</body></html>\n"
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:70em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;"
    "padding:.2em .6em;text-align:right}th{background:#f3f3f3}td:first-child,"
    "th:first-child{text-align:left}img{max-width:100%;display:block;margin:.5em 0}"
    ".empty{color:#777;font-style:italic}"
)


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>{body}</section>"


def _empty(what: str) -> str:
    return f'<p class="empty">{html.escape(what)}</p>'


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _plot(draw: Callable[[Axes], None], alt: str, size: tuple[float, float] = (7, 4)) -> str:
    figure, axes = plt.subplots(figsize=size)
    try:
        draw(axes)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    finally:
        plt.close(figure)
    encoded = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{encoded}">'


def _inputs(data: ReportData) -> str:
    if not data.volumes:
        return _empty("No input tables yet.")
    parts = [_table(["table", "rows"], [[k, v] for k, v in data.volumes.items()])]
    if data.quarantine:
        rows = sorted(data.quarantine.items(), key=lambda item: -item[1])
        parts.append(
            _table(["quarantine table", "reason", "rows"], [[t, r, n] for (t, r), n in rows])
        )

        def draw(ax: Axes) -> None:
            labels = [f"{t}: {r}" for (t, r), _ in rows]
            ax.barh(labels[::-1], [n for _, n in rows][::-1], color="#c0504d")
            ax.set_xlabel("quarantined rows")
            ax.set_title("Quarantine by reason")

        parts.append(
            _plot(draw, "Quarantined rows by table and reason", (8, 0.8 + 0.3 * len(rows)))
        )
    else:
        parts.append(_empty("Nothing quarantined."))
    return "".join(parts)


def _curve(metrics: dict[str, float], prefix: str) -> list[float]:
    return [metrics.get(f"{prefix}_d{d:02d}", float("nan")) for d in DECILES]


def _response(data: ReportData) -> str:
    if not data.response_metrics:
        return _empty("No response model has been trained.")
    summary = ["roc_auc", "pr_auc", "brier", "lift_d01", "positive_rate", "rows"]
    parts = [
        _table(
            ["model", *summary],
            [
                [m, *[v.get(k, float("nan")) for k in summary]]
                for m, v in data.response_metrics.items()
            ],
        )
    ]

    def roc(ax: Axes) -> None:
        for name, metrics in data.response_metrics.items():
            fpr = [0.0, *_curve(metrics, "cumulative_fpr")]
            tpr = [0.0, *_curve(metrics, "cumulative_gain")]
            ax.plot(fpr, tpr, marker="o", label=f"{name} (AUC {metrics.get('roc_auc', 0):.3f})")
        ax.plot([0, 1], [0, 1], linestyle="--", color="#999", label="random")
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate")
        ax.set_title("ROC at decile cut points (validation)")
        ax.legend(fontsize=8)

    def gains(ax: Axes) -> None:
        shares = [0.0, *[d / 10 for d in DECILES]]
        for name, metrics in data.response_metrics.items():
            ax.plot(shares, [0.0, *_curve(metrics, "cumulative_gain")], marker="o", label=name)
        ax.plot([0, 1], [0, 1], linestyle="--", color="#999", label="random")
        ax.set_xlabel("share of customers contacted, best scores first")
        ax.set_ylabel("share of responders reached")
        ax.set_title("Cumulative gains (validation)")
        ax.legend(fontsize=8)

    parts += [_plot(roc, "ROC curve"), _plot(gains, "Cumulative gains curve")]
    if data.importances:
        top = sorted(data.importances.items(), key=lambda item: -item[1])[:15]

        def importance(ax: Axes) -> None:
            ax.barh([f for f, _ in top][::-1], [v for _, v in top][::-1], color="#4f81bd")
            ax.set_xlabel("importance")
            ax.set_title("Feature importances (top 15)")

        parts.append(_plot(importance, "Feature importances", (7, 5)))
    return "".join(parts)


def _recommendations(data: ReportData) -> str:
    names = [
        n for n, metrics in data.ranking_metrics.items() if set(RANKING_METRICS) & set(metrics)
    ]
    if not names:
        return _empty("No recommender has been trained.")
    parts = [
        _table(
            ["model", *RANKING_METRICS, "coverage"],
            [
                [
                    n,
                    *[
                        data.ranking_metrics[n].get(m, float("nan"))
                        for m in (*RANKING_METRICS, "coverage")
                    ],
                ]
                for n in names
            ],
        )
    ]

    def bars(ax: Axes) -> None:
        width = 0.8 / len(names)
        for i, name in enumerate(names):
            values = [data.ranking_metrics[name].get(m, 0.0) for m in RANKING_METRICS]
            ax.bar([x + i * width for x in range(len(RANKING_METRICS))], values, width, label=name)
        ax.set_xticks([x + width * (len(names) - 1) / 2 for x in range(len(RANKING_METRICS))])
        ax.set_xticklabels(RANKING_METRICS)
        ax.set_title("Ranking metrics on the holdout")
        ax.legend(fontsize=8)

    parts.append(_plot(bars, "Recommendation metrics against the popularity baseline"))
    cold = {n: m for n, m in data.ranking_metrics.items() if COLD_RECALL in m}
    if cold:
        parts.append(
            "<h3>Products launched late (cold start)</h3><p>Recall of the held-out "
            "(customer, new product) pairs from the history before the launches: the popularity "
            "fallbacks alone, and with the places filled from the text neighbours of what the "
            "customer interacted with.</p>"
        )
        rows = [[n, m[COLD_RECALL], int(m.get(COLD_PAIRS, 0))] for n, m in cold.items()]
        parts.append(_table(["lists", COLD_RECALL, "held-out pairs"], rows))
    return "".join(parts)


def _text(data: ReportData) -> str:
    if not data.topic_perplexity and not data.sentiment_metrics:
        return _empty("No text model has been trained.")
    parts = []
    if data.topic_perplexity:
        rows = [
            [k, value, "chosen" if k == data.chosen_topics else ""]
            for k, value in sorted(data.topic_perplexity.items())
        ]
        parts.append("<h3>Topics of descriptions and reviews (LDA)</h3>")
        parts.append(_table(["topics", "held-out log-perplexity", ""], rows))
    if data.sentiment_metrics:
        metrics = data.sentiment_metrics
        rows = [[m, metrics[m]] for m in ("roc_auc", "pr_auc") if m in metrics]
        rows += [[m, int(metrics[m])] for m in ("train_rows", "test_rows") if m in metrics]
        parts.append(
            "<h3>Review sentiment</h3><p>Logistic regression on TF-IDF, the rating as weak "
            "label (4–5 positive, 1–2 negative), tested on held-out reviews.</p>"
        )
        parts.append(_table(["metric", "value"], rows))
    return "".join(parts)


def _segments(data: ReportData) -> str:
    if not data.rfm_segments:
        return _empty("No segments for this date.")
    parts = []
    for title, counts in (
        ("RFM segments", data.rfm_segments),
        ("Behaviour segments", data.behaviour_segments),
    ):
        if not counts:
            continue
        items = sorted(counts.items(), key=lambda item: -item[1])
        parts.append(_table([title, "customers"], [[k, v] for k, v in items]))

        def draw(ax: Axes, items: list[tuple[str, int]] = items, title: str = title) -> None:
            ax.bar([k for k, _ in items], [v for _, v in items], color="#9bbb59")
            ax.set_ylabel("customers")
            ax.set_title(title)
            ax.tick_params(axis="x", labelrotation=30)

        parts.append(_plot(draw, f"{title} sizes"))
    return "".join(parts)


def _audiences(data: ReportData) -> str:
    if not data.funnels:
        return _empty("No campaign audiences were built for this date.")
    parts = []
    for funnel in data.funnels:
        suppressed = funnel.get("suppressed", {})
        campaign = html.escape(f"{funnel['campaign_id']} — {funnel['name']}")
        header = (
            f"<h3>{campaign}</h3>"
            f"<p>{html.escape(str(funnel['channel']))}, {html.escape(str(funnel['category']))}, "
            f"sends {html.escape(str(funnel['send_date']))}; control share "
            f"{funnel['control_share']:.2%} (configured {funnel['control_fraction']:.0%})</p>"
        )
        rows = [[step, funnel[step]] for step in FUNNEL_STEPS]
        rows += [[f"suppressed: {reason}", n] for reason, n in suppressed.items()]

        def draw(ax: Axes, funnel: dict[str, Any] = funnel) -> None:
            steps = list(FUNNEL_STEPS)[::-1]
            ax.barh(steps, [funnel[s] for s in steps], color="#8064a2")
            ax.set_xlabel("customers")
            ax.set_title(f"Funnel: {funnel['campaign_id']}")

        parts.append(
            header
            + _table(["step", "customers"], rows)
            + _plot(draw, f"Audience funnel of {funnel['campaign_id']}", (7, 3))
        )
    return "".join(parts)


def _triggers(data: ReportData) -> str:
    if not data.trigger_funnels:
        return _empty("No real-time trigger fired on this date.")
    steps = sorted({step for funnel in data.trigger_funnels.values() for step in funnel})
    order = ["candidates", "cancelled", "suppressed", "control", "sent"]
    steps = [s for s in order if s in steps] + [s for s in steps if s not in order]
    rows = [
        [rule, *[funnel.get(step, 0) for step in steps]]
        for rule, funnel in sorted(data.trigger_funnels.items())
    ]
    return _table(["rule", *steps], rows)


def _pp(value: Any) -> str:
    return "" if value is None else f"{value * 100:+.2f} pp"


def _results(data: ReportData) -> str:
    whole = [r for r in data.campaign_results if r["breakdown"] == "all"]
    if not whole and not data.uplift_metrics:
        return _empty("No campaign's attribution window has closed by this date.")
    parts = []
    measured = [r for r in whole if r["status"] == "measured"]
    if whole:
        rows = [
            [
                r["campaign_id"], r["treatment_customers"], r["control_customers"],
                r["status"], _pp(r.get("conversion_lift")),
                f"[{_pp(r.get('conversion_ci_low'))}, {_pp(r.get('conversion_ci_high'))}]"
                if r["status"] == "measured" else "",
                r.get("conversion_p_value") if r["status"] == "measured" else "",
                r.get("incremental_revenue") if r["status"] == "measured" else "",
                _pp(r.get("min_detectable_lift")),
            ]
            for r in whole
        ]  # fmt: skip
        parts.append(
            _table(
                [
                    "campaign",
                    "treatment",
                    "control",
                    "status",
                    "conversion lift",
                    "95% interval",
                    "p-value",
                    "incremental revenue",
                    "smallest detectable lift",
                ],
                rows,
            )
        )
        parts.append(
            "<p>Conversion: a purchase within the attribution window after the send, read "
            "from the clickstream for both groups. The smallest detectable lift is what the "
            "groups' sizes detect with 80% power at the 95% level: a true lift smaller than it "
            "will often read as not significant.</p>"
        )
    if measured:

        def intervals(ax: Axes) -> None:
            ys = list(range(len(measured)))
            lifts = [r["conversion_lift"] * 100 for r in measured]
            low = [(r["conversion_lift"] - r["conversion_ci_low"]) * 100 for r in measured]
            high = [(r["conversion_ci_high"] - r["conversion_lift"]) * 100 for r in measured]
            ax.errorbar(lifts, ys, xerr=[low, high], fmt="o", capsize=4)
            ax.axvline(0, color="#999", linewidth=1)
            ax.set_yticks(ys, [r["campaign_id"] for r in measured])
            ax.set_xlabel("conversion lift, percentage points (95% interval)")

        parts.append(_plot(intervals, "conversion lift per campaign", (7, 1 + 0.5 * len(measured))))
    cells = [r for r in data.campaign_results if r["breakdown"] != "all"]
    if cells:
        rows = [
            [r["campaign_id"], r["breakdown"], r["breakdown_value"], r["treatment_customers"],
             r["control_customers"], _pp(r.get("conversion_lift")),
             f"[{_pp(r.get('conversion_ci_low'))}, {_pp(r.get('conversion_ci_high'))}]"
             if r["status"] == "measured" else r["status"]]
            for r in cells
        ]  # fmt: skip
        parts.append("<h3>By segment and decile</h3>")
        parts.append(
            _table(
                ["campaign", "breakdown", "value", "treatment", "control", "lift", "interval"],
                rows,
            )
        )
    if data.uplift_metrics:
        parts.append("<h3>Uplift model (validation campaign)</h3>")
        rankers = sorted(data.uplift_metrics)
        rows = [
            [ranker, data.uplift_metrics[ranker].get("qini", float("nan")),
             *[_pp(data.uplift_metrics[ranker].get(f"uplift_d{d:02d}")) for d in DECILES]]
            for ranker in rankers
        ]  # fmt: skip
        parts.append(_table(["ranker", "Qini", *[f"d{d}" for d in DECILES]], rows))

        def by_decile(ax: Axes) -> None:
            for ranker in rankers:
                values = [
                    data.uplift_metrics[ranker].get(f"uplift_d{d:02d}", float("nan")) * 100
                    for d in DECILES
                ]
                ax.plot(list(DECILES), values, marker="o", label=ranker)
            ax.axhline(0, color="#999", linewidth=1)
            ax.set_xlabel("decile of the ranker's score (1 = highest)")
            ax.set_ylabel("treated − control conversion, pp")
            ax.legend()

        parts.append(_plot(by_decile, "uplift by decile"))
    return "".join(parts)

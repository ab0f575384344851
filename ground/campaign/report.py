"""The campaign report: DIR/report.html, one static file readable offline.

Jinja2 fills ground/campaign/templates/report.html.j2; matplotlib draws the plots, embedded
as base64 PNG (no file beside the page, no script, no network). First table: pass rate per
scenario x estimator with 95 % Wilson intervals. Then touchdown speeds, max HAT error, outcome
against every dispersed variable, the worst runs' traces (re-flown by the caller, who owns the
rig) and the configuration.

Reads only what it is given (the store's rows and the campaign's configuration); writes one file.
"""

from __future__ import annotations

import base64
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ground.campaign import stats
from ground.campaign.dispersions import Distribution, flatten
from ground.campaign.store import now_utc

TEMPLATES = Path(__file__).resolve().parent / "templates"
SPEED_TICKS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500)
COLOURS = ("#1b7837", "#c51b7d", "#2166ac", "#e08214", "#762a83", "#8c510a", "#35978f", "#666666")
OUTCOME_MARK = {"landed": "o", "crashed": "x", "timeout": "s", "error": "D"}


@dataclass
class TracePlot:
    """One of the worst runs, re-flown with its trace."""

    row: dict[str, Any]  # as stored
    columns: Sequence[str]
    trace: Sequence[Sequence[Any]]
    events: Sequence[tuple[float, str, tuple[float, ...]]]
    summary: dict[str, Any]  # of the re-flight

    @property
    def same_as_stored(self) -> bool:
        keys = ("outcome", "touchdown_vertical_speed_mps", "touchdown_horizontal_speed_mps", "flight_time_s",
                "max_hat_error_m_below_2km")
        return all(self.summary.get(k) == self.row.get(k) for k in keys)


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colour(estimators: Sequence[str], e: str) -> str:
    return COLOURS[list(estimators).index(e) % len(COLOURS)] if e in estimators else "#000000"


def speed_histograms(rows: list[dict[str, Any]], estimators: Sequence[str]) -> str:
    """Touchdown vertical and horizontal speed, every scenario, one outline per estimator."""
    import numpy as np

    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
    for ax, field, limit_key, label in (
            (axes[0], "touchdown_vertical_speed_mps", "max_vertical_speed_mps", "touchdown vertical speed [m/s]"),
            (axes[1], "touchdown_horizontal_speed_mps", "max_horizontal_speed_mps", "touchdown horizontal speed [m/s]")):
        values = [r[field] for r in rows if r.get(field) is not None]
        if not values:
            ax.text(0.5, 0.5, "no touchdown", ha="center", transform=ax.transAxes)
            continue
        lo = max(min(v for v in values if v > 0) if any(v > 0 for v in values) else 0.01, 0.01)
        bins = np.geomspace(lo * 0.9, max(values) * 1.1 + 1e-9, 40)
        for e in estimators:
            v = [max(r[field], lo) for r in rows if r["estimator"] == e and r.get(field) is not None]
            if v:
                ax.hist(v, bins=bins, histtype="step", lw=1.6, color=_colour(estimators, e), label=f"{e} ({len(v)})")
        limits = {(r.get("criteria") or {}).get(limit_key) for r in rows} - {None}
        for lim in limits:
            ax.axvline(lim, color="k", ls="--", lw=1)
        ax.set_xscale("log")
        ax.set_xlabel(label + ("   (dashed: pass limit)" if limits else ""))
        ax.set_ylabel("runs")
        ax.grid(alpha=0.3)
    if axes[0].get_legend_handles_labels()[0]:  # a campaign with no touchdowns has nothing to label
        axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def hat_error_cdfs(rows: list[dict[str, Any]], scenarios: Sequence[str], estimators: Sequence[str]) -> str:
    """Max |HAT error| below 2 km: the distribution (ECDF) per estimator, one panel per scenario."""
    import numpy as np

    plt = _plt()
    n = len(scenarios)
    cols = min(4, n)
    nrows = math.ceil(n / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.8 * nrows), squeeze=False)
    for k, s in enumerate(scenarios):
        ax = axes[k // cols][k % cols]
        for e in estimators:
            v = np.sort([max(r["max_hat_error_m_below_2km"], 0.1) for r in rows if r["scenario"] == s
                         and r["estimator"] == e and r.get("max_hat_error_m_below_2km") is not None])
            if len(v):
                ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", color=_colour(estimators, e), label=e)
        ax.set_xscale("log")
        ax.set_title(s, fontsize=9)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("fraction of runs")
        ax.set_xlabel("max |HAT error| below 2 km [m]", fontsize=8)
    for k in range(n, nrows * cols):
        axes[k // cols][k % cols].axis("off")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return _png(fig)


def variables(rows: list[dict[str, Any]], scenario: str, order: Sequence[str] = ()) -> list[tuple[str, str]]:
    """(group, name) of every value that varied across this scenario's runs: its dispersions
    (in `order`, the [dispersions] table's, first), then the initial navigation errors."""
    out: list[tuple[str, str]] = [("dispersion", p) for p in order]
    for r in rows:
        if r["scenario"] != scenario:
            continue
        for group in ("dispersion", "navigation_error"):
            for k in (r.get(group) or {}):
                if (group, k) not in out:
                    out.append((group, k))
    return out


def outcome_scatter(rows: list[dict[str, Any]], scenario: str, estimators: Sequence[str],
                    order: Sequence[str] = ()) -> str | None:
    """Touchdown vertical speed (log; timeouts and errors on top) against each variable,
    colour = estimator, marker = outcome."""
    import numpy as np

    plt = _plt()
    mine = [r for r in rows if r["scenario"] == scenario]
    names = [v for v in variables(mine, scenario, order)
             if any((r.get(v[0]) or {}).get(v[1]) is not None for r in mine)]
    if not names:
        return None
    cols = min(4, len(names))
    nrows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.4 * cols, 2.7 * nrows), squeeze=False)
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, MaxNLocator, NullLocator

    speeds = [r["touchdown_vertical_speed_mps"] for r in mine if r.get("touchdown_vertical_speed_mps") is not None]
    top = 1.5 * max(speeds + [2.0])  # where timeouts and errors are drawn
    floor = 0.5 * min([v for v in speeds if v > 0] + [1.0])
    rng = np.random.default_rng(0)  # jitter for categorical values only: the plot is reproducible
    for k, (group, name) in enumerate(names):
        ax = axes[k // cols][k % cols]
        raw = [(r.get(group) or {}).get(name) for r in mine]
        categorical = any(isinstance(v, (str, dict, list)) for v in raw if v is not None)
        cats: list[str] = []
        if categorical:
            cats = sorted({json.dumps(v, sort_keys=True) if not isinstance(v, str) else v for v in raw if v is not None})
        for e in estimators:
            for outcome, mark in OUTCOME_MARK.items():
                xs, ys = [], []
                for r, v in zip(mine, raw):
                    if r["estimator"] != e or r["outcome"] != outcome or v is None:
                        continue
                    if categorical:
                        key = v if isinstance(v, str) else json.dumps(v, sort_keys=True)
                        x = cats.index(key) + float(rng.uniform(-0.2, 0.2))
                    else:
                        x = float(v)
                    y = r.get("touchdown_vertical_speed_mps")
                    xs.append(x)
                    ys.append(top if y is None else max(y, floor))
                if xs:  # the first estimator biggest and underneath: equal results show as rings
                    size = max(8.0, 30.0 - 7.0 * list(estimators).index(e))
                    ax.scatter(xs, ys, s=size, marker=mark, color=_colour(estimators, e),
                               facecolors="none" if mark in ("s", "D") else None, lw=0.8, alpha=0.85)
        if categorical:
            ax.set_xticks(range(len(cats)), [c[:18] for c in cats], fontsize=7)
        crit = {(r.get("criteria") or {}).get("max_vertical_speed_mps") for r in mine} - {None}
        for lim in crit:
            ax.axhline(lim, color="k", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_ylim(floor, 1.6 * top)
        # fixed ticks: matplotlib's log locator (with minor ticks) costs most of this figure's time
        ax.yaxis.set_major_locator(FixedLocator(SPEED_TICKS))
        ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.yaxis.set_minor_locator(NullLocator())
        if not categorical:
            ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.set_xlabel(f"{'nav error ' if group == 'navigation_error' else ''}{name}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        if k % cols == 0:
            ax.set_ylabel("touchdown |vz| [m/s]", fontsize=8)
    for k in range(len(names), nrows * cols):
        axes[k // cols][k % cols].axis("off")
    handles = [Line2D([], [], color=_colour(estimators, e), marker="o", ls="", label=e) for e in estimators]
    handles += [Line2D([], [], color="k", marker=m, ls="", markerfacecolor="none" if m in "sD" else "k",
                           label=o) for o, m in OUTCOME_MARK.items()]
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), fontsize=8, frameon=False)
    # fixed margins: tight_layout would draw the whole grid once more just to measure it
    fig.subplots_adjust(left=0.07, right=0.99, bottom=0.45 / (2.7 * nrows) + 0.06 / nrows, top=1 - 0.45 / (2.7 * nrows),
                        wspace=0.25, hspace=0.55)
    return _png(fig)


def trace_png(t: TracePlot) -> str:
    from ground import report as run_report

    _plt()
    buf = io.BytesIO()
    run_report.plot(buf, t.columns, t.trace, t.events, t.summary)  # type: ignore[arg-type]  # savefig takes a file
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _dispersion_table(config: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for s in config.get("scenarios", []):
        table = flatten(s["document"].get("dispersions", {}), s["name"])
        entries = [(path, Distribution.parse(spec, path).describe()) for path, spec in table.items()]
        out.append({"name": s["name"], "source": s["source"], "entries": entries})
    return out


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    return str(v)


def render(rows: list[dict[str, Any]], config: dict[str, Any], meta: dict[str, Any],
           traces: Sequence[TracePlot] = ()) -> str:
    """The report as one HTML string."""
    import jinja2

    scenarios = [s["name"] for s in config["scenarios"]]
    estimators = list(config["estimators"])
    table = stats.cells(rows, scenarios, estimators)
    planned = len(scenarios) * len(estimators) * int(config["runs"])
    errors = [r for r in rows if r["outcome"] == "error"]
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=jinja2.select_autoescape(["j2"]),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = lambda x: "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"
    env.filters["fmt"] = _fmt
    scatters = []
    dispersions = _dispersion_table(config)
    for s, d in zip(scenarios, dispersions):
        png = outcome_scatter(rows, s, estimators, [path for path, _ in d["entries"]])
        if png:
            scatters.append({"scenario": s, "png": png, "n": sum(1 for r in rows if r["scenario"] == s)})
    worst = []
    for t in traces:
        worst.append({"row": t.row, "same": t.same_as_stored, "png": trace_png(t),
                      "dispersion": t.row.get("dispersion") or {}, "navigation_error": t.row.get("navigation_error") or {},
                      "badness": stats.badness(t.row)})
    page = env.get_template("report.html.j2").render(
        config=config, meta=meta, scenarios=scenarios, estimators=estimators, table=table,
        colours={e: _colour(estimators, e) for e in estimators},
        done=len(rows), planned=planned, generated=now_utc(),
        speeds_png=speed_histograms(rows, estimators) if rows else None,
        hat_png=hat_error_cdfs(rows, scenarios, estimators) if rows else None,
        scatters=scatters, worst=worst, errors=errors, dispersions=dispersions,
        config_json=json.dumps(config, indent=2, sort_keys=True),
        code_changed=len({s["source_hash"] for s in meta.get("sessions", [])}) > 1,
    )
    return page


def write(path: Path, rows: list[dict[str, Any]], config: dict[str, Any], meta: dict[str, Any],
          traces: Sequence[TracePlot] = ()) -> Path:
    """Write the report atomically (a half-written page never replaces a good one)."""
    text = render(rows, config, meta, traces)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path

"""REP-001..004: the campaign report and its statistics; the compare preset end to end."""

import base64
import re
import sqlite3
import subprocess
import sys
from html.parser import HTMLParser

import pytest
from campaign_helpers import stand_in
from hypothesis import given
from hypothesis import strategies as st

from ground.campaign import dispersions as dsp
from ground.campaign import report, stats
from ground.campaign.execution import Sequential, run_campaign
from ground.campaign.plan import Campaign
from ground.campaign.presets import ESTIMATORS
from ground.campaign.store import Store
from ground.scenarios import builtin_names

PNG = b"\x89PNG\r\n\x1a\n"


@given(n=st.integers(1, 3000), data=st.data())
def test_rep001_wilson_interval_matches_scipy(n, data):
    from scipy.stats import binomtest

    k = data.draw(st.integers(0, n))
    ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    lo, hi = stats.wilson(k, n)
    assert lo == pytest.approx(ref.low, abs=1e-12) and hi == pytest.approx(ref.high, abs=1e-12)


def row(scenario, estimator, run, outcome, vz=0.8, vh=0.2, step=False):
    return {"scenario": scenario, "estimator": estimator, "run": run, "outcome": outcome,
            "touchdown_vertical_speed_mps": vz, "touchdown_horizontal_speed_mps": vh,
            "touchdown_on_step_face": step, "criteria": {"max_vertical_speed_mps": 2.0,
                                                         "max_horizontal_speed_mps": 1.0}}


def test_rep002_worst_runs_rank_errors_timeouts_then_speed_one_per_cell():
    rows = [row("a", "x", 0, "landed", 1.9), row("a", "x", 1, "crashed", 130.0), row("a", "x", 2, "crashed", 90.0),
            row("a", "y", 0, "landed", 0.5, 0.99), row("b", "x", 0, "timeout", None, None),
            row("b", "y", 0, "error", None, None), row("b", "y", 1, "crashed", 1.0, 0.1, step=True)]
    worst = stats.worst_runs(rows, 3)
    assert [(r["scenario"], r["estimator"], r["run"]) for r in worst] == [("b", "y", 0), ("b", "x", 0), ("a", "x", 1)]
    assert [r["run"] for r in stats.worst_runs(rows, 10)][-1] == 0 and len(stats.worst_runs(rows, 10)) == 4
    assert stats.badness(rows[-1]) > stats.badness(rows[1])  # a step face is a crash whatever the speed


class Tables(HTMLParser):
    """The page's tables as lists of rows of cell texts, and every src= it loads."""

    def __init__(self):
        super().__init__()
        self.tables, self.sources, self._cell = [], [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = []
        for name, value in attrs:
            if name in ("src", "href"):
                self.sources.append(value)

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(page):
    p = Tables()
    p.feed(page)
    return p


def test_rep003_the_first_table_is_the_pass_rate_with_wilson_intervals_and_the_page_is_self_contained(tmp_path):
    c = Campaign((dsp.load("m1-cliff"), dsp.load("sensor-faults")), ("terrain-aware", "m1-baseline"), 10, 0)
    with Store(tmp_path) as store:
        store.begin(c.to_config(), "git test", "0123456789abcdef", "lander campaign test")
        run_campaign(c, store, stand_in, Sequential())
        rows = store.rows()
        meta = {"code_version": "git test", "source_hash": "0123456789abcdef", "created_utc": "now",
                "sessions": store.sessions()}
        config = store.campaign()["config"]
    page = report.render(rows, config, meta)
    p = parse(page)
    first = p.tables[0]
    assert first[0] == ["scenario", "terrain-aware", "m1-baseline"]
    assert [line[0] for line in first[1:]] == ["m1-cliff", "sensor-faults"]
    for line in first[1:]:
        for estimator, text in zip(("terrain-aware", "m1-baseline"), line[1:]):
            landed = sum(1 for r in rows if r["scenario"] == line[0] and r["estimator"] == estimator
                         and r["outcome"] == "landed")
            lo, hi = stats.wilson(landed, 10)
            assert text.startswith(f"{100 * landed / 10:.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] %"), text
            assert text.endswith("of 10")
    assert p.sources and all(s.startswith("data:image/png;base64,") for s in p.sources)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)
    assert not re.search(r"(https?:)?//[a-z]", text)  # nothing fetched from anywhere
    for src in p.sources:
        assert base64.b64decode(src.split(",", 1)[1])[:8] == PNG
    for path in c.scenarios[1].dispersions:  # each dispersed variable is named in the report
        assert path in page
    assert "0123456789abcdef" in page and "lander campaign test" in page  # code version, session


@pytest.mark.slow
def test_rep004_compare_preset_end_to_end(tmp_path):
    """`--preset compare` with a small --runs: every built-in x the four estimators, the first
    table is the comparison, worst runs re-flown identically, a summary on stdout, CSV export."""
    out = tmp_path / "compare"
    p = subprocess.run([sys.executable, "-m", "hil.cli", "campaign", "--preset", "compare", "--runs", "1",
                        "--workers", "2", "--worst", "2", "--out", str(out)],
                       capture_output=True, text=True, timeout=600, check=False)
    assert p.returncode == 0, p.stderr
    names = builtin_names()
    db = sqlite3.connect(out / "campaign.sqlite")
    keys = db.execute("SELECT scenario, estimator, run FROM runs").fetchall()
    assert sorted(keys) == sorted((s, e, 0) for s in names for e in ESTIMATORS)
    cliff = dict(db.execute("SELECT estimator, outcome FROM runs WHERE scenario = 'm1-cliff'").fetchall())
    assert cliff["terrain-aware"] == "landed" and cliff["m1-baseline"] == "crashed"
    page = (out / "report.html").read_text()
    first = parse(page).tables[0]
    assert first[0] == ["scenario", *ESTIMATORS] and [line[0] for line in first[1:]] == names
    assert page.count("Re-flown: the same outcome and figures as stored.") == 2
    for name in names:  # the summary table on stdout
        assert re.search(rf"{re.escape(name)}\s.*\d/1", p.stdout), p.stdout
    assert "landed" in p.stderr and "ETA" in p.stderr  # the progress bar's last frame
    e = subprocess.run([sys.executable, "-m", "hil.cli", "campaign", "export", str(out), "--csv"],
                       capture_output=True, text=True, timeout=60, check=False)
    assert e.returncode == 0 and (out / "runs.csv").read_text().count("\n") == 1 + len(keys)

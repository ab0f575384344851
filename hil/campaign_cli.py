"""`lander campaign`: Monte Carlo campaigns from the laptop's command line.

    lander campaign SCENARIO|FILE.toml ... --runs N [--estimator E ...] [--seed S]
                    [--workers K | --scheduler tcp://HOST:PORT] [--rig sil|sil-process|bench
                    --emulator PORT] --out DIR [--resume]
    lander campaign --preset compare --out DIR [--runs N]
    lander campaign --resume --out DIR                  (the stored configuration)
    lander campaign export DIR --csv [--output FILE]
    lander campaign report DIR [--worst N]

The pieces live in ground/campaign/ (dispersions, store, plan, execution, report); the rig's
runner comes from hil/campaign.py. This module wires them to argparse, a rich progress bar and
a summary table. Exit 0 when every run is stored (whatever the outcomes), 2 on bad input,
1 when a rig gave up, 130 when interrupted; a stopped campaign resumes with --resume.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

USAGE = """lander campaign SCENARIO|FILE.toml ... [--runs N] [--estimator E ...] [--seed S]
                       [--workers K | --scheduler tcp://HOST:PORT] [--rig sil|sil-process|bench [--emulator PORT]]
                       --out DIR [--resume]
       lander campaign --preset compare --out DIR [--runs N] [...]
       lander campaign --resume --out DIR
       lander campaign export DIR --csv [--output FILE|-]
       lander campaign report DIR [--worst N]"""

ESTIMATORS = ("terrain-aware", "m1-baseline", "apollo-gate", "px4-like")
DEFAULT_RUNS = 100


def _nonneg(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive(text: str) -> int:
    value = _nonneg(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "campaign", help="Monte Carlo campaign: dispersed runs into a results store, an HTML report",
        usage=USAGE, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Fly many dispersed runs of scenarios with one or more estimators. Results go to "
                    "DIR/campaign.sqlite as each run finishes; DIR/report.html is written at the end. "
                    "Run i of every scenario and estimator draws its dispersions and its simulation seed "
                    "from (--seed, i) alone. A stopped campaign (Ctrl-C, kill, power cut) completes with "
                    "--resume: only the missing runs fly.",
        epilog="export DIR --csv: every stored run as CSV (default DIR/runs.csv). "
               "report DIR: write DIR/report.html again from the store.")
    p.add_argument("targets", nargs="*", metavar="SCENARIO",
                   help="built-in scenario names or .toml files (or: export DIR / report DIR)")
    p.add_argument("--preset", choices=["compare"],
                   help="compare: every built-in scenario x the four estimators, 100 runs each")
    p.add_argument("--runs", type=_positive, default=None, help=f"runs per scenario x estimator (default {DEFAULT_RUNS})")
    p.add_argument("--estimator", action="append", choices=ESTIMATORS, default=None,
                   help="altitude-trust policy; repeat for several (default terrain-aware)")
    p.add_argument("--seed", type=_nonneg, default=None, help="campaign seed (default 0)")
    p.add_argument("--workers", type=_positive, default=None,
                   help="local worker processes (default: every core; 1 = in this process)")
    p.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                   help="send the runs to an existing Dask cluster instead of local workers")
    p.add_argument("--rig", choices=["sil", "sil-process", "bench"], default=None,
                   help="sil: in-process SIL (default); sil-process: the process-separated SIL rig; "
                        "bench: the emulator and the board, one run at a time in real time")
    p.add_argument("--emulator", default=None, metavar="PORT", help="the emulator's serial port (bench)")
    p.add_argument("--out", default=None, metavar="DIR", help="campaign folder (results store and report)")
    p.add_argument("--resume", action="store_true",
                   help="complete the campaign in DIR: fly only what is missing (refused if the configuration differs)")
    p.add_argument("--accept-code-change", action="store_true",
                   help="with --resume: go on although the flight/ground sources changed since the campaign started")
    p.add_argument("--worst", type=_nonneg, default=6, help="worst runs re-flown for traces in the report (default 6)")
    p.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    p.add_argument("--csv", action="store_true", help="(export) write CSV")
    p.add_argument("--output", default=None, help="(export) CSV file, or - for stdout (default DIR/runs.csv)")
    p.set_defaults(func=main)
    return p


def _err(msg: str) -> int:
    print(f"lander campaign: {msg}", file=sys.stderr)
    return 2


def main(args: argparse.Namespace) -> int:
    if args.targets and args.targets[0] in ("export", "report"):
        return _export(args) if args.targets[0] == "export" else _report_only(args)
    return _run(args)


# -- export, report ---------------------------------------------------------------------------

def _open_existing(folder: str):
    from ground.campaign.store import Store, StoreError

    try:
        return Store(folder, existing=True)
    except StoreError as exc:
        print(f"lander campaign: {exc}", file=sys.stderr)
        return None


def _export(args: argparse.Namespace) -> int:
    from ground.campaign.store import export_csv

    if len(args.targets) != 2 or not args.csv:
        return _err("usage: lander campaign export DIR --csv [--output FILE|-]")
    store = _open_existing(args.targets[1])
    if store is None:
        return 2
    with store:
        if args.output == "-":
            n = export_csv(store, sys.stdout)
            return 0
        out = Path(args.output) if args.output else store.folder / "runs.csv"
        try:
            with open(out, "w", newline="", encoding="utf-8") as fh:
                n = export_csv(store, fh)
        except OSError as exc:
            return _err(f"cannot write {out}: {exc}")
    print(f"{n} runs -> {out}")
    return 0


def _report_only(args: argparse.Namespace) -> int:
    from ground.campaign.plan import Campaign, ConfigError

    if len(args.targets) != 2:
        return _err("usage: lander campaign report DIR [--worst N]")
    store = _open_existing(args.targets[1])
    if store is None:
        return 2
    with store:
        stored = store.campaign()
        if stored is None:
            return _err(f"{args.targets[1]}: the store holds no campaign")
        try:
            campaign = Campaign.from_config(stored["config"])
        except ConfigError as exc:
            return _err(str(exc))
        path = write_report(store, campaign, args.worst)
    print(f"report: {path}")
    return 0


# -- a campaign -------------------------------------------------------------------------------

def _wanted(args: argparse.Namespace):
    """The campaign the command line asks for, or None when it names none (resume from DIR)."""
    from ground.campaign import dispersions
    from ground.campaign.plan import Campaign
    from ground.campaign.presets import presets

    if args.preset:
        if args.targets:
            raise ValueError("give scenarios or --preset, not both")
        preset = presets()[args.preset]
        names, estimators, runs = list(preset.scenarios), list(args.estimator or preset.estimators), preset.runs
    elif args.targets:
        names, estimators, runs = args.targets, list(args.estimator or ["terrain-aware"]), DEFAULT_RUNS
    else:
        return None
    scenarios = tuple(dispersions.load(n) for n in names)
    return Campaign(scenarios, tuple(estimators), args.runs or runs, args.seed or 0, args.rig or "sil")


def _run(args: argparse.Namespace) -> int:
    from ground.campaign import execution, provenance
    from ground.campaign.plan import Campaign, ConfigError, differences
    from ground.campaign.store import FILENAME, Store, canonical
    from ground.scenarios import ScenarioError
    from hil.campaign import runner_for

    if not args.out:
        return _err("--out DIR is required (the campaign's folder)")
    try:
        wanted = _wanted(args)
    except (ScenarioError, ConfigError, ValueError) as exc:
        return _err(str(exc))
    out = Path(args.out)
    store_path = out / FILENAME
    if wanted is None and not (args.resume and store_path.is_file()):
        return _err("name scenarios (or --preset compare); only --resume of an existing campaign may omit them")
    if store_path.is_file() and not args.resume:
        return _err(f"{out} holds a campaign already; --resume to complete it, or choose another --out")
    if not store_path.is_file() and out.exists() and (not out.is_dir() or any(out.iterdir())):
        return _err(f"{out} exists and is not a campaign folder (no {FILENAME}); choose another --out")

    if args.scheduler and args.workers:
        return _err("--workers and --scheduler exclude each other")
    code_version, source_hash = provenance.code_version(), provenance.source_hash()

    store = None
    try:
        if store_path.is_file():
            store = Store(out, existing=True)
            stored = store.campaign()
        else:
            stored = None
        if stored is not None:
            if wanted is not None:
                diff = differences(stored["config"], json.loads(canonical(wanted.to_config())))
                if diff:
                    return _err(f"{out} holds a different campaign; refusing to resume:\n  " + "\n  ".join(diff))
            if stored["source_hash"] != source_hash and not args.accept_code_change:
                return _err(f"the sources changed since this campaign started (stored {stored['code_version']}, "
                            f"sources {stored['source_hash']}; now {code_version}, sources {source_hash}). "
                            "Start a new campaign, or --accept-code-change to finish this one on the new code")
            try:
                campaign = Campaign.from_config(stored["config"])
            except ConfigError as exc:
                return _err(str(exc))
        elif wanted is None:
            return _err(f"{out}: the store holds no campaign yet; name the scenarios")
        else:
            campaign = wanted
        if wanted is None:  # resuming from the store: options may repeat it, not change it
            asked = {"rig": (args.rig, campaign.rig), "runs": (args.runs, campaign.runs),
                     "seed": (args.seed, campaign.seed),
                     "estimator": (tuple(args.estimator) if args.estimator else None, campaign.estimators)}
            changed = [f"--{k} {a!r} (stored {b!r})" for k, (a, b) in asked.items() if a is not None and a != b]
            if changed:
                return _err(f"{out} holds a different campaign: {', '.join(changed)}")
        # the rig and the way runs are spread, checked before anything is written
        rig = campaign.rig
        if args.emulator and rig not in ("sil-process", "bench"):
            return _err("--emulator is for --rig sil-process or bench")
        if rig == "bench" and (args.scheduler or (args.workers or 1) > 1):
            return _err("--rig bench flies one run at a time (one board): no --workers > 1, no --scheduler")
        if rig == "bench" and not args.emulator:
            return _err("--rig bench needs --emulator PORT")
        try:
            runner = runner_for(rig, args.emulator)
        except execution.RigUnavailable as exc:
            return _err(str(exc))
        if args.scheduler:
            backend: execution.Backend = execution.DaskCluster(args.scheduler)
            try:
                backend.probe()
            except execution.BackendUnavailable as exc:
                return _err(str(exc))
        elif rig == "bench" or args.workers == 1:
            backend = execution.Sequential()
        else:
            backend = execution.LocalPool(args.workers)
        if store is None:  # only now, when everything checked: a refused command leaves nothing behind
            try:
                store = Store(out)
            except (OSError, sqlite3.Error) as exc:
                return _err(f"cannot make the campaign store in {out}: {exc}")
        store.begin(campaign.to_config(), code_version, source_hash, shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]))
        return _fly(campaign, store, runner, backend, args)
    finally:
        if store is not None:
            store.close()


def _fly(campaign, store, runner, backend, args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ground.campaign import execution

    err = Console(stderr=True, soft_wrap=True)  # a log line stays one line in a file
    done_before = store.count()
    total = campaign.size
    tally = {"landed": 0, "all": 0}
    for r in store.rows():
        tally["all"] += 1
        tally["landed"] += r["outcome"] == "landed"
    err.print(f"campaign: {len(campaign.scenarios)} scenario(s) x {len(campaign.estimators)} estimator(s) x "
              f"{campaign.runs} runs = {total}; {done_before} stored, {total - done_before} to fly; "
              f"{backend.describe()}; store {store.path}")
    t0 = time.perf_counter()
    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                        TextColumn("{task.fields[rate]}"), console=err, transient=False)

    def rate_text() -> str:
        n = tally["all"]
        return f"landed {tally['landed']}/{n} ({100 * tally['landed'] / n:.1f} %)" if n else ""

    def stop(signum, frame) -> None:  # SIGTERM (a service manager, `kill`): stop as for Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        with progress:
            task = progress.add_task("runs", total=total, completed=done_before, rate=rate_text())

            def on_result(spec, summary) -> None:
                tally["all"] += 1
                tally["landed"] += summary.get("outcome") == "landed"
                progress.update(task, advance=1, rate=rate_text())

            flown = execution.run_campaign(campaign, store, runner, backend, on_result)
    except KeyboardInterrupt:
        err.print(f"interrupted: {store.count()} of {total} runs stored in {store.folder}; "
                  "the same command with --resume completes it")
        return 130
    except execution.CampaignAbort as exc:
        err.print(f"the rig stopped the campaign: {exc}; {store.count()} of {total} runs stored; "
                  "--resume when it is back")
        return 1
    except Exception as exc:  # noqa: BLE001 - a pool or cluster that broke: say so, keep what is stored
        err.print(f"the campaign stopped: {type(exc).__name__}: {exc}; {store.count()} of {total} runs stored "
                  f"in {store.folder}; the same command with --resume completes it")
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
    wall = time.perf_counter() - t0
    err.print(f"flew {flown} runs in {wall:.1f} s ({flown / wall if wall > 0 else 0:.2f} runs/s)")
    if not args.no_report:
        path = write_report(store, campaign, args.worst, err)
        err.print(f"report: {path}")
    print_summary(store, campaign)
    return 0


def write_report(store, campaign, worst: int, console=None) -> Path:
    """DIR/report.html from the store; the worst runs are re-flown in-process for their traces
    (only when the campaign flew in-process: another rig's runs are not SIL's to re-fly)."""
    from ground.campaign import report, stats
    from hil.campaign import sil_trace

    stored = store.campaign()
    rows = store.rows()
    traces = []
    if campaign.rig == "sil":
        for row in stats.worst_runs(rows, worst):
            if console is not None:
                console.print(f"re-flying {row['scenario']} / {row['estimator']} / run {row['run']} for its trace")
            t = sil_trace(campaign.spec(row["scenario"], row["estimator"], row["run"]))
            traces.append(report.TracePlot(row, t.columns, t.trace, t.events, t.summary))
    meta = {"code_version": stored["code_version"], "source_hash": stored["source_hash"],
            "created_utc": stored["created_utc"], "sessions": store.sessions()}
    return report.write(store.folder / "report.html", rows, stored["config"], meta, traces)


def print_summary(store, campaign) -> None:
    """The pass-rate table on stdout."""
    from rich.console import Console
    from rich.table import Table

    from ground.campaign import stats

    table = Table(title=f"landed (95 % Wilson interval), {campaign.runs} runs per cell")
    table.add_column("scenario")
    for e in campaign.estimators:
        table.add_column(e, justify="right")
    for line in stats.cells(store.rows(), [s.name for s in campaign.scenarios], campaign.estimators):
        cells = []
        for c in line:
            lo, hi = c.interval
            cells.append(f"{100 * c.rate:5.1f} % [{100 * lo:.1f}, {100 * hi:.1f}] {c.landed}/{c.runs}" if c.runs else "-")
        table.add_row(line[0].scenario, *cells)
    Console(width=max(100, 30 + 34 * len(campaign.estimators))).print(table)

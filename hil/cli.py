"""`lander`: the laptop's command line (simulator, scenarios, replays, and what drives the
flight from the ground). It sits above everything it drives: ground/, hil/, board/.

The flight computer never runs this: its one entry point is `lander-flight` (flight/app.py),
which imports nothing from here.
"""

from __future__ import annotations

import argparse
import sys

from flight import __version__
from hil import campaign_cli


def _cmd_version(args: argparse.Namespace) -> int:
    from flight._altfilter import lib

    print(f"lander {__version__} (altitude filter kernel: {lib.ALT_NX} states, "
          f"{lib.ALT_MAX_SENSORS} range sensors)")
    return 0


def _cmd_replay(args: argparse.Namespace) -> int:
    from ground import filter_demo

    return filter_demo.main(seed=args.seed)


ESTIMATORS = ("terrain-aware", "m1-baseline", "apollo-gate", "px4-like")
DEFAULT_BENCH_KEY = "pi-bundle/ground/command.key"


def _seed(text: str) -> int:
    """A noise seed: a whole number >= 0 (numpy's seed sequences take no negatives)."""
    try:
        seed = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if seed < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {seed}")
    return seed


def _load_scenario(name: str, terrain_path: str | None):
    from ground.scenarios import ScenarioError, load
    from ground.sim.terrain import TerrainError, from_csv

    try:
        scenario = load(name)
        terrain = from_csv(terrain_path) if terrain_path else None
    except (ScenarioError, TerrainError) as exc:
        print(f"lander: {exc}", file=sys.stderr)
        return None, None
    return scenario, terrain


def _cmd_sim(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ground import report
    from hil import sil

    scenario, terrain = _load_scenario(args.scenario, args.terrain)
    if scenario is None:
        return 2
    out = Path(args.out) if args.out else Path("sim-out") / f"{scenario.name}-{args.estimator}-seed{args.seed}"
    try:
        summary = sil.run_to_dir(scenario, out, args.estimator, args.seed, terrain, plot=not args.no_plot)
    except OSError as exc:
        print(f"lander sim: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    print(report.format_summary(summary, out))
    return 0


def _cmd_hil(args: argparse.Namespace) -> int:
    from pathlib import Path

    from flight.tomlio import read_toml
    from ground import report
    from ground.scenarios.schema import resolve
    from hil import rig, rig_faults

    if args.sil == bool(args.emulator):
        print("lander hil: give --sil (here: emulator and flight as processes) or --emulator PORT --flight "
              "udp:HOST:PORT (the bench)", file=sys.stderr)
        return 2
    if args.emulator and not args.flight:
        print("lander hil: the bench needs --flight udp:HOST:PORT (the flight computer's link)", file=sys.stderr)
        return 2
    if args.sil and args.flight:
        print("lander hil: --flight is the bench's flight computer; with --sil the rig starts the flight itself",
              file=sys.stderr)
        return 2
    scenario, terrain = _load_scenario(args.scenario, args.terrain)
    if scenario is None:
        return 2
    try:
        doc = read_toml(resolve(args.scenario), rig_faults.RigFaultError, "scenario file")
        faults = rig_faults.from_document(doc, scenario.source) + [rig_faults.from_cli(f) for f in args.fault]
        address = rig.parse_flight_address(args.flight) if args.flight else None
    except (rig_faults.RigFaultError, ValueError) as exc:
        print(f"lander hil: {exc}", file=sys.stderr)
        return 2
    key = args.key
    if args.emulator and key is None and Path(DEFAULT_BENCH_KEY).is_file():
        key = DEFAULT_BENCH_KEY  # the ground's copy from `lander deploy pi --out pi-bundle`
    mode = "bench" if args.emulator else ("sil-rt" if args.realtime else "sil")
    default = f"{scenario.name}-{args.estimator}-seed{args.seed}-{mode}" + (
        f"-{args.flight_arch}" if args.sil and args.flight_arch != "x86_64" else "")
    out = Path(args.out) if args.out else Path("sim-out") / "hil" / default
    settings = rig.RigSettings(estimator=args.estimator, seed=args.seed, realtime=args.realtime or bool(args.emulator),
                               flight_arch=args.flight_arch, faults=tuple(faults), emulator_port=args.emulator,
                               flight_address=address, key_file=key, ground_port=args.ground_port,
                               plot=not args.no_plot)
    try:
        summary = rig.run_to_dir(scenario, out, settings, terrain)
    except rig.RigError as exc:
        print(f"lander hil: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"lander hil: cannot write {out}: {exc}", file=sys.stderr)
        return 2
    print(report.format_summary(summary, out))
    r = summary["rig"]
    stalls = "" if r["lockstep_stalls"] is None else f", lockstep stalls {r['lockstep_stalls']}"
    slips = "" if r["rig_slips"] is None else f", rig slips {r['rig_slips']}"
    print(f"  rig           {r['mode']} ({r['flight_arch']} flight), {r['steps']} steps{stalls}{slips}, "
          f"flight tick {r['flight_tick_mean_us']} us mean, emulator restarts {r['emulator_restarts']}")
    for f in r["faults"]:
        rec = f.get("recovered_after_s")
        print(f"  rig fault     {f['fault']} {'injected' if f['begin'] else 'ended'} at {f['at_s']:.2f} s"
              + (f", recovered after {rec:.2f} s" if rec is not None else ""))
    print("  also          telemetry.jsonl, flight-log/, flight.toml, flight.out, flight-report.json, "
          "preflight.txt, filter.f64")
    return 0


def _cmd_scenarios(args: argparse.Namespace) -> int:
    from ground.scenarios import builtin_names, load

    for name in builtin_names():
        text = " ".join(load(name).description.split())
        print(f"{name:<15} {text}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """m1-cliff flown twice: M1's altitude logic, then ours."""
    from pathlib import Path

    from ground.scenarios import load
    from hil import sil

    scenario = load("m1-cliff")
    rows = []
    for estimator in ("m1-baseline", "terrain-aware"):
        out = Path(args.out) / estimator
        print(f"flying m1-cliff with {estimator} (seed {args.seed}) ...", flush=True)
        s = sil.run_to_dir(scenario, out, estimator, args.seed)
        rows.append((estimator, s, out / "plot.png"))
    zero = lambda s: "at touchdown" if s["estimate_zero_true_height_m"] is None \
        else f"{s['estimate_zero_true_height_m']:,.0f} m up"
    fields = [
        ("outcome", lambda s: s["outcome"].upper()),
        ("touchdown vertical speed", lambda s: f"{s['touchdown_vertical_speed_mps']:.1f} m/s"),
        ("touchdown horizontal speed", lambda s: f"{s['touchdown_horizontal_speed_mps']:.2f} m/s"),
        ("believed it was at zero", zero),
        ("max |HAT error| below 2 km", lambda s: f"{s['max_hat_error_m_below_2km']:,.0f} m"),
        ("propellant left", lambda s: f"{s['propellant_remaining_kg']:.1f} kg"),
        ("propellant ran out at", lambda s: "-" if s["propellant_exhausted_s"] is None
         else f"{s['propellant_exhausted_s']:.0f} s"),
        ("flight time", lambda s: f"{s['flight_time_s']:.0f} s"),
        ("terrain steps absorbed", lambda s: str(s["terrain_steps_absorbed"])),
        ("samples rejected", lambda s: f"{s['sensor_faults_rejected']:,}"),
        ("simulation speed", lambda s: f"{s['sim_speed_x_realtime']:,.0f}x real time"),
    ]
    print(f"\nm1-cliff: {' '.join(scenario.description.split())}\n")
    print(f"{'':<28}{rows[0][0]:>22}{rows[1][0]:>22}")
    for label, get in fields:
        print(f"{label:<28}{get(rows[0][1]):>22}{get(rows[1][1]):>22}")
    print()
    for estimator, _, plot in rows:
        print(f"plot ({estimator}): {plot}")
    return 0


def _cmd_log(args: argparse.Namespace) -> int:
    from ground.flightlog_export import KINDS, LogExportError, export

    kinds = set(args.kind) if args.kind else None
    if kinds and not kinds <= set(KINDS):
        print(f"lander log: --kind must be among {', '.join(KINDS)}", file=sys.stderr)
        return 2
    try:
        if args.out:
            with open(args.out, "w", newline="", encoding="utf-8") as fh:
                n = export(args.path, fh, args.format, kinds)
            print(f"{n} rows -> {args.out}", file=sys.stderr)
        else:
            export(args.path, sys.stdout, args.format, kinds)
    except (LogExportError, OSError) as exc:
        print(f"lander log: {exc}", file=sys.stderr)
        return 2
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lander",
        description="Lunar lander flight software, the laptop side: simulator, scenarios, replays. "
                    "The flight computer runs `lander-flight`.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)
    p = sub.add_parser("demo", help="fly m1-cliff in SIL with M1's altitude logic and with ours, side by side")
    p.add_argument("--seed", type=_seed, default=0, help="noise seed (default 0)")
    p.add_argument("--out", default="sim-out/demo", help="output folder (default sim-out/demo)")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("sim", help="fly one scenario in SIL: the flight executive inside the simulator",
                       description="Fly one scenario in software-in-the-loop. Writes DIR/summary.json, "
                                   "DIR/trace.csv and DIR/plot.png; exit 0 when the run completed, "
                                   "whatever the outcome; 2 on bad input.")
    p.add_argument("scenario", help="a built-in scenario name (see `lander scenarios`) or a .toml file")
    p.add_argument("--estimator", choices=ESTIMATORS, default="terrain-aware",
                   help="altitude-trust policy (m1-baseline also turns off the zero-altitude trap and "
                        "guidance's blind mode, as M1 had neither); default terrain-aware")
    p.add_argument("--seed", type=_seed, default=0, help="noise and navigation-error seed (default 0)")
    p.add_argument("--terrain", default=None, help="CSV (downrange_m,elevation_m) replacing the scenario's terrain")
    p.add_argument("--out", default=None, help="output folder (default sim-out/SCENARIO-ESTIMATOR-seedN)")
    p.add_argument("--no-plot", action="store_true", help="skip plot.png (faster)")
    p.set_defaults(func=_cmd_sim)
    p = sub.add_parser("hil", help="fly one scenario on the HIL rig: the flight and the emulator as processes (--sil), "
                                   "or the bench",
                       description="Fly one scenario on the hardware-in-the-loop rig. --sil: the sensor emulator and "
                                   "the flight software (real drivers) run as their own processes here, joined by "
                                   "ptys, an I2C bridge and UDP; lockstep by default (the rig owns time), --realtime on "
                                   "the wall clock. --emulator PORT --flight udp:HOST:PORT: the bench (the Pico and "
                                   "the Pi), real time. Writes what lander sim writes plus the flight's telemetry and "
                                   "logs; exit 0 when the run completed, whatever the outcome; 1 when the rig could not "
                                   "go on; 2 on bad input.")
    p.add_argument("scenario", help="a built-in scenario name or a .toml file ([[rig_faults]] are injected)")
    p.add_argument("--sil", action="store_true", help="emulator and flight as processes on this machine")
    p.add_argument("--realtime", action="store_true", help="with --sil: the flight on its monotonic clock")
    p.add_argument("--flight-arch", choices=("x86_64", "aarch64"), default="x86_64",
                   help="with --sil: aarch64 runs the flight on aarch64 CPython 3.11 under qemu-user")
    p.add_argument("--emulator", default=None, metavar="PORT", help="the bench: the Pico's USB serial port")
    p.add_argument("--flight", default=None, metavar="udp:HOST:PORT", help="the bench: the flight computer's link")
    p.add_argument("--key", default=None, metavar="FILE",
                   help=f"the bench: the ground's command key, to ARM (default {DEFAULT_BENCH_KEY} if it exists)")
    p.add_argument("--ground-port", type=int, default=10015, help="the bench: UDP port the flight sends telemetry to")
    p.add_argument("--estimator", choices=ESTIMATORS, default="terrain-aware", help="altitude-trust policy")
    p.add_argument("--seed", type=_seed, default=0, help="noise and navigation-error seed (default 0)")
    p.add_argument("--terrain", default=None, help="CSV (downrange_m,elevation_m) replacing the scenario's terrain")
    p.add_argument("--fault", action="append", default=[], metavar="KIND[:DEVICE]@T[+D]",
                   help="inject a rig fault (repeatable): unplug|garbage|silent|lie|emulator_restart, e.g. "
                        "unplug:rangefinder@300+0.5, garbage:engine@200,count=64, silent:imu@250+0.3, "
                        "emulator_restart@400")
    p.add_argument("--out", default=None, help="output folder (default sim-out/hil/SCENARIO-ESTIMATOR-seedN-MODE)")
    p.add_argument("--no-plot", action="store_true", help="skip plot.png")
    p.set_defaults(func=_cmd_hil)
    p = sub.add_parser("scenarios", help="list the built-in scenarios")
    p.set_defaults(func=_cmd_scenarios)
    p = sub.add_parser("replay", help="replay the M1 cliff through the altitude filter alone, every policy")
    p.add_argument("--seed", type=_seed, default=1, help="noise seed (default 1)")
    p.set_defaults(func=_cmd_replay)
    p = sub.add_parser("log", help="decode a flight log (a file, or a folder of them) to JSON lines or CSV",
                       description="Decode a flight log: boot records, events, housekeeping, command verification, "
                                   "ping replies and accepted telecommands, one row each; regions the reader had to "
                                   "skip (torn or corrupt bytes) are rows of kind 'skipped'. A folder is read whole, "
                                   "oldest boot first. CSV of --kind housekeeping alone has a column per channel.")
    p.add_argument("path", help="a flight-BBBBBB-PPP.log file, or the [log] dir folder")
    p.add_argument("--format", choices=("jsonl", "csv"), default="jsonl", help="default jsonl")
    p.add_argument("--kind", action="append", metavar="KIND",
                   help="only these kinds (repeatable): boot, event, housekeeping, verification, ping, command, "
                        "skipped, undecodable")
    p.add_argument("--out", default=None, help="write here instead of standard output")
    p.set_defaults(func=_cmd_log)

    from board import (  # target support: light imports, the tools load when a command runs
        deploy,
        flash,
    )

    flash.add_parser(sub)
    deploy.add_parser(sub)
    campaign_cli.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

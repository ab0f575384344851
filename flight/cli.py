"""`lander`: the one command line of the product.

Flight subcommands import only flight code; ground subcommands import ground/ (numpy)
lazily, so the flight computer never loads what it does not need.
"""

from __future__ import annotations

import argparse
import sys

from flight import __version__


def _cmd_version(args: argparse.Namespace) -> int:
    from flight._altfilter import lib

    print(f"lander {__version__} (altitude filter kernel: {lib.ALT_NX} states, "
          f"{lib.ALT_MAX_SENSORS} range sensors)")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from ground import filter_demo

    return filter_demo.main(seed=args.seed)


def _cmd_fly(args: argparse.Namespace) -> int:
    from flight import wiring

    try:
        config = wiring.load_config(args.config)
        system = wiring.build(config)
    except (wiring.ConfigError, ValueError) as exc:
        print(f"lander fly: {exc}", file=sys.stderr)
        return 2
    run = config.get("run", {})
    duration = args.duration if args.duration is not None else run.get("duration_s")
    auto = args.auto_start or run.get("auto_start", False)
    if auto:
        system.guidance.arm()
        system.guidance.start_descent()
    slots = None if duration is None else int(duration * 1e9 // system.executive.period_ns)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: system.executive.stop())  # stop cleanly: log flushed
    try:
        system.executive.run(slots=slots, until=system.guidance.touched_down if args.until_touchdown else None)
    except KeyboardInterrupt:
        pass
    finally:
        system.close()
    g, est = system.guidance, system.estimation.output.estimate
    stats = system.executive.stats
    print(f"phase {g.phase.name}  t={system.estimation.output.time_s:.1f} s  "
          f"HAT {est.height_above_terrain_m if est else float('nan'):.1f} m  "
          f"propellant {g.propellant_kg:.1f} kg  slots {stats.slots_run}  slips {stats.total_slips}  "
          f"events {sum(system.events.counts.values())}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lander",
        description="Lunar lander flight software: altitude filter, flight executive, simulator.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser("version", help="print the version")
    p.set_defaults(func=_cmd_version)
    p = sub.add_parser("demo", help="replay the M1 cliff through every altitude-trust policy")
    p.add_argument("--seed", type=int, default=1, help="noise seed (default 1)")
    p.set_defaults(func=_cmd_demo)
    p = sub.add_parser("fly", help="run the flight executive wired from a TOML config")
    p.add_argument("--config", required=True, help="board configuration (see board/pi/board.toml)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds of flight time")
    p.add_argument("--auto-start", action="store_true", help="ARM and START_DESCENT without telecommands")
    p.add_argument("--until-touchdown", action="store_true", help="stop at touchdown")
    p.set_defaults(func=_cmd_fly)
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

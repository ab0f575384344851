"""`lander-flight`: the flight computer's one entry point.

    lander-flight --config board.toml [--duration S] [--auto-start] [--until-touchdown]

Imports only the standard library, the cffi kernel, pyserial, smbus2 and spacepackets (the
flight-only install); never numpy, ground/ or hil/.
"""

from __future__ import annotations

import argparse
import signal
import sys

from flight import __version__


def _run(args: argparse.Namespace) -> int:
    from flight import wiring

    try:
        system = wiring.build(wiring.load_config(args.config), source=args.config)
    except (wiring.ConfigError, ValueError) as exc:
        print(f"lander-flight: {exc}", file=sys.stderr)
        return 2
    from flight import realtime

    try:
        rt = realtime.apply(realtime.config_from_table(system.config.get("realtime", {})))
    except ValueError as exc:
        system.close()
        print(f"lander-flight: {args.config}: {exc}", file=sys.stderr)
        return 2
    system.realtime_flags = rt.flags  # housekeeping reports what the process got
    if rt.requested:
        print(rt.summary(), file=sys.stderr)
    realtime.notify_ready(rt)  # READY=1 for a Type=notify unit; nothing without NOTIFY_SOCKET
    run = system.config.get("run", {})
    duration = args.duration if args.duration is not None else run.get("duration_s")
    auto = args.auto_start or run.get("auto_start", False)  # a checked bool: "false" is refused
    if auto:
        system.guidance.arm()
        system.guidance.start_descent()
    slots = None if duration is None else int(duration * 1e9 // system.executive.period_ns)
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
        prog="lander-flight",
        description="Run the lander flight software wired from a board configuration (TOML).",
    )
    parser.add_argument("--version", action="version", version=f"lander-flight {__version__}")
    parser.add_argument("--config", required=True, help="board configuration (see board/pi/board.toml)")
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds of flight time")
    parser.add_argument("--auto-start", action="store_true", help="ARM and START_DESCENT without telecommands")
    parser.add_argument("--until-touchdown", action="store_true", help="stop at touchdown")
    parser.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

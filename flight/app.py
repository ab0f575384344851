"""`lander-flight`: the flight computer's one entry point.

    lander-flight --config board.toml [--duration S] [--auto-start] [--until-touchdown] [--report FILE]
    lander-flight preflight --config board.toml

Imports only the standard library, the cffi kernel, pyserial, smbus2 and spacepackets (the
flight-only install); never numpy, ground/ or hil/.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time

from flight import __version__


def _run(args: argparse.Namespace) -> int:
    from flight import wiring
    from flight.executive.clock import ClockLost, ClockStopped

    try:
        system = wiring.build(wiring.load_config(args.config), source=args.config)
    except (wiring.ConfigError, ValueError) as exc:
        print(f"lander-flight: {exc}", file=sys.stderr)
        return 2
    except ClockLost as exc:
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
    if system.devices.start is not None:  # real devices: up before the descent, as on a vehicle
        for name, result in system.devices.start():
            print(f"lander-flight: start {name}: {'ok' if result.ok else 'FAILED'}: {result.reason}", file=sys.stderr)
    realtime.notify_ready(rt)  # READY=1 for a Type=notify unit; nothing without NOTIFY_SOCKET
    run = system.config.get("run", {})
    duration = args.duration if args.duration is not None else run.get("duration_s")
    auto = args.auto_start or run.get("auto_start", False)  # a checked bool: "false" is refused
    if auto:
        refused = system.arm()  # the same gate as the ARM telecommand (preflight, with real devices)
        if refused is None:
            system.guidance.start_descent()
        else:
            print(f"lander-flight: {refused}", file=sys.stderr)
    slots = None if duration is None else int(duration * 1e9 // system.executive.period_ns)
    def stop(*_) -> None:  # stop cleanly: log flushed (a wait for the rig's clock ends too)
        system.executive.stop()
        interrupt = getattr(system.clock, "interrupt", None)
        if interrupt is not None:
            interrupt()

    signal.signal(signal.SIGTERM, stop)
    ended = ""
    try:
        system.executive.run(slots=slots, until=system.guidance.touched_down if args.until_touchdown else None)
    except KeyboardInterrupt:
        pass
    except ClockStopped:
        pass  # the rig ended the run
    except ClockLost as exc:
        ended = str(exc)
    finally:
        system.close()
    if args.report:
        _write_report(args.report, system)
    g, est = system.guidance, system.estimation.output.estimate
    stats = system.executive.stats
    print(f"phase {g.phase.name}  t={system.estimation.output.time_s:.1f} s  "
          f"HAT {est.height_above_terrain_m if est else float('nan'):.1f} m  "
          f"propellant {g.propellant_kg:.1f} kg  slots {stats.slots_run}  slips {stats.total_slips}  "
          f"events {sum(system.events.counts.values())}")
    if ended:
        print(f"lander-flight: stopped: {ended}", file=sys.stderr)
        return 1
    return 0


def _write_report(path: str, system) -> None:
    """The flight's own end-of-run figures (what the in-process SIL reads from the objects), for
    a rig that runs the flight as another process: the filter's per-sensor counts, the phase and
    touchdown, FDIR's zero traps, every event counted, slips, each task's timing."""
    from flight.devices.interfaces import PRIMARY_ALTIMETER, SHORT_RANGE_ALTIMETER

    filt = system.estimation.filter
    drivers = {}
    for name, health in system.devices.links:
        drivers[name] = {k: getattr(health, k) for k in health.__slots__}
    doc = {
        "phase": system.guidance.phase.name,
        "touchdown_time_s": system.guidance.touchdown_time_s,
        "sensor_counts": {str(i): filt.sensor_counts(i) for i in (PRIMARY_ALTIMETER, SHORT_RANGE_ALTIMETER)},
        "zero_trap_events": system.fdir.summary.zero_trap_events,
        "events": dict(sorted(system.events.counts.items())),
        "total_slips": system.executive.stats.total_slips,
        "slots_run": system.executive.stats.slots_run,
        "max_lateness_us": system.executive.stats.max_lateness_us,
        "tasks": {name: {"count": t.count, "max_us": t.max_us, "mean_us": t.mean_us, "overruns": t.overruns,
                         "failures": t.failures} for name, t in system.executive.task_stats.items()},
        "drivers": drivers,
    }
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(doc, fh, indent=1, default=str)


def _preflight(args: argparse.Namespace) -> int:
    """Probe every real device; print OK/FAIL with the reason; leave the boot-stamped record ARM
    needs; exit 0 only if every device passed."""
    from flight import wiring
    from flight.devices import preflight

    try:
        config = wiring.load_config(args.config)
    except wiring.ConfigError as exc:
        print(f"lander-flight preflight: {exc}", file=sys.stderr)
        return 2
    if config.get("devices", {}).get("kind", "simulated") != "real":
        print(f"lander-flight preflight: {args.config}: [devices] kind is not 'real': nothing to probe",
              file=sys.stderr)
        return 2
    t0 = time.monotonic()
    try:
        devices = wiring.real_devices(config, lambda: time.monotonic() - t0, args.config)
    except wiring.ConfigError as exc:
        print(f"lander-flight preflight: {exc}", file=sys.stderr)
        return 2
    try:
        results = preflight.run(devices.probes)
    finally:
        for close in devices.closers:
            try:
                close()
            except Exception:  # noqa: BLE001, S110 - closing what is left must not stop at the first failure
                pass
    record = devices.preflight_record or preflight.DEFAULT_RECORD
    print(f"preflight {args.config} (boot {preflight.boot_id()[:8] or 'unknown'}):")
    print("\n".join(preflight.format_results(results)))
    passed = sum(1 for _, _, r in results if r.ok)
    try:
        preflight.write_record(record, results, devices.digest)
    except OSError as exc:
        print(f"preflight: {passed} of {len(results)} passed, but the record cannot be written: {exc}; "
              "ARM stays refused", file=sys.stderr)
        return 1
    if passed == len(results):
        print(f"preflight: all {len(results)} devices passed; ARM allowed in this boot (record {record})")
        return 0
    print(f"preflight: {passed} of {len(results)} passed; ARM stays refused (record {record})")
    return 1


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
    parser.add_argument("--report", default=None, metavar="FILE",
                        help="at exit, write the flight's end-of-run figures as JSON (the HIL rig reads them)")
    parser.set_defaults(func=_run)
    return parser


def build_preflight_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lander-flight preflight",
        description="Probe every real device of a board configuration (identity, a valid range from each "
                    "altimeter, the IMU at rest, the engine controller's status); print OK/FAIL per device "
                    "with the reason; exit 0 only if all pass. ARM is refused until this passed in this boot.")
    parser.add_argument("--config", required=True, help="board configuration with [devices] kind = 'real'")
    parser.set_defaults(func=_preflight)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["preflight"]:
        args = build_preflight_parser().parse_args(argv[1:])
    else:
        args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())

"""What a SIL run leaves behind: summary.json, trace.csv, plot.png, and a one-screen text.

Pure formatting and file writing; the numbers come from hil/sil.py.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EVENT_MARKS = {  # event -> (colour, label) drawn as vertical lines on the plot
    "ZERO_ALTITUDE_TRAP": ("tab:red", "zero-altitude trap"),
    "ALTIMETERS_DISAGREE": ("tab:purple", "altimeters disagree"),
    "PROPELLANT_LOW": ("tab:brown", "propellant low"),
}
HEALTH_NAMES = {0: "NOMINAL", 1: "SUSPECT", 2: "FAILED", 3: "REQUALIFYING"}
SENSOR_NAMES = {0: "primary", 1: "short-range"}
PHASE_NAMES = {0: "IDLE", 1: "ARMED", 2: "BRAKING", 3: "APPROACH", 4: "TERMINAL", 5: "TOUCHDOWN", 6: "SAFE",
               7: "ABORT_HOLD"}


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")


def write_trace(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows(rows)


def _fmt(x: float | None, unit: str = "", digits: int = 1) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}{unit}"


def format_summary(s: dict[str, Any], out_dir: Path | None = None) -> str:
    crit = s["criteria"]
    lines = [f"{s['scenario']} · estimator {s['estimator']} · seed {s['seed']}: {s['outcome'].upper()}"]
    if s["touchdown_vertical_speed_mps"] is not None:
        lines.append(f"  touchdown     vertical {_fmt(s['touchdown_vertical_speed_mps'], ' m/s', 2)} "
                     f"(limit {crit['max_vertical_speed_mps']})   horizontal "
                     f"{_fmt(s['touchdown_horizontal_speed_mps'], ' m/s', 2)} (limit {crit['max_horizontal_speed_mps']})"
                     f"   at {_fmt(s['touchdown_downrange_m'] / 1000.0, ' km', 2)} downrange"
                     + ("   ON A STEP FACE" if s.get("touchdown_on_step_face") else ""))
    else:
        lines.append("  touchdown     none before the time limit")
    ran_out = f" (ran out at {s['propellant_exhausted_s']:.1f} s)" if s["propellant_exhausted_s"] is not None else ""
    lines.append(f"  flight        {_fmt(s['flight_time_s'], ' s')}, propellant left "
                 f"{_fmt(s['propellant_remaining_kg'], ' kg')}{ran_out}")
    zero = s["estimate_zero_true_height_m"]
    zero_text = ("only at touchdown" if zero is None else
                 f"{zero:,.0f} m above the ground (t = {s['estimate_zero_time_s']:.1f} s)")
    lines.append(f"  altitude      estimate reached zero {zero_text}; max |HAT error| below 2 km "
                 f"{_fmt(s['max_hat_error_m_below_2km'], ' m')}")
    lines.append(f"  filter        terrain steps absorbed {s['terrain_steps_absorbed']}, samples rejected "
                 f"{s['sensor_faults_rejected']:,}, primary locked out: {'yes' if s['primary_locked_out'] else 'no'}")
    events = ", ".join(f"{k} {v}" for k, v in s["events"].items()) or "none"
    lines.append(f"  flight sw     phase at end {s['flight_phase_at_end']}, touchdown detected: "
                 f"{'yes' if s['flight_detected_touchdown'] else 'no'}, zero traps {s['zero_trap_events']}, "
                 f"slips {s['cycle_slips']}, task failures {s['task_failures']}")
    lines.append(f"  events        {events}")
    lines.append(f"  speed         {s['sim_speed_x_realtime']:,.0f}x real time ({s['wall_time_s']:.1f} s wall)")
    if out_dir is not None:
        lines.append(f"  wrote         {out_dir / 'summary.json'}, trace.csv, plot.png")
    return "\n".join(lines)


def plot(path: Path, columns: Sequence[str], rows: Sequence[Sequence[Any]],
         events: Sequence[tuple[float, str, tuple[float, ...]]], summary: dict[str, Any]) -> None:
    """Truth vs estimate vs measured range, FDIR events marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    col = {name: i for i, name in enumerate(columns)}

    def series(name: str) -> np.ndarray:
        i = col[name]
        return np.array([float(r[i]) if r[i] != "" else math.nan for r in rows])

    def text(name: str) -> list[str]:
        i = col[name]
        return [str(r[i]) for r in rows]

    t = series("time_s")
    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 10), sharex=True,
                                        gridspec_kw={"height_ratios": [3, 2, 2]})
    title = (f"{summary['scenario']} · {summary['estimator']} · seed {summary['seed']}: {summary['outcome']}")
    if summary["touchdown_vertical_speed_mps"] is not None:
        title += f" at {summary['touchdown_vertical_speed_mps']:.1f} m/s"
    fig.suptitle(title)

    hat, est, sig = series("hat_m"), series("est_hat_m"), series("est_hat_sigma_m")
    ax1.fill_between(t, est - 3 * sig, est + 3 * sig, color="tab:orange", alpha=0.2, label="estimate ±3σ")
    ax1.plot(t, hat, color="k", lw=1.5, label="true height above terrain")
    ax1.plot(t, est, color="tab:orange", lw=1.2, label="estimated")
    pitch = series("pitch_rad")
    for sensor, colour in (("primary", "tab:blue"), ("short", "tab:green")):
        rng, status = series(f"{sensor}_range_m" if sensor == "primary" else "short_range_m"), \
            text("primary_status" if sensor == "primary" else "short_status")
        z = rng * np.cos(pitch)
        good = np.array([s in ("ACCEPTED", "TERRAIN_STEP") for s in status])
        bad = np.array([s.startswith("REJECTED") or s == "HELD" for s in status])
        label = "primary LRF" if sensor == "primary" else "short-range"
        ax1.plot(t[good], z[good], ".", ms=2, color=colour, label=f"{label} (fused)")
        if bad.any():
            ax1.plot(t[bad], z[bad], "x", ms=3, color="tab:red" if sensor == "primary" else "tab:pink",
                     label=f"{label} rejected/held")
        steps = np.array([s == "TERRAIN_STEP" for s in status])
        if steps.any():
            ax1.plot(t[steps], z[steps], "^", ms=7, color="tab:green", label="terrain step absorbed")
    ax1.set_ylabel("height above terrain [m]")
    top = np.nanmax(hat) if len(hat) else 1.0
    ax1.set_ylim(-0.05 * top, 1.15 * top)

    ax2.plot(t, series("altitude_m"), color="k", lw=1.2, label="true altitude")
    ax2.plot(t, series("terrain_m"), color="saddlebrown", lw=1.2, label="true terrain below")
    ax2.plot(t, series("est_altitude_m"), "--", color="tab:orange", lw=1, label="estimated altitude")
    ax2.plot(t, series("est_terrain_m"), "--", color="tab:olive", lw=1, label="estimated terrain")
    ax2.set_ylabel("above landing-site datum [m]")

    ax3.plot(t, series("vz_mps"), color="k", lw=1.2, label="true vertical speed")
    ax3.plot(t, series("est_vz_mps"), "--", color="tab:orange", lw=1, label="estimated")
    ax3.set_ylabel("vertical speed [m/s]")
    ax3b = ax3.twinx()
    ax3b.plot(t, series("throttle"), color="tab:gray", lw=0.8, label="throttle")
    ax3b.plot(t, series("propellant_kg") / max(summary.get("initial_propellant_kg") or 1.0, 1.0), color="tab:cyan",
              lw=0.8, label="propellant (fraction)")
    ax3b.set_ylim(0, 1.05)
    ax3b.set_ylabel("throttle, propellant")
    ax3.set_xlabel("time since descent start [s]")

    for when, name, args in events:
        if name in EVENT_MARKS:
            colour, label = EVENT_MARKS[name]
        elif name == "SENSOR_HEALTH" and len(args) >= 2 and int(args[1]) == 2:
            colour, label = "tab:red", f"{SENSOR_NAMES.get(int(args[0]), 'sensor')} FAILED"
        elif name == "PHASE" and args:
            colour, label = "lightgray", PHASE_NAMES.get(int(args[0]), "phase")
        else:
            continue
        for ax in (ax1, ax2, ax3):
            ax.axvline(when, color=colour, lw=0.8, ls=":")
        ax1.annotate(label, (when, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top", ha="right",
                     fontsize=7, color=colour if colour != "lightgray" else "gray")
    for ax in (ax1, ax2, ax3):
        ax.grid(alpha=0.3)
    ax1.legend(loc="upper right", fontsize=7, ncol=2)
    ax2.legend(loc="upper right", fontsize=7)
    ax3.legend(loc="lower left", fontsize=7)
    ax3b.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

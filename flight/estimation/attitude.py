"""Pitch from the gyro, and the IMU's body axes turned into the local frame. Pure: no I/O.

The flight's attitude is θ, the thrust axis's tilt from the local vertical, positive up-range
(braking), so the rangefinders (looking along −z) see ahead. Body z = (−sin θ, cos θ) and body
x = (cos θ, sin θ) in (downrange, up) (flight/devices/interfaces.py). A star tracker hands θ over
at descent start (`handover`); from then on it is propagated from the gyro's rate about body y
and the transport rate of the local frame, which turns toward downrange as the vehicle moves
over the sphere:

    θ' = vx / (R + h) − ω_y

Specific force on the body axes (a_x, a_z) turns into the local frame with the estimated θ:

    f_up = a_x sin θ + a_z cos θ,    f_downrange = a_x cos θ − a_z sin θ

Error budget (1σ), since the handover t seconds ago:

    σθ² = σ0² + N² t + (σ_b t)² + (r_hold · t_held)²

σ0: the handover; N: the gyro's noise density (angle random walk); σ_b: the gyro bias left after
the star tracker calibrated it; t_held: time the attitude was held without a gyro (an IMU gap,
when the attitude controller holds the commanded attitude to r_hold rad/s). It feeds the range
update's variance (r sin θ σθ)² and tells the ground how far to trust the pitch.
"""

from __future__ import annotations

import math

MOON_RADIUS_M = 1737.4e3


class Attitude:
    __slots__ = (
        "_cos",
        "_elapsed_s",
        "_gyro_bias",
        "_gyro_noise",
        "_held_s",
        "_hold_rate",
        "_radius_m",
        "_sigma0",
        "_sin",
        "pitch_rad",
    )

    def __init__(self, pitch_rad: float = 0.0, sigma_rad: float = 1e-4,
                 gyro_noise_density_radps_per_rthz: float = 4.9e-5, gyro_bias_sigma_radps: float = 1e-5,
                 hold_rate_sigma_radps: float = 1e-3, body_radius_m: float = MOON_RADIUS_M) -> None:
        for name, value in (("sigma_rad", sigma_rad), ("gyro noise density", gyro_noise_density_radps_per_rthz),
                            ("gyro bias sigma", gyro_bias_sigma_radps), ("hold rate sigma", hold_rate_sigma_radps)):
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError(f"attitude: {name} must be finite and >= 0, got {value!r}")
        if not (math.isfinite(body_radius_m) and body_radius_m > 0.0):
            raise ValueError(f"attitude: body radius must be > 0, got {body_radius_m!r}")
        self._gyro_noise = gyro_noise_density_radps_per_rthz
        self._gyro_bias = gyro_bias_sigma_radps
        self._hold_rate = hold_rate_sigma_radps
        self._radius_m = body_radius_m
        self.pitch_rad = 0.0
        self._sigma0 = 0.0
        self._elapsed_s = 0.0
        self._held_s = 0.0
        self._cos = 1.0
        self._sin = 0.0
        self.handover(pitch_rad, sigma_rad)

    def handover(self, pitch_rad: float, sigma_rad: float) -> None:
        """A fresh attitude from the star tracker: the budget starts again."""
        if not (math.isfinite(pitch_rad) and abs(pitch_rad) <= math.pi and math.isfinite(sigma_rad) and sigma_rad >= 0.0):
            raise ValueError(f"attitude handover needs |pitch| <= pi and sigma >= 0, got {pitch_rad!r}, {sigma_rad!r}")
        self._set(pitch_rad)
        self._sigma0 = sigma_rad
        self._elapsed_s = 0.0
        self._held_s = 0.0

    def _set(self, pitch_rad: float) -> None:
        self.pitch_rad = pitch_rad
        self._cos = math.cos(pitch_rad)
        self._sin = math.sin(pitch_rad)

    def propagate(self, gyro_y_radps: float, dt_s: float, horizontal_speed_mps: float, altitude_m: float) -> None:
        """Advance by one gyro sample (its rate held over dt_s). Inputs are checked by the caller."""
        transport = horizontal_speed_mps / (self._radius_m + altitude_m)
        self._set(self.pitch_rad + (transport - gyro_y_radps) * dt_s)
        self._elapsed_s += dt_s

    def hold(self, dt_s: float, horizontal_speed_mps: float, altitude_m: float) -> None:
        """No gyro for dt_s (an IMU gap): the attitude controller holds the attitude in the local
        frame, so θ stays; the budget grows by the hold's accuracy."""
        self._elapsed_s += dt_s
        self._held_s += dt_s

    def correct(self, delta_rad: float) -> None:
        """Turn the estimate by delta_rad: a turn made while the gyro was silent (an IMU gap: the
        attitude controller followed guidance's commands). The budget is `hold`'s."""
        if math.isfinite(delta_rad) and abs(delta_rad) <= math.pi:
            self._set(self.pitch_rad + delta_rad)

    def to_local(self, accel_x_mps2: float, accel_z_mps2: float) -> tuple[float, float]:
        """(f_up, f_downrange) from body-axis specific force, with the estimated attitude."""
        c, s = self._cos, self._sin
        return accel_x_mps2 * s + accel_z_mps2 * c, accel_x_mps2 * c - accel_z_mps2 * s

    @property
    def cos_pitch(self) -> float:
        return self._cos

    @property
    def sin_pitch(self) -> float:
        return self._sin

    @property
    def gyro_bias_sigma_radps(self) -> float:
        return self._gyro_bias

    @property
    def sigma_rad(self) -> float:
        t = self._elapsed_s
        bias = self._gyro_bias * t
        held = self._hold_rate * self._held_s
        return math.sqrt(self._sigma0 ** 2 + self._gyro_noise ** 2 * t + bias * bias + held * held)

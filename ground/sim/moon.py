"""Lunar constants (one place)."""

GM_M3PS2 = 4.9028e12
RADIUS_M = 1737.4e3
SURFACE_GRAVITY_MPS2 = GM_M3PS2 / RADIUS_M**2  # 1.624
STANDARD_GRAVITY_MPS2 = 9.80665  # for Isp


def circular_speed_mps(altitude_m: float) -> float:
    return (GM_M3PS2 / (RADIUS_M + altitude_m)) ** 0.5

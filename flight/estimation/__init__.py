"""Estimation: the altitude-filter wrapper and the estimation task."""

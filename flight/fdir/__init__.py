"""Fault detection, isolation and recovery for altimetry."""

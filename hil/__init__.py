"""Rig joining ground and flight: truth streaming, bus bridges, SIL and bench runners."""

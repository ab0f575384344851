"""Telemetry and telecommands: the dictionary, PUS packets, links, the flight log."""

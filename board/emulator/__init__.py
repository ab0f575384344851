"""Pico sensor emulator core: register maps, frame codecs and the sensor stream.

Pure modules (no `machine`), the same files on CPython (`board.emulator`, the host emulator and
the tests) and MicroPython (copied to the Pico's root as the package `emulator`).
"""

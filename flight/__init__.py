"""Lander flight software: everything that runs on the flight computer.

Depends only on the standard library, the cffi kernel, pyserial, smbus2 and spacepackets.
Nothing under flight/ may import numpy.
"""

__version__ = "0.1.0"

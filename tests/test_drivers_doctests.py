"""The drivers' codecs carry their examples as doctests: they run here so they stay true."""

import doctest
import importlib

import pytest

MODULES = ["rangefinder", "engine_link", "lidarlite", "icm42688", "i2c_bridge"]


@pytest.mark.parametrize("name", MODULES)
def test_codec_examples_hold(name):
    module = importlib.import_module(f"flight.devices.{name}")
    result = doctest.testmod(module)
    assert result.attempted > 0 and result.failed == 0

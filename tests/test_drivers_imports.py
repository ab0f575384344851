"""DRV-041: the drivers stay inside the flight's import rules (stdlib, pyserial, smbus2, our own
flight modules): never numpy, ground, hil or board; the I2C bridge client is stdlib only."""

import subprocess
import sys

FORBIDDEN = ("numpy", "ground", "hil", "board")
PROBE = """
import sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in {forbidden!r}:
            raise ImportError('flight must not import ' + name)
sys.meta_path.insert(0, Refuse())
{body}
"""


def _run(body: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", PROBE.format(forbidden=FORBIDDEN, body=body)],
                          check=False, capture_output=True, text=True, timeout=60)


def test_drv041_drivers_import_nothing_from_the_ground_side():
    result = _run("import flight.devices.rangefinder, flight.devices.lidarlite, flight.devices.icm42688, "
                  "flight.devices.engine_link, flight.devices.i2c_bridge")
    assert result.returncode == 0, result.stderr


def test_drv041_the_bridge_client_is_stdlib_only():
    result = _run("import flight.devices.i2c_bridge\n"
                  "third = [m for m in ('serial', 'smbus2', 'cffi', 'spacepackets') if m in sys.modules]\n"
                  "assert not third, third")
    assert result.returncode == 0, result.stderr

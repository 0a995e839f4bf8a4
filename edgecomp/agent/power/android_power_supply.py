"""Android's battery fuel gauge: current_now * voltage_now, units normalized."""

import os

from ..device import read_number, sysroot_path
from . import PROBES
from .base import PowerProbe


def normalize_power_supply(current_now, voltage_now):
    """Android /sys/class/power_supply/battery readings to watts drawn.

    The kernel ABI says microamps and microvolts, but vendors report milliamps on some
    devices and either sign for discharge (google/perfetto#1441): a magnitude below
    10,000 is taken as mA, and the sign is dropped because only draw is measured.
    """
    current = abs(float(current_now))
    voltage = abs(float(voltage_now))
    amps = current / 1000.0 if current < 10000 else current / 1e6
    volts = voltage / 1e6 if voltage > 1000 else voltage  # uV, or already volts
    return amps * volts


@PROBES.register()
class Probe(PowerProbe):
    name = "android-power-supply"

    def __init__(self, arg=None):
        base = sysroot_path("sys", "class", "power_supply", "battery")
        self.files = (os.path.join(base, "current_now"), os.path.join(base, "voltage_now"))
        self.reason = None if self.available() else "no battery current_now/voltage_now"

    def available(self):
        return all(os.path.isfile(f) for f in self.files)

    def read_watts(self):
        return normalize_power_supply(read_number(self.files[0]), read_number(self.files[1]))

"""Jetson's INA3221 through hwmon: the input rail's mV * mA, never a sum of rails."""

import os

from ..device import read_number, sysroot_path
from . import PROBES
from .base import PowerProbe

INPUT_RAILS = ("VDD_IN", "POM_5V_IN")


def find_input_rail(root):
    """(voltage file, current file) of the INA3221 channel labelled as the input rail."""
    for dirpath, _, files in os.walk(root):
        for name in sorted(files):
            if not (name.startswith("in") and name.endswith("_label")):
                continue
            try:
                with open(os.path.join(dirpath, name)) as handle:
                    label = handle.read().strip()
            except OSError:
                continue
            if label in INPUT_RAILS:
                channel = name[2:-len("_label")]
                volt = os.path.join(dirpath, "in%s_input" % channel)
                curr = os.path.join(dirpath, "curr%s_input" % channel)
                if os.path.isfile(volt) and os.path.isfile(curr):
                    return volt, curr
    return None


@PROBES.register()
class Probe(PowerProbe):
    name = "jetson-ina3221"

    def __init__(self, arg=None):
        self.rail = find_input_rail(sysroot_path("sys", "bus", "i2c", "drivers"))
        self.reason = None if self.rail else ("no INA3221 channel labelled VDD_IN under "
                                              "/sys/bus/i2c/drivers")

    def available(self):
        return self.rail is not None

    def read_watts(self):
        millivolts, milliamps = read_number(self.rail[0]), read_number(self.rail[1])
        return millivolts * milliamps / 1e6

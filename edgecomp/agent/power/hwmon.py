"""An INA219/INA260 on I2C through hwmon's power1_input (microwatts)."""

import os

from ..device import read_number, read_text, sysroot_path
from . import PROBES
from .base import PowerProbe


@PROBES.register("ina219", "ina260")
class Probe(PowerProbe):
    def __init__(self, chip):
        self.name = chip
        self.path = None
        base = sysroot_path("sys", "class", "hwmon")
        try:
            entries = sorted(os.listdir(base))
        except OSError:
            entries = []
        for entry in entries:
            candidate = os.path.join(base, entry, "power1_input")
            if read_text("sys", "class", "hwmon", entry, "name") == chip and \
                    os.path.isfile(candidate):
                self.path = candidate
        self.reason = None if self.path else "no %s hwmon device with power1_input" % chip

    def available(self):
        return self.path is not None

    def read_watts(self):
        return read_number(self.path) / 1e6

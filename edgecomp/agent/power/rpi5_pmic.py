"""Raspberry Pi 5's PMIC through `vcgencmd pmic_read_adc`: the sum of V * I per rail."""

import shutil
import subprocess

from . import PROBES
from .base import PowerProbe

COMMAND = ["vcgencmd", "pmic_read_adc"]


def parse_pmic_read_adc(text):
    """Total watts from `vcgencmd pmic_read_adc` output, or None if it has no rails."""
    currents, volts = {}, {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 2 or "=" not in fields[1]:
            continue
        label, value = fields[0], fields[1].split("=", 1)[1]
        try:
            number = float(value.rstrip("AV"))
        except ValueError:
            continue
        if label.endswith("_A") and value.endswith("A"):
            currents[label[:-2]] = number
        elif label.endswith("_V") and value.endswith("V"):
            volts[label[:-2]] = number
    rails = [name for name in currents if name in volts]
    if not rails:
        return None
    return sum(currents[name] * volts[name] for name in rails)


@PROBES.register()
class Probe(PowerProbe):
    name = "rpi5-pmic"

    def __init__(self, arg=None):
        self.reason = None if shutil.which(COMMAND[0]) else "%s is not on this board" % COMMAND[0]

    def available(self):
        return self.reason is None

    def read_watts(self):
        out = subprocess.run(COMMAND, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=2, check=False).stdout.decode("ascii", "replace")
        watts = parse_pmic_read_adc(out)
        if watts is None:
            raise ValueError("unparseable %s output" % " ".join(COMMAND))
        return watts

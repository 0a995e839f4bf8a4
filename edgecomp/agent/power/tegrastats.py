"""Jetson's `tegrastats` tool: the input rail (VDD_IN / POM_5V_IN) from its lines."""

import shutil
import subprocess

from . import PROBES
from .base import PowerProbe

INTERVAL_MS = 20


def parse_input_power(line):
    """Watts on the board's input rail from one tegrastats line, or None.

    Jetson boards report several rails; only the input rail (VDD_IN, or POM_5V_IN on
    older JetPacks) is the board's power. Summing rails double-counts
    (rbonghi/jetson_stats#51).
    """
    for rail in ("VDD_IN", "POM_5V_IN"):
        marker = rail + " "
        at = line.find(marker)
        if at >= 0:
            # JetPack 5+: "VDD_IN 4939mW/4939mW"; JetPack 4 (Nano): "POM_5V_IN 2138/2138".
            value = line[at + len(marker):].split("/", 1)[0].split()[0]
            if value.endswith("mW"):
                value = value[:-2]
            if value.isdigit():
                return int(value) / 1000.0
    return None


@PROBES.register()
class Probe(PowerProbe):
    """Runs tegrastats once, in the background, and reads one line per reading."""

    name = "tegrastats"

    def __init__(self, arg=None):
        self.process = None
        self.reason = None if shutil.which("tegrastats") else "tegrastats is not on this board"

    def available(self):
        return self.reason is None

    def read_watts(self):
        if self.process is None:
            self.process = subprocess.Popen(
                ["tegrastats", "--interval", str(INTERVAL_MS)], stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, universal_newlines=True)
        line = self.process.stdout.readline()
        watts = parse_input_power(line)
        if watts is None:
            raise ValueError("unparseable tegrastats line %r" % line[:120])
        return watts

    def close(self):
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=5)
            self.process = None

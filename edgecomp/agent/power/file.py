"""A file whose content is the latest reading in watts (a logger or a test writes it)."""

import os

from . import PROBES
from .base import PowerProbe


@PROBES.register("file:")
class Probe(PowerProbe):
    name = "file"

    def __init__(self, path):
        self.path = path
        self.reason = None if self.available() else "%s does not exist" % path

    def available(self):
        return os.path.isfile(self.path)

    def read_watts(self):
        with open(self.path) as handle:
            return float(handle.read().strip())

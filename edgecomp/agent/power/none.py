"""No power sensor: energy is reported as unknown, with this reason."""

from . import PROBES
from .base import PowerProbe


@PROBES.register()
class Probe(PowerProbe):
    name = "none"
    reason = "no power sensor on this board"

    def __init__(self, arg=None):
        pass

"""No power sensor: energy is reported as unknown, with this reason."""

from .base import PowerProbe


class Probe(PowerProbe):
    name = "none"
    reason = "no power sensor on this board"

    def __init__(self, arg=None):
        pass

"""What every power probe shares: the name, the reason it cannot read, close()."""


class PowerProbe(object):
    """A power sensor; read_watts() returns the board's power now, in watts.

    Constructed with one argument: the name it was asked by ("ina219"), or, registered
    under a name ending in ":", what follows it (the PATH of file:PATH).
    """

    name = "none"
    reason = None

    def available(self):
        return False

    def read_watts(self):
        raise NotImplementedError

    def close(self):
        """Release what reading needed (a running tool); most probes hold nothing."""

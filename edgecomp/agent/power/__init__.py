"""Power probes, one module per sensor, found by name (like labgrid's power drivers).

Each module defines a `PowerProbe` subclass and registers it in PROBES under the name(s)
targets use: `available()` says whether the sensor is readable here (with `reason` when it
is not), `read_watts()` returns the board's power now, `close()` releases what reading
needed. A probe is constructed with the name it was asked by (one module may serve several
sensors, like hwmon's ina219 and ina260); a name ending in ":" takes what follows it
instead, so `file:PATH` is the file probe with PATH as its argument.
"""

from ...registry import Registry
from ..failure import AgentError
from .base import PowerProbe


def _check_probe(probe):
    """The probe registry's check: a registered probe is a PowerProbe subclass."""
    if not (isinstance(probe, type) and issubclass(probe, PowerProbe)):
        raise TypeError("a power probe module must register a PowerProbe subclass, not %r"
                        % (probe,))


PROBES = Registry("power probe", __name__, check=_check_probe)


def probe_names():
    """The names a target's `power_probe` may be, besides the PREFIX:ARGUMENT spellings."""
    return [name for name in PROBES.names() if not name.endswith(":")]


def probe_prefixes():
    """The registered names that take an argument after them, like "file:"."""
    return [name for name in PROBES.names() if name.endswith(":")]


def make_probe(spec):
    """The probe for a target's `power_probe` value: a registered name or file:PATH."""
    if not spec:
        spec = "none"
    for prefix in probe_prefixes():
        if spec.startswith(prefix):
            return PROBES.get(prefix)(spec[len(prefix):])
    if spec not in probe_names():
        raise AgentError("unknown power probe %r; use %s or one of %s"
                         % (spec, " or ".join(prefix + "PATH" for prefix in probe_prefixes()),
                            ", ".join(probe_names())), "bad_args")
    return PROBES.get(spec)(spec)

"""Power probes, one module per sensor, loaded by name (like labgrid's power drivers).

Each module defines `Probe(arg)`: `available()` says whether the sensor is readable here
(with `reason` when it is not), `read_watts()` returns the board's power now, `close()`
releases what reading needed. `file:PATH` is the file probe with PATH as its argument.
"""

import importlib

from ..failure import AgentError

# Probe name -> (module in this package, argument given to its Probe).
PROBES = {
    "none": ("none", None),
    "jetson-ina3221": ("jetson_ina3221", None),
    "tegrastats": ("tegrastats", None),
    "android-power-supply": ("android_power_supply", None),
    "rpi5-pmic": ("rpi5_pmic", None),
    "ina219": ("hwmon", "ina219"),
    "ina260": ("hwmon", "ina260"),
}


def load_probe_module(module):
    """A probe module of this package by its module name."""
    return importlib.import_module("." + module, __name__)


def make_probe(spec):
    """The probe for a target's `power_probe` value: a name above or file:PATH."""
    if not spec:
        spec = "none"
    if spec.startswith("file:"):
        return load_probe_module("file").Probe(spec[len("file:"):])
    if spec not in PROBES:
        raise AgentError("unknown power probe %r; use file:PATH or one of %s"
                         % (spec, ", ".join(sorted(PROBES))), "bad_args")
    module, arg = PROBES[spec]
    return load_probe_module(module).Probe(arg)

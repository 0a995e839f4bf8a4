#!/usr/bin/env python3
"""edgecomp's on-device agent: load an artifact in the board's runtime and measure it.

One self-contained file, copied to the board and run there. Python 3.8+, standard
library only; numpy and the inference runtime are imported inside the runtime
adapters. Every command prints exactly one JSON object on stdout and exits 0, or
prints {"ok": false, "error": ..., "kind": ...} and exits 2.

    python3 edgecomp_agent.py info
    python3 edgecomp_agent.py measure MODEL [--runs N] [--seconds S] ...
    python3 edgecomp_agent.py run MODEL --input-npz IN.npz --output-npz OUT.npz
"""

import argparse
import errno
import importlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import threading
import time

AGENT_VERSION = "1"

# (module to import, pip package) per runtime, best first for each format.
RUNTIME_PACKAGES = {
    "ai_edge_litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow", "tensorflow"),
    "onnxruntime": ("onnxruntime", "onnxruntime"),
}
FORMAT_RUNTIMES = {
    ".tflite": ["ai_edge_litert", "tflite_runtime", "tensorflow"],
    ".onnx": ["onnxruntime"],
}


class AgentError(Exception):
    """A failure reported as JSON: one sentence and a short kind code."""

    def __init__(self, message, kind):
        Exception.__init__(self, message)
        self.kind = kind


# ---------------------------------------------------------------- device state

def sysroot_path(*parts):
    """A /proc or /sys path under EDGECOMP_AGENT_SYSROOT (tests feed recorded trees)."""
    return os.path.join(os.environ.get("EDGECOMP_AGENT_SYSROOT", "/"), *parts)


def read_text(*parts):
    try:
        with open(sysroot_path(*parts)) as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def count_cpu_list(text):
    """'0-3,6' -> 5: the kernel's CPU list format."""
    if not text:
        return None
    total = 0
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-", 1)
            total += int(high) - int(low) + 1
        elif part.strip():
            total += 1
    return total


def cpu_model():
    text = read_text("proc", "cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return None


def meminfo():
    values = {}
    for line in (read_text("proc", "meminfo") or "").splitlines():
        name, _, rest = line.partition(":")
        fields = rest.split()
        if fields and fields[0].isdigit():
            values[name.strip()] = int(fields[0]) / 1024.0  # kB -> MiB
    return values


def temperatures():
    """{zone type: celsius} from /sys/class/thermal."""
    base = sysroot_path("sys", "class", "thermal")
    found = {}
    try:
        zones = sorted(z for z in os.listdir(base) if z.startswith("thermal_zone"))
    except OSError:
        return found
    for zone in zones:
        raw = read_text("sys", "class", "thermal", zone, "temp")
        if raw is None or not raw.lstrip("-").isdigit():
            continue
        name = read_text("sys", "class", "thermal", zone, "type") or zone
        if name in found:
            name = "%s.%s" % (name, zone)
        found[name] = int(raw) / 1000.0
    return found


def vcgencmd_throttled():
    """`vcgencmd get_throttled` as an int (Raspberry Pi), or None where there is none."""
    if not shutil.which("vcgencmd"):
        return None
    try:
        out = subprocess.run(["vcgencmd", "get_throttled"], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_throttled(out.stdout.decode("ascii", "replace"))


def parse_throttled(text):
    """'throttled=0x50005' -> 0x50005."""
    _, _, value = text.strip().partition("=")
    try:
        return int(value, 16)
    except ValueError:
        return None


def device_state():
    """The board's state now; every field is None when it cannot be read."""
    memory = meminfo()
    try:
        load = list(os.getloadavg())
    except OSError:
        load = None
    try:
        usage = shutil.disk_usage(os.getcwd())
        disk_free = usage.free / (1024.0 * 1024.0)
    except OSError:
        disk_free = None
    freq = read_text("sys", "devices", "system", "cpu", "cpu0", "cpufreq", "scaling_cur_freq")
    return {
        "hostname": platform.node() or None,
        "kernel": platform.release() or None,
        "machine": platform.machine() or None,
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "online_cores": count_cpu_list(read_text("sys", "devices", "system", "cpu", "online")),
        "governor": read_text("sys", "devices", "system", "cpu", "cpu0", "cpufreq",
                              "scaling_governor"),
        "cpu_freq_mhz": int(freq) / 1000.0 if freq and freq.isdigit() else None,
        "temperatures_c": temperatures(),
        "throttled": vcgencmd_throttled(),
        "mem_total_mb": memory.get("MemTotal"),
        "mem_available_mb": memory.get("MemAvailable"),
        "disk_free_mb": disk_free,
        "load_avg": load,
    }


def throttled_during(before, after, hot_c):
    """True when the board throttled or ran hot during the measurement; None if unknowable."""
    flags = after.get("throttled")
    if flags is not None:
        # Bits 0-3: throttling now; bits 16-19: since boot. New "since" bits mean it happened.
        since_before = (before.get("throttled") or 0) & 0xF0000
        if flags & 0xF or (flags & 0xF0000) & ~since_before:
            return True
    temps = list((after.get("temperatures_c") or {}).values())
    if temps:
        return max(temps) >= hot_c or bool(flags and flags & 0xF)
    return None if flags is None else False


# ---------------------------------------------------------------- memory

def proc_status_mb(field):
    """VmRSS / VmHWM of this process in MiB, from /proc/self/status (not the sysroot)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb():
    value = proc_status_mb("VmHWM")
    if value is not None:
        return value
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


# ---------------------------------------------------------------- statistics

def percentile(sorted_values, fraction):
    """Linear interpolation between closest ranks (numpy's default), on sorted data."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * fraction
    low = int(math.floor(position))
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def latency_stats(samples):
    """p50/p90/p99/mean/std/count of samples in ms; std is the population std (ddof=0)."""
    ordered = sorted(samples)
    count = len(ordered)
    mean = sum(ordered) / count
    variance = sum((v - mean) ** 2 for v in ordered) / count
    return {"p50": percentile(ordered, 0.5), "p90": percentile(ordered, 0.9),
            "p99": percentile(ordered, 0.99), "mean": mean, "std": math.sqrt(variance),
            "count": count}


# ---------------------------------------------------------------- runtimes

def runtime_version(name):
    module_name, package = RUNTIME_PACKAGES[name]
    try:
        from importlib import metadata  # Python 3.8+
        return metadata.version(package)
    except Exception:  # metadata raises PackageNotFoundError or odd errors on old pips
        pass
    try:
        module = importlib.import_module(module_name.split(".")[0])
        return getattr(module, "__version__", "unknown")
    except Exception:  # a broken runtime install is the same as none
        return None


def runtime_available(name):
    module_name = RUNTIME_PACKAGES[name][0].split(".")[0]
    try:
        import importlib.util
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


class Runtime(object):
    """One inference runtime: load a model, feed inputs, invoke, read outputs."""

    name = ""

    def __init__(self, path, threads):
        self.path = path
        self.threads = threads

    def load(self):
        raise NotImplementedError

    def inputs(self):
        """[{name, shape, dtype, quantization?}] of the model's inputs."""
        raise NotImplementedError

    def outputs(self):
        raise NotImplementedError

    def set_inputs(self, arrays):
        raise NotImplementedError

    def invoke(self):
        raise NotImplementedError

    def get_outputs(self):
        raise NotImplementedError


class LiteRTRuntime(Runtime):
    """LiteRT / TFLite interpreter from ai_edge_litert, tflite_runtime or tensorflow.lite."""

    def load(self):
        if self.name == "tensorflow":
            import tensorflow as tf
            interpreter_class = tf.lite.Interpreter
        else:
            module = importlib.import_module(RUNTIME_PACKAGES[self.name][0])
            interpreter_class = module.Interpreter
        self.interpreter = interpreter_class(model_path=self.path, num_threads=self.threads)
        self.interpreter.allocate_tensors()
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()

    def _describe(self, details):
        import numpy as np
        described = []
        for detail in details:
            entry = {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
                     "dtype": np.dtype(detail["dtype"]).name}
            scale, zero = detail.get("quantization", (0.0, 0))
            if scale:
                entry["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
            described.append(entry)
        return described

    def inputs(self):
        return self._describe(self._inputs)

    def outputs(self):
        return self._describe(self._outputs)

    def set_inputs(self, arrays):
        for detail, array in zip(self._inputs, arrays):
            self.interpreter.set_tensor(detail["index"], array)

    def invoke(self):
        self.interpreter.invoke()

    def get_outputs(self):
        return [self.interpreter.get_tensor(d["index"]) for d in self._outputs]


class OnnxRuntime(Runtime):
    """onnxruntime's CPU provider, sequential, with the requested intra-op threads."""

    name = "onnxruntime"

    def load(self):
        import onnxruntime as ort
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        self.session = ort.InferenceSession(self.path, sess_options=options,
                                            providers=["CPUExecutionProvider"])
        self._inputs = self.session.get_inputs()
        self._outputs = self.session.get_outputs()
        self._feed = {}

    @staticmethod
    def _dtype(type_name):
        names = {"tensor(float)": "float32", "tensor(float16)": "float16",
                 "tensor(double)": "float64", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
                 "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool"}
        return names.get(type_name, type_name)

    def _describe(self, values):
        return [{"name": v.name, "dtype": self._dtype(v.type),
                 "shape": [d if isinstance(d, int) and d > 0 else 1 for d in v.shape]}
                for v in values]

    def inputs(self):
        return self._describe(self._inputs)

    def outputs(self):
        return self._describe(self._outputs)

    def set_inputs(self, arrays):
        self._feed = dict((v.name, a) for v, a in zip(self._inputs, arrays))

    def invoke(self):
        self._last = self.session.run(None, self._feed)

    def get_outputs(self):
        return self._last


def open_runtime(path, requested, threads):
    """Pick the runtime for the artifact's format, or explain which package to install."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMAT_RUNTIMES:
        raise AgentError("%s: unknown model type %r; the agent runs .tflite and .onnx files"
                         % (path, suffix), "bad_artifact")
    candidates = FORMAT_RUNTIMES[suffix]
    if requested != "auto":
        if requested not in RUNTIME_PACKAGES:
            raise AgentError("unknown runtime %r; choose auto or one of %s"
                             % (requested, ", ".join(sorted(RUNTIME_PACKAGES))), "bad_args")
        if requested not in candidates:
            raise AgentError("runtime %s cannot run %s files; use one of %s"
                             % (requested, suffix, ", ".join(candidates)), "bad_args")
        candidates = [requested]
    for name in candidates:
        if runtime_available(name):
            runtime = (OnnxRuntime if name == "onnxruntime" else LiteRTRuntime)(path, threads)
            runtime.name = name
            return runtime
    raise AgentError("no runtime for %s files on this board: install one with `pip install %s`"
                     % (suffix, RUNTIME_PACKAGES[candidates[0]][1]), "missing_runtime")


def import_runtime(runtime):
    """Import the runtime's module, turning a broken install into an install hint."""
    try:
        importlib.import_module(RUNTIME_PACKAGES[runtime.name][0])
    except ImportError as exc:
        raise AgentError("the %s runtime failed to import (%s); reinstall it with `pip install "
                         "%s`" % (runtime.name, exc, RUNTIME_PACKAGES[runtime.name][1]),
                         "missing_runtime")


def load_model(runtime):
    if not os.path.isfile(runtime.path):
        raise AgentError("model file %s does not exist on this board" % runtime.path,
                         "bad_artifact")
    import_runtime(runtime)
    try:
        runtime.load()
    except Exception as exc:  # runtimes raise RuntimeError, ValueError, their own Fail types
        raise AgentError("%s could not load %s (truncated or unsupported model?): %s"
                         % (runtime.name, os.path.basename(runtime.path),
                            str(exc).strip().splitlines()[0][:300] if str(exc).strip()
                            else type(exc).__name__), "bad_artifact")


def make_inputs(specs, seed, npz_path=None):
    """One batch of inputs: the first sample of --input-npz, else seeded random data."""
    import numpy as np
    rng = np.random.RandomState(seed)
    stored = None
    if npz_path:
        with np.load(npz_path, allow_pickle=False) as archive:
            stored = dict((k, archive[k]) for k in archive.files)
    arrays = []
    for position, spec in enumerate(specs):
        dtype = np.dtype(spec["dtype"])
        shape = [d if d > 0 else 1 for d in spec["shape"]]
        if stored is not None:
            key = spec["name"] if spec["name"] in stored else sorted(stored)[position]
            value = stored[key][:shape[0]] if stored[key].ndim == len(shape) else stored[key]
            arrays.append(to_model_dtype(value.reshape(shape), spec))
        elif dtype.kind in "iu":
            info = np.iinfo(dtype)
            arrays.append(rng.randint(info.min, info.max + 1, size=shape).astype(dtype))
        else:
            arrays.append(rng.random_sample(shape).astype(dtype))
    return arrays


def to_model_dtype(value, spec):
    """Cast a float sample to the input's dtype, quantizing with its scale for int8/uint8."""
    import numpy as np
    dtype = np.dtype(spec["dtype"])
    quant = spec.get("quantization")
    if quant and dtype.kind in "iu":
        info = np.iinfo(dtype)
        value = np.round(value / quant["scale"] + quant["zero_point"])
        return np.clip(value, info.min, info.max).astype(dtype)
    return value.astype(dtype)


def from_model_dtype(value, spec):
    """Float output values, dequantizing int8/uint8 outputs with their scale."""
    import numpy as np
    quant = spec.get("quantization")
    if quant and value.dtype.kind in "iu":
        return ((value.astype(np.float32) - quant["zero_point"]) * quant["scale"])
    return value.astype(np.float32)


# ---------------------------------------------------------------- board lock

def default_lock_path():
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edgecomp", "board.lock")


class BoardLock(object):
    """An exclusive flock: one measurement per board. The kernel frees it if we die."""

    def __init__(self, path, timeout, label):
        self.path = path
        self.timeout = timeout
        self.label = label
        self.handle = None
        self.waited = 0.0

    def __enter__(self):
        import fcntl
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory)
        self.handle = open(self.path, "a+")
        start = time.time()
        while True:
            try:
                fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.time() - start >= self.timeout:
                    holder = self._holder()
                    self.handle.close()
                    raise AgentError(
                        "the board is busy: another measurement (%s) has held %s for over "
                        "%.0f s; wait for it or raise --lock-timeout" % (
                            holder or "unknown holder", self.path, self.timeout),
                        "lock_timeout")
                time.sleep(0.1)
        self.waited = time.time() - start
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(json.dumps({"pid": os.getpid(), "since": time.time(),
                                      "what": self.label}))
        self.handle.flush()
        return self

    def _holder(self):
        try:
            with open(self.path) as handle:
                info = json.loads(handle.read() or "{}")
            return "pid %s measuring %s since %s" % (
                info.get("pid"), info.get("what"),
                time.strftime("%H:%M:%S", time.localtime(info.get("since", 0))))
        except (OSError, ValueError):
            return None

    def __exit__(self, *exc):
        import fcntl
        try:
            self.handle.seek(0)
            self.handle.truncate()
        finally:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()


# ---------------------------------------------------------------- power

class PowerProbe(object):
    """A power sensor; read_watts() returns the board's power now."""

    name = "none"
    reason = "no power sensor on this board"

    def available(self):
        return False

    def read_watts(self):
        raise NotImplementedError


class FileProbe(PowerProbe):
    """A file whose content is the latest reading in watts (a logger or a test writes it)."""

    name = "file"
    reason = None

    def __init__(self, path):
        self.path = path

    def available(self):
        return os.path.isfile(self.path)

    def read_watts(self):
        with open(self.path) as handle:
            return float(handle.read().strip())


def parse_tegrastats_input_power(line):
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


def parse_pmic_read_adc(text):
    """Total watts from `vcgencmd pmic_read_adc` (Raspberry Pi 5): sum of V*I per rail."""
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


def normalize_power_supply(current_now, voltage_now):
    """Android /sys/class/power_supply/battery readings to watts drawn.

    The kernel ABI says microamps and microvolts, but vendors report milliamps on some
    devices and either sign for discharge (google/perfetto#1441): a magnitude below
    10,000 is taken as mA, and the sign is dropped because only draw is measured.
    """
    current = abs(float(current_now))
    voltage = abs(float(voltage_now))
    amps = current / 1000.0 if current < 10000 else current / 1e6
    volts = voltage / 1e6 if voltage > 1000 else voltage  # uV, or already volts
    return amps * volts


def find_hwmon_input_rail(root):
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
            if label in ("VDD_IN", "POM_5V_IN"):
                channel = name[2:-len("_label")]
                volt = os.path.join(dirpath, "in%s_input" % channel)
                curr = os.path.join(dirpath, "curr%s_input" % channel)
                if os.path.isfile(volt) and os.path.isfile(curr):
                    return volt, curr
    return None


def read_number(path):
    with open(path) as handle:
        return float(handle.read().strip())


class JetsonIna3221Probe(PowerProbe):
    """Jetson's INA3221 through hwmon: the input rail's mV * mA, never a sum of rails."""

    name = "jetson-ina3221"

    def __init__(self):
        self.rail = find_hwmon_input_rail(sysroot_path("sys", "bus", "i2c", "drivers"))
        self.reason = None if self.rail else ("no INA3221 channel labelled VDD_IN under "
                                              "/sys/bus/i2c/drivers")

    def available(self):
        return self.rail is not None

    def read_watts(self):
        millivolts, milliamps = read_number(self.rail[0]), read_number(self.rail[1])
        return millivolts * milliamps / 1e6


class AndroidPowerSupplyProbe(PowerProbe):
    """Android's battery fuel gauge: current_now * voltage_now, units normalized."""

    name = "android-power-supply"

    def __init__(self):
        base = sysroot_path("sys", "class", "power_supply", "battery")
        self.files = (os.path.join(base, "current_now"), os.path.join(base, "voltage_now"))
        self.reason = None if self.available() else "no battery current_now/voltage_now"

    def available(self):
        return all(os.path.isfile(f) for f in self.files)

    def read_watts(self):
        return normalize_power_supply(read_number(self.files[0]), read_number(self.files[1]))


class HwmonPowerProbe(PowerProbe):
    """An INA219/INA260 on I2C through hwmon's power1_input (microwatts)."""

    def __init__(self, name):
        self.name = name
        self.path = None
        base = sysroot_path("sys", "class", "hwmon")
        try:
            entries = sorted(os.listdir(base))
        except OSError:
            entries = []
        for entry in entries:
            chip = read_text("sys", "class", "hwmon", entry, "name")
            candidate = os.path.join(base, entry, "power1_input")
            if chip == name and os.path.isfile(candidate):
                self.path = candidate
        self.reason = None if self.path else "no %s hwmon device with power1_input" % name

    def available(self):
        return self.path is not None

    def read_watts(self):
        return read_number(self.path) / 1e6


class CommandProbe(PowerProbe):
    """A probe read by running a board tool (vcgencmd) and parsing its output."""

    def __init__(self, name, argv, parse):
        self.name = name
        self.argv = argv
        self.parse = parse
        self.reason = None if shutil.which(argv[0]) else "%s is not on this board" % argv[0]

    def available(self):
        return self.reason is None

    def read_watts(self):
        out = subprocess.run(self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             timeout=2, check=False).stdout.decode("ascii", "replace")
        watts = self.parse(out)
        if watts is None:
            raise ValueError("unparseable %s output" % self.argv[0])
        return watts


PROBES = {
    "none": PowerProbe,
    "jetson-ina3221": JetsonIna3221Probe,
    "android-power-supply": AndroidPowerSupplyProbe,
    "rpi5-pmic": lambda: CommandProbe("rpi5-pmic", ["vcgencmd", "pmic_read_adc"],
                                      parse_pmic_read_adc),
    "ina219": lambda: HwmonPowerProbe("ina219"),
    "ina260": lambda: HwmonPowerProbe("ina260"),
}


def make_probe(spec):
    if not spec:
        return PowerProbe()
    if spec.startswith("file:"):
        return FileProbe(spec[len("file:"):])
    if spec not in PROBES:
        raise AgentError("unknown power probe %r; use file:PATH or one of %s"
                         % (spec, ", ".join(sorted(PROBES))), "bad_args")
    return PROBES[spec]()


def measure_power(runtime, arrays, probe, seconds, rate_hz, idle_seconds):
    """Energy per inference from a separate power pass; a probe failure is data, not a crash."""
    try:
        return _power_pass(runtime, arrays, probe, seconds, rate_hz, idle_seconds)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return {"probe": probe.name, "energy_mj": None,
                "reason": "reading the %s probe failed: %s" % (probe.name, exc)}


def _power_pass(runtime, arrays, probe, seconds, rate_hz, idle_seconds):
    """Idle baseline, then a separate pass invoking the model while a thread samples power.

    Energy per inference = integral of (P - idle) over the pass / iterations (trapezoid).
    """
    if not probe.available():
        return {"probe": probe.name, "energy_mj": None,
                "reason": probe.reason or "power probe %s is not readable" % probe.name}
    period = 1.0 / rate_hz

    def sample_for(duration, stop=None):
        samples = []
        end = time.perf_counter() + duration
        while (stop is None and time.perf_counter() < end) or (stop is not None and
                                                               not stop.is_set()):
            samples.append((time.perf_counter(), probe.read_watts()))
            time.sleep(period)
        return samples

    idle_started = time.time()
    idle = sample_for(idle_seconds)
    idle_window = [idle_started, time.time()]
    idle_w = sum(w for _, w in idle) / len(idle)
    stop = threading.Event()
    box = {}
    sampler = threading.Thread(target=lambda: box.setdefault("s", sample_for(0, stop)))
    runtime.set_inputs(arrays)
    start = time.perf_counter()
    wall_start = time.time()
    sampler.start()
    iterations = 0
    while time.perf_counter() - start < seconds:
        runtime.invoke()
        iterations += 1
    stop.set()
    sampler.join()
    end = time.perf_counter()
    samples = [(t, w) for t, w in box.get("s", []) if start <= t <= end]
    if len(samples) < 2 or iterations == 0:
        return {"probe": probe.name, "energy_mj": None, "idle_w": idle_w,
                "reason": "too few power samples (%d) during the pass" % len(samples)}
    joules = 0.0
    for (t0, w0), (t1, w1) in zip(samples, samples[1:]):
        joules += ((w0 - idle_w) + (w1 - idle_w)) / 2.0 * (t1 - t0)
    duration = samples[-1][0] - samples[0][0]
    return {"probe": probe.name, "idle_w": idle_w,
            "avg_w": sum(w for _, w in samples) / len(samples), "samples": len(samples),
            "rate_hz": (len(samples) - 1) / duration if duration > 0 else None,
            "iterations": iterations, "seconds": end - start,
            "idle_window": idle_window, "pass_window": [wall_start, wall_start + end - start],
            "energy_mj": joules / iterations * 1000.0, "reason": None}


# ---------------------------------------------------------------- commands

def command_info(args):
    runtimes = dict((name, runtime_version(name) if runtime_available(name) else None)
                    for name in RUNTIME_PACKAGES)
    missing = []
    for suffix, names in sorted(FORMAT_RUNTIMES.items()):
        if not any(runtimes[n] for n in names):
            missing.append("no runtime for %s models: pip install %s"
                           % (suffix, RUNTIME_PACKAGES[names[0]][1]))
    return {"ok": True, "agent_version": AGENT_VERSION, "python": platform.python_version(),
            "runtimes": runtimes, "device": device_state(), "missing": missing}


def command_measure(args):
    # More threads than cores only adds contention (a profile may plan for a bigger board).
    cores = os.cpu_count() or 1
    threads = min(args.threads or cores, cores)
    runtime = open_runtime(args.model, args.runtime, threads)
    lock_path = args.lock or default_lock_path()
    with BoardLock(lock_path, args.lock_timeout, os.path.basename(args.model)) as lock:
        before = device_state()
        # Import the runtime before the idle reading, so growth counts the model, not code.
        import_runtime(runtime)
        idle_rss = proc_status_mb("VmRSS")
        start = time.perf_counter()
        load_model(runtime)
        load_ms = (time.perf_counter() - start) * 1000.0
        try:
            arrays = make_inputs(runtime.inputs(), args.seed, args.input_npz)
            runtime.set_inputs(arrays)
            start = time.perf_counter()
            runtime.invoke()
            first_ms = (time.perf_counter() - start) * 1000.0
            warm_runs, warm_start = 0, time.perf_counter()
            while warm_runs < args.warmup_runs or \
                    time.perf_counter() - warm_start < args.warmup_seconds:
                runtime.set_inputs(arrays)
                runtime.invoke()
                warm_runs += 1
            warm_seconds = time.perf_counter() - warm_start
            samples, timed_start = [], time.perf_counter()
            while len(samples) < args.runs or time.perf_counter() - timed_start < args.seconds:
                runtime.set_inputs(arrays)
                start = time.perf_counter()
                runtime.invoke()
                samples.append((time.perf_counter() - start) * 1000.0)
            runtime.get_outputs()
            power = measure_power(runtime, arrays, make_probe(args.power_probe),
                                  args.power_seconds if args.power_seconds is not None
                                  else args.seconds, args.power_hz, args.power_idle_seconds)
        except AgentError:
            raise
        except Exception as exc:  # a runtime failing mid-run must still answer in JSON
            raise AgentError("%s failed while running %s: %s" % (
                runtime.name, os.path.basename(args.model),
                str(exc).strip().splitlines()[0][:300] if str(exc).strip()
                else type(exc).__name__), "measure_failed")
        after = device_state()
    peak = peak_rss_mb()
    return {"ok": True, "agent_version": AGENT_VERSION, "python": platform.python_version(),
            "runtime": runtime.name, "runtime_version": runtime_version(runtime.name),
            "threads": threads, "threads_requested": args.threads, "load_ms": load_ms, "first_inference_ms": first_ms,
            "warmup": {"runs": warm_runs, "seconds": warm_seconds},
            "samples_ms": samples, "latency_ms": latency_stats(samples),
            "idle_rss_mb": idle_rss, "peak_rss_mb": peak,
            "rss_growth_mb": None if idle_rss is None or peak is None else peak - idle_rss,
            "inputs": runtime.inputs(), "outputs": runtime.outputs(),
            "device_before": before, "device_after": after,
            "throttled_during": throttled_during(before, after, args.hot_c),
            "lock_wait_s": lock.waited, "power": power}


def command_run(args):
    import numpy as np
    runtime = open_runtime(args.model, args.runtime, args.threads or os.cpu_count() or 1)
    load_model(runtime)
    try:
        with np.load(args.input_npz, allow_pickle=False) as archive:
            x = archive["x"]
    except (OSError, KeyError, ValueError) as exc:
        raise AgentError("cannot read inputs from %s: %s" % (args.input_npz, exc), "bad_args")
    spec_in, spec_out = runtime.inputs()[0], runtime.outputs()[0]
    outputs = []
    try:
        for index in range(len(x)):
            runtime.set_inputs([to_model_dtype(x[index:index + 1], spec_in)])
            runtime.invoke()
            outputs.append(from_model_dtype(runtime.get_outputs()[0], spec_out)[0])
    except Exception as exc:  # a shape mismatch or runtime failure, reported as JSON
        raise AgentError("%s failed on sample %d: %s" % (
            runtime.name, len(outputs), str(exc).strip().splitlines()[0][:300]),
            "measure_failed")
    tmp = args.output_npz + ".tmp.npz"
    np.savez(tmp, y=np.stack(outputs) if outputs else np.zeros((0,), np.float32))
    os.replace(tmp, args.output_npz)
    return {"ok": True, "count": len(outputs), "runtime": runtime.name,
            "runtime_version": runtime_version(runtime.name)}


class QuietParser(argparse.ArgumentParser):
    """argparse that reports bad arguments as agent JSON errors instead of exiting."""

    def error(self, message):
        raise AgentError("bad arguments: %s" % message, "bad_args")


def build_parser():
    parser = QuietParser(prog="edgecomp_agent.py")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("info")
    measure = commands.add_parser("measure")
    measure.add_argument("model")
    measure.add_argument("--runtime", default="auto")
    measure.add_argument("--threads", type=int)
    measure.add_argument("--runs", type=int, default=50)
    measure.add_argument("--seconds", type=float, default=1.0)
    measure.add_argument("--warmup-runs", type=int, default=5)
    measure.add_argument("--warmup-seconds", type=float, default=0.5)
    measure.add_argument("--input-npz")
    measure.add_argument("--seed", type=int, default=0)
    measure.add_argument("--lock")
    measure.add_argument("--lock-timeout", type=float, default=600.0)
    measure.add_argument("--hot-c", type=float, default=80.0)
    measure.add_argument("--power-probe", default="none")
    measure.add_argument("--power-seconds", type=float)
    measure.add_argument("--power-hz", type=float, default=50.0)
    measure.add_argument("--power-idle-seconds", type=float, default=1.0)
    run = commands.add_parser("run")
    run.add_argument("model")
    run.add_argument("--input-npz", required=True)
    run.add_argument("--output-npz", required=True)
    run.add_argument("--runtime", default="auto")
    run.add_argument("--threads", type=int)
    return parser


COMMANDS = {"info": command_info, "measure": command_measure, "run": command_run}


def main(argv=None):
    # Runtimes print banners to stdout from C code; point fd 1 at stderr while working so
    # that stdout carries exactly one JSON object.
    sys.stdout.flush()
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        args = build_parser().parse_args(argv)
        if args.command not in COMMANDS:
            raise AgentError("give a command: info, measure or run", "bad_args")
        result = COMMANDS[args.command](args)
        code = 0
    except AgentError as exc:
        result, code = {"ok": False, "error": str(exc), "kind": exc.kind}, 2
    except KeyboardInterrupt:
        result, code = {"ok": False, "error": "interrupted", "kind": "interrupted"}, 2
    sys.stdout.flush()
    json_out.write(json.dumps(result) + "\n")
    json_out.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())

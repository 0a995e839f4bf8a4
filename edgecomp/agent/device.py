"""The board's state: CPU, cores, governor, temperatures, throttling, memory, disk."""

import os
import platform
import shutil
import subprocess
import sys

from .protocol import DeviceState


def sysroot_path(*parts):
    """A /proc or /sys path under EDGECOMP_AGENT_SYSROOT (tests feed recorded trees)."""
    return os.path.join(os.environ.get("EDGECOMP_AGENT_SYSROOT", "/"), *parts)


def read_text(*parts):
    try:
        with open(sysroot_path(*parts)) as handle:
            return handle.read().strip()
    except (OSError, UnicodeDecodeError):
        return None


def read_number(path):
    """A sysfs file holding one number."""
    with open(path) as handle:
        return float(handle.read().strip())


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


def online_cores():
    """CPUs the kernel has online, from /sys/devices/system/cpu/online."""
    return count_cpu_list(read_text("sys", "devices", "system", "cpu", "online"))


def usable_cores():
    """CPUs this process may run on: its affinity, else the online CPUs, else the count."""
    if hasattr(os, "sched_getaffinity"):
        try:
            return len(os.sched_getaffinity(0))
        except OSError:
            pass
    return online_cores() or os.cpu_count() or 1


def cpu_model():
    text = read_text("proc", "cpuinfo") or ""
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor"):
        for line in text.splitlines():
            name, _, value = line.partition(":")
            if name.strip() == key and value.strip():
                return value.strip()
    return None


# /proc/cpuinfo flag (x86) or Features word (arm64) -> the profile's ISA feature name.
CPUINFO_FEATURES = {"avx2": "avx2", "fma": "fma", "avx512f": "avx512",
                    "avx512_vnni": "avx512-vnni", "avx_vnni": "avx-vnni", "asimd": "neon",
                    "asimddp": "dotprod", "i8mm": "i8mm", "asimdhp": "fp16", "sve": "sve"}
X86 = ("x86_64", "amd64", "i386", "i686")
ARM = ("aarch64", "arm64", "armv7l", "armv8l")


def cpuinfo_words(text):
    """Every word of /proc/cpuinfo's `flags` (x86) and `Features` (arm) lines."""
    words = set()
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            words.update(value.split())
    return words


def isa_features(text=None):
    """The CPU's ISA features as profile feature names, from /proc/cpuinfo."""
    words = cpuinfo_words(read_text("proc", "cpuinfo") if text is None else text)
    return tuple(sorted(set(name for flag, name in CPUINFO_FEATURES.items() if flag in words)))


def emulation(text=None, machine=None):
    """None on real hardware; "qemu-user: aarch64 on x86_64" when the kernel's /proc/cpuinfo
    describes another architecture than the one this process executes (a user-mode
    emulator passes the host's /proc/cpuinfo through)."""
    text = read_text("proc", "cpuinfo") if text is None else text
    machine = (machine or platform.machine() or "").lower()
    if not text or not machine:
        return None
    host = None
    if "vendor_id" in text or "GenuineIntel" in text or "AuthenticAMD" in text:
        host = "x86_64"
    elif "CPU implementer" in text:
        host = "aarch64"
    if host is None:
        return None
    if (host == "x86_64" and machine in X86) or (host == "aarch64" and machine in ARM):
        return None
    return "qemu-user: %s on %s" % (machine, host)


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
        load = tuple(os.getloadavg())
    except OSError:
        load = None
    try:
        disk_free = shutil.disk_usage(os.getcwd()).free / (1024.0 * 1024.0)
    except OSError:
        disk_free = None
    freq = read_text("sys", "devices", "system", "cpu", "cpu0", "cpufreq", "scaling_cur_freq")
    return DeviceState(
        hostname=platform.node() or None, kernel=platform.release() or None,
        machine=platform.machine() or None, cpu_model=cpu_model(), cores=os.cpu_count(),
        online_cores=online_cores(),
        governor=read_text("sys", "devices", "system", "cpu", "cpu0", "cpufreq",
                           "scaling_governor"),
        cpu_freq_mhz=int(freq) / 1000.0 if freq and freq.isdigit() else None,
        temperatures_c=temperatures(), throttled=vcgencmd_throttled(),
        mem_total_mb=memory.get("MemTotal"), mem_available_mb=memory.get("MemAvailable"),
        disk_free_mb=disk_free, load_avg=load, isa=isa_features(), emulated=emulation())


def throttled_during(before, after, hot_c):
    """True when the board throttled or reached `hot_c` during the measurement.

    None when neither throttle flags nor temperatures can be read.
    """
    flags = after.throttled
    if flags is not None:
        # Bits 0-3: throttling now; bits 16-19: since boot. New "since" bits mean it happened.
        since_before = (before.throttled or 0) & 0xF0000
        if flags & 0xF or (flags & 0xF0000) & ~since_before:
            return True
    temps = list(after.temperatures_c.values())
    if temps:
        return max(temps) >= hot_c or bool(flags and flags & 0xF)
    return None if flags is None else False


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

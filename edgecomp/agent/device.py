"""The board's state: CPU, cores, governor, temperatures, throttling, memory, disk."""

import os
import platform
import shutil
import struct
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
ARM = ("aarch64", "arm64", "armv7l", "armv8l", "armv6l")

# The kernel's hardware capabilities in this process's auxiliary vector (/proc/self/auxv):
# (AT_HWCAP or AT_HWCAP2, bit) -> profile feature name, from Linux's uapi asm/hwcap.h. A
# 32-bit process gets the 32-bit ARM layout, also from a 64-bit kernel.
AT_HWCAP, AT_HWCAP2 = 16, 26
HWCAP_FEATURES = {
    8: {(AT_HWCAP, 1): "neon", (AT_HWCAP, 10): "fp16", (AT_HWCAP, 20): "dotprod",
        (AT_HWCAP, 22): "sve", (AT_HWCAP2, 13): "i8mm"},  # aarch64: asimd, asimdhp, asimddp
    4: {(AT_HWCAP, 12): "neon", (AT_HWCAP, 23): "fp16", (AT_HWCAP, 24): "dotprod",
        (AT_HWCAP, 27): "i8mm"},  # arm: neon, asimdhp, asimddp, i8mm
}
WORD_SIZE = struct.calcsize("P")  # this process's unsigned long: the auxv entries' size


def cpuinfo_words(text):
    """Every word of /proc/cpuinfo's `flags` (x86) and `Features` (arm) lines."""
    words = set()
    for line in (text or "").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            words.update(value.split())
    return words


def parse_auxv(data, word_size=WORD_SIZE):
    """{type: value} from /proc/self/auxv's bytes: (type, value) pairs of unsigned longs,
    ended by AT_NULL."""
    code = "=QQ" if word_size == 8 else "=II"
    entries = {}
    for offset in range(0, len(data) - 2 * word_size + 1, 2 * word_size):
        kind, value = struct.unpack_from(code, data, offset)
        if kind == 0:
            break
        entries[kind] = value
    return entries


def read_auxv():
    """This process's auxiliary vector as bytes, or None (not Linux, or not readable).

    Always this process's own, not the sysroot's: it describes the CPU this process runs
    on, which under a user-mode emulator is the emulated one (the emulator builds it)."""
    try:
        with open("/proc/self/auxv", "rb") as handle:
            return handle.read()
    except OSError:
        return None


def hwcap_features(auxv, word_size=WORD_SIZE):
    """Profile feature names from an ARM process's AT_HWCAP/AT_HWCAP2 (auxv bytes)."""
    entries = parse_auxv(auxv, word_size)
    table = HWCAP_FEATURES.get(word_size, {})
    return tuple(sorted(set(name for (kind, bit), name in table.items()
                            if entries.get(kind, 0) >> bit & 1)))


def isa_features(text=None, auxv=None, *, word_size=WORD_SIZE):
    """The CPU's ISA features as profile feature names.

    From a recorded /proc/cpuinfo `text`, or a recorded ARM process's `auxv` bytes; with
    neither, this process's own: on ARM its hardware capabilities (auxv), which under
    qemu-user are the emulated CPU's while /proc/cpuinfo may be the host's; elsewhere, or
    where auxv has none, the flags of /proc/cpuinfo.
    """
    if text is None and auxv is None and arch_family(platform.machine()) == "aarch64":
        own = read_auxv()
        if own and parse_auxv(own, word_size).get(AT_HWCAP):
            auxv = own
    if text is None and auxv is not None:
        return hwcap_features(auxv, word_size)
    words = cpuinfo_words(read_text("proc", "cpuinfo") if text is None else text)
    return tuple(sorted(set(name for flag, name in CPUINFO_FEATURES.items() if flag in words)))


def arch_family(machine):
    """"x86_64" or "aarch64" for any `uname -m` spelling of those families (32-bit ones
    included); another name as it is, lower case."""
    machine = (machine or "").strip().lower()
    if machine in X86:
        return "x86_64"
    if machine in ARM:
        return "aarch64"
    return machine


def cpuinfo_host(text):
    """The architecture a kernel's /proc/cpuinfo text describes, or None."""
    if "vendor_id" in text or "GenuineIntel" in text or "AuthenticAMD" in text:
        return "x86_64"
    if "CPU implementer" in text:
        return "aarch64"
    return None


def qemu_cpuinfo(text, machine, *, word_size=WORD_SIZE):
    """True for the /proc/cpuinfo that newer qemu-user (10.0 seen) writes for a 64-bit ARM
    guest: it names each processor "ARMv8 Processor rev N (v8l)", which an arm64 kernel
    writes only for 32-bit processes."""
    return (arch_family(machine) == "aarch64" and word_size == 8
            and "model name" in text and "(v8l)" in text)


def emulation(text=None, machine=None, *, kernel=None, word_size=WORD_SIZE):
    """None on real hardware; "qemu-user: aarch64 on x86_64" when this process executes
    another architecture than the kernel runs on.

    The kernel's architecture is /proc/sys/kernel/arch (newer kernels), which a user-mode
    emulator leaves alone while it fakes `uname -m`. Without it, /proc/cpuinfo tells:
    qemu 7.2 passes the host's through, newer qemu writes its own (`qemu_cpuinfo`).
    Given a recorded cpuinfo `text`, the kernel's architecture is only what `kernel` says;
    `machine` defaults to this process's.
    """
    if text is None:
        text = read_text("proc", "cpuinfo") or ""
        kernel = kernel or read_text("proc", "sys", "kernel", "arch")
    machine = (machine or platform.machine() or "").lower()
    if not machine:
        return None
    if kernel and kernel.strip():
        host = kernel.strip().lower()
    elif qemu_cpuinfo(text, machine, word_size=word_size):
        return "qemu-user: %s on another CPU" % machine
    else:
        host = cpuinfo_host(text)
    if host is None or arch_family(host) == arch_family(machine):
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

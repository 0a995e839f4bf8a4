"""Device state from a recorded board's /proc and /sys, and the throttling verdict."""

from __future__ import annotations

import os
from dataclasses import replace

import pytest

from edgecomp.agent import device

SYSROOT_FILES = {
    # Recorded from a Raspberry Pi 4 Model B (Raspberry Pi OS bookworm, kernel 6.6).
    "proc/cpuinfo": "processor\t: 0\nBogoMIPS\t: 108.00\nCPU part\t: 0xd08\n\n"
                    "Hardware\t: BCM2835\nRevision\t: c03114\n"
                    "Model\t\t: Raspberry Pi 4 Model B Rev 1.4\n",
    "proc/meminfo": "MemTotal:        7998920 kB\nMemFree:         7340112 kB\n"
                    "MemAvailable:    7632348 kB\n",
    "sys/devices/system/cpu/online": "0-3\n",
    "sys/devices/system/cpu/cpu0/cpufreq/scaling_governor": "ondemand\n",
    "sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq": "1800000\n",
    "sys/class/thermal/thermal_zone0/type": "cpu-thermal\n",
    "sys/class/thermal/thermal_zone0/temp": "48686\n",
}


def test_device_state_from_a_recorded_board(tmp_path, monkeypatch):
    for name, text in SYSROOT_FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setenv("EDGECOMP_AGENT_SYSROOT", str(tmp_path))
    state = device.device_state()
    assert state.cpu_model == "Raspberry Pi 4 Model B Rev 1.4"
    assert state.online_cores == 4
    assert state.governor == "ondemand" and state.cpu_freq_mhz == 1800.0
    assert state.temperatures_c == {"cpu-thermal": 48.686}
    assert state.mem_total_mb == pytest.approx(7998920 / 1024)


def test_usable_cores_is_this_process_affinity():
    assert device.usable_cores() == len(os.sched_getaffinity(0))
    assert device.count_cpu_list("0-3,6") == 5


def test_throttling_flags():
    assert device.parse_throttled("throttled=0x50005\n") == 0x50005
    base = device.device_state()
    quiet = replace(base, throttled=0, temperatures_c={"cpu": 50.0})
    assert device.throttled_during(quiet, quiet, 80.0) is False
    assert device.throttled_during(quiet, replace(quiet, throttled=0x40000,
                                                  temperatures_c={}), 80.0) is True
    hot = replace(quiet, throttled=None, temperatures_c={"cpu": 85.0})
    assert device.throttled_during(quiet, hot, 80.0) is True
    assert device.throttled_during(quiet, hot, 90.0) is False  # the profile's limit decides
    unknown = replace(quiet, throttled=None, temperatures_c={})
    assert device.throttled_during(unknown, unknown, 80.0) is None

"""Every power probe module through one contract, and each parser on its tool's real format.

Each fixture follows the format published in the source named beside it; the readings
are typical values for that board, not one captured session.
"""

from __future__ import annotations

import stat

import pytest

from edgecomp.agent.energy import measure_power
from edgecomp.agent.failure import AgentError
from edgecomp.agent.power import PROBES, make_probe, probe_names, probe_prefixes
from edgecomp.agent.power.base import PowerProbe
from edgecomp.agent.power.android_power_supply import normalize_power_supply
from edgecomp.agent.power.rpi5_pmic import parse_pmic_read_adc
from edgecomp.agent.power.tegrastats import parse_input_power
from edgecomp.vocab import PowerProbeKind, choices

# NVIDIA Jetson Linux Developer Guide (JetPack 5/6), "tegrastats Utility": Orin line format.
TEGRASTATS_ORIN = (
    "11-22-2026 10:01:02 RAM 2448/7620MB (lfb 1151x4MB) SWAP 0/3810MB (cached 0MB) "
    "CPU [1%@729,0%@729,0%@729,0%@729,off,off] EMC_FREQ 0%@2133 GR3D_FREQ 0%@[305] "
    "VIC_FREQ 729 APE 174 CV0@-256C CPU@48.875C SOC2@46.156C SOC0@46.593C CV1@-256C "
    "GPU@-256C tj@48.875C SOC1@46.406C CV2@-256C VDD_IN 4939mW/4939mW "
    "VDD_CPU_GPU_CV 634mW/634mW VDD_SOC 1426mW/1426mW")
# L4T R32 (JetPack 4) Developer Guide, "tegrastats Utility": Nano rails without a unit
# suffix; rbonghi/jetson_stats#51 explains why only the input rail counts.
TEGRASTATS_NANO = (
    "RAM 1424/3956MB (lfb 120x4MB) SWAP 0/1978MB (cached 0MB) IRAM 0/252kB(lfb 252kB) "
    "CPU [9%@1479,3%@1479,2%@1479,3%@1479] EMC_FREQ 3%@1600 GR3D_FREQ 0%@921 APE 25 "
    "PLL@25C CPU@28.5C PMIC@100C GPU@26C AO@34.5C thermal@27.25C "
    "POM_5V_IN 2138/2138 POM_5V_GPU 0/0 POM_5V_CPU 446/446")
# `vcgencmd pmic_read_adc` on a Raspberry Pi 5: format as reported in raspberrypi/linux#6473
# and geerlingguy/pi-overvolt#2 (NAME_A current(n)=...A / NAME_V volt(n)=...V).
PMIC_READ_ADC = """\
   3V7_WL_SW_A current(0)=0.00390372A
     3V3_SYS_A current(1)=0.05563600A
     1V8_SYS_A current(2)=0.16588500A
    DDR_VDD2_A current(3)=0.02049450A
    DDR_VDDQ_A current(4)=0.00000000A
     1V1_SYS_A current(5)=0.18932700A
     0V8_SYS_A current(6)=0.32011700A
    VDD_CORE_A current(7)=0.82120000A
   3V7_WL_SW_V volt(8)=3.69670800V
     3V3_SYS_V volt(9)=3.30893600V
     1V8_SYS_V volt(10)=1.80036000V
    DDR_VDD2_V volt(11)=1.11180000V
    DDR_VDDQ_V volt(12)=0.60915200V
     1V1_SYS_V volt(13)=1.10549000V
     0V8_SYS_V volt(14)=0.80036600V
    VDD_CORE_V volt(15)=0.72240000V
       EXT5V_V volt(24)=5.15088000V
        BATT_V volt(25)=0.00976622V
"""
PMIC_WATTS = sum(a * v for a, v in [
    (0.00390372, 3.696708), (0.055636, 3.308936), (0.165885, 1.80036), (0.0204945, 1.1118),
    (0.0, 0.609152), (0.189327, 1.10549), (0.320117, 0.800366), (0.8212, 0.7224)])
# JetPack 5 sysfs layout (Jetson Linux Developer Guide, "Power Monitor").
INA3221 = "sys/bus/i2c/drivers/ina3221/1-0040/hwmon/hwmon3/"


def write_tree(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def fake_tool(bin_dir, name, output, *, repeat=False):
    """A board tool on PATH that prints recorded output (once, or each line forever)."""
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / f"{name}.out").write_text(output)
    body = (f'while true; do cat "{bin_dir}/{name}.out"; echo; sleep 0.01; done' if repeat
            else f'cat "{bin_dir}/{name}.out"')
    tool = bin_dir / name
    tool.write_text(f"#!/bin/sh\n{body}\n")
    tool.chmod(tool.stat().st_mode | stat.S_IXUSR)


# probe spec -> (how to set up the recorded board, the watts it must read)
RECORDED = {
    "jetson-ina3221": (lambda root, bin_dir: write_tree(root, {
        INA3221 + "in1_label": "VDD_IN\n", INA3221 + "in1_input": "5088\n",
        INA3221 + "curr1_input": "1104\n",
        INA3221 + "in2_label": "VDD_CPU_GPU_CV\n", INA3221 + "in2_input": "5080\n",
        INA3221 + "curr2_input": "9000\n",
        INA3221 + "in3_label": "VDD_SOC\n", INA3221 + "in3_input": "5080\n",
        INA3221 + "curr3_input": "8000\n"}), 5.088 * 1.104),  # never a sum of rails
    "tegrastats": (lambda root, bin_dir: fake_tool(bin_dir, "tegrastats", TEGRASTATS_ORIN,
                                                   repeat=True), 4.939),
    "android-power-supply": (lambda root, bin_dir: write_tree(root, {
        "sys/class/power_supply/battery/current_now": "-812000\n",
        "sys/class/power_supply/battery/voltage_now": "3950000\n"}), 0.812 * 3.95),
    "rpi5-pmic": (lambda root, bin_dir: fake_tool(bin_dir, "vcgencmd", PMIC_READ_ADC),
                  PMIC_WATTS),
    "ina219": (lambda root, bin_dir: write_tree(root, {
        "sys/class/hwmon/hwmon2/name": "ina219\n",
        "sys/class/hwmon/hwmon2/power1_input": "2345000\n"}), 2.345),
    "ina260": (lambda root, bin_dir: write_tree(root, {
        "sys/class/hwmon/hwmon0/name": "ina260\n",
        "sys/class/hwmon/hwmon0/power1_input": "5120000\n"}), 5.12),
}


def test_every_probe_kind_has_a_module_and_recorded_output():
    assert set(probe_names()) == set(choices(PowerProbeKind))
    assert set(RECORDED) == set(probe_names()) - {"none"}
    assert probe_prefixes() == ["file:"]


@pytest.fixture()
def bare_board(tmp_path, monkeypatch):
    """An empty sysroot and a PATH without board tools."""
    root, bin_dir = tmp_path / "root", tmp_path / "bin"
    root.mkdir()
    bin_dir.mkdir()
    monkeypatch.setenv("EDGECOMP_AGENT_SYSROOT", str(root))
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    return root, bin_dir


@pytest.mark.parametrize("spec", probe_names())
def test_probe_contract_on_a_bare_board(spec, bare_board):
    assert issubclass(PROBES.get(spec), PowerProbe)
    probe = make_probe(spec)
    assert probe.name == spec
    assert isinstance(probe.available(), bool) and probe.available() is False
    assert isinstance(probe.reason, str) and probe.reason
    probe.close()


class IdleRuntime:
    """Stands in for a runtime in the power pass: invoking it does nothing."""

    def set_inputs(self, arrays):
        pass

    def invoke(self):
        pass


@pytest.mark.parametrize("name", PROBES.names())
def test_every_registered_probe_keeps_the_contract(name, bare_board, tmp_path, monkeypatch):
    """Each registration (file: with a path) constructs on a bare board; unavailable, it
    says why in a sentence, and the power pass reports that without reading it."""
    probe_class = PROBES.get(name)
    assert issubclass(probe_class, PowerProbe)
    reads = []
    monkeypatch.setattr(probe_class, "read_watts", lambda self: reads.append(self) or 1.0)
    probe = make_probe(name + str(tmp_path / "watts") if name.endswith(":") else name)
    assert type(probe) is probe_class
    assert isinstance(probe.available(), bool) and probe.available() is False
    assert isinstance(probe.reason, str) and len(probe.reason.split()) >= 3
    report = measure_power(IdleRuntime(), [], probe, 0.05, 50.0, 0.05)
    assert report.energy_mj is None and report.reason == probe.reason and reads == []


def test_the_power_pass_reads_an_available_probe(tmp_path):
    path = tmp_path / "power_w"
    path.write_text("3.25\n")
    report = measure_power(IdleRuntime(), [], make_probe(f"file:{path}"), 0.1, 100.0, 0.05)
    assert report.probe == "file" and report.idle_w == 3.25 and report.idle_samples >= 1


@pytest.mark.parametrize("spec", sorted(RECORDED))
def test_probe_contract_reads_recorded_output(spec, bare_board):
    setup, watts = RECORDED[spec]
    setup(*bare_board)
    probe = make_probe(spec)
    try:
        assert probe.available() is True and probe.reason is None
        assert probe.read_watts() == pytest.approx(watts)
        assert probe.read_watts() == pytest.approx(watts)  # a second reading works too
    finally:
        probe.close()


def test_file_probe(tmp_path):
    path = tmp_path / "power_w"
    missing = make_probe(f"file:{path}")
    assert missing.available() is False and str(path) in missing.reason
    path.write_text("3.25\n")
    probe = make_probe(f"file:{path}")
    assert probe.name == "file" and probe.available() and probe.read_watts() == 3.25


def test_tegrastats_uses_the_input_rail_only():
    assert parse_input_power(TEGRASTATS_ORIN) == pytest.approx(4.939)
    assert parse_input_power(TEGRASTATS_NANO) == pytest.approx(2.138)
    assert parse_input_power("RAM 1/2MB CPU [1%@729]") is None


def test_pmic_read_adc_sums_volts_times_amps_per_rail():
    # EXT5V and BATT have no current: not counted.
    assert parse_pmic_read_adc(PMIC_READ_ADC) == pytest.approx(PMIC_WATTS)
    assert parse_pmic_read_adc("error=1\n") is None


@pytest.mark.parametrize("current, voltage, watts", [
    ("-1234567", "4012345", 1.234567 * 4.012345),   # Pixel: microamps, negative discharge
    ("1234567", "4012345", 1.234567 * 4.012345),    # positive discharge sign
    ("523", "3987000", 0.523 * 3.987),              # vendor reporting milliamps
])
def test_android_power_supply_units_and_sign(current, voltage, watts):
    assert normalize_power_supply(current, voltage) == pytest.approx(watts)


def test_no_probe_gives_a_reason_and_unknown_names_are_refused():
    assert make_probe("none").reason == "no power sensor on this board"
    with pytest.raises(AgentError, match="unknown power probe"):
        make_probe("moon-sensor")

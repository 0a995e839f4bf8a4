"""The agent's CPU facts: ISA features from /proc/cpuinfo and user-mode emulation."""

from edgecomp.agent.device import emulation, isa_features

X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU
flags\t\t: fpu sse2 avx avx2 fma avx512f avx512_vnni
"""

PI4_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm crc32 cpuid
CPU implementer\t: 0x41
CPU part\t: 0xd08
"""

PI5_CPUINFO = PI4_CPUINFO.replace("crc32", "crc32 asimdhp asimddp").replace("0xd08", "0xd0b")


def test_isa_features_are_profile_feature_names():
    assert isa_features(X86_CPUINFO) == ("avx2", "avx512", "avx512-vnni", "fma")
    assert isa_features(PI4_CPUINFO) == ("neon",)
    assert isa_features(PI5_CPUINFO) == ("dotprod", "fp16", "neon")
    assert isa_features("") == ()


def test_a_real_cpu_is_not_emulated():
    assert emulation(X86_CPUINFO, "x86_64") is None
    assert emulation(PI4_CPUINFO, "aarch64") is None


def test_an_aarch64_process_reading_an_x86_cpuinfo_is_emulated():
    assert emulation(X86_CPUINFO, "aarch64") == "qemu-user: aarch64 on x86_64"
    assert emulation(PI4_CPUINFO, "x86_64") == "qemu-user: x86_64 on aarch64"


def test_unknown_cpuinfo_claims_nothing():
    assert emulation("", "aarch64") is None
    assert emulation("processor: 0\n", "aarch64") is None

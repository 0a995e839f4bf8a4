"""The agent's CPU facts: ISA features from /proc/cpuinfo or an ARM process's hardware
capabilities (auxv), and user-mode emulation."""

import platform
import struct

from edgecomp.agent.device import AT_HWCAP, AT_HWCAP2, emulation, isa_features, parse_auxv

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


# /proc/self/auxv of Debian bookworm's arm64 python3.11 under qemu-aarch64 7.2 on x86_64
# (little-endian 8-byte pairs), recorded with -cpu cortex-a72, a Raspberry Pi 4's core
# (AT_HWCAP 0x8fb: fp asimd aes pmull sha1 sha2 crc32 cpuid), and with -cpu max
# (AT_HWCAP 0xecfffffb, AT_HWCAP2 0x7f877fff).
QEMU_A72_AUXV = bytes.fromhex(
    "0300000000000000400040000000000004000000000000003800000000000000"
    "0500000000000000090000000000000006000000000000000010000000000000"
    "0700000000000000001080005500000008000000000000000000000000000000"
    "0900000000000000c0185d00000000000b000000000000000000000000000000"
    "0c0000000000000000000000000000000d000000000000000000000000000000"
    "0e0000000000000000000000000000001000000000000000fb08000000000000"
    "110000000000000064000000000000001900000000000000600a800055000000"
    "170000000000000000000000000000001f00000000000000e20f800055000000"
    "1a0000000000000000000000000000000f00000000000000700a800055000000"
    "00000000000000000000000000000000")
QEMU_MAX_AUXV = bytes.fromhex(
    "0300000000000000400040000000000004000000000000003800000000000000"
    "0500000000000000090000000000000006000000000000000010000000000000"
    "0700000000000000001080005500000008000000000000000000000000000000"
    "0900000000000000c0185d00000000000b000000000000000000000000000000"
    "0c0000000000000000000000000000000d000000000000000000000000000000"
    "0e0000000000000000000000000000001000000000000000fbffffec00000000"
    "110000000000000064000000000000001900000000000000600a800055000000"
    "170000000000000000000000000000001f00000000000000e20f800055000000"
    "1a00000000000000ff7f877f000000000f00000000000000700a800055000000"
    "00000000000000000000000000000000")

# The /proc/cpuinfo qemu-aarch64 10.0 writes for its guest (-cpu cortex-a72): the host's
# is not shown, and a 64-bit process gets the 32-bit "model name" line.
QEMU10_A72_CPUINFO = """processor\t: 0
model name\t: ARMv8 Processor rev 3 (v8l)
BogoMIPS\t: 100.00
Features\t: fp asimd aes pmull sha1 sha2 crc32 cpuid
CPU implementer\t: 0x41
CPU architecture: 8
CPU variant\t: 0x0
CPU part\t: 0xd08
CPU revision\t: 3
"""

# A 32-bit process on a Raspberry Pi 5's arm64 kernel (a real one) gets that line too.
PI5_COMPAT_CPUINFO = PI5_CPUINFO.replace("BogoMIPS", "model name\t: ARMv8 Processor rev 1 (v8l)\n"
                                                     "BogoMIPS")


def auxv(*pairs, word_size=8):
    """An auxiliary vector's bytes from (type, value) pairs, AT_NULL added."""
    code = "=QQ" if word_size == 8 else "=II"
    return b"".join(struct.pack(code, kind, value) for kind, value in (*pairs, (0, 0)))


def test_an_arm_process_isa_comes_from_its_hardware_capabilities():
    assert parse_auxv(QEMU_A72_AUXV)[AT_HWCAP] == 0x8FB
    assert isa_features(auxv=QEMU_A72_AUXV) == ("neon",)
    assert isa_features(auxv=QEMU_MAX_AUXV) == ("dotprod", "fp16", "i8mm", "neon", "sve")
    # Neoverse-N1 (AT_HWCAP 0x119ffb): asimdhp and asimddp, no SVE, no i8mm.
    assert isa_features(auxv=auxv((AT_HWCAP, 0x119FFB), (AT_HWCAP2, 0))) == \
        ("dotprod", "fp16", "neon")
    assert isa_features(auxv=auxv((AT_HWCAP2, 1 << 13))) == ("i8mm",)
    assert isa_features(auxv=auxv()) == ()


def test_a_32_bit_arm_process_reads_the_32_bit_layout():
    # HWCAP_NEON is bit 12 and HWCAP_ASIMDDP bit 24 for 32-bit ARM; bit 1 (HALF) is no NEON.
    neon_dotprod = auxv((AT_HWCAP, (1 << 12) | (1 << 24) | 0b10), word_size=4)
    assert parse_auxv(neon_dotprod, word_size=4) == {AT_HWCAP: (1 << 12) | (1 << 24) | 2}
    assert isa_features(auxv=neon_dotprod, word_size=4) == ("dotprod", "neon")


def test_this_process_isa_follows_its_architecture():
    here = isa_features()
    if platform.machine() in ("x86_64", "AMD64"):
        assert here == isa_features(open("/proc/cpuinfo").read())
    elif platform.machine() == "aarch64":
        assert "neon" in here and here == isa_features(auxv=open("/proc/self/auxv", "rb").read())


def test_the_kernels_architecture_decides_when_it_is_known():
    # qemu fakes uname's machine and (newer ones) /proc/cpuinfo, not /proc/sys/kernel/arch.
    assert emulation(QEMU10_A72_CPUINFO, "aarch64", kernel="x86_64\n") == \
        "qemu-user: aarch64 on x86_64"
    assert emulation(X86_CPUINFO, "aarch64", kernel="x86_64") == "qemu-user: aarch64 on x86_64"
    assert emulation(PI4_CPUINFO, "aarch64", kernel="aarch64") is None
    assert emulation(PI5_COMPAT_CPUINFO, "armv8l", kernel="aarch64") is None
    assert emulation(X86_CPUINFO, "i686", kernel="x86_64") is None
    assert emulation("", "riscv64", kernel="x86_64") == "qemu-user: riscv64 on x86_64"


def test_newer_qemus_own_cpuinfo_is_recognised_without_the_kernels_word():
    assert emulation(QEMU10_A72_CPUINFO, "aarch64") == "qemu-user: aarch64 on another CPU"
    assert isa_features(QEMU10_A72_CPUINFO) == ("neon",)
    # The same line from a real arm64 kernel, read by a 32-bit process, is no emulation.
    assert emulation(PI5_COMPAT_CPUINFO, "aarch64", word_size=4) is None
    assert emulation(PI5_COMPAT_CPUINFO, "armv8l", word_size=4) is None


def test_this_process_is_not_emulated():
    assert emulation() is None

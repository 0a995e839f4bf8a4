"""The emulated arm64 board's python for tools/sim-board: Debian's arm64 python3.11 run by
qemu-user, with aarch64 wheels of numpy, ai-edge-litert and onnxruntime.

No root, no chroot, no binfmt: debootstrap only downloads bookworm's arm64 packages,
`dpkg-deb -x` unpacks them into a plain directory (the rootfs), pip fetches the aarch64
wheels into another (the site), and the board's `python` is a shell script that runs
`qemu-aarch64-static -cpu CPU -L ROOTFS ROOTFS/usr/bin/python3.11` with the site on its
PYTHONPATH. Rootfs and site are a cache ($EDGECOMP_SIM_CACHE, else
$XDG_CACHE_HOME/edgecomp/sim-board-arm64, ~/.cache/... by default), each built in a
temporary directory and renamed into place, so an interrupted build leaves nothing that
looks finished.
"""

import hashlib
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SUITE = "bookworm"
MIRROR = os.environ.get("EDGECOMP_SIM_MIRROR") or "http://deb.debian.org/debian"
PYTHON = "usr/bin/python3.11"
PYTHON_VERSION = "3.11"
GLIBC_MINOR = 36  # bookworm's glibc 2.36 runs wheels tagged manylinux_2_17 .. manylinux_2_36
BOARD_PACKAGES = ["numpy", "ai-edge-litert", "onnxruntime"]
# qemu-user 7.2 (bookworm's) shows its guest the host's x86 /proc/cpuinfo. pytorch/cpuinfo,
# inside LiteRT's XNNPACK and onnxruntime, then finds no ARM core and no L2 to allocate,
# yet since its sysfs L2 change (pytorch/cpuinfo #372, March 2026) it writes the host's
# per-core L2 from /sys into that table: a NULL write, so creating a LiteRT interpreter
# (ai-edge-litert >= 2.2.0) or importing onnxruntime (>= 1.28.0) segfaults, whatever
# -cpu is emulated. These are the newest releases without that code. A qemu that writes an
# ARM /proc/cpuinfo for its guest (10.0 does) runs the newest ones.
HOST_CPUINFO_PACKAGES = ["numpy", "ai-edge-litert==2.1.6", "onnxruntime==1.27.0"]
TOOLS = {"debootstrap": "debootstrap", "dpkg-deb": "dpkg", "qemu-aarch64-static":
         "qemu-user-static"}  # command -> the Debian package that has it
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])


class BuildError(Exception):
    """A step of building the board's python failed: the sentence says which and why."""


def xdg_dir(variable, default):
    """An XDG base directory: $variable when set (and absolute), else ~/default."""
    value = os.environ.get(variable)
    return Path(value) if value and os.path.isabs(value) else Path.home() / default


def cache_dir():
    default = xdg_dir("XDG_CACHE_HOME", ".cache") / "edgecomp" / "sim-board-arm64"
    return Path(os.environ.get("EDGECOMP_SIM_CACHE") or default)


def missing_tools(qemu):
    """A sentence naming what to install, or None when debootstrap, dpkg-deb and the qemu
    are all here."""
    wanted = dict(TOOLS)
    if qemu != "qemu-aarch64-static":
        wanted.pop("qemu-aarch64-static")
        if not shutil.which(qemu):
            return "--qemu %s is not an executable." % qemu
    missing = [name for name in wanted if not shutil.which(name, path=SBIN_PATH)]
    if not missing:
        return None
    packages = sorted(set(wanted[name] for name in missing))
    return ("--arch arm64 needs %s; install them (Debian: apt-get install %s)."
            % (" and ".join(missing), " ".join(packages)))


def run(command, what, timeout=1800):
    """Run a build step; a failure is a BuildError that quotes the step's last output."""
    result = subprocess.run([str(part) for part in command], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, universal_newlines=True,
                            timeout=timeout)
    if result.returncode != 0:
        raise BuildError("%s failed (exit %d): %s" % (what, result.returncode,
                                                      result.stdout.strip()[-800:]))
    return result.stdout


def sweep_stale(folder):
    """Remove temporary build directories (.tmp-PID-NAME-*) whose builder is gone."""
    for entry in folder.glob(".tmp-*"):
        try:
            os.kill(int(entry.name.split("-")[1]), 0)
        except (ValueError, IndexError, ProcessLookupError):
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            pass  # another user's live process


def build_once(final, build):
    """`final`, built by build(workdir) -> path inside workdir unless it exists already,
    then renamed into place. A concurrent builder that finishes first wins."""
    if final.is_dir():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale(final.parent)
    work = Path(tempfile.mkdtemp(prefix=".tmp-%d-%s-" % (os.getpid(), final.name),
                                 dir=str(final.parent)))
    try:
        built = build(work)
        try:
            os.rename(str(built), str(final))
        except OSError:
            if not final.is_dir():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def build_rootfs(work):
    # --download-only, not --foreign: the first stage needs root; unpacking the packages
    # with dpkg-deb -x needs nothing.
    download = work / "download"
    print("sim-board: downloading Debian %s arm64 python3 from %s (once)" % (SUITE, MIRROR),
          file=sys.stderr)
    run([shutil.which("debootstrap", path=SBIN_PATH), "--arch=arm64", "--download-only",
         "--variant=minbase", "--include=python3", SUITE, download, MIRROR],
        "debootstrap (downloading %s arm64 packages)" % SUITE)
    rootfs = work / "rootfs"
    rootfs.mkdir()
    debs = sorted((download / "var" / "cache" / "apt" / "archives").glob("*.deb"))
    if not debs:
        raise BuildError("debootstrap downloaded no packages into %s" % download)
    for deb in debs:
        run(["dpkg-deb", "-x", deb, rootfs], "unpacking %s" % deb.name)
    if not (rootfs / PYTHON).is_file():
        raise BuildError("the unpacked packages have no %s" % PYTHON)
    return rootfs


def qemu_command(qemu, cpu, rootfs):
    return [qemu, "-cpu", cpu, "-L", str(rootfs), str(rootfs / PYTHON)]


def shows_arm_cpuinfo(qemu, cpu, rootfs):
    """True when this qemu writes an ARM /proc/cpuinfo for its guest (newer qemu), False
    when the guest reads the host's (qemu 7.2)."""
    text = run([*qemu_command(qemu, cpu, rootfs), "-c",
                "import sys; sys.stdout.write(open('/proc/cpuinfo').read())"],
               "running the arm64 python under %s" % qemu, timeout=120)
    return "CPU implementer" in text


def pip_command(cache):
    """This python's pip, else one in a small venv of its own in the cache."""
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    venv = cache / "pip-venv"
    python = venv / "bin" / "python"
    if not python.is_file():
        run([sys.executable, "-m", "venv", venv], "creating a venv for pip (python3-venv)")
    return [str(python), "-m", "pip"]


def build_site(work, requirements, pip):
    site = work / "site"
    platforms = ["manylinux2014_aarch64"] + ["manylinux_2_%d_aarch64" % minor
                                             for minor in range(17, GLIBC_MINOR + 1)]
    print("sim-board: fetching aarch64 wheels (%s; once)" % ", ".join(requirements),
          file=sys.stderr)
    run([*pip, "install", "--quiet", "--no-warn-conflicts", "--target", site,
         "--only-binary=:all:", "--implementation", "cp", "--python-version", PYTHON_VERSION,
         *("--platform=" + tag for tag in platforms), *requirements],
        "pip (aarch64 wheels for python %s)" % PYTHON_VERSION)
    (site / "edgecomp-board-requirements.txt").write_text("\n".join(requirements) + "\n")
    return site


def write_python(path, *, qemu, cpu, rootfs, site):
    """The board's `python`: a shell script the target file names."""
    path.write_text("\n".join([
        "#!/bin/sh",
        "# The emulated arm64 board's python (tools/sim-board): Debian %s's python%s for"
        % (SUITE, PYTHON_VERSION),
        "# arm64, run by qemu-user as a %s; no torch, no edgecomp." % cpu,
        "PYTHONPATH=%s" % shlex.quote(str(site)),
        "PYTHONNOUSERSITE=1",
        "export PYTHONPATH PYTHONNOUSERSITE",
        'exec %s "$@"' % " ".join(shlex.quote(str(part))
                                  for part in qemu_command(qemu, cpu, rootfs)),
        "",
    ]))
    os.chmod(path, 0o755)


def board_python(path, *, qemu, cpu):
    """Build (or take from the cache) the arm64 rootfs and wheels and write the board's
    python at `path`; returns facts for board.json."""
    qemu = shutil.which(qemu) or qemu
    cache = cache_dir()
    rootfs = build_once(cache / "rootfs", build_rootfs)
    arm_cpuinfo = shows_arm_cpuinfo(qemu, cpu, rootfs)
    requirements = BOARD_PACKAGES if arm_cpuinfo else HOST_CPUINFO_PACKAGES
    key = hashlib.sha256("\n".join(requirements).encode()).hexdigest()[:12]
    pip = pip_command(cache)
    site = build_once(cache / ("site-" + key),
                      lambda work: build_site(work, requirements, pip))
    write_python(path, qemu=qemu, cpu=cpu, rootfs=rootfs, site=site)
    return {"qemu": qemu, "cpu": cpu, "rootfs": str(rootfs), "site": str(site),
            "packages": requirements}

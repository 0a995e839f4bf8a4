"""Every benchmark the README shows runs in its smoke mode and writes a table that holds up.

Each test runs a tools/bench script as a user would (a subprocess, this session's isolated
EDGECOMP_* folders in its environment) with --smoke and a temporary --out, then reads the
table it wrote: its section, a row with numbers for everything it ran, ratios that parse.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "tools" / "bench"
BENCHMARKS = ROOT / "BENCHMARKS.md"
NUMBER = re.compile(r"-?\d+(\.\d+)?")


def run_smoke(script: str, out: Path, *extra: str, timeout: float = 900) -> str:
    """Run `tools/bench/<script> --smoke --out OUT`; the text it wrote to OUT."""
    before = BENCHMARKS.read_bytes()
    result = subprocess.run([sys.executable, str(BENCH / script), "--smoke", "--out", str(out),
                             *extra], capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, f"{script} --smoke failed:\n{result.stderr[-3000:]}"
    assert BENCHMARKS.read_bytes() == before, f"{script} --smoke changed BENCHMARKS.md"
    return out.read_text()


def table(text: str, header_start: str) -> list[list[str]]:
    """The cells of the markdown table whose header row starts with `header_start`."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header_start))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def number(cell: str) -> float:
    """A cell's number ("3.10x", "97.50%", "**0.99**", "+0.28"); fails on anything else."""
    match = NUMBER.fullmatch(cell.strip("*x%").lstrip("+"))
    assert match, f"{cell!r} is not a number"
    return float(cell.strip("*x%"))


@pytest.mark.slow
def test_compression_smoke(tmp_path):
    text = run_smoke("compression", tmp_path / "compression.md",
                     "--json", str(tmp_path / "rows.json"))
    assert text.count("## Compression on scikit-learn digits") == 1
    rows = {(r[0], r[1], r[2]): r for r in table(text, "| model | technique |")}
    expected = [("lenet-300-100", "none", "fp32"),
                ("lenet-300-100", "none (post-training int8)", "int8"),
                ("lenet-300-100", "qat", "int8"), ("lenet-300-100", "fp16", "fp16")]
    assert sorted(rows) == sorted(expected)
    for key in expected:
        _, _, _, params, size, ratio, top1, delta, latency, _ = rows[key]
        assert int(params) > 0 and int(size) > 0, key
        assert number(ratio) > 0 and number(latency) > 0, key
        # A trained MLP gets most of the held-out digits right in LiteRT (chance is 10 %).
        assert 90.0 <= number(top1) <= 100.0, key
        number(delta)
    base = rows[("lenet-300-100", "none", "fp32")]
    assert abs(number(base[7])) <= 0.6  # the fp32 artifact keeps the float model's top-1
    assert number(base[8]) >= 1.0  # over the best p50 of the baseline itself
    int8 = rows[("lenet-300-100", "none (post-training int8)", "int8")]
    fp16 = rows[("lenet-300-100", "fp16", "fp16")]
    assert int(int8[4]) < int(fp16[4]) < int(base[4])  # a quarter, a half, the fp32 file
    assert "QAT int8 at least as accurate as post-training int8 (lenet-300-100)" in text


@pytest.mark.slow
def test_quantization_smoke(tmp_path):
    text = run_smoke("quantization", tmp_path / "quantization.md")
    assert text.count("## Quantization on real models") == 1
    rows = table(text, "| model | tool / config |")
    tools = {(r[1], r[2]) for r in rows}
    assert {("fp32 (edgecomp deploy)", "onnx"), ("fp32 (edgecomp deploy)", "tflite"),
            ("edgecomp deploy (its default: int8)", "onnx"),
            ("edgecomp deploy (its default: int8)", "tflite")} <= tools
    assert {(label, fmt) for label, fmt in installed_peers()} <= tools
    fp32_size = {r[2]: number(r[6]) for r in rows if r[1] == "fp32 (edgecomp deploy)"}
    for model, tool, fmt, agreement, cos_mean, cos_min, size, share, p50, ratio, _, note \
            in rows:
        assert model == "digits"
        assert not note.startswith(("failed", "not run", "not built")), (tool, fmt, note)
        assert 0.0 <= number(agreement) <= 100.0 and -1.0 <= number(cos_min) <= 1.0001
        assert number(p50) > 0 and number(ratio) > 0, (tool, fmt)
        if tool == "fp32 (edgecomp deploy)":
            assert number(ratio) == 1.0 and number(cos_mean) == 1.0
        else:  # every int8 artifact is smaller than its fp32 one and stores integers
            assert number(size) < fp32_size[fmt] and number(share) > 50, (tool, fmt)
    edgecomp_int8 = [r for r in rows if r[1] == "edgecomp deploy (its default: int8)"]
    assert all(number(r[3]) >= 90.0 for r in edgecomp_int8)


def installed_peers() -> list[tuple[str, str]]:
    """(label, format) of the peers the smoke run covers: those installed here."""
    sys.path.insert(0, str(BENCH))
    try:
        from quant_peers import PEERS, missing_module
    finally:
        sys.path.remove(str(BENCH))
    return [(p.label, p.takes) for p in PEERS.values()
            if not p.transformer_only and missing_module(p) is None]


@pytest.mark.slow
def test_store_smoke(tmp_path):
    text = run_smoke("store", tmp_path / "store.md")
    assert text.count("## Results store") == 1
    ratios = {r[0]: number(r[1]) for r in table(text, "| measurement | ratio |")}
    assert len(ratios) == 6 and all(value > 0 for value in ratios.values())
    # The full database holds a hundred times the samples: its file must be larger.
    assert ratios["database file size, full / few"] > 1.0
    assert len(re.findall(r"^- .*: (met|NOT met)$", text, re.MULTILINE)) == 3


@pytest.mark.slow
def test_fleet_smoke(tmp_path):
    text = run_smoke("fleet", tmp_path / "fleet.md")
    assert text.count("## Fleets") == 1
    assert "fleet-x86-a" in text and "fleet-arm64" not in text and "qemu-user" not in text
    rows = table(text, "| round |")
    assert [r[0] for r in rows] == ["1", "median"]
    for _, to_sum, to_slowest in rows:
        # One board: its fleet deploy is the same work as its deploy alone.
        assert 0.3 < number(to_sum) < 3.0 and 0.3 < number(to_slowest) < 3.0


@pytest.mark.parametrize("script", ["compression", "quantization", "store", "fleet"])
def test_smoke_refuses_benchmarks_md(script):
    """A smoke run's tiny numbers never replace the real table."""
    before = BENCHMARKS.read_bytes()
    result = subprocess.run([sys.executable, str(BENCH / script), "--smoke", "--out",
                             str(BENCHMARKS)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "BENCHMARKS.md" in result.stderr
    assert BENCHMARKS.read_bytes() == before

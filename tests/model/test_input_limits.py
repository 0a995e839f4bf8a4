"""Every data file is read with limits: regular files only, headers checked before memory
is allocated, PIL's decompression-bomb guard as a sentence. Inputs edgecomp makes itself
are bounded the same way before they are allocated, and made in their own dtype. A bad
file or shape ends in one sentence, exit status 1, and nothing written."""

from __future__ import annotations

import os
import struct
import sys
import textwrap
import threading
import time
import tracemalloc
import zipfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import onnx
import pytest
from numpy.lib import format as npy
from onnx import TensorProto, helper

from edgecomp.cli import main
from edgecomp.model.data import load_data, random_calibration, read_npz, timing_data
from edgecomp.model.signature import InputSpec
from edgecomp.errors import InputError
from tests.user_cli import cli, error_line

FACTORY = textwrap.dedent("""
    from torch import nn

    def small_cnn():
        return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Flatten(),
                             nn.Linear(8 * 8 * 8, 10))
""")


@pytest.fixture()
def project(tmp_path, monkeypatch):
    (tmp_path / "limitmodels.py").write_text(FACTORY)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGECOMP_DB", str(tmp_path / "results.db"))
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    sys.modules.pop("limitmodels", None)


def export_with(capsys, calib: str) -> tuple[int, str]:
    code = main(["export", "limitmodels:small_cnn", "--input-shape", "1,1,8,8",
                 "--calib", calib, "--format", "onnx", "--precision", "int8", "-o", "out"])
    captured = capsys.readouterr()
    return code, " ".join((captured.err + captured.out).split())


def assert_refused(code: int, text: str, project: Path, *, match: str) -> None:
    assert code == 1, text
    assert "Traceback" not in text
    assert match in text, text
    assert not (project / "out").exists()


def npz_claiming(path: Path, shape: tuple[int, ...]) -> Path:
    """An .npz whose `x` header declares `shape` but holds no data."""
    header = npy.header_data_from_array_1_0(np.zeros(1, np.float32))
    header["shape"] = shape
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("x.npy", "w") as member:
            npy.write_array_header_1_0(member, header)
    return path


def png_claiming(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares width x height grayscale pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) +
                     chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))
    return path


@contextmanager
def unblocked(fifo: Path):
    """Opens the FIFO for writing once a reader waits on it, so that code which reads a
    FIFO fails the test instead of hanging it."""
    done = threading.Event()

    def writer():
        while not done.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:  # no reader yet
                time.sleep(0.05)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)


def test_an_npz_header_claiming_a_trillion_elements_is_refused(project, capsys):
    npz_claiming(project / "huge.npz", (10**12,))
    code, text = export_with(capsys, "huge.npz")
    assert_refused(code, text, project, match="huge.npz: its arrays take 3725.3 GiB")


def test_a_decompression_bomb_image_is_refused(project, capsys):
    png_claiming(project / "images" / "cat" / "big.png", 20000, 20000)
    code, text = export_with(capsys, "images")
    assert_refused(code, text, project, match="big.png: too many pixels to decode safely")


def test_a_fifo_named_like_an_image_is_refused(project, capsys):
    (project / "images" / "cat").mkdir(parents=True)
    fifo = project / "images" / "cat" / "x.png"
    os.mkfifo(fifo)
    with unblocked(fifo):
        code, text = export_with(capsys, "images")
    assert_refused(code, text, project, match="x.png is a FIFO, not a regular file")


def test_a_fifo_named_like_an_npz_is_refused(project, capsys):
    os.mkfifo(project / "x.npz")
    with unblocked(project / "x.npz"):
        code, text = export_with(capsys, "x.npz")
    assert_refused(code, text, project, match="x.npz is a FIFO, not a regular file")


def test_an_npy_named_npz_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "bare.npz"
    with open(path, "wb") as handle:
        header = npy.header_data_from_array_1_0(np.zeros(1, np.float32))
        header["shape"] = (10**12,)
        npy.write_array_header_1_0(handle, header)
    with pytest.raises(InputError, match="not an .npz file"):
        read_npz(path)


def test_a_member_that_is_not_an_array_is_refused(tmp_path):
    path = tmp_path / "odd.npz"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", b"\0" * 4096)
    with pytest.raises(InputError, match="not a readable .npz file"):
        read_npz(path)


def test_the_budget_counts_every_array(tmp_path):
    np.savez(tmp_path / "two.npz", a=np.zeros((64, 64), np.float32), b=np.zeros(10, np.int64))
    assert set(read_npz(tmp_path / "two.npz")) == {"a", "b"}
    with pytest.raises(InputError, match="more than edgecomp loads"):
        read_npz(tmp_path / "two.npz", max_bytes=16000)


def test_ordinary_images_still_load(tmp_path):
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        Image.new("L", (8, 8), 128).save(tmp_path / label / "0.png")
    data = load_data(str(tmp_path), grayscale=True)
    assert data.x.shape == (2, 1, 8, 8) and list(data.y) == [0, 1]


def _open_onnx(path: Path) -> Path:
    """y = relu(x) for x of any [rows, columns]."""
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "open",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["rows", "columns"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["rows", "columns"])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_open_dimensions_chosen_too_large_are_refused_before_allocating(tmp_path):
    _open_onnx(tmp_path / "open.onnx")
    line = error_line(cli(tmp_path, "export", "open.onnx", "--input-shape", "x=100000,100000",
                          "--format", "onnx", "--precision", "fp32", "-o", "out"))
    assert "input 'x' of shape [100000, 100000] would take 37.3 GiB as float32 for the " \
        "timing sample, more than edgecomp makes in memory (4.0 GiB)" in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("make, needle", [
    (lambda: timing_data([InputSpec("x", (1, 3, 40000, 40000), "float16")]),
     "input 'x' of shape [1, 3, 40000, 40000] would take 8.9 GiB as float16 for the timing "
     "sample"),
    (lambda: random_calibration([InputSpec("x", (1, 3, 8192, 8192))], 256),
     "would take 192.0 GiB as float32 for 256 random calibration samples"),
    (lambda: InputSpec("ids", (100000, 100000), "int64").zeros(),
     "input 'ids' of shape [100000, 100000] would take 74.5 GiB as int64 for an example "
     "input"),
], ids=["timing", "random-calibration", "example-input"])
def test_every_generated_input_is_bounded(make, needle):
    with pytest.raises(InputError, match=needle.replace("[", r"\[").replace("]", r"\]")):
        make()


def test_generated_floats_are_made_in_their_dtype():
    spec = InputSpec("x", (1, 4_000_000))  # 16 MB as float32; 32 MB more in float64 first
    tracemalloc.start()
    try:
        data = timing_data([spec])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    x = data.arrays["x"]
    assert x.dtype == np.float32 and 0 <= x.min() and x.max() < 1
    assert peak < 2.5 * 16_000_000  # the array, and one copy while it is hashed

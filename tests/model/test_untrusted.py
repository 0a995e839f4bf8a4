"""A stranger's model file never runs code: crafted .pt2 archives are refused in a sentence,
before torch unpickles, imports or loads anything from them; FIFOs and oversized files are
never read."""

from __future__ import annotations

import io
import json
import os
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from edgecomp.cli import main
from edgecomp.errors import InputError
from edgecomp.model.untrusted import checked_pt2, open_regular
from tests.hostile import Payload


@pytest.fixture()
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EDGECOMP_DB", str(tmp_path / "results.db"))
    return tmp_path


@pytest.fixture(scope="module")
def legit_pt2(tmp_path_factory) -> Path:
    """A real torch.export archive of the demo CNN."""
    from edgecomp.model.demo import DemoCNN

    path = tmp_path_factory.mktemp("pt2") / "model.pt2"
    program = torch.export.export(DemoCNN().eval(), (torch.zeros(1, 1, 8, 8),))
    torch.export.save(program, path)
    return path


def rewritten(source: Path, target: Path, changes: dict[str, bytes | None]) -> Path:
    """A copy of a .pt2 with records (named without the archive's folder) replaced,
    added, or removed (None)."""
    with zipfile.ZipFile(source) as archive:
        prefix = archive.namelist()[0].split("/", 1)[0]
        records = {name.split("/", 1)[1]: archive.read(name) for name in archive.namelist()}
    records.update(changes)
    with zipfile.ZipFile(target, "w") as out:
        for name, data in records.items():
            if data is not None:
                out.writestr(f"{prefix}/{name}", data)
    return target


def pickled(value) -> bytes:
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def record(path: Path, name: str) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read(f"{archive.namelist()[0].split('/', 1)[0]}/{name}")


def run_cli(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def evil_sample_inputs(legit: Path, project: Path, marker: Path) -> Path:
    return rewritten(legit, project / "evil.pt2",
                     {"data/sample_inputs/model.pt": pickled(((Payload(marker),), {}))})


def evil_pickled_weight(legit: Path, project: Path, marker: Path) -> Path:
    config = json.loads(record(legit, "data/weights/model_weights_config.json"))
    entry = next(iter(config["config"].values()))
    entry["use_pickle"] = True
    return rewritten(legit, project / "evil.pt2", {
        "data/weights/model_weights_config.json": json.dumps(config).encode(),
        f"data/weights/{entry['path_name']}": pickled(Payload(marker))})


def evil_opaque_constant(legit: Path, project: Path, marker: Path) -> Path:
    import pickle

    config = {"config": {"c": {"path_name": "opaque_obj_0", "is_param": False,
                               "use_pickle": True, "tensor_meta": None}}}
    return rewritten(legit, project / "evil.pt2", {
        "data/constants/model_constants_config.json": json.dumps(config).encode(),
        "data/constants/opaque_obj_0": pickle.dumps(Payload(marker))})


def evil_pytree_import(legit: Path, project: Path, marker: Path) -> Path:
    """The input structure's dict context names a module that torch would import."""
    (project / "evilmod.py").write_text(f"open({str(marker)!r}, 'w').close()\n"
                                        "import enum\nclass E(enum.Enum):\n    A = 1\n")
    program = json.loads(record(legit, "models/model.json"))
    signature = program["graph_module"]["module_call_graph"][0]["signature"]
    context = json.dumps([{"__enum__": True, "fqn": "evilmod:E", "name": "A"}])
    signature["in_spec"] = signature["in_spec"].replace('"context": "[]"',
                                                        '"context": ' + json.dumps(context))
    assert "evilmod" in signature["in_spec"]
    return rewritten(legit, project / "evil.pt2",
                     {"models/model.json": json.dumps(program).encode()})


@pytest.mark.parametrize("build", [evil_sample_inputs, evil_pickled_weight,
                                   evil_opaque_constant, evil_pytree_import])
@pytest.mark.parametrize("command", ["plan", "export"])
def test_a_crafted_pt2_never_runs_code(project, capsys, legit_pt2, build, command):
    marker = project / "pwned"
    path = build(legit_pt2, project, marker)
    sys.path.insert(0, str(project))
    try:
        argv = [command, str(path), "--target", "local"] if command == "plan" else \
            [command, str(path), "--format", "tflite", "--precision", "fp32", "-o", "out"]
        code, text = run_cli(capsys, *argv)
    finally:
        sys.path.remove(str(project))
        sys.modules.pop("evilmod", None)
    assert not marker.exists()
    assert code == 1
    assert "Traceback" not in text
    assert "was refused" in text and str(path) in " ".join(text.split())
    assert not (project / "out").exists()


def test_compiled_code_in_a_pt2_is_refused(project, legit_pt2):
    path = rewritten(legit_pt2, project / "aoti.pt2",
                     {"data/aotinductor/model/model.so": b"\x7fELF"})
    with pytest.raises(InputError, match="compiled code"):
        checked_pt2(path)


def test_a_pt2_whose_readers_disagree_is_refused(project, legit_pt2):
    """A record stored twice: torch's C++ reader and Python's zipfile could pick
    different copies, so the copy checked might not be the copy loaded."""
    path = rewritten(legit_pt2, project / "twice.pt2", {})
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith("sample_inputs/model.pt"))
    with pytest.warns(UserWarning, match="Duplicate name"):
        with zipfile.ZipFile(path, "a") as archive:
            archive.writestr(name, pickled(((Payload(project / "pwned"),), {})))
    with pytest.raises(InputError, match="not laid out"):
        checked_pt2(path)


def test_a_legitimate_pt2_still_loads(legit_pt2):
    from edgecomp.model.load import load_model

    source = load_model(str(legit_pt2))
    assert source.kind == "exported" and source.inputs[0].shape == (1, 1, 8, 8)
    assert source.module(torch.zeros(1, 1, 8, 8)).shape == (1, 10)


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.pt2"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="is a FIFO, not a regular file"):
        open_regular(fifo, what="model file", max_bytes=1 << 20)


def test_a_file_over_its_budget_is_refused(tmp_path):
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 2048)
    with pytest.raises(InputError, match="more than edgecomp reads"):
        open_regular(path, what="model file", max_bytes=1024)


def onnx_with_external_data(folder: Path, *, location: str = "net.onnx.data") -> Path:
    """A small ONNX model whose weights live in a separate file, as
    onnx.save_model(..., save_as_external_data=True) writes it."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight = numpy_helper.from_array(rng.standard_normal((64, 10)).astype(np.float32), "w")
    bias = numpy_helper.from_array(rng.standard_normal(10).astype(np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y"])],
        "net", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 10])], [weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    path = folder / "net.onnx"
    onnx.save_model(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                    location="net.onnx.data", size_threshold=0)
    if location != "net.onnx.data":
        model = onnx.load(path, load_external_data=False)
        for tensor in model.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = location
        onnx.save_model(model, path)
    return path


def test_an_onnx_model_with_external_data_exports_complete(project, capsys):
    import onnx

    (project / "model").mkdir()
    path = onnx_with_external_data(project / "model")
    code, text = run_cli(capsys, "export", str(path), "--format", "onnx", "--precision",
                         "fp32", "-o", "out")
    assert code == 0, text
    artifact = project / "out" / "net.fp32.onnx"
    manifest = json.loads((project / "out" / "net.fp32.onnx.json").read_text())
    assert manifest["file"] == artifact.name
    assert sorted(p.name for p in (project / "out").iterdir()) == [
        "net.fp32.onnx", "net.fp32.onnx.json"]
    # The artifact carries its weights: it loads with the source's data file gone.
    (project / "model" / "net.onnx.data").unlink()
    loaded = onnx.load(str(artifact))
    assert [t.name for t in loaded.graph.initializer] == ["w", "b"]
    onnx.checker.check_model(loaded)


@pytest.mark.parametrize("location", ["../secret.bin", "/etc/hostname", "sub/../net.onnx.data"])
def test_external_data_outside_the_model_folder_is_refused(project, capsys, location):
    (project / "model").mkdir()
    (project / "secret.bin").write_bytes(b"\0" * 4096)
    path = onnx_with_external_data(project / "model", location=location)
    code, text = run_cli(capsys, "export", str(path), "--format", "onnx", "--precision",
                         "fp32", "-o", "out")
    assert code == 1 and "Traceback" not in text
    assert "outside its own folder" in " ".join(text.split())
    assert not (project / "out").exists()


def test_external_data_that_is_a_fifo_is_refused(project, capsys):
    (project / "model").mkdir()
    path = onnx_with_external_data(project / "model")
    (project / "model" / "net.onnx.data").unlink()
    os.mkfifo(project / "model" / "net.onnx.data")
    code, text = run_cli(capsys, "export", str(path), "--format", "onnx", "--precision",
                         "fp32", "-o", "out")
    assert code == 1 and "is a FIFO, not a regular file" in " ".join(text.split())
    assert not (project / "out").exists()

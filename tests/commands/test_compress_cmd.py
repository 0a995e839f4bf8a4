"""`edgecomp compress` and `deploy --recipe` from the command line, as a user runs them."""

from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

from edgecomp.cli import main
from edgecomp.compress.huffman import read_archive

pytestmark = pytest.mark.slow

USER_CODE = textwrap.dedent("""
    import torch
    from torch import nn
    import torch.nn.functional as F

    CALLS = []

    def mlp():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))

    def smooth_loss(logits, labels):
        CALLS.append("loss")
        return F.cross_entropy(logits, labels, label_smoothing=0.1)

    def my_train(model, ctx, epochs):
        CALLS.append(("train", epochs, ctx.teacher is not None))
        return model
""")


@pytest.fixture()
def project(tmp_path, monkeypatch, digits_npz):
    (tmp_path / "user_code.py").write_text(USER_CODE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    from edgecomp.model.train import train_classifier
    from edgecomp.model.data import demo_digits

    train = demo_digits("train")
    np.savez(tmp_path / "train.npz", x=train.x, y=train.y)
    import user_code

    net = train_classifier(user_code.mlp(), train, epochs=10, lr=3e-3)
    torch.save(net.state_dict(), tmp_path / "net.pt")
    yield tmp_path
    sys.modules.pop("user_code", None)


def test_compress_with_passes_writes_program_report_and_archive(project, capsys):
    code = main(["compress", "user_code:mlp", "--weights", "net.pt", "--data", "train.npz",
                 "--pass", "prune.magnitude sparsity=0.8 finetune_epochs=2",
                 "--pass", "cluster fc_bits=4 finetune_epochs=1", "-o", "out"])
    assert code == 0
    program = torch.export.load(str(project / "out" / "user-code.mlp.cli.pt2"))
    weights = [v for k, v in program.state_dict.items() if v.dim() == 2]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert zeros == pytest.approx(0.8, abs=0.02)
    reports = json.loads((project / "out" / "user-code.mlp.cli.report.json").read_text())
    assert [r["name"] for r in reports] == ["prune.magnitude", "cluster"]
    archive = project / "out" / "user-code.mlp.cli.ecdc"
    assert reports[1]["metrics"]["archive_bytes"] == archive.stat().st_size
    decoded = read_archive(archive)
    assert torch.equal(decoded["1"]["weight"], weights[0])
    assert "archive:" in capsys.readouterr().out


def test_user_loss_and_training_function(project):
    import user_code

    assert main(["compress", "user_code:mlp", "--weights", "net.pt", "--data", "train.npz",
                 "--pass", "prune.magnitude sparsity=0.5 finetune_epochs=1",
                 "--loss", "user_code:smooth_loss", "-o", "a"]) == 0
    assert "loss" in user_code.CALLS
    user_code.CALLS.clear()
    assert main(["compress", "user_code:mlp", "--weights", "net.pt", "--data", "train.npz",
                 "--pass", "distill epochs=3", "--train-fn", "user_code:my_train", "-o", "b"]) == 0
    assert user_code.CALLS == [("train", 3, True)]


def test_bad_pass_option_is_one_sentence(project, capsys):
    code = main(["compress", "user_code:mlp", "--weights", "net.pt", "--data", "train.npz",
                 "--pass", "prune.magnitude sparsity=3", "-o", "out"])
    assert code == 1
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "sparsity must be between 0 and 1" in err and "Traceback" not in err
    assert not (project / "out").exists()


def test_list_names_every_pass(capsys):
    assert main(["compress", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("prune.magnitude", "prune.structured", "prune.nm", "distill", "qat", "fp16",
                 "binary", "cluster", "lowrank", "fold", "separable", "early_exit"):
        assert name in out


def test_deploy_with_recipe_measures_compressed_artifacts(project, digits_npz):
    calib, val = digits_npz
    (project / "quick.toml").write_text(textwrap.dedent("""
        name = "quick-qat"
        [[pass]]
        name = "prune.structured"
        ratio = 0.5
        finetune_epochs = 2
        [[pass]]
        name = "qat"
        epochs = 1
        [export]
        precision = "int8"
    """))
    code = main(["deploy", "user_code:mlp", "--weights", "net.pt", "--recipe", "quick.toml",
                 "--train", "train.npz", "--calib", str(calib), "--eval", str(val),
                 "--target", "local", "--format", "tflite", "--runs", "10", "--seconds", "0",
                 "--warmup-seconds", "0", "-o", "out", "--json", "r.json"])
    assert code == 0
    results = json.loads((project / "r.json").read_text())
    by_technique = {(r["technique"], r["precision"]): r for r in results}
    assert set(by_technique) == {("none", "fp32"), ("quick-qat", "int8")}
    compressed = by_technique[("quick-qat", "int8")]
    assert compressed["size_bytes"] < by_technique[("none", "fp32")]["size_bytes"] / 4
    assert compressed["accuracy"] > 85 and compressed["recipe"]["name"] == "quick-qat"
    assert by_technique[("none", "fp32")]["recipe"] is None  # the baseline is no recipe's
    assert [r["name"] for r in compressed["recipe"]["reports"]] == \
        ["prune.structured", "qat"]


def test_deploy_refuses_a_recipe_the_asked_format_cannot_export_before_any_pass(
        tmp_path, monkeypatch, capsys):
    (tmp_path / "user_code.py").write_text(USER_CODE)  # untrained: nothing is run
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    project = tmp_path
    try:
        code = main(["deploy", "user_code:mlp", "--recipe", "fp16", "--input-shape", "1,64",
                     "--target", "local", "--format", "onnx", "--no-record", "-o", "out"])
    finally:
        sys.modules.pop("user_code", None)
    assert code == 1
    err = capsys.readouterr().err
    assert "error: recipe fp16 exports fp16, which onnx does not" in err
    assert "deploy it with --format tflite" in err and "Traceback" not in err
    assert not (project / "out").exists()  # not even the baseline was exported


def test_deploy_early_exit_gives_one_artifact_per_exit(project, digits_npz):
    calib, val = digits_npz
    (project / "exits.toml").write_text(textwrap.dedent("""
        name = "exits"
        [[pass]]
        name = "early_exit"
        after = [1]
        epochs = 2
    """))
    code = main(["deploy", "user_code:mlp", "--weights", "net.pt", "--recipe", "exits.toml",
                 "--no-baseline", "--train", "train.npz", "--calib", str(calib), "--eval",
                 str(val), "--target", "local", "--format", "onnx", "--precision", "fp32",
                 "--runs", "10", "--seconds", "0", "--warmup-seconds", "0", "-o", "out",
                 "--json", "r.json"])
    assert code == 0
    results = json.loads((project / "r.json").read_text())
    assert sorted(r["technique"] for r in results) == ["exits.exit1", "exits.exit2"]
    for result in results:
        assert result["accuracy"] > 50
    thresholds = results[0]["recipe"]["reports"][0]["metrics"]["thresholds"]
    assert thresholds[-1]["avg_cost"] == 1.0


@pytest.mark.parametrize("argv, message", [
    (["--pass", "prune.magic"], "unknown compression pass 'prune.magic'"),
    (["--pass", ""], "--pass needs a pass name"),
    (["--pass", "fold x"], "options are key=value pairs"),
    (["--recipe", "bad.toml"], "bad.toml: pass[0]: unknown compression pass"),
    (["--recipe", "structured-50", "--pass", "fold"], "either --recipe or"),
])
def test_bad_compress_requests(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text('[[pass]]\nname = "nope"\n')
    assert main(["compress", *argv, "-o", "out"]) == 1
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()

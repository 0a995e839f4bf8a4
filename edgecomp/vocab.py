"""The closed vocabularies shared by profiles, the planner, exporters and records.

Each is a `str` enum, so a value compares equal to its text and serializes as it. A
profile, target, recipe or `--set` value outside these sets is refused when it loads,
naming the file and field, instead of silently meaning "not accelerated".
"""

from __future__ import annotations

import enum
import os
import re

from edgecomp.agent.runtimes import delegate_names, runtime_formats, runtime_names


class Vocabulary(str, enum.Enum):
    """A closed set of words: compares equal to, prints and serializes as its text."""

    def __str__(self) -> str:
        return self.value

    __format__ = str.__format__


class Format(Vocabulary):
    """An artifact file format; its files end in "." and its name (.tflite, .onnx)."""

    TFLITE = "tflite"
    ONNX = "onnx"

    @classmethod
    def of_file(cls, path: str | os.PathLike) -> Format | None:
        """The format a file's suffix names, or None for any other file."""
        suffix = os.path.splitext(path)[1].lower()
        return next((fmt for fmt in cls if suffix == f".{fmt.value}"), None)


class Precision(Vocabulary):
    """What an artifact computes in."""

    FP32 = "fp32"
    FP16 = "fp16"
    INT8 = "int8"  # full integer: int8 weights and activations, calibrated
    DYNAMIC_INT8 = "dynamic-int8"  # int8 weights, activations quantized at run time


class CalibrationMethod(Vocabulary):
    """How activation ranges are chosen from calibration data (ONNX static int8)."""

    MINMAX = "minmax"
    ENTROPY = "entropy"
    PERCENTILE = "percentile"


class ActivationDtype(Vocabulary):
    """The integer type of a static int8 ONNX model's activations (weights stay int8)."""

    INT8 = "int8"
    UINT8 = "uint8"


class IoDtype(Vocabulary):
    """The dtype of an int8 artifact's input and output tensors."""

    FLOAT32 = "float32"
    INT8 = "int8"


def _derived(name: str, values: tuple[str, ...], doc: str) -> type[Vocabulary]:
    """A vocabulary whose words are declared elsewhere. A member's name is its value
    upper-cased, other characters than letters, digits and "_" made "_" ("ai_edge_litert"
    -> AI_EDGE_LITERT)."""
    members = [(re.sub(r"\W", "_", value.upper()), value) for value in values]
    vocabulary = Vocabulary(name, members, module=__name__, qualname=name)
    vocabulary.__doc__ = doc
    return vocabulary


# Both declared once per runtime, by the agent's runtime modules (edgecomp/agent/runtimes/),
# in their preference order: adding a runtime there adds it here.
RuntimeName = _derived(
    "RuntimeName", runtime_names(),
    "Runtimes a board can measure artifacts with: the agent's `--runtime` choices, and the "
    "ones it measures through another (tensorrt through onnxruntime).")
DelegateName = _derived(
    "DelegateName", delegate_names(),
    "Where a runtime executes the model: its delegate or execution provider (cpu: the "
    "runtime's own CPU kernels, LiteRT without XNNPACK or ORT's CPU EP).")


class Unit(Vocabulary):
    """The kind of processor a delegate runs on."""

    CPU = "cpu"
    GPU = "gpu"
    NPU = "npu"


class PruningKind(Vocabulary):
    """The kind of pruning that shortens a board's work."""

    CHANNEL = "channel"  # whole channels removed (prune.structured)
    SPARSE_2_4 = "2:4"  # semi-structured (prune.nm), sparse tensor cores only
    UNSTRUCTURED = "unstructured-size-only"  # zeros: smaller compressed file, no speed
    NONE = "none"


class OpKind(Vocabulary):
    """High-level op kinds that profiles list as accelerated and model facts report."""

    ALL = "*"  # in a delegate's list: every op
    ADD = "add"
    ATTENTION = "attention"
    AVGPOOL = "avgpool"
    BATCHNORM = "batchnorm"
    CONCAT = "concat"
    CONV2D = "conv2d"
    CONV_TRANSPOSE2D = "conv_transpose2d"
    DEPTHWISE_CONV2D = "depthwise_conv2d"
    EMBEDDING = "embedding"
    FLATTEN = "flatten"
    GATHER = "gather"
    GELU = "gelu"
    GRU = "gru"
    HARDSWISH = "hardswish"
    LAYERNORM = "layernorm"
    LINEAR = "linear"
    LSTM = "lstm"
    MATMUL = "matmul"
    MAXPOOL = "maxpool"
    MEAN = "mean"
    MUL = "mul"
    PAD = "pad"
    RELU = "relu"
    RELU6 = "relu6"
    RESHAPE = "reshape"
    SIGMOID = "sigmoid"
    SILU = "silu"
    SOFTMAX = "softmax"
    TANH = "tanh"
    UPSAMPLE = "upsample"


class IsaFeature(Vocabulary):
    """CPU instruction-set features the planner reasons about."""

    NEON = "neon"
    DOTPROD = "dotprod"
    I8MM = "i8mm"
    FP16 = "fp16"  # fp16 arithmetic
    FP16_STORAGE = "fp16-storage"  # fp16 loads/stores and conversion only
    SVE = "sve"
    AVX2 = "avx2"
    FMA = "fma"
    AVX512 = "avx512"
    AVX512_VNNI = "avx512-vnni"
    AVX_VNNI = "avx-vnni"


class GpuFeature(Vocabulary):
    """GPU features the planner reasons about."""

    FP16 = "fp16"
    INT8_TENSOR_CORES = "int8-tensor-cores"
    SPARSITY_2_4 = "sparsity-2:4"


class PowerProbeKind(Vocabulary):
    """Power probes the agent knows (a `file:PATH` probe is also accepted in targets)."""

    NONE = "none"
    JETSON_INA3221 = "jetson-ina3221"
    TEGRASTATS = "tegrastats"
    ANDROID_POWER_SUPPLY = "android-power-supply"
    RPI5_PMIC = "rpi5-pmic"
    INA219 = "ina219"
    INA260 = "ina260"


def choices(enum_cls: type[enum.Enum]) -> list[str]:
    """The values of a vocabulary, for CLI choices and error messages."""
    return [member.value for member in enum_cls]


# The format each runtime loads (TensorRT builds its engines from ONNX files).
RUNTIME_FORMATS: dict[RuntimeName, Format] = {
    RuntimeName(name): Format(fmt) for name, fmt in runtime_formats().items()}

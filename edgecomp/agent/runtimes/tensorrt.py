"""TensorRT: engines built from .onnx files, measured through onnxruntime's TensorRT
execution provider (the agent never imports tensorrt itself, so it is no --runtime).
"""

from . import RUNTIMES
from .base import RuntimeFacts

FACTS = RUNTIMES.register()(RuntimeFacts(
    name="tensorrt", package="tensorrt", module="tensorrt", format="onnx", preference=50,
    delegates=("tensorrt",), label="TensorRT", cpu_executors=frozenset(),
    via=("onnxruntime", "tensorrt")))

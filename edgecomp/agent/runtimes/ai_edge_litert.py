"""LiteRT's own Python package, ai-edge-litert: the first choice for .tflite files."""

from . import RUNTIMES
from ._litert import LITERT_CPU_EXECUTORS, LITERT_DELEGATES, LiteRTRuntime
from .base import RuntimeFacts

FACTS = RUNTIMES.register()(RuntimeFacts(
    name="ai_edge_litert", package="ai-edge-litert", module="ai_edge_litert.interpreter",
    format="tflite", preference=10, delegates=LITERT_DELEGATES, label="LiteRT",
    cpu_executors=LITERT_CPU_EXECUTORS, adapter=LiteRTRuntime))

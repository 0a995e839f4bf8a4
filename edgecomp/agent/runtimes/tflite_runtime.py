"""tflite-runtime, the interpreter-only package older boards still carry, for .tflite files."""

from . import RUNTIMES
from ._litert import LITERT_CPU_EXECUTORS, LITERT_DELEGATES, LiteRTRuntime
from .base import RuntimeFacts

FACTS = RUNTIMES.register()(RuntimeFacts(
    name="tflite_runtime", package="tflite-runtime", module="tflite_runtime.interpreter",
    format="tflite", preference=20, delegates=LITERT_DELEGATES, label="tflite_runtime",
    cpu_executors=LITERT_CPU_EXECUTORS, adapter=LiteRTRuntime))

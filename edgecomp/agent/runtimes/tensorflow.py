"""Full TensorFlow's tf.lite interpreter: the last resort for .tflite files."""

from . import RUNTIMES
from ._litert import LITERT_CPU_EXECUTORS, LITERT_DELEGATES, LiteRTRuntime
from .base import RuntimeFacts


class TensorFlowLite(LiteRTRuntime):
    """The LiteRT adapter on tf.lite, whose delegate API sits under `experimental`."""

    def _module(self):
        import tensorflow as tf
        return (tf.lite.Interpreter, tf.lite.experimental.OpResolverType,
                tf.lite.experimental.load_delegate)


FACTS = RUNTIMES.register()(RuntimeFacts(
    name="tensorflow", package="tensorflow", module="tensorflow", format="tflite",
    preference=30, delegates=LITERT_DELEGATES, label="TensorFlow Lite",
    cpu_executors=LITERT_CPU_EXECUTORS, adapter=TensorFlowLite))

"""onnxruntime for .onnx files, with the execution provider each --delegate names."""

from ..protocol import TensorSpec
from . import RUNTIMES
from .base import Runtime, RuntimeFacts

ORT_PROVIDERS = {
    "auto": "CPUExecutionProvider", "cpu": "CPUExecutionProvider",
    "gpu": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider", "nnapi": "NnapiExecutionProvider",
}


class OnnxRuntime(Runtime):
    """onnxruntime with the chosen execution provider, sequential, with intra-op threads."""

    default_path = "CPUExecutionProvider"
    DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16",
              "tensor(double)": "float64", "tensor(int8)": "int8", "tensor(uint8)": "uint8",
              "tensor(int32)": "int32", "tensor(int64)": "int64", "tensor(bool)": "bool"}

    def load(self):
        import onnxruntime as ort
        wanted = provider = ORT_PROVIDERS[self.delegate]
        available = ort.get_available_providers()
        if provider not in available:
            self._missing("onnxruntime on this board has no %s (it offers %s); install the "
                          "onnxruntime build with it or measure with --delegate cpu"
                          % (provider, ", ".join(available)), "CPUExecutionProvider")
            provider = "CPUExecutionProvider"
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        providers = [provider] if provider == "CPUExecutionProvider" \
            else [provider, "CPUExecutionProvider"]
        self.session = ort.InferenceSession(self.path, sess_options=options,
                                            providers=providers)
        self.providers = tuple(self.session.get_providers())
        self.executed = self.providers[0] if self.providers else "unknown"
        if provider == wanted and wanted not in self.providers:
            # onnxruntime retries without a provider that fails to start (a TensorRT or
            # CUDA library missing at run time), printing a warning nobody reads.
            self.fallback = ("onnxruntime could not start %s and ran with %s"
                             % (wanted, ", ".join(self.providers)))
        self.threads = self.session.get_session_options().intra_op_num_threads or self.threads
        self._inputs = self.session.get_inputs()
        self._outputs = self.session.get_outputs()
        self._feed = {}

    def _describe(self, values):
        # An open dimension (a name or None in onnxruntime) is -1: the fed data decides it.
        return tuple(TensorSpec(name=v.name, dtype=self.DTYPES.get(v.type, v.type),
                                shape=tuple(d if isinstance(d, int) and d > 0 else -1
                                            for d in v.shape), quantization=None)
                     for v in values)

    def inputs(self):
        return self._describe(self._inputs)

    def outputs(self):
        return self._describe(self._outputs)

    def set_inputs(self, arrays):
        self._feed = dict((v.name, a) for v, a in zip(self._inputs, arrays))

    def invoke(self):
        self._last = self.session.run(None, self._feed)

    def get_outputs(self):
        return self._last


FACTS = RUNTIMES.register()(RuntimeFacts(
    name="onnxruntime", package="onnxruntime", module="onnxruntime", format="onnx",
    preference=40, delegates=tuple(d for d in ORT_PROVIDERS if d != "auto"),
    label="onnxruntime",
    cpu_executors=frozenset({"CPUExecutionProvider", "XnnpackExecutionProvider"}),
    adapter=OnnxRuntime))

"""The inference runtimes the agent drives, and the choice of one for an artifact.

numpy and the runtimes are imported inside the adapters: the agent starts without them.
"""

import importlib
import os

from .failure import AgentError, first_line
from .protocol import Quantization, TensorSpec

# (module to import, pip package) per runtime, best first for each format.
RUNTIME_PACKAGES = {
    "ai_edge_litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
    "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
    "tensorflow": ("tensorflow", "tensorflow"),
    "onnxruntime": ("onnxruntime", "onnxruntime"),
}
FORMAT_RUNTIMES = {
    ".tflite": ["ai_edge_litert", "tflite_runtime", "tensorflow"],
    ".onnx": ["onnxruntime"],
}
DELEGATES = ("auto", "xnnpack", "cpu", "gpu", "nnapi", "tensorrt")
# What to do when the requested accelerator is not on the board: fail with a sentence, or
# run on the CPU and say so in the report's `fallback`.
ON_MISSING = ("fail", "cpu")
# Shared libraries of LiteRT's optional delegates, first found wins.
LITERT_DELEGATE_LIBRARIES = {
    "gpu": ("libLiteRtGpuAccelerator.so", "libtensorflowlite_gpu_delegate.so"),
    "nnapi": ("libtensorflowlite_nnapi_delegate.so",),
}
ORT_PROVIDERS = {
    "auto": "CPUExecutionProvider", "cpu": "CPUExecutionProvider",
    "gpu": "CUDAExecutionProvider", "tensorrt": "TensorrtExecutionProvider",
    "xnnpack": "XnnpackExecutionProvider", "nnapi": "NnapiExecutionProvider",
}


def runtime_version(name):
    module_name, package = RUNTIME_PACKAGES[name]
    try:
        from importlib import metadata  # Python 3.8+
        return metadata.version(package)
    except Exception:  # metadata raises PackageNotFoundError or odd errors on old pips
        pass
    try:
        module = importlib.import_module(module_name.split(".")[0])
        return getattr(module, "__version__", "unknown")
    except Exception:  # a broken runtime install is the same as none
        return None


def runtime_available(name):
    module_name = RUNTIME_PACKAGES[name][0].split(".")[0]
    try:
        import importlib.util
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def ort_available_providers():
    """onnxruntime's providers on this board; () where it is missing or broken."""
    if not runtime_available("onnxruntime"):
        return ()
    try:
        import onnxruntime
        return tuple(onnxruntime.get_available_providers())
    except Exception:  # a broken install offers nothing
        return ()


class Runtime(object):
    """One inference runtime: load a model, feed inputs, invoke, read outputs."""

    name = ""

    def __init__(self, path, threads, delegate, on_missing="fail"):
        self.path = path
        self.threads = threads
        self.delegate = delegate
        self.requested = delegate
        self.on_missing = on_missing
        self.executed = "unknown"  # what really ran the model, known after load()
        self.providers = ()
        self.fallback_ops = None  # ops outside the delegate, where the runtime tells
        self.fallback = None  # why what ran is not what was asked, known after load()

    def _missing(self, message, instead):
        """The requested accelerator is not here: fail, or go on with `instead` and say so."""
        if self.on_missing != "cpu":
            raise AgentError(message, "missing_delegate")
        self.fallback = "%s; measured with %s instead" % (message.split("; ")[0], instead)

    def load(self):
        raise NotImplementedError

    def inputs(self):
        """The model's inputs as TensorSpecs."""
        raise NotImplementedError

    def outputs(self):
        raise NotImplementedError

    def set_inputs(self, arrays):
        raise NotImplementedError

    def invoke(self):
        raise NotImplementedError

    def get_outputs(self):
        raise NotImplementedError


class LiteRTRuntime(Runtime):
    """LiteRT / TFLite interpreter from ai_edge_litert, tflite_runtime or tensorflow.lite."""

    def _module(self):
        """(Interpreter class, OpResolverType, load_delegate) of this runtime."""
        if self.name == "tensorflow":
            import tensorflow as tf
            return (tf.lite.Interpreter, tf.lite.experimental.OpResolverType,
                    tf.lite.experimental.load_delegate)
        module = importlib.import_module(RUNTIME_PACKAGES[self.name][0])
        return module.Interpreter, module.OpResolverType, module.load_delegate

    def _load_delegate(self, load_delegate):
        import ctypes
        tried = []
        for library in LITERT_DELEGATE_LIBRARIES[self.delegate]:
            try:
                # dlopen first: load_delegate on a missing library leaves a half-built
                # Delegate whose __del__ prints a traceback.
                ctypes.CDLL(library)
                return load_delegate(library)
            except (ValueError, OSError, RuntimeError) as exc:
                tried.append("%s: %s" % (library, first_line(exc)))
        self._missing("the %s delegate is not on this board (%s); install its library or "
                      "measure with --delegate xnnpack" % (self.delegate, "; ".join(tried)),
                      "LiteRT's default CPU path (XNNPACK)")
        self.delegate = "auto"
        return None

    def load(self):
        interpreter_class, resolver, load_delegate = self._module()
        options = {"model_path": self.path, "num_threads": self.threads}
        # None where the delegate is missing and the runtime falls back (self.delegate "auto").
        delegate = self._load_delegate(load_delegate) \
            if self.delegate in LITERT_DELEGATE_LIBRARIES else None
        if self.delegate in ("cpu", "gpu", "nnapi"):
            # Builtin kernels only, so that nothing but the chosen delegate takes nodes.
            options["experimental_op_resolver_type"] = \
                resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        if delegate is not None:
            options["experimental_delegates"] = [delegate]
        self.interpreter = interpreter_class(**options)
        self.interpreter.allocate_tensors()
        self._inputs = self.interpreter.get_input_details()
        self._outputs = self.interpreter.get_output_details()
        self.executed = self._executed()

    def _executed(self):
        """The delegate that took nodes (a DELEGATE node in the graph), else "cpu".

        When a delegate was wanted and none took any node, every op ran on the reference
        kernels: they are kept in `fallback_ops`. When one did, the Python API lists the
        delegated nodes beside the DELEGATE node, so which ones stayed out is not known
        and `fallback_ops` stays None.
        """
        try:
            ops = [op["op_name"] for op in self.interpreter._get_ops_details()]
        except Exception:  # a runtime without the op inspection API
            return "unknown"
        if "DELEGATE" not in ops:
            if self.delegate != "cpu":
                counts = {}
                for op in ops:
                    counts[op] = counts.get(op, 0) + 1
                self.fallback_ops = counts
            return "cpu"
        return "xnnpack" if self.delegate in ("auto", "xnnpack") else self.delegate

    def _describe(self, details):
        import numpy as np
        described = []
        for detail in details:
            scale, zero = detail.get("quantization", (0.0, 0))
            described.append(TensorSpec(
                name=detail["name"], shape=tuple(int(d) for d in detail["shape"]),
                dtype=np.dtype(detail["dtype"]).name,
                quantization=Quantization(float(scale), int(zero)) if scale else None))
        return tuple(described)

    def inputs(self):
        return self._describe(self._inputs)

    def outputs(self):
        return self._describe(self._outputs)

    def set_inputs(self, arrays):
        for detail, array in zip(self._inputs, arrays):
            self.interpreter.set_tensor(detail["index"], array)

    def invoke(self):
        self.interpreter.invoke()

    def get_outputs(self):
        return [self.interpreter.get_tensor(d["index"]) for d in self._outputs]


class OnnxRuntime(Runtime):
    """onnxruntime with the chosen execution provider, sequential, with intra-op threads."""

    name = "onnxruntime"
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


def open_runtime(path, requested, threads, delegate="auto", on_missing="fail"):
    """Pick the runtime for the artifact's format, or explain which package to install."""
    suffix = os.path.splitext(path)[1].lower()
    if suffix not in FORMAT_RUNTIMES:
        raise AgentError("%s: unknown model type %r; the agent runs .tflite and .onnx files"
                         % (path, suffix), "bad_artifact")
    candidates = FORMAT_RUNTIMES[suffix]
    if requested != "auto":
        if requested not in RUNTIME_PACKAGES:
            raise AgentError("unknown runtime %r; choose auto or one of %s"
                             % (requested, ", ".join(sorted(RUNTIME_PACKAGES))), "bad_args")
        if requested not in candidates:
            raise AgentError("runtime %s cannot run %s files; use one of %s"
                             % (requested, suffix, ", ".join(candidates)), "bad_args")
        candidates = [requested]
    fallback = None
    if suffix == ".tflite" and delegate == "tensorrt":
        if on_missing != "cpu":
            raise AgentError("LiteRT has no tensorrt delegate; use --delegate auto, xnnpack, "
                             "cpu, gpu or nnapi for .tflite files", "bad_args")
        fallback = ("LiteRT has no tensorrt delegate; measured with LiteRT's default CPU "
                    "path (XNNPACK) instead")
        delegate = "auto"
    for name in candidates:
        if runtime_available(name):
            runtime = (OnnxRuntime if name == "onnxruntime" else LiteRTRuntime)(
                path, threads, delegate, on_missing)
            runtime.name = name
            if fallback:
                runtime.requested, runtime.fallback = "tensorrt", fallback
            return runtime
    if requested != "auto":
        raise AgentError("the requested runtime %s is not installed on this board: install it "
                         "with `pip install %s`, or ask for another runtime"
                         % (requested, RUNTIME_PACKAGES[requested][1]), "missing_runtime")
    raise AgentError("no runtime for %s files on this board: install one with `pip install %s`"
                     % (suffix, RUNTIME_PACKAGES[candidates[0]][1]), "missing_runtime")


def import_runtime(runtime):
    """Import the runtime's module, turning a broken install into an install hint."""
    try:
        importlib.import_module(RUNTIME_PACKAGES[runtime.name][0])
    except ImportError as exc:
        raise AgentError("the %s runtime failed to import (%s); reinstall it with `pip install "
                         "%s`" % (runtime.name, exc, RUNTIME_PACKAGES[runtime.name][1]),
                         "missing_runtime")


def load_model(runtime):
    if not os.path.isfile(runtime.path):
        raise AgentError("model file %s does not exist on this board" % runtime.path,
                         "bad_artifact")
    import_runtime(runtime)
    try:
        runtime.load()
    except AgentError:
        raise
    except Exception as exc:  # runtimes raise RuntimeError, ValueError, their own Fail types
        raise AgentError("%s could not load %s (truncated or unsupported model?): %s"
                         % (runtime.name, os.path.basename(runtime.path), first_line(exc)),
                         "bad_artifact")

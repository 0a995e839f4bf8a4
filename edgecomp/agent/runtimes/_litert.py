"""The LiteRT / TFLite interpreter adapter that ai_edge_litert, tflite_runtime and
tensorflow share; each of those modules declares its own facts (this one registers none).
"""

import importlib

from ..failure import first_line
from ..protocol import Quantization, TensorSpec
from .base import Runtime

# The delegates every LiteRT interpreter takes ("auto" is its default CPU path, XNNPACK).
LITERT_DELEGATES = ("xnnpack", "cpu", "gpu", "nnapi")
# What the adapter reports as `executed` when the model ran on the CPU.
LITERT_CPU_EXECUTORS = frozenset({"xnnpack", "cpu"})
# Shared libraries of LiteRT's optional delegates, first found wins.
LITERT_DELEGATE_LIBRARIES = {
    "gpu": ("libLiteRtGpuAccelerator.so", "libtensorflowlite_gpu_delegate.so"),
    "nnapi": ("libtensorflowlite_nnapi_delegate.so",),
}


class LiteRTRuntime(Runtime):
    """LiteRT / TFLite interpreter from the module its runtime's facts name."""

    default_path = "LiteRT's default CPU path (XNNPACK)"

    def _module(self):
        """(Interpreter class, OpResolverType, load_delegate) of this runtime."""
        module = importlib.import_module(self.facts.module)
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
                      self.default_path)
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

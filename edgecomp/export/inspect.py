"""Look inside an exported artifact: I/O tensors, quantization, and how much is really integer.

An "int8" model that still computes in float is a known trap (FIELD.md), so every
manifest reports the ops and weight bytes by dtype as read back from the file.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

# Smaller constants are shapes and indices, not weights.
MIN_WEIGHT_ELEMENTS = 16


def _tensor_entry(detail: dict) -> dict[str, Any]:
    scale, zero = detail.get("quantization", (0.0, 0))
    entry = {"name": detail["name"], "shape": [int(d) for d in detail["shape"]],
             "dtype": np.dtype(detail["dtype"]).name}
    if scale:
        entry["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
    return entry


def inspect_tflite(path: Path) -> dict[str, Any]:
    """I/O, op counts and weight bytes by dtype of a .tflite file, read with the interpreter."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path),
                              experimental_preserve_all_tensors=False)
    inputs = [_tensor_entry(d) for d in interpreter.get_input_details()]
    outputs = [_tensor_entry(d) for d in interpreter.get_output_details()]
    ops = Counter(op["op_name"] for op in interpreter._get_ops_details())
    # Constant tensors (weights, biases) are those with data before allocation.
    weight_bytes: Counter = Counter()
    for detail in interpreter.get_tensor_details():
        try:
            data = interpreter.get_tensor(detail["index"])
        except ValueError:
            continue
        if data.size >= MIN_WEIGHT_ELEMENTS and detail["name"] and "serving_default" not in detail["name"]:
            weight_bytes[np.dtype(detail["dtype"]).name] += int(data.nbytes)
    return {"inputs": inputs, "outputs": outputs, "ops": dict(sorted(ops.items())),
            **_integer_share(weight_bytes)}


def inspect_onnx(path: Path) -> dict[str, Any]:
    """I/O, op counts and initializer bytes by dtype of an .onnx file."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializer_names = {init.name for init in graph.initializer}

    def entry(value) -> dict[str, Any]:
        tensor_type = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or -1)
                 for d in tensor_type.shape.dim]
        return {"name": value.name, "shape": shape,
                "dtype": np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name}

    weight_bytes: Counter = Counter()
    for init in graph.initializer:
        array = numpy_helper.to_array(init)
        if array.size >= MIN_WEIGHT_ELEMENTS:
            weight_bytes[array.dtype.name] += int(array.nbytes)
    ops = Counter(node.op_type for node in graph.node)
    return {"inputs": [entry(v) for v in graph.input if v.name not in initializer_names],
            "outputs": [entry(v) for v in graph.output],
            "ops": dict(sorted(ops.items())), "opset": [
                {"domain": o.domain or "ai.onnx", "version": o.version} for o in model.opset_import],
            **_integer_share(weight_bytes)}


def _integer_share(weight_bytes: Counter) -> dict[str, Any]:
    total = sum(weight_bytes.values())
    integer = sum(v for k, v in weight_bytes.items() if k.startswith(("int", "uint")))
    return {"weight_bytes_by_dtype": dict(sorted(weight_bytes.items())),
            "integer_weight_share": round(integer / total, 4) if total else 0.0}

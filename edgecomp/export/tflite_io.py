"""Give a full-int8 LiteRT model float32 inputs and outputs.

PT2E conversion folds the input quantize and output dequantize into int8 model I/O.
Many applications want to feed float tensors, so this adds a QUANTIZE op in front of
each int8 input and a DEQUANTIZE op after each int8 output, editing the flatbuffer
with LiteRT's own object API (no converter offers this switch for PT2E models).
"""

from __future__ import annotations

import numpy as np

INT8_TYPES = (9, 3)  # schema TensorType INT8, UINT8


def float_io(model_bytes: bytes) -> bytes:
    """Return the model with float32 I/O around its int8 input and output tensors."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(model_bytes))
    quantize = _opcode_index(model, schema, schema.BuiltinOperator.QUANTIZE)
    dequantize = _opcode_index(model, schema, schema.BuiltinOperator.DEQUANTIZE)
    graph = model.subgraphs[0]
    renamed: dict[int, int] = {}
    head, tail = [], []
    for position, index in enumerate(list(graph.inputs)):
        if graph.tensors[index].type in INT8_TYPES:
            new = _float_twin(model, schema, graph, index)
            head.append(_op(schema, quantize, inputs=[new], outputs=[index]))
            graph.inputs[position] = new
            renamed[index] = new
    for position, index in enumerate(list(graph.outputs)):
        if graph.tensors[index].type in INT8_TYPES:
            new = _float_twin(model, schema, graph, index)
            tail.append(_op(schema, dequantize, inputs=[index], outputs=[new]))
            graph.outputs[position] = new
            renamed[index] = new
    graph.operators = head + list(graph.operators) + tail
    for signature in model.signatureDefs or []:
        for entry in list(signature.inputs or []) + list(signature.outputs or []):
            entry.tensorIndex = renamed.get(entry.tensorIndex, entry.tensorIndex)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _opcode_index(model, schema, builtin: int) -> int:
    for index, code in enumerate(model.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            return index
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = 1
    model.operatorCodes.append(code)
    return len(model.operatorCodes) - 1


def _float_twin(model, schema, graph, index: int) -> int:
    """Append a float32 tensor shaped like tensor `index` and return its index."""
    source = graph.tensors[index]
    tensor = schema.TensorT()
    tensor.shape = np.array(source.shape, dtype=np.int32)
    if source.shapeSignature is not None:
        tensor.shapeSignature = np.array(source.shapeSignature, dtype=np.int32)
    tensor.type = schema.TensorType.FLOAT32
    tensor.name = source.name
    source.name = source.name + b"_int8" if isinstance(source.name, bytes) else \
        f"{source.name}_int8"
    buffer = schema.BufferT()
    model.buffers.append(buffer)
    tensor.buffer = len(model.buffers) - 1
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def _op(schema, opcode: int, *, inputs: list[int], outputs: list[int]):
    op = schema.OperatorT()
    op.opcodeIndex = opcode
    op.inputs = np.array(inputs, dtype=np.int32)
    op.outputs = np.array(outputs, dtype=np.int32)
    return op

"""Facts about a model that hardware planning needs: size, MACs, activations, op kinds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgecomp.model.macs import layer_macs

# Module types to the op kinds profiles list as accelerated (see profiles/*.toml).
MODULE_OPS = [
    (nn.Conv2d, "conv2d"), (nn.Linear, "linear"), (nn.ReLU, "relu"), (nn.ReLU6, "relu6"),
    (nn.MaxPool2d, "maxpool"), (nn.AvgPool2d, "avgpool"), (nn.AdaptiveAvgPool2d, "mean"),
    (nn.BatchNorm2d, "batchnorm"), (nn.BatchNorm1d, "batchnorm"), (nn.Flatten, "reshape"),
    (nn.Softmax, "softmax"), (nn.LayerNorm, "layernorm"), (nn.GELU, "gelu"),
    (nn.Sigmoid, "sigmoid"), (nn.Tanh, "tanh"), (nn.Hardswish, "hardswish"), (nn.SiLU, "silu"),
    (nn.MultiheadAttention, "attention"), (nn.Dropout, None), (nn.Identity, None),
    (nn.Embedding, "embedding"),
    (nn.LSTM, "lstm"), (nn.GRU, "gru"), (nn.Upsample, "upsample"),
    (nn.ConvTranspose2d, "conv_transpose2d"),
    (nn.ZeroPad2d, "pad"), (nn.ConstantPad2d, "pad"), (nn.ReflectionPad2d, "pad"),
    (nn.ReplicationPad2d, "pad"),
]
ONNX_OPS = {"Conv": "conv2d", "Gemm": "linear", "MatMul": "matmul", "Relu": "relu",
            "MaxPool": "maxpool", "AveragePool": "avgpool", "GlobalAveragePool": "mean",
            "ReduceMean": "mean", "BatchNormalization": "batchnorm", "Flatten": "reshape",
            "Reshape": "reshape", "Softmax": "softmax", "LayerNormalization": "layernorm",
            "Gelu": "gelu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Add": "add", "Mul": "mul",
            "Concat": "concat", "Pad": "pad", "HardSwish": "hardswish", "LSTM": "lstm",
            "Resize": "upsample", "Gather": "gather", "Erf": "gelu"}


@dataclass(frozen=True)
class ModelFacts:
    """What the planner knows about a model."""

    name: str
    param_count: int
    weight_bytes_fp32: int
    macs: int | None
    peak_activation_bytes: int | None  # largest input + output of one layer (a lower bound)
    op_types: frozenset[str]
    conv_share: float | None  # share of MACs in convolutions; the rest is matmul/linear
    input_shape: tuple[int, ...]


def _op_kind(module: nn.Module) -> str | None:
    if isinstance(module, nn.Conv2d) and module.groups > 1 and \
            module.groups == module.in_channels:
        return "depthwise_conv2d"
    for cls, kind in MODULE_OPS:
        if isinstance(module, cls):
            return kind or "noop"
    return None


# Activation modules libraries define themselves (transformers' GELUActivation, timm's
# Swish), recognised by their class name: they export to the same ops as torch's own.
NAMED_KINDS = (("gelu", "gelu"), ("hardswish", "hardswish"), ("swish", "silu"),
               ("silu", "silu"), ("relu6", "relu6"), ("sigmoid", "sigmoid"), ("tanh", "tanh"))


def _named_kind(module: nn.Module) -> str | None:
    if any(True for _ in module.parameters(recurse=False)):
        return None
    name = type(module).__name__.lower()
    return next((kind for part, kind in NAMED_KINDS if part in name), None)


def _numel(value) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel()
    if isinstance(value, (tuple, list)):
        return sum(_numel(v) for v in value)
    return 0


def model_facts(model: nn.Module, example_inputs: torch.Tensor | tuple[torch.Tensor, ...], *,
                name: str) -> ModelFacts:
    """Run the model once on the example input with hooks on the modules it is made of.

    Modules are recognised by type at any depth (a convolution holding a padding child
    is still a convolution); other modules are hooked only when they are leaves, so
    containers are not reported as unknown ops.
    """
    examples = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    ops: set[str] = set()
    macs = {"conv": 0, "other": 0}
    peak = [0]
    unknown: set[str] = set()

    def hook(module, inputs, output):
        kind = _op_kind(module)
        if kind is None and inputs and output is inputs[0]:
            return  # a custom identity (e.g. a library's own Identity class) computes nothing
        if kind is None:
            kind = _named_kind(module)
        if kind is None:
            unknown.add(type(module).__name__)
            return
        if kind == "noop":  # dropout and identity vanish in eval-mode export
            return
        ops.add(kind)
        peak[0] = max(peak[0], (_numel(inputs) + _numel(output)) * 4)
        counted = layer_macs(module, inputs, output)
        if counted is not None:
            macs[counted[0]] += counted[1]

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if _op_kind(m) is not None or not list(m.children())]
    try:
        with torch.no_grad():
            model.eval()
            model(*examples)
    finally:
        for handle in handles:
            handle.remove()
    if unknown:
        ops.update(f"other:{n}" for n in unknown)
    params = sum(p.numel() for p in model.parameters())
    total = macs["conv"] + macs["other"]
    return ModelFacts(name=name, param_count=params, weight_bytes_fp32=params * 4,
                      macs=total, peak_activation_bytes=peak[0], op_types=frozenset(ops),
                      conv_share=macs["conv"] / total if total else None,
                      input_shape=tuple(examples[0].shape))


def facts_from_onnx(path: Path, *, name: str) -> ModelFacts:
    """Facts read from an ONNX graph (no MACs: shapes of every node are not needed here)."""
    import onnx
    from onnx import numpy_helper

    from edgecomp.model.onnx import onnx_inputs

    model = onnx.load(str(path))
    graphs = list(_graphs(model.graph))
    nodes = [n for g in graphs for n in g.node if n.op_type not in ("If", "Loop", "Scan")]
    params = sum(numpy_helper.to_array(i).size for g in graphs for i in g.initializer)
    ops = frozenset(ONNX_OPS.get(n.op_type, f"other:{n.op_type}") for n in nodes)
    convs = sum(1 for n in nodes if n.op_type == "Conv")
    mats = sum(1 for n in nodes if n.op_type in ("Gemm", "MatMul"))
    inputs = onnx_inputs(model)
    dims = [max(d, 1) for d in inputs[0].shape] if inputs else []
    return ModelFacts(name=name, param_count=params, weight_bytes_fp32=params * 4, macs=None,
                      peak_activation_bytes=None, op_types=ops,
                      conv_share=convs / (convs + mats) if convs + mats else None,
                      input_shape=tuple(dims))


def _graphs(graph):
    """A graph and every subgraph inside it (If branches, Loop bodies), depth first."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.g is not None and attribute.g.node:
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)

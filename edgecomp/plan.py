"""The hardware-aware planner: a pure function of (profile, model facts, user overrides).

Each decision carries a one-line reason naming the hardware fact behind it. Board
facts come from the profile; nothing here names a board.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Mapping

from edgecomp.errors import InputError
from edgecomp.modelfacts import ModelFacts
from edgecomp.profiles import Delegate, Profile

# Closed sets of values a user may set with `--set key=value`; None means free text.
CHOICES: dict[str, tuple[str, ...] | None] = {
    "format": ("tflite", "onnx"),
    "runtime": ("ai_edge_litert", "tflite_runtime", "tensorflow", "onnxruntime", "tensorrt"),
    "delegate": ("xnnpack", "gpu", "nnapi", "tensorrt", "cpu"),
    "precision": ("fp32", "fp16", "int8", "dynamic-int8"),
    "quant_scheme": ("per_channel_symmetric", "per_tensor_symmetric"),
    "activation_symmetric": ("true", "false"),
    "io_dtype": ("float32", "int8"),
    "reduce_range": ("true", "false"),
    "pruning": ("channel", "2:4", "unstructured-size-only", "none"),
    "channel_multiple": None,
    "threads": None,
    "cores": None,
    "memory_fit": ("ok", "tight", "too-large"),
}
# BatchNorm after a convolution or linear layer is folded into its weights at export.
FOLDED_AT_EXPORT = frozenset({"batchnorm"})
# Runtime overhead of an interpreter process beside the model (measured peak RSS of the
# agent with a tiny model, LiteRT and onnxruntime on aarch64/x86-64: 30-50 MB).
RUNTIME_OVERHEAD_MB = 50


@dataclass(frozen=True)
class Decision:
    key: str
    value: Any
    reason: str
    overridden: bool = False


@dataclass(frozen=True)
class Plan:
    """The decisions for one model on one profile, and warnings the user must see."""

    profile: str
    model: str
    decisions: tuple[Decision, ...]
    warnings: tuple[str, ...]

    def get(self, key: str) -> Any:
        return next(d.value for d in self.decisions if d.key == key)

    def to_json(self) -> dict[str, Any]:
        return {"profile": self.profile, "model": self.model,
                "decisions": {d.key: {"value": d.value, "reason": d.reason,
                                      "overridden": d.overridden} for d in self.decisions},
                "warnings": list(self.warnings)}


def parse_overrides(items: list[str]) -> dict[str, str]:
    """['precision=fp16', ...] to a dict, refusing unknown keys and values."""
    overrides = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--set {item!r}: write it as key=value.")
        validate_override(key, value)
        overrides[key] = value
    return overrides


def validate_override(key: str, value: str) -> None:
    if key not in CHOICES:
        raise InputError(f"--set {key}: unknown decision; choose one of "
                         f"{', '.join(CHOICES)}.")
    allowed = CHOICES[key]
    if allowed is not None and value not in allowed:
        raise InputError(f"--set {key}={value}: choose one of {', '.join(allowed)}.")
    if key in ("threads", "channel_multiple") and (not value.isdigit() or int(value) < 1):
        raise InputError(f"--set {key}={value}: must be a positive integer.")


def _pick_delegate(profile: Profile, facts: ModelFacts,
                   fmt: str | None = None) -> tuple[str, str, Delegate, str]:
    """(format, runtime, delegate, reason): an accelerator that covers the model, else CPU.

    With `fmt` (the user chose the format) only runtimes that load that format compete.
    """
    runtimes = [r for r in profile.runtimes if fmt is None or fmt in r.formats]
    if not runtimes:
        raise InputError(f"{profile.name} lists no runtime that loads {fmt}; choose one of "
                         f"{', '.join(sorted({f for r in profile.runtimes for f in r.formats}))}.")
    candidates = []
    for runtime in runtimes:
        for name in runtime.delegates:
            delegate = profile.delegate(name)
            if delegate.deprecated:
                continue
            missing = [op for op in facts.op_types - FOLDED_AT_EXPORT
                       if not delegate.accelerates(op)]
            candidates.append((runtime, delegate, missing))
    for runtime, delegate, missing in candidates:
        if delegate.unit in ("gpu", "npu") and not missing:
            unit = f"{profile.gpu.name} GPU" if profile.gpu else delegate.unit.upper()
            reason = (f"the {delegate.name} delegate on the {unit} runs every op of the model; "
                      f"{runtime.name} loads {runtime.formats[0]}")
            return fmt or runtime.formats[0], runtime.name, delegate, reason
    runtime, delegate, _ = next(((r, d, m) for r, d, m in candidates if d.unit == "cpu"),
                                candidates[0])
    cores = "/".join(sorted({c.core for c in profile.cpu.clusters}))
    isa = ", ".join(profile.cpu.isa)
    reason = (f"{runtime.name} with {delegate.name} on the {cores} CPU ({isa}): "
              + (f"the board's runtime for {fmt}" if fmt else "the board's first-listed runtime")
              + ("; no accelerator covers the model's ops" if any(
                  d.unit != "cpu" for _, d, _ in candidates) else ""))
    return fmt or runtime.formats[0], runtime.name, delegate, reason


def _precision(profile: Profile, facts: ModelFacts, delegate: Delegate,
               runtime: str) -> tuple[str, str]:
    if delegate.unit == "gpu" and delegate.name != "tensorrt":
        return "fp16", (f"the {delegate.name} delegate computes in fp16 and dequantizes int8 "
                        "models, so fp16 halves the file with no int8 accuracy risk")
    if delegate.name == "tensorrt":
        if profile.has("int8-tensor-cores") and "int8" in delegate.precisions:
            return "int8", (f"{profile.gpu.arch} has int8 tensor cores: TensorRT int8 with "
                            "calibration is the fastest precision")
        return "fp16", (f"{profile.gpu.arch if profile.gpu else 'this GPU'} has fast fp16 but "
                        "no int8 tensor cores: int8 would not be faster")
    matmul_heavy = facts.conv_share is not None and facts.conv_share < 0.5 and \
        bool({"matmul", "attention", "linear"} & facts.op_types)
    # Dynamic quantization pays off in onnxruntime (MatMulInteger); LiteRT's static int8
    # fully-connected kernels are as accurate on such small MLPs and faster.
    if matmul_heavy and runtime == "onnxruntime" and "dynamic-int8" in delegate.precisions:
        return "dynamic-int8", ("MatMul-heavy model on onnxruntime's CPU provider: dynamic int8 "
                                "weights keep activations exact and run MatMulInteger")
    if "int8" not in delegate.precisions:
        return "fp32", f"{delegate.name} has no int8 kernels on this board"
    if profile.has("i8mm"):
        why = "the CPU has i8mm and dot-product instructions: int8 GEMM runs up to 4x fp32"
    elif profile.has("dotprod"):
        why = "the CPU has dot-product (SDOT) instructions: int8 kernels run ~2x fp32"
    elif profile.has("avx512-vnni") or profile.has("avx-vnni"):
        why = "the CPU has VNNI: int8 dot products in one instruction"
    elif profile.cpu.arch == "aarch64":
        why = ("NEON without dot-product: int8 still cuts memory traffic 4x, with smaller "
               "compute gains than on Armv8.2+ cores")
    else:
        why = "AVX2 int8 kernels beat fp32 for convolutions; verified by measurement"
    return "int8", f"static int8 with calibration: {why}"


def _threads(profile: Profile, delegate: Delegate) -> tuple[int, str, str]:
    clusters = profile.cpu.clusters
    if len(clusters) == 1:
        only = clusters[0]
        return only.count, f"all {only.count} {only.core} cores", \
            f"{only.count} identical {only.core} cores: one thread per core"
    fastest = max(c.max_mhz for c in clusters)
    big = [c for c in clusters if c.max_mhz >= 0.8 * fastest]
    count = sum(c.count for c in big)
    names = " + ".join(f"{c.count}x {c.core}" for c in big)
    little = [c for c in clusters if c not in big]
    reason = (f"big.LITTLE: threads on the big cores ({names}); a thread on a "
              f"{little[0].core} core would make every inference wait for it")
    if delegate.unit != "cpu":
        reason = f"{delegate.name} runs the model; host threads only feed it. " + reason
    return count, f"big cores ({names})", reason


def _memory(profile: Profile, facts: ModelFacts, precision: str) -> tuple[str, str]:
    bytes_per_weight = {"fp32": 4, "fp16": 2, "int8": 1, "dynamic-int8": 1}[precision]
    model_mb = facts.param_count * bytes_per_weight / (1 << 20)
    work_mb = (facts.peak_activation_bytes or 0) * 2 / (1 << 20)
    need = model_mb + work_mb + RUNTIME_OVERHEAD_MB
    budget = profile.ram_mb * profile.memory_budget
    verdict = "ok" if need <= 0.5 * budget else "tight" if need <= budget else "too-large"
    return verdict, (f"needs ~{need:.0f} MB ({model_mb:.1f} MB weights at {precision}, "
                     f"{work_mb:.1f} MB activations, {RUNTIME_OVERHEAD_MB} MB runtime) of a "
                     f"{budget:.0f} MB budget ({profile.memory_budget:.0%} of {profile.ram_mb} MB)")


def make_plan(profile: Profile, facts: ModelFacts,
              overrides: Mapping[str, str] | None = None) -> Plan:
    """Decide how to prepare `facts`' model for `profile`; `overrides` win, with a note."""
    warnings: list[str] = []
    overrides = overrides or {}
    for key, value in overrides.items():
        validate_override(key, value)
    fmt, runtime, delegate, why_runtime = _pick_delegate(profile, facts,
                                                         overrides.get("format"))
    precision, why_precision = _precision(profile, facts, delegate, runtime)
    gpu_like = delegate.unit in ("gpu", "npu")
    decisions: list[Decision] = [
        Decision("format", fmt, why_runtime),
        Decision("runtime", runtime, why_runtime),
        Decision("delegate", delegate.name, why_runtime),
        Decision("precision", precision, why_precision),
    ]
    symmetric_acts = delegate.name == "tensorrt"
    decisions += [
        Decision("quant_scheme", "per_channel_symmetric",
                 f"{delegate.name} takes symmetric int8 weights; one scale per output channel "
                 "keeps accuracy where channel ranges differ"),
        Decision("activation_symmetric", "true" if symmetric_acts else "false",
                 "TensorRT requires symmetric activations" if symmetric_acts else
                 f"{delegate.name} supports activation zero points: asymmetric ranges use all "
                 "256 levels after ReLU"),
        Decision("io_dtype", "int8" if delegate.unit == "npu" else "float32",
                 "the NPU consumes int8 tensors directly" if delegate.unit == "npu" else
                 "float I/O: the application feeds float tensors; the QUANTIZE op at the "
                 "input costs one pass over the input"),
    ]
    no_vnni = profile.cpu.arch == "x86_64" and not (profile.has("avx512-vnni") or
                                                     profile.has("avx-vnni"))
    decisions.append(Decision(
        "reduce_range", "true" if no_vnni and fmt == "onnx" else "false",
        "x86 without VNNI: 7-bit weights avoid VPMADDUBSW saturation (onnxruntime docs)"
        if no_vnni and fmt == "onnx" else
        f"{', '.join(profile.cpu.isa)}: full 8-bit weights do not saturate here"))
    if profile.has("sparsity-2:4"):
        pruning = ("2:4", f"{profile.gpu.arch} tensor cores skip 2:4 sparse weights "
                          "(up to 2x on GEMMs); channel pruning also helps")
    elif delegate.unit == "cpu" or not gpu_like:
        pruning = ("channel", f"dense {delegate.name} kernels on the CPU only speed up when "
                              "channels are physically removed; unstructured zeros only "
                              "shrink the compressed file")
    else:
        pruning = ("channel", f"the {delegate.name} delegate has no sparse kernels: "
                              "only removing channels shortens its work")
    decisions.append(Decision("pruning", *pruning))
    decisions.append(Decision(
        "channel_multiple", profile.preferred_channel_multiple,
        f"{delegate.name} kernels tile channels by {profile.preferred_channel_multiple}: "
        "odd counts after pruning waste lanes and can be slower (Torch-Pruning#38)"))
    threads, cores, why_threads = _threads(profile, delegate)
    decisions += [Decision("threads", threads, why_threads), Decision("cores", cores, why_threads)]
    fit, why_fit = _memory(profile, facts, precision)
    decisions.append(Decision("memory_fit", fit, why_fit))
    if fit == "too-large":
        warnings.append(f"the model does not fit {profile.name}'s memory budget: {why_fit}; "
                        "prune it or pick a smaller model")
    fallback = sorted(op for op in facts.op_types - FOLDED_AT_EXPORT
                      if not delegate.accelerates(op))
    if fallback:
        warnings.append(f"{delegate.name} does not accelerate {', '.join(fallback)}: those ops "
                        "fall back to the CPU reference kernels and may dominate latency")
    for other in profile.delegates:
        if other.deprecated:
            warnings.append(f"{other.name} not used: {other.deprecated}")
    if precision == "int8" and profile.thermal.throttle_c < 60:
        warnings.append(f"{profile.name} throttles at {profile.thermal.throttle_c:.0f} C "
                        "(skin temperature): keep runs short and check throttled_during")
    plan = Plan(profile=profile.name, model=facts.name, decisions=tuple(decisions),
                warnings=tuple(warnings))
    return _apply(plan, overrides)


def _apply(plan: Plan, overrides: Mapping[str, str]) -> Plan:
    decisions = []
    for decision in plan.decisions:
        if decision.key in overrides:
            value: Any = overrides[decision.key]
            if isinstance(decision.value, int):
                value = int(value)
            why = (f"set by user; {decision.reason}" if value == decision.value else
                   f"set by user (planner would choose {decision.value}: {decision.reason})")
            decision = Decision(decision.key, value, why, overridden=True)
        decisions.append(decision)
    return replace(plan, decisions=tuple(decisions))



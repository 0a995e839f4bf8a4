"""The hardware-aware planner: a pure function of (profile, board facts, model facts, overrides).

`make_plan` returns a typed, frozen `Plan` (`edgecomp.hardware.plan`): each decision with a
one-line reason naming the hardware fact behind it. Nothing here names a board.
"""

from __future__ import annotations

from typing import Any, Mapping

from edgecomp.agent.runtimes import label
from edgecomp.errors import InputError
from edgecomp.hardware.facts import BoardFacts, board_arch, cpu_isa
from edgecomp.hardware.plan import MemoryFit, Plan, QuantScheme, json_value, typed_decision
from edgecomp.hardware.profiles import Delegate, Profile
from edgecomp.model.facts import ModelFacts
from edgecomp.vocab import (ActivationDtype, DelegateName, Format, IoDtype, Precision,
                            PruningKind, RuntimeName, Unit)


# BatchNorm after a convolution or linear layer is folded into its weights at export.
FOLDED_AT_EXPORT = frozenset({"batchnorm"})
# Runtime overhead of an interpreter process beside the model (measured peak RSS of the
# agent with a tiny model, LiteRT and onnxruntime on aarch64/x86-64: 30-50 MB).
RUNTIME_OVERHEAD_MB = 50


def _has(profile: Profile, board: BoardFacts, feature: str) -> bool:
    return feature in cpu_isa(profile, board) or (
        profile.gpu is not None and feature in profile.gpu.features)


def _isa_report(profile: Profile, board: BoardFacts, features: tuple[str, ...]) -> str:
    """'' when the board agrees with the profile on `features`, else what it reports."""
    isa = cpu_isa(profile, board)
    gained = sorted(f for f in features if f in isa and not profile.has(f))
    lost = sorted(f for f in features if profile.has(f) and f not in isa)
    if not gained and not lost:
        return ""
    parts = []
    if gained:
        parts.append(f"{', '.join(gained)}, which the {profile.name} profile does not list")
    if lost:
        parts.append(f"no {', '.join(lost)}, which "
                     + ("it lists" if gained else f"the {profile.name} profile lists"))
    return f" ({board.who} reports {', and '.join(parts)})"


def _runtime_label(board: BoardFacts, name: str) -> str:
    version = (board.runtimes or {}).get(name)
    return f"{label(name)} {version}" if version else name


def _installed_runtimes(board: BoardFacts, runtimes: list, chosen: bool
                        ) -> tuple[list, str, str | None]:
    """(runtimes to choose from, why, warning): a runtime the board reports as not
    installed drops out when another it has fits; when none fits, or the user chose the
    runtime, the choice stands with a warning."""
    missing = [r for r in runtimes if board.installed(r.name) is False]
    if not missing:
        return runtimes, "", None
    names = ", ".join(dict.fromkeys(str(r.name) for r in missing))
    have = [r for r in runtimes if r not in missing]
    if have and not chosen:
        shown = ", ".join(dict.fromkeys(_runtime_label(board, r.name) for r in have
                                        if board.installed(r.name)))
        why = f"the board has no {names} installed" + (f"; {shown} is" if shown else "")
        return have, f"{why} ({board.who}): ", None
    return runtimes, "", (f"{board.who} has no {names} installed: install it on the board, "
                          "or the measurement fails")


def _pick_delegate(profile: Profile, board: BoardFacts, facts: ModelFacts,
                   fmt: Format | None, runtime_name: RuntimeName | None = None,
                   delegate_name: DelegateName | None = None
                   ) -> tuple[Format, str, Delegate, str, str | None]:
    """(format, runtime, delegate, reason, warning): an accelerator that covers the model,
    else CPU, in a runtime the board has installed.

    A format, runtime or delegate the user chose narrows the runtimes that compete.
    """
    runtimes = [r for r in profile.runtimes
                if (fmt is None or fmt.value in r.formats)
                and (runtime_name is None or r.name == runtime_name)
                and (delegate_name is None or delegate_name.value in r.delegates)]
    if not runtimes:
        offered = "; ".join(f"{r.name} ({', '.join(r.formats)}; {', '.join(r.delegates)})"
                            for r in profile.runtimes)
        asked = ", ".join(f"{k}={v.value}" for k, v in (("format", fmt), ("runtime", runtime_name),
                                                        ("delegate", delegate_name)) if v)
        raise InputError(f"--set {asked}: no runtime on {profile.name} fits; it offers "
                         f"{offered}.")
    runtimes, why_installed, warning = _installed_runtimes(board, runtimes,
                                                           runtime_name is not None)
    candidates = []
    for runtime in runtimes:
        for name in runtime.delegates:
            delegate = profile.delegate(name)
            if delegate_name is not None and name != delegate_name:
                continue
            if delegate.deprecated and delegate_name is None:
                continue
            missing = [op for op in facts.op_types - FOLDED_AT_EXPORT
                       if not delegate.accelerates(op)]
            candidates.append((runtime, delegate, missing))
    for runtime, delegate, missing in candidates:
        if delegate.unit in (Unit.GPU, Unit.NPU) and not missing:
            unit = f"{profile.gpu.name} GPU" if profile.gpu else str(delegate.unit).upper()
            reason = (f"{why_installed}the {delegate.name} delegate on the {unit} runs every "
                      f"op of the model; {runtime.name} loads {runtime.formats[0]}")
            return Format(fmt or runtime.formats[0]), runtime.name, delegate, reason, warning
    runtime, delegate, _ = next(((r, d, m) for r, d, m in candidates if d.unit == Unit.CPU),
                                candidates[0])
    cores = "/".join(sorted({c.core for c in profile.cpu.clusters})) \
        if board_arch(profile, board) == profile.cpu.arch else f"board's {board.arch}"
    isa = ", ".join(sorted(cpu_isa(profile, board)))
    reason = (why_installed + f"{runtime.name} with {delegate.name} on the {cores} CPU ({isa}): "
              + (f"the board's runtime for {fmt.value}" if fmt else
                 "the board's first-listed runtime")
              + ("; no accelerator covers the model's ops" if any(
                  d.unit != Unit.CPU for _, d, _ in candidates) else ""))
    return Format(fmt or runtime.formats[0]), runtime.name, delegate, reason, warning


def _precision(profile: Profile, board: BoardFacts, facts: ModelFacts, delegate: Delegate,
               runtime: str) -> tuple[Precision, str]:
    if delegate.unit == Unit.GPU and delegate.name != DelegateName.TENSORRT:
        return Precision.FP16, (f"the {delegate.name} delegate computes in fp16 and dequantizes "
                                "int8 models, so fp16 halves the file with no int8 accuracy risk")
    if delegate.name == DelegateName.TENSORRT:
        if profile.has("int8-tensor-cores") and "int8" in delegate.precisions:
            return Precision.INT8, (f"{profile.gpu.arch} has int8 tensor cores: TensorRT int8 "
                                    "with calibration is the fastest precision")
        return Precision.FP16, (f"{profile.gpu.arch if profile.gpu else 'this GPU'} has fast "
                                "fp16 but no int8 tensor cores: int8 would not be faster")
    matmul_heavy = facts.conv_share is not None and facts.conv_share < 0.5 and \
        bool({"matmul", "attention", "linear"} & facts.op_types)
    # Dynamic quantization pays off in onnxruntime (MatMulInteger); LiteRT's static int8
    # fully-connected kernels are as accurate on such small MLPs and faster.
    if matmul_heavy and runtime == RuntimeName.ONNXRUNTIME and \
            "dynamic-int8" in delegate.precisions:
        return Precision.DYNAMIC_INT8, ("MatMul-heavy model on onnxruntime's CPU provider: "
                                        "dynamic int8 weights keep activations exact and run "
                                        "MatMulInteger")
    if "int8" not in delegate.precisions:
        return Precision.FP32, f"{delegate.name} has no int8 kernels on this board"
    arch = board_arch(profile, board)
    if _has(profile, board, "i8mm"):
        why = "the CPU has i8mm and dot-product instructions: int8 GEMM runs up to 4x fp32"
    elif _has(profile, board, "dotprod"):
        why = "the CPU has dot-product (SDOT) instructions: int8 kernels run ~2x fp32"
    elif _has(profile, board, "avx512-vnni") or _has(profile, board, "avx-vnni"):
        why = "the CPU has VNNI: int8 dot products in one instruction"
    elif arch == "aarch64" and _has(profile, board, "neon"):
        why = ("NEON without dot-product: int8 still cuts memory traffic 4x, with smaller "
               "compute gains than on Armv8.2+ cores")
    elif arch == "x86_64" and _has(profile, board, "avx2"):
        why = "AVX2 int8 kernels beat fp32 for convolutions; verified by measurement"
    else:
        why = (f"no SIMD int8 instructions known on this {arch} CPU: int8 still cuts memory "
               "traffic 4x; verified by measurement")
    return Precision.INT8, (f"static int8 with calibration: {why}"
                            + _isa_report(profile, board, ("i8mm", "dotprod", "avx512-vnni",
                                                           "avx-vnni", "neon", "avx2")))


def _threads(profile: Profile, board: BoardFacts, delegate: Delegate) -> tuple[int, str]:
    clusters = profile.cpu.clusters
    described = sum(c.count for c in clusters)
    if board.online_cores and board.online_cores != described:
        return board.online_cores, (
            f"{board.who} reports {board.online_cores} online cores (the "
            f"{profile.name} profile describes {described}): one thread per online core")
    reported = f" ({board.who} reports all {described} online)" if board.online_cores else ""
    if len(clusters) == 1:
        only = clusters[0]
        return only.count, (f"{only.count} identical {only.core} cores{reported}: one thread "
                            "per core")
    fastest = max(c.max_mhz for c in clusters)
    big = [c for c in clusters if c.max_mhz >= 0.8 * fastest]
    names = " + ".join(f"{c.count}x {c.core}" for c in big)
    little = [c for c in clusters if c not in big]
    reason = (f"big.LITTLE: threads on the big cores ({names}); a thread on a "
              f"{little[0].core} core would make every inference wait for it")
    if delegate.unit != Unit.CPU:
        reason = f"{delegate.name} runs the model; host threads only feed it. " + reason
    return sum(c.count for c in big), reason + reported


def _memory(profile: Profile, board: BoardFacts, facts: ModelFacts,
            precision: Precision) -> tuple[MemoryFit, str]:
    bytes_per_weight = {Precision.FP32: 4, Precision.FP16: 2, Precision.INT8: 1,
                        Precision.DYNAMIC_INT8: 1}[precision]
    model_mb = facts.param_count * bytes_per_weight / (1 << 20)
    work_mb = (facts.peak_activation_bytes or 0) * 2 / (1 << 20)
    need = model_mb + work_mb + RUNTIME_OVERHEAD_MB
    ram_mb = board.ram_mb or profile.ram_mb
    budget = ram_mb * profile.memory_budget
    fit = MemoryFit.OK if need <= 0.5 * budget else \
        MemoryFit.TIGHT if need <= budget else MemoryFit.TOO_LARGE
    whose = "" if not board.ram_mb else \
        f" that {board.who} reports; the {profile.name} profile says {profile.ram_mb} MB"
    return fit, (f"needs ~{need:.0f} MB ({model_mb:.1f} MB weights at {precision.value}, "
                 f"{work_mb:.1f} MB activations, {RUNTIME_OVERHEAD_MB} MB runtime) of a "
                 f"{budget:.0f} MB budget ({profile.memory_budget:.0%} of {ram_mb} MB"
                 f"{whose})")


def make_plan(profile: Profile, facts: ModelFacts, overrides: Mapping[str, Any] | None = None,
              *, board: BoardFacts | None = None,
              formats: tuple[Format, ...] | None = None,
              for_format: Format | None = None) -> Plan:
    """Decide how to prepare `facts`' model for `profile`; `overrides` win, with a note.

    `overrides` holds typed values (see `parse_overrides`); text values are parsed here.
    `formats` are those the model's source can become (an ONNX file only becomes ONNX).
    `for_format` plans for that format's runtime (a deploy that builds several formats
    plans each), where a `format` override would say the user chose it.
    """
    board = board or BoardFacts()
    overrides = {key: typed_decision(key, value) for key, value in (overrides or {}).items()}
    fmt = overrides.get("format", for_format)
    only = None
    if fmt is None and formats is not None and len(formats) == 1:
        fmt, only = formats[0], formats[0]
    fmt, runtime, delegate, why_runtime, runtime_warning = _pick_delegate(
        profile, board, facts, fmt, overrides.get("runtime"), overrides.get("delegate"))
    if only is not None:
        why_runtime = f"the model's source only becomes {only.value}; {why_runtime}"
    precision, why_precision = _precision(profile, board, facts, delegate, runtime)
    symmetric_acts = delegate.name == DelegateName.TENSORRT
    arch = board_arch(profile, board)
    no_vnni = arch == "x86_64" and not (
        _has(profile, board, "avx512-vnni") or _has(profile, board, "avx-vnni"))
    isa = ", ".join(sorted(cpu_isa(profile, board)))
    vnni_report = _isa_report(profile, board, ("avx512-vnni", "avx-vnni"))
    if profile.has("sparsity-2:4"):
        pruning = (PruningKind.SPARSE_2_4, f"{profile.gpu.arch} tensor cores skip 2:4 sparse "
                                           "weights (up to 2x on GEMMs); channel pruning also helps")
    elif delegate.unit == Unit.CPU:
        pruning = (PruningKind.CHANNEL, f"dense {delegate.name} kernels on the CPU only speed "
                                        "up when channels are physically removed; unstructured "
                                        "zeros only shrink the compressed file")
    else:
        pruning = (PruningKind.CHANNEL, f"the {delegate.name} delegate has no sparse kernels: "
                                        "only removing channels shortens its work")
    threads, why_threads = _threads(profile, board, delegate)
    chosen: dict[str, tuple[Any, str]] = {
        "format": (fmt, why_runtime),
        "runtime": (RuntimeName(runtime), why_runtime),
        "delegate": (DelegateName(delegate.name), why_runtime),
        "precision": (precision, why_precision),
        "quant_scheme": (QuantScheme.PER_CHANNEL,
                         f"{delegate.name} takes symmetric int8 weights; one scale per output "
                         "channel keeps accuracy where channel ranges differ"),
        "activation_symmetric": (symmetric_acts, "TensorRT requires symmetric activations"
                                 if symmetric_acts else
                                 f"{delegate.name} supports activation zero points: asymmetric "
                                 "ranges use all 256 levels after ReLU"),
        "activation_dtype": (ActivationDtype.UINT8, "onnxruntime's x86 int8 kernels are built "
                             "for uint8 activations with int8 weights (U8S8); int8 activations "
                             "take a slower path (measured on EfficientNet-Lite0: p50 0.56x "
                             "vs 0.93x of fp32)")
        if arch == "x86_64" and fmt == Format.ONNX and delegate.unit == Unit.CPU
        and not symmetric_acts else
        (ActivationDtype.INT8, "int8 activations with int8 weights (S8S8): the fast path of "
                               f"{delegate.name} on this board"),
        "io_dtype": (IoDtype.INT8, "the NPU consumes int8 tensors directly")
        if delegate.unit == Unit.NPU else
        (IoDtype.FLOAT32, "float I/O: the application feeds float tensors; the QUANTIZE op at "
                          "the input costs one pass over the input"),
        "reduce_range": (True, "x86 without VNNI: 7-bit weights avoid VPMADDUBSW saturation "
                               f"(onnxruntime docs){vnni_report}")
        if no_vnni and fmt == Format.ONNX else
        (False, f"{isa}: full 8-bit weights do not saturate here{vnni_report}"),
        "pruning": pruning,
        "channel_multiple": (profile.preferred_channel_multiple,
                             f"{delegate.name} kernels tile channels by "
                             f"{profile.preferred_channel_multiple}: odd counts after pruning "
                             "waste lanes and can be slower (Torch-Pruning#38)"),
        "threads": (threads, why_threads),
    }
    values, reasons = {}, {}
    for key, (value, reason) in chosen.items():
        if key in overrides:
            wanted = overrides[key]
            shown = json_value(value)
            reason = (f"set by user; {reason}" if wanted == value else
                      f"set by user (planner would choose {shown}: {reason})")
            value = wanted
        values[key], reasons[key] = value, reason
    fit, why_fit = _memory(profile, board, facts, values["precision"])
    warnings = _board_warnings(profile, board) + ([runtime_warning] if runtime_warning else [])
    return Plan(profile=profile.name, model=facts.name, **values, reasons=reasons,
                overridden=frozenset(overrides), memory_fit=fit, memory_reason=why_fit,
                throttle_c=profile.thermal.throttle_c, board=board.source,
                warnings=tuple(warnings + _warnings(profile, facts, values, fit, why_fit)))


def _board_warnings(profile: Profile, board: BoardFacts) -> list[str]:
    """What makes the board unlike its profile in a way every decision inherits."""
    warnings = []
    if board.emulated:
        warnings.append(f"{board.who} runs on an emulated CPU ({board.emulated}): its timings "
                        "are not comparable with real hardware, and its ISA is the emulator's, "
                        f"not the board's, so the plan keeps the {profile.name} profile's ISA")
    arch = board_arch(profile, board)
    if arch != profile.cpu.arch:
        warnings.append(f"{board.who} reports the CPU architecture {board.arch}, but the "
                        f"{profile.name} profile describes {profile.cpu.arch}: ISA-dependent "
                        "decisions follow the board; fix the target's profile if it names the "
                        "wrong board")
    return warnings


def _warnings(profile: Profile, facts: ModelFacts, values: dict[str, Any], fit: MemoryFit,
              why_fit: str) -> list[str]:
    warnings = []
    if fit == MemoryFit.TOO_LARGE:
        warnings.append(f"the model does not fit {profile.name}'s memory budget: {why_fit}; "
                        "prune it or pick a smaller model")
    delegate = profile.delegate(values["delegate"].value)
    fallback = sorted(op for op in facts.op_types - FOLDED_AT_EXPORT
                      if delegate is not None and not delegate.accelerates(op))
    if fallback:
        warnings.append(f"{delegate.name} does not accelerate {', '.join(fallback)}: those ops "
                        "fall back to the CPU reference kernels and may dominate latency")
    for other in profile.delegates:
        if other.deprecated:
            warnings.append(f"{other.name} not used: {other.deprecated}")
    if values["precision"] == Precision.INT8 and profile.thermal.throttle_c < 60:
        warnings.append(f"{profile.name} throttles at {profile.thermal.throttle_c:.0f} C "
                        "(skin temperature): keep runs short and check throttled_during")
    return warnings

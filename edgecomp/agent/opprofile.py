"""Per-op profiling on the board (`measure --profile-ops`), in a pass apart from the timed
runs: the runtime's own profiler says which node took how long and what ran it.

- onnxruntime: a second session with `SessionOptions.enable_profiling`; its trace JSON has
  one event per node and run with the op type, the node's name and the execution provider.
- LiteRT: its Python API (ai-edge-litert 2.3) has no op profiling: the Interpreter takes
  no profiler and `CompiledModel` exposes none. The library in the same wheel,
  libLiteRt.so, has a stable C API with one (`LiteRtCompiledModelGetProfiler`), switched
  on by the runtime option `enable_profiling`; it is driven here through ctypes with
  LiteRT's default CPU path (XNNPACK), whose kernels then report their own times.
  Its event layout was checked against ai-edge-litert 2.3 only, so other versions get a
  reason instead of numbers that could be read from the wrong offsets.

Each node's first run is left out (one-time packing and allocation); a node's time is the
median of the others (a profiler's timer adds outliers; medians keep them out). Standard library only; numpy and the runtimes come from the caller.
"""

import ctypes
import json
import os
import shutil
import tempfile
import time

from .failure import first_line
from .protocol import OpProfile, OpTime

ORT_SOURCE = "onnxruntime session profiling (SessionOptions.enable_profiling)"
LITERT_SOURCE = "LiteRT C API profiler (libLiteRt.so, CPU accelerator: XNNPACK)"
LITERT_CHECKED = ("2.3.",)  # ai-edge-litert versions whose profiler event layout was checked


def profile_ops(runtime, arrays, *, runs, seconds):
    """The runtime's per-op times over at least `runs` inferences and `seconds`."""
    try:
        if runtime.name == "onnxruntime":
            return _profile_onnxruntime(runtime, arrays, runs, seconds)
        return _profile_litert(runtime, arrays, runs, seconds)
    except Exception as exc:  # a profiler failing must not cost the measurement
        return OpProfile(source=_source(runtime), runs=0, ops=(),
                         reason="the profiling pass failed: %s" % first_line(exc))


def _source(runtime):
    return ORT_SOURCE if runtime.name == "onnxruntime" else LITERT_SOURCE


def _repeat(run, runs, seconds):
    """Run `run()` at least `runs` times and at least `seconds` (at most 10 × `runs`: the
    profilers keep every event); the count."""
    done, start = 0, time.perf_counter()
    while done < runs or (time.perf_counter() - start < seconds and done < 10 * runs):
        run()
        done += 1
    return done


def _aggregate(events):
    """OpTimes from (op_type, name, executor, accelerated, microseconds) events, one per
    node and run: the median per node, its first run left out where it ran more than once."""
    by_node = {}
    for op_type, name, executor, accelerated, micros in events:
        by_node.setdefault((op_type, name, executor, accelerated), []).append(micros)
    ops = []
    for (op_type, name, executor, accelerated), times in by_node.items():
        kept = sorted(times[1:] if len(times) > 1 else times)
        middle = len(kept) // 2
        median = kept[middle] if len(kept) % 2 else (kept[middle - 1] + kept[middle]) / 2.0
        ops.append(OpTime(op_type=op_type, name=name, executor=executor,
                          accelerated=accelerated, ms=median / 1000.0))
    return tuple(sorted(ops, key=lambda op: -op.ms))


# ---------------------------------------------------------------------------------------
# onnxruntime


def _profile_onnxruntime(runtime, arrays, runs, seconds):
    import onnxruntime as ort

    folder = tempfile.mkdtemp(prefix="edgecomp-ort-profile-")
    try:
        options = ort.SessionOptions()
        options.intra_op_num_threads = runtime.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(folder, "ort")
        session = ort.InferenceSession(runtime.path, sess_options=options,
                                       providers=list(runtime.providers))
        feed = dict((v.name, a) for v, a in zip(session.get_inputs(), arrays))
        count = _repeat(lambda: session.run(None, feed), runs, seconds)
        with open(session.end_profiling()) as trace:
            events = json.load(trace)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    chosen = runtime.executed
    nodes = []
    for event in events:
        name = event.get("name", "")
        args = event.get("args") or {}
        if event.get("cat") != "Node" or not name.endswith("_kernel_time"):
            continue  # fences, session and model-load events
        provider = args.get("provider", "unknown")
        nodes.append((args.get("op_name", "unknown"), name[:-len("_kernel_time")], provider,
                      provider == chosen, float(event.get("dur", 0))))
    return OpProfile(source=ORT_SOURCE, runs=count, ops=_aggregate(nodes),
                     threads=runtime.threads)


# ---------------------------------------------------------------------------------------
# LiteRT through libLiteRt.so's C API

# LiteRtProfilerEventType values (litert/c/litert_profiler_event.h).
OPERATOR_INVOKE = 2  # a node run by the interpreter's builtin kernels
DELEGATE_OPERATOR_INVOKE = 4  # a delegate's internal op
DELEGATE_PROFILED_OPERATOR_INVOKE = 8  # a delegate's op, profiled as an operator


class _MemoryUsage(ctypes.Structure):
    _fields_ = [("mem_footprint_kb", ctypes.c_int64), ("total_allocated_bytes", ctypes.c_int64),
                ("in_use_allocated_bytes", ctypes.c_int64)]


class _Event(ctypes.Structure):
    """ProfiledEventData: 104 bytes on 64-bit, checked against ai-edge-litert 2.3."""

    _fields_ = [("tag", ctypes.c_char_p), ("event_type", ctypes.c_int),
                ("start_us", ctypes.c_uint64), ("elapsed_us", ctypes.c_uint64),
                ("begin_mem", _MemoryUsage), ("end_mem", _MemoryUsage),
                ("metadata1", ctypes.c_uint64), ("metadata2", ctypes.c_uint64),
                ("source", ctypes.c_int)]


_RELEASE = ctypes.CFUNCTYPE(None, ctypes.c_void_p)
_KEEP = []  # option payloads and callbacks LiteRT holds pointers to, for the process's life


def _litert_unavailable(runtime):
    """Why this board's LiteRT cannot be profiled here, or None."""
    from .runtimes import runtime_version

    if runtime.name != "ai_edge_litert":
        return ("%s has no op profiler reachable from Python; install ai-edge-litert 2.3 on "
                "the board for LiteRT op profiles" % runtime.name)
    version = runtime_version("ai_edge_litert") or "unknown"
    if not version.startswith(LITERT_CHECKED):
        return ("LiteRT's Python API has no op profiling, and its C API profiler was checked "
                "with ai-edge-litert 2.3 only (this board has %s)" % version)
    if runtime.delegate not in ("auto", "xnnpack"):
        return ("LiteRT's C API profiler runs its default CPU path (XNNPACK), not the "
                "measured --delegate %s" % runtime.delegate)
    return None


def _profile_litert(runtime, arrays, runs, seconds):
    reason = _litert_unavailable(runtime)
    if reason is not None:
        return OpProfile(source=LITERT_SOURCE, runs=0, ops=(), reason=reason)
    import ai_edge_litert

    lib = ctypes.CDLL(os.path.join(os.path.dirname(ai_edge_litert.__file__), "libLiteRt.so"))
    handle = ctypes.c_void_p

    def check(status, what):
        if status != 0:
            raise RuntimeError("LiteRT %s returned status %d" % (what, status))

    # Nothing below is freed: the agent process ends after this command, and which side
    # owns options and buffers changed between LiteRT versions (a double free crashes).
    env, model, options, compiled = handle(), handle(), handle(), handle()
    check(lib.LiteRtCreateEnvironment(0, None, ctypes.byref(env)), "CreateEnvironment")
    check(lib.LiteRtCreateModelFromFile(env, runtime.path.encode(), ctypes.byref(model)),
          "CreateModelFromFile")
    check(lib.LiteRtCreateOptions(ctypes.byref(options)), "CreateOptions")
    check(lib.LiteRtSetOptionsHardwareAccelerators(options, 1), "SetOptionsHardwareAccelerators")
    payload = ctypes.create_string_buffer(b"enable_profiling = true\n")
    release = _RELEASE(lambda address: None)
    _KEEP.extend([payload, release])
    opaque = handle()
    check(lib.LiteRtCreateOpaqueOptions(b"runtime_options_string", ctypes.cast(payload, handle),
                                        release, ctypes.byref(opaque)), "CreateOpaqueOptions")
    check(lib.LiteRtAddOpaqueOptions(options, opaque), "AddOpaqueOptions")
    check(lib.LiteRtCreateCompiledModel(env, model, options, ctypes.byref(compiled)),
          "CreateCompiledModel")
    profiler = handle()
    check(lib.LiteRtCompiledModelGetProfiler(compiled, ctypes.byref(profiler)), "GetProfiler")
    if not profiler.value:
        raise RuntimeError("LiteRT gave no profiler for the compiled model")
    inputs, outputs = _litert_buffers(lib, env, model, compiled, arrays, check)
    in_array = (handle * len(inputs))(*inputs)
    out_array = (handle * len(outputs))(*outputs)

    def invoke():
        check(lib.LiteRtRunCompiledModel(compiled, ctypes.c_size_t(0),
                                         ctypes.c_size_t(len(inputs)), in_array,
                                         ctypes.c_size_t(len(outputs)), out_array),
              "RunCompiledModel")

    check(lib.LiteRtStartProfiler(profiler), "StartProfiler")
    count = _repeat(invoke, runs, seconds)
    check(lib.LiteRtStopProfiler(profiler), "StopProfiler")
    total = ctypes.c_int()
    check(lib.LiteRtGetNumProfilerEvents(profiler, ctypes.byref(total)), "GetNumProfilerEvents")
    events = (_Event * max(total.value, 1))()
    check(lib.LiteRtGetProfilerEvents(profiler, total, events), "GetProfilerEvents")
    names = _litert_node_names(runtime)
    nodes = []
    for event in events[:total.value]:
        tag = (event.tag or b"?").decode("utf-8", "replace")
        if event.event_type in (DELEGATE_OPERATOR_INVOKE, DELEGATE_PROFILED_OPERATOR_INVOKE):
            nodes.append((tag, "xnnpack:%d" % event.metadata1, "xnnpack", True,
                          float(event.elapsed_us)))
        elif event.event_type == OPERATOR_INVOKE and "delegate" not in tag.lower():
            index = int(event.metadata1)
            nodes.append((tag, names.get(index, "node:%d" % index), "cpu", False,
                          float(event.elapsed_us)))
    return OpProfile(source=LITERT_SOURCE, runs=count, ops=_aggregate(nodes))


def _litert_buffers(lib, env, model, compiled, arrays, check):
    """Input and output buffers of signature 0, the inputs filled with `arrays` (matched in
    order where the byte sizes agree; zeros otherwise)."""
    handle = ctypes.c_void_p
    signature = handle()
    check(lib.LiteRtGetModelSignature(model, ctypes.c_size_t(0), ctypes.byref(signature)),
          "GetModelSignature")
    counts = []
    for what in ("Inputs", "Outputs"):
        count = ctypes.c_size_t()
        check(getattr(lib, "LiteRtGetNumSignature" + what)(signature, ctypes.byref(count)),
              "GetNumSignature" + what)
        counts.append(count.value)
    made = []
    for kind, count in zip(("Input", "Output"), counts):
        buffers = []
        for index in range(count):
            requirements, tensor, buffer = handle(), handle(), handle()
            check(getattr(lib, "LiteRtGetCompiledModel%sBufferRequirements" % kind)(
                compiled, ctypes.c_size_t(0), ctypes.c_size_t(index),
                ctypes.byref(requirements)), "Get%sBufferRequirements" % kind)
            check(getattr(lib, "LiteRtGetSignature%sTensorByIndex" % kind)(
                signature, ctypes.c_size_t(index), ctypes.byref(tensor)),
                "GetSignature%sTensorByIndex" % kind)
            # LiteRtRankedTensorType is handed back as LiteRT filled it: no layout assumed.
            tensor_type = ctypes.create_string_buffer(1024)
            check(lib.LiteRtGetRankedTensorType(tensor, tensor_type), "GetRankedTensorType")
            check(lib.LiteRtCreateManagedTensorBufferFromRequirements(
                env, tensor_type, requirements, ctypes.byref(buffer)), "CreateTensorBuffer")
            buffers.append(buffer)
        made.append(buffers)
    for buffer, array in zip(made[0], arrays):
        size, address = ctypes.c_size_t(), handle()
        check(lib.LiteRtGetTensorBufferPackedSize(buffer, ctypes.byref(size)), "PackedSize")
        if array.nbytes != size.value:
            continue
        check(lib.LiteRtLockTensorBuffer(buffer, ctypes.byref(address), 1), "LockTensorBuffer")
        ctypes.memmove(address, array.ctypes.data, size.value)
        check(lib.LiteRtUnlockTensorBuffer(buffer), "UnlockTensorBuffer")
    return made[0], made[1]


def _litert_node_names(runtime):
    """Node index -> the name of its first output tensor (TFLite nodes have no names)."""
    try:
        tensors = dict((t["index"], t["name"]) for t in runtime.interpreter.get_tensor_details())
        return dict((op["index"], tensors.get(op["outputs"][0], "node:%d" % op["index"]))
                    for op in runtime.interpreter._get_ops_details() if len(op["outputs"]))
    except Exception:  # names are a nicety; the op types and times stand without them
        return {}

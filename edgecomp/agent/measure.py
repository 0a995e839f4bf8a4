"""The agent's commands: `info`, `measure` (timings, memory, power) and `run` (outputs)."""

import os
import platform
import time

from . import device
from .energy import measure_power
from .failure import AgentError, first_line
from .lock import BoardLock, default_lock_path
from .opprofile import profile_ops
from .power import make_probe
from .progress import Reporter, expected_runs
from .protocol import AGENT_VERSION, AgentInfo, MeasureReport, RunReport, Warmup
from .runtimes import (agent_runtimes, format_runtimes, import_runtime, load_model,
                       open_runtime, ort_available_providers, runtime_available,
                       runtime_facts, runtime_version)
from .stats import latency_stats
from .tensors import from_model_dtype, make_inputs, sample_inputs, stored_inputs


def command_info(args):
    runtimes = dict((facts.name, runtime_version(facts.name)
                     if runtime_available(facts.name) else None) for facts in agent_runtimes())
    missing = []
    for suffix, names in sorted(format_runtimes().items()):
        if not any(runtimes[n] for n in names):
            missing.append("no runtime for %s models: pip install %s"
                           % (suffix, runtime_facts(names[0]).package))
    return AgentInfo(agent_version=AGENT_VERSION, python=platform.python_version(),
                     arch=platform.machine() or None, cpu_model=device.cpu_model(),
                     online_cores=device.usable_cores(), runtimes=runtimes,
                     execution_providers=ort_available_providers(),
                     device=device.device_state(), missing=tuple(missing))


def thread_count(requested):
    """The threads to run with: as asked, capped at the CPUs this process may use.

    More threads than cores only adds contention (a profile may plan for a bigger board).
    """
    cores = device.usable_cores()
    return min(requested or cores, cores)


def _timed_runs(runtime, arrays, args):
    """(first inference ms, Warmup, samples ms) of the artifact, per the options; each loop
    reports its progress (`edgecomp.agent.progress`), its length guessed from the pace."""
    runtime.set_inputs(arrays)
    start = time.perf_counter()
    runtime.invoke()
    first_s = time.perf_counter() - start
    warm_runs, warm_start = 0, time.perf_counter()
    report = Reporter("warm-up")
    per_run = first_s
    while warm_runs < args.warmup_runs or time.perf_counter() - warm_start < args.warmup_seconds:
        report(warm_runs, expected_runs(args.warmup_runs, args.warmup_seconds, warm_runs,
                                        time.perf_counter() - warm_start, per_run), per_run)
        runtime.set_inputs(arrays)
        runtime.invoke()
        warm_runs += 1
        per_run = (time.perf_counter() - warm_start) / warm_runs
    warmup = Warmup(runs=warm_runs, seconds=time.perf_counter() - warm_start)
    if warm_runs:
        report(warm_runs, warm_runs)
    samples, timed_start = [], time.perf_counter()
    report = Reporter("timed runs")
    while len(samples) < args.runs or time.perf_counter() - timed_start < args.seconds:
        report(len(samples), expected_runs(args.runs, args.seconds, len(samples),
                                           time.perf_counter() - timed_start, per_run),
               per_run)
        runtime.set_inputs(arrays)
        start = time.perf_counter()
        runtime.invoke()
        samples.append((time.perf_counter() - start) * 1000.0)
        per_run = (time.perf_counter() - timed_start) / len(samples)
    report(len(samples), len(samples))
    runtime.get_outputs()
    return first_s * 1000.0, warmup, samples


def command_measure(args):
    threads = thread_count(args.threads)
    runtime = open_runtime(args.model, args.runtime, threads, args.delegate,
                           args.on_missing_delegate)
    probe = make_probe(args.power_probe)
    with BoardLock(args.lock or default_lock_path(), args.lock_timeout,
                   os.path.basename(args.model)) as lock:
        before = device.device_state()
        # Import the runtime before the idle reading, so growth counts the model, not code.
        import_runtime(runtime)
        idle_rss = device.proc_status_mb("VmRSS")
        start = time.perf_counter()
        load_model(runtime)
        load_ms = (time.perf_counter() - start) * 1000.0
        try:
            arrays = make_inputs(runtime.inputs(), args.seed, args.input_npz)
            first_ms, warmup, samples = _timed_runs(runtime, arrays, args)
            power = measure_power(runtime, arrays, probe,
                                  args.power_seconds if args.power_seconds is not None
                                  else args.seconds, args.power_hz, args.power_idle_seconds)
            profile = profile_ops(runtime, arrays, runs=args.profile_runs,
                                  seconds=args.profile_seconds) if args.profile_ops else None
        except AgentError:
            raise
        except Exception as exc:  # a runtime failing mid-run must still answer in JSON
            raise AgentError("%s failed while running %s: %s" % (
                runtime.name, os.path.basename(args.model), first_line(exc)),
                "measure_failed")
        after = device.device_state()
    peak = device.peak_rss_mb()
    return MeasureReport(
        agent_version=AGENT_VERSION, python=platform.python_version(), runtime=runtime.name,
        runtime_version=runtime_version(runtime.name), delegate=runtime.executed,
        execution_providers=runtime.providers, threads=runtime.threads,
        threads_requested=args.threads, load_ms=load_ms, first_inference_ms=first_ms,
        warmup=warmup, samples_ms=tuple(samples), latency_ms=latency_stats(samples),
        idle_rss_mb=idle_rss, peak_rss_mb=peak,
        rss_growth_mb=None if idle_rss is None or peak is None else peak - idle_rss,
        inputs=runtime.inputs(), outputs=runtime.outputs(), device_before=before,
        device_after=after, throttle_c=args.throttle_c,
        throttled_during=device.throttled_during(before, after, args.throttle_c),
        lock_wait_s=lock.waited, power=power, fallback_ops=runtime.fallback_ops,
        delegate_requested=runtime.requested, fallback=runtime.fallback, profile=profile)


def command_run(args):
    """Run every stored sample through the model; write each output stacked (`out0`, ...)."""
    import numpy as np
    runtime = open_runtime(args.model, args.runtime, thread_count(args.threads), args.delegate,
                           args.on_missing_delegate)
    load_model(runtime)
    specs_in, specs_out = runtime.inputs(), runtime.outputs()
    try:
        arrays = stored_inputs(args.input_npz, specs_in)
    except (OSError, KeyError, ValueError) as exc:
        raise AgentError("cannot read inputs from %s: %s" % (args.input_npz, first_line(exc)),
                         "bad_args")
    count = len(arrays[0]) if arrays else 0
    outputs = [[] for _ in specs_out]
    done = 0
    report, start = Reporter("samples"), time.perf_counter()
    try:
        for done in range(count):
            report(done, count, (time.perf_counter() - start) / done if done else None)
            runtime.set_inputs(sample_inputs(arrays, specs_in, done))
            runtime.invoke()
            for store, value, spec in zip(outputs, runtime.get_outputs(), specs_out):
                store.append(from_model_dtype(np.asarray(value), spec))
    except Exception as exc:  # a shape mismatch or runtime failure, reported as JSON
        raise AgentError("%s failed on sample %d: %s" % (runtime.name, done,
                                                         first_line(exc)), "measure_failed")
    if count:
        report(count, count)
    tmp = args.output_npz + ".tmp.npz"
    np.savez(tmp, **dict(("out%d" % k, np.stack(values) if values else
                          np.zeros((0,), np.float32)) for k, values in enumerate(outputs)))
    os.replace(tmp, args.output_npz)
    return RunReport(count=count, runtime=runtime.name,
                     runtime_version=runtime_version(runtime.name), delegate=runtime.executed,
                     execution_providers=runtime.providers, threads=runtime.threads)


COMMANDS = {"info": command_info, "measure": command_measure, "run": command_run}

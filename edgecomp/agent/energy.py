"""Energy per inference: an idle baseline, then a pass invoking the model while sampling."""

import subprocess
import threading
import time

from .protocol import PowerReport


def integrate_energy_j(samples, idle_w):
    """Joules above idle over (time s, watts) samples, by the trapezoid rule."""
    joules = 0.0
    for (t0, w0), (t1, w1) in zip(samples, samples[1:]):
        joules += ((w0 - idle_w) + (w1 - idle_w)) / 2.0 * (t1 - t0)
    return joules


def sample_power(probe, period, *, duration=None, stop=None):
    """(perf_counter time, watts) readings every `period` s, for `duration` or until `stop`."""
    samples = []
    end = time.perf_counter() + (duration or 0.0)
    while (stop is None and time.perf_counter() < end) or (stop is not None and
                                                           not stop.is_set()):
        samples.append((time.perf_counter(), probe.read_watts()))
        time.sleep(period)
    return samples


def measure_power(runtime, arrays, probe, seconds, rate_hz, idle_seconds):
    """Energy per inference from a separate power pass; a probe failure is data, not a crash."""
    try:
        return _power_pass(runtime, arrays, probe, seconds, rate_hz, idle_seconds)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return PowerReport(probe=probe.name, energy_mj=None,
                           reason="reading the %s probe failed: %s" % (probe.name, exc))
    finally:
        probe.close()


def _power_pass(runtime, arrays, probe, seconds, rate_hz, idle_seconds):
    """Energy per inference = integral of (P - idle) over the pass / iterations."""
    if not probe.available():
        return PowerReport(probe=probe.name, energy_mj=None,
                           reason=probe.reason or "power probe %s is not readable" % probe.name)
    period = 1.0 / rate_hz
    idle_started = time.time()
    idle = sample_power(probe, period, duration=idle_seconds)
    idle_window = (idle_started, time.time())
    if not idle:
        idle = [(time.perf_counter(), probe.read_watts())]
    idle_w = sum(w for _, w in idle) / len(idle)
    stop = threading.Event()
    box = {}
    sampler = threading.Thread(
        target=lambda: box.setdefault("s", sample_power(probe, period, stop=stop)))
    runtime.set_inputs(arrays)
    start = time.perf_counter()
    wall_start = time.time()
    sampler.start()
    iterations = 0
    while time.perf_counter() - start < seconds:
        runtime.invoke()
        iterations += 1
    stop.set()
    sampler.join()
    end = time.perf_counter()
    samples = [(t, w) for t, w in box.get("s", []) if start <= t <= end]
    if len(samples) < 2 or iterations == 0:
        return PowerReport(probe=probe.name, energy_mj=None, idle_w=idle_w,
                           idle_samples=len(idle), samples=len(samples), iterations=iterations,
                           reason="too few power samples (%d) during the pass" % len(samples))
    duration = samples[-1][0] - samples[0][0]
    return PowerReport(
        probe=probe.name, idle_w=idle_w, avg_w=sum(w for _, w in samples) / len(samples),
        idle_samples=len(idle), samples=len(samples),
        rate_hz=(len(samples) - 1) / duration if duration > 0 else None,
        iterations=iterations, seconds=end - start, idle_window=idle_window,
        pass_window=(wall_start, wall_start + end - start),
        energy_mj=integrate_energy_j(samples, idle_w) / iterations * 1000.0, reason=None)

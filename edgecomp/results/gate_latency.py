"""Latency checks of the regression gate: p50 and p90 of a candidate run against the
baseline's, artifact by artifact (`gate.judge` calls `latency_checks`). Each statistic is
judged on the evidence it has: p50 may be judged while p90 cannot, and the other way round.

The steps:

1. Each run's measurement is stable or not (`results.stability`, the figure every
   measurement carries, with gate.toml's `[stability]` limits): not throttled, at least
   `min_samples` samples, p90 at most `max_tail_ratio` times its p50, and the medians of
   its ten consecutive segments within `max_drift` of each other. On a shared machine
   another process taking a core looks like either: a share of iterations several times
   slower throughout the run (a heavy tail), or a burst that shifts part of the run
   (drift). A throttled board is never judged (`unstable`: measure again).
2. Where both runs were also timed in two or more interleaved rounds (deploy, bench of
   several artifacts, `--repeat`), each round an agent process of its own, a run has
   independent values of the statistic, one per process: each round's, and its
   measurement's where that was stable. They are the evidence (step 3); the raw samples of
   one process are not, since everything within a process shares that process's
   conditions: a run of the demo's int8 artifact on a loaded CI machine measured 30 %
   slower at p50 and p90 while its fp32 neighbour, timed in the same minute, did not move;
   on a busy 2-core machine the same artifact's processes differ by 20 to 30 %, whole
   benches of several seconds landing in the slow part.
3. Noise on a board only ever slows a process down (another process, a lower clock, a
   busier cache); it never makes one faster than the artifact can run. So the candidate's
   fastest process is the best evidence of what it costs: `fail` when it is slower beyond
   the limit than the baseline's slowest process (every candidate process beyond every
   baseline process), `pass` when it is within the limit of the baseline's median
   process, `inconclusive` (could not judge) in between. A regression cannot hide behind
   one fast process; a slow process cannot make a re-run fail.
4. Without rounds on both sides, a stable pair of measurements is judged on its raw
   samples: the change is the candidate's statistic over the baseline's, minus one; its
   interval comes from a circular block bootstrap (each run resampled in blocks of √n
   consecutive samples, the [alpha, 1 - alpha] percentiles of the resampled change bound
   it; blocks, because iterations of one run are autocorrelated: caches, clock frequency,
   the scheduler, other processes coming and going in bursts); a one-sided Mann–Whitney U
   test must reject at `alpha`. `fail` when the test rejects and the whole interval lies
   above the limit; `pass` when the test does not reject or the whole interval lies at or
   below it; `inconclusive` otherwise. An unstable measurement without rounds is
   `unstable`, neither pass nor fail (measure again).

The tolerance is what matters. With thousands of samples a run resolves shifts well under
a percent, and two runs of the same artifact really do differ, by a few percent on a quiet
board and by a fifth or more on a busy one: the process lands on other cores, memory is
laid out differently, the machine is differently loaded. Those conditions are shared by
every sample of a run, so no statistic computed within runs sees them, and a significance
test alone flags tiny real-but-irrelevant shifts. The test and the interval only keep
noise from being called a regression when samples are few or wild; `max_increase` decides
what is relevant.

Measured on a shared 2-core x86 machine (the demo CNN's LiteRT artifacts, 0.008 to
0.03 ms an inference, 0.3 s runs in three rounds). Once, quiet: 84 re-measurements gated
against their deploy moved p50 by at most 4 % and p90 by at most 17 %. Later, on the same
kind of machine, six series of ten re-runs each (four of them with a busy loop on every
core): whole benches of several seconds landed in a slow stretch, so that a re-run's
fastest process was up to 23 % slower at p50 than the baseline's median process, and up to
31 % at p90 (a baseline whose rounds happened to run without a tail). With 15 % and 25 %,
4 of those 60 re-runs failed and 3 more could not be judged; with 25 % for p50 and 40 %
for p90 all 60 passed (the last two series measured after these limits were chosen), and
the demo with twice its channels, benched between them, failed all 60 times (every
process at least 2.3x the baseline's slowest). Hence 25 % and 40 %; a board quieter than
a shared CI runner can take tighter ones (gate.toml).
"""

from __future__ import annotations

import math

import numpy as np

from edgecomp.results.record import ResultRecord
from edgecomp.results.verdicts import Check, GateConfig, StabilityLimits, Verdict
from edgecomp.results.stability import sample_reasons
from edgecomp.results.units import duration_text


def instability(record: ResultRecord, limits: StabilityLimits) -> str | None:
    """Why a run's samples cannot be judged, or None when they can (the same figure as
    every measurement's, `results.stability`, with the gate's limits)."""
    if _throttled(record):
        return "the board throttled during the run"
    reasons = sample_reasons(record.samples_ms, min_samples=limits.min_samples,
                             max_tail_ratio=limits.max_tail_ratio, max_drift=limits.max_drift)
    return reasons[0] if reasons else None


def _throttled(record: ResultRecord) -> bool:
    return record.device is not None and bool(record.device.throttled_during)


def block_bootstrap(samples: np.ndarray, quantiles: list[float], *, resamples: int,
                    rng: np.random.Generator) -> np.ndarray:
    """The quantiles of `resamples` circular block-bootstrap resamples, (resamples, q).

    Written here: scipy.stats.bootstrap resamples single observations only, which is
    what autocorrelated samples must not get.
    """
    n = len(samples)
    block = max(1, round(math.sqrt(n)))
    blocks = -(-n // block)
    offsets = np.arange(block)
    out = np.empty((resamples, len(quantiles)))
    step = max(1, 2_000_000 // (blocks * block))  # bounds memory for 100k-sample runs
    for first in range(0, resamples, step):
        rows = min(step, resamples - first)
        starts = rng.integers(0, n, size=(rows, blocks))
        index = ((starts[:, :, None] + offsets) % n).reshape(rows, -1)[:, :n]
        out[first:first + rows] = np.quantile(samples[index], quantiles, axis=1).T
    return out


RESAMPLES = 1000


def latency_checks(base: ResultRecord, now: ResultRecord, config: GateConfig, *,
                   artifact: str) -> list[Check]:
    """p50 and p90 of the candidate's raw samples against the baseline's (module doc)."""
    limits = config.latency
    stats = (("latency p50", limits.max_increase), ("latency p90", limits.max_increase_p90))
    lacking = [side for side, r in (("baseline", base), ("candidate", now)) if not r.samples_ms]
    if lacking:
        return [Check(artifact, name, Verdict.MISSING,
                      f"the {' and '.join(lacking)} kept no raw samples to test.", limit=limit)
                for name, limit in stats]
    b = np.asarray(base.samples_ms, dtype=float)
    c = np.asarray(now.samples_ms, dtype=float)
    old, new = np.quantile(b, [0.5, 0.9]), np.quantile(c, [0.5, 0.9])
    conditions = _conditions(base, now)
    why = {side: reason for side, r in (("baseline", base), ("candidate", now))
           if (reason := instability(r, config.stability))}
    throttled = _throttled(base) or _throttled(now)
    on_samples = None
    checks = []
    for i, (name, limit) in enumerate(stats):
        shift = (f"{duration_text(old[i])} -> {duration_text(new[i])} "
                 f"({new[i] / old[i] - 1:+.1%})")
        before = [] if throttled else _process_values(base, i, old[i], "baseline" not in why)
        after = [] if throttled else _process_values(now, i, new[i], "candidate" not in why)
        if before and after:
            checks.append(_processes_check(
                before, after, name, limit, artifact=artifact, conditions=conditions,
                measured=(float(old[i]), float(new[i])),
                why=f"{shift} in the measurements" + (
                    f", too unstable to count: {_reasons(why)}" if why else "")))
        elif why:
            checks.append(Check(
                artifact, name, Verdict.UNSTABLE,
                f"{shift} not judged, too unstable: {_reasons(why)}{conditions}.",
                baseline=float(old[i]), candidate=float(new[i]),
                change=float(new[i] / old[i] - 1), unit="ms", limit=limit))
        else:
            on_samples = on_samples or _on_samples(b, c, limits.alpha)
            checks.append(_samples_check(on_samples, i, name, limit, old[i], new[i],
                                         alpha=limits.alpha, artifact=artifact,
                                         conditions=conditions))
    return checks


def _reasons(why: dict[str, str]) -> str:
    return "; ".join(f"{side}: {reason}" for side, reason in why.items())


def _on_samples(b: np.ndarray, c: np.ndarray, alpha: float) -> tuple[float, np.ndarray,
                                                                     np.ndarray]:
    """Step 4 for both statistics: Mann-Whitney's p and the interval's bounds."""
    from scipy.stats import mannwhitneyu

    p_value = float(mannwhitneyu(c, b, alternative="greater").pvalue)
    rng = np.random.default_rng(0)  # the same records always get the same verdict
    changes = (block_bootstrap(c, [0.5, 0.9], resamples=RESAMPLES, rng=rng)
               / block_bootstrap(b, [0.5, 0.9], resamples=RESAMPLES, rng=rng) - 1)
    low, high = np.quantile(changes, [alpha, 1 - alpha], axis=0)
    return p_value, low, high


def _samples_check(on_samples: tuple[float, np.ndarray, np.ndarray], i: int, name: str,
                   limit: float, old: float, new: float, *, alpha: float, artifact: str,
                   conditions: str) -> Check:
    """Step 4: one statistic judged on the two measurements' raw samples."""
    p_value, low, high = on_samples
    change = float(new / old - 1)
    verdict, word = _verdict(fails=p_value < alpha and low[i] > limit,
                             passes=p_value >= alpha or high[i] <= limit)
    return Check(
        artifact, name, verdict,
        f"{duration_text(old)} -> {duration_text(new)} ({change:+.1%}, interval "
        f"{low[i]:+.1%} to {high[i]:+.1%}, "
        f"Mann-Whitney p={p_value:.2g}): {word} the limit {limit:+.0%}{conditions}.",
        baseline=float(old), candidate=float(new), change=change, unit="ms", limit=limit,
        interval=(float(low[i]), float(high[i])), p_value=p_value)


def _processes_check(before: list[float], after: list[float], name: str, limit: float, *,
                     artifact: str, why: str, conditions: str,
                     measured: tuple[float, float]) -> Check:
    """Step 3: one statistic judged on the runs' agent processes (module doc)."""
    typical, slowest, fastest = float(np.median(before)), max(before), min(after)
    change = float(np.median(after) / typical - 1)
    verdict, word = _verdict(fails=fastest / slowest - 1 > limit,
                             passes=fastest / typical - 1 <= limit,
                             beyond="slower in every process beyond")
    return Check(
        artifact, name, verdict,
        f"{why}; over the runs' {len(before)} and {len(after)} agent processes "
        f"{duration_text(typical)} -> {duration_text(float(np.median(after)))} at the median "
        f"({change:+.1%}), "
        f"the candidate's fastest {fastest / typical - 1:+.1%} against the baseline's median "
        f"and {fastest / slowest - 1:+.1%} against its slowest: {word} the limit "
        f"{limit:+.0%}{conditions}.",
        baseline=measured[0], candidate=measured[1], change=float(measured[1] / measured[0] - 1),
        unit="ms", limit=limit,
        interval=(float(fastest / slowest - 1), float(max(after) / min(before) - 1)),
        across_runs=change)


def _verdict(*, fails: bool, passes: bool, beyond: str = "slower beyond") -> tuple[Verdict, str]:
    """The verdict and the words before "the limit" in its message (fail wins)."""
    if fails:
        return Verdict.FAIL, beyond
    if passes:
        return Verdict.PASS, "within"
    return Verdict.INCONCLUSIVE, "cannot tell whether within"


def _process_values(record: ResultRecord, index: int, own: float, stable: bool) -> list[float]:
    """The statistic in each agent process of the run: its rounds' and, where it was
    stable, its measurement's; empty under two rounds."""
    rounds = _round_values(record, index)
    return ([own] if stable else []) + rounds if rounds else []


def _round_values(record: ResultRecord, index: int) -> list[float]:
    """The statistic (0: p50, 1: p90) of each interleaved round of the record's artifact,
    each an agent process of its own; empty with fewer than two rounds (records from before
    round p90s were kept have no p90s)."""
    figure = record.stability
    rounds = (figure.round_p50s, figure.round_p90s)[index] if figure is not None else []
    return list(rounds) if len(rounds) >= 2 and min(rounds) > 0 else []


def _conditions(base: ResultRecord, now: ResultRecord) -> str:
    """What differs in how the two runs were made, for the reader of a latency message."""
    differ = [f"{what} {old} -> {new}" for what, old, new in (
        ("threads", base.threads, now.threads), ("runtime", base.runtime, now.runtime))
        if old != new]
    return f" (conditions differ: {', '.join(differ)})" if differ else ""

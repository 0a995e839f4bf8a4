"""Latency checks of the regression gate: p50 and p90 of a candidate run's raw samples
against the baseline's, artifact by artifact (`gate.judge` calls `latency_checks`).

The steps:

1. Each run must be stable on its own (`results.stability`, the figure every measurement
   carries, with gate.toml's `[stability]` limits): not throttled, at least `min_samples`
   samples, p90 at most `max_tail_ratio` times its p50, and the medians of its ten consecutive
   segments within `max_drift` of each other. On a shared machine another process taking
   a core looks like either: a share of iterations several times slower throughout the
   run (a heavy tail), or a burst that shifts part of the run (drift). An unstable run is
   reported `unstable`, neither pass nor fail (measure again), unless its rounds can
   judge it (step 7).
2. The change is the candidate's statistic over the baseline's, minus one.
3. Its interval comes from a circular block bootstrap: each run is resampled in blocks of
   √n consecutive samples, and the [alpha, 1 - alpha] percentiles of the resampled change
   bound it. Blocks, because iterations of one run are autocorrelated (caches, clock
   frequency, the scheduler, other processes coming and going in bursts); resampling
   single iterations would pretend they were independent and give too narrow an interval.
4. A Mann–Whitney U test (one-sided: the candidate is slower) must reject at `alpha`.
5. `fail` when the test rejects and the whole interval lies above `max_increase`; `pass`
   when the test does not reject or the whole interval lies at or below it;
   `inconclusive` (could not judge) otherwise.
6. Where both runs were also timed in two or more interleaved rounds (deploy, bench of
   several artifacts, `--repeat`), each round an agent run of its own, the run has
   independent values of the statistic: its measurement's and each round's. The median of
   those is the other view of the change. A `fail` needs it too above the limit; where it is
   within, the measurement alone was out of line with its own rounds and the check passes
   on the median, saying so. A `pass` whose median is above the limit is `inconclusive`.
   Everything within one process shares that process's conditions: a run of the demo's
   int8 artifact on a loaded CI machine measured 30 % slower at p50 and p90 while its
   fp32 neighbour, timed in the same minute, did not move; no statistic over its own
   samples could tell, its rounds could.
7. A run whose measurement is unstable (step 1, not throttled) is judged on the rounds
   alone where both runs have two or more that agree within 10 %: `fail` when every
   candidate round is slower beyond the limit than every baseline round, `pass` when every
   one is within it, `inconclusive` otherwise. A burst of load during one 0.3 s measurement
   (the demo's int8 baseline once drifted 40 % between its tenths) would otherwise leave
   every later run against that baseline unjudged.

The tolerance is what matters. With thousands of samples a run resolves shifts well under
a percent, and two runs of the same artifact really do differ by a few percent: the
process lands on other cores, memory is laid out differently, the machine is differently
loaded. Those conditions are shared by every sample of a run, so no statistic computed
within runs sees them, and a significance test alone flags tiny real-but-irrelevant
shifts. The test and the interval only keep noise from being called a regression when
samples are few or wild; `max_increase` decides what is relevant.

Measured on a shared 2-core x86 machine (the demo CNN's artifacts, 0.007 to 0.04 ms an
inference, 0.3 s runs, 84 re-measurements gated against their deploy): Mann-Whitney
rejected at 0.01 for 91 of 197 p50s, with intervals as narrow as +0.1 % to +0.2 %; the
judged re-measurements moved p50 by at most 4 % and p90 by at most 17 %, none failed, and
the 8 that could not be judged were runs other processes had disturbed (unstable, or an
interval across the limit). The demo with twice its channels, benched 48 times, failed
every time: 1.5x (int8) to 4x (fp32) slower at p50, at least 1.35x at p90. Hence 15 %
for p50 and 25 % for p90.
"""

from __future__ import annotations

import math

import numpy as np

from edgecomp.results.record import ResultRecord
from edgecomp.results.verdicts import Check, GateConfig, StabilityLimits, Verdict
from edgecomp.results.stability import MAX_ROUND_SPREAD, off_rounds, round_spread, sample_reasons


def instability(record: ResultRecord, limits: StabilityLimits) -> str | None:
    """Why a run's samples cannot be judged, or None when they can (the same figure as
    every measurement's, `results.stability`, with the gate's limits)."""
    if record.device is not None and record.device.throttled_during:
        return "the board throttled during the run"
    reasons = sample_reasons(record.samples_ms, min_samples=limits.min_samples,
                             max_tail_ratio=limits.max_tail_ratio, max_drift=limits.max_drift)
    return reasons[0] if reasons else None


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
    stats = (("latency p50", 0.5, limits.max_increase),
             ("latency p90", 0.9, limits.max_increase_p90))
    lacking = [side for side, r in (("baseline", base), ("candidate", now)) if not r.samples_ms]
    if lacking:
        return [Check(artifact, name, Verdict.MISSING,
                      f"the {' and '.join(lacking)} kept no raw samples to test.", limit=limit)
                for name, _, limit in stats]
    b = np.asarray(base.samples_ms, dtype=float)
    c = np.asarray(now.samples_ms, dtype=float)
    old, new = np.quantile(b, [0.5, 0.9]), np.quantile(c, [0.5, 0.9])
    conditions = _conditions(base, now)
    unstable = [f"{side}: {why}" for side, r in (("baseline", base), ("candidate", now))
                if (why := instability(r, config.stability))]
    if unstable:
        shifts = [f"{_ms(old[i])} -> {_ms(new[i])} ({new[i] / old[i] - 1:+.1%})"
                  for i in range(len(stats))]
        on_rounds = [] if any(r.device is not None and r.device.throttled_during
                              for r in (base, now)) else [
            _rounds_check(base, now, i, name, limit, artifact=artifact,
                          why=f"{shifts[i]} in the measurements, too unstable to judge: "
                              f"{'; '.join(unstable)}", conditions=conditions)
            for i, (name, _, limit) in enumerate(stats)]
        if on_rounds and all(on_rounds):
            return on_rounds
        return [Check(artifact, name, Verdict.UNSTABLE,
                      f"{shifts[i]} not judged, too unstable: {'; '.join(unstable)}"
                      f"{conditions}.",
                      baseline=float(old[i]), candidate=float(new[i]),
                      change=float(new[i] / old[i] - 1), unit="ms", limit=limit)
                for i, (name, _, limit) in enumerate(stats)]
    from scipy.stats import mannwhitneyu

    p_value = float(mannwhitneyu(c, b, alternative="greater").pvalue)
    rng = np.random.default_rng(0)  # the same records always get the same verdict
    changes = (block_bootstrap(c, [0.5, 0.9], resamples=RESAMPLES, rng=rng)
               / block_bootstrap(b, [0.5, 0.9], resamples=RESAMPLES, rng=rng) - 1)
    low, high = np.quantile(changes, [limits.alpha, 1 - limits.alpha], axis=0)
    checks = []
    for i, (name, _, limit) in enumerate(stats):
        change = float(new[i] / old[i] - 1)
        if p_value < limits.alpha and low[i] > limit:
            verdict, word = Verdict.FAIL, "slower beyond"
        elif p_value >= limits.alpha or high[i] <= limit:
            verdict, word = Verdict.PASS, "within"
        else:
            verdict, word = Verdict.INCONCLUSIVE, "cannot tell whether within"
        message = (f"{_ms(old[i])} -> {_ms(new[i])} ({change:+.1%}, interval {low[i]:+.1%} "
                   f"to {high[i]:+.1%}, Mann-Whitney p={p_value:.2g})")
        rounds = (_round_values(base, i), _round_values(now, i))
        across, note = None, ""
        if rounds[0] and rounds[1]:
            runs = ([old[i], *rounds[0]], [new[i], *rounds[1]])
            across = float(np.median(runs[1]) / np.median(runs[0]) - 1)
            view = (f"the median over the runs' {len(runs[0])} and {len(runs[1])} agent "
                    f"processes (measurement and rounds) moved {across:+.1%}")
            if verdict is Verdict.FAIL and across <= limit:
                astray = [side for side, own, values in (("baseline", old[i], rounds[0]),
                                                         ("candidate", new[i], rounds[1]))
                          if off_rounds(own, values) is not None]
                verdict, word = Verdict.PASS, "within"
                message += f" in the measurement alone, but {view}"
                note = "; " + (f"the {' and the '.join(astray)} measurement ran out of line "
                               "with its own rounds" if astray else
                               "the measurements and their rounds disagree")
            elif verdict is Verdict.PASS and across > limit:
                verdict, word = Verdict.INCONCLUSIVE, "cannot tell whether within"
                message += f", but {view}"
            else:
                message += f"; {view}"
        checks.append(Check(
            artifact, name, verdict,
            f"{message}: {word} the limit {limit:+.0%}{conditions}{note}.",
            baseline=float(old[i]), candidate=float(new[i]), change=change, unit="ms",
            limit=limit, interval=(float(low[i]), float(high[i])), p_value=p_value,
            across_runs=across))
    return checks


def _rounds_check(base: ResultRecord, now: ResultRecord, index: int, name: str,
                  limit: float, *, artifact: str, why: str, conditions: str) -> Check | None:
    """Step 7 of the gate: runs whose measurement cannot be judged, on their interleaved
    rounds alone; None where either has fewer than two rounds or rounds that disagree."""

    before, after = _round_values(base, index), _round_values(now, index)
    if any(not values or round_spread(values) > MAX_ROUND_SPREAD
           for values in (before, after)):
        return None
    change = float(np.median(after) / np.median(before) - 1)
    lowest, highest = min(after) / max(before) - 1, max(after) / min(before) - 1
    if lowest > limit:
        verdict, word = Verdict.FAIL, "slower beyond"
    elif highest <= limit:
        verdict, word = Verdict.PASS, "within"
    else:
        verdict, word = Verdict.INCONCLUSIVE, "cannot tell whether within"
    return Check(
        artifact, name, verdict,
        f"{why}; on their interleaved rounds alone (each an agent process of its own) "
        f"{_ms(float(np.median(before)))} -> {_ms(float(np.median(after)))} ({change:+.1%}, "
        f"round against round {lowest:+.1%} to {highest:+.1%}): {word} the limit "
        f"{limit:+.0%}{conditions}.",
        baseline=float(np.median(before)), candidate=float(np.median(after)), change=change,
        unit="ms", limit=limit, interval=(float(lowest), float(highest)), across_runs=change)


def _round_values(record: ResultRecord, index: int) -> list[float]:
    """The statistic (0: p50, 1: p90) of each interleaved round of the record's artifact,
    each an agent process of its own; empty with fewer than two rounds (records from before
    round p90s were kept have no p90s)."""
    figure = record.stability
    rounds = (figure.round_p50s, figure.round_p90s)[index] if figure is not None else []
    return list(rounds) if len(rounds) >= 2 and min(rounds) > 0 else []


def _ms(value: float) -> str:
    return f"{value:.4g} ms"


def _conditions(base: ResultRecord, now: ResultRecord) -> str:
    """What differs in how the two runs were made, for the reader of a latency message."""
    differ = [f"{what} {old} -> {new}" for what, old, new in (
        ("threads", base.threads, now.threads), ("runtime", base.runtime, now.runtime))
        if old != new]
    return f" (conditions differ: {', '.join(differ)})" if differ else ""

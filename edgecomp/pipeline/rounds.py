"""Interleaved rounds: artifacts that are compared are timed A/B/A/B on the board, so that
load coming and going changes both sides of a ratio alike.

After every artifact's own measurement, each is timed again in `Rounds.count` short rounds,
all of them once per round (the order reversed every other round). An artifact's ratio over
its base is the median of the per-round ratios of their p50s; the spread of those ratios is
part of its stability figure (`results.stability`), which says when a ratio is too noisy to
be read as one number. The full measurement stays the record's distribution.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import numpy as np

from edgecomp.export.base import Artifact
from edgecomp.pipeline import agent
from edgecomp.pipeline.agent import MeasureOptions
from edgecomp.remote.base import Transport, transport_errors
from edgecomp.results.compare import model_identity
from edgecomp.results.record import ResultRecord
from edgecomp.results.stability import judged

ProgressFn = Callable[[str, int, int], None]
log = logging.getLogger(__name__)

ROUNDS = 3  # rounds when --repeat is not given
ROUND_SECONDS = 0.3  # timed seconds per artifact and round, at least
ROUND_RUNS = 20  # timed runs per artifact and round, at least
ROUND_WARMUP_RUNS = 3  # and untimed runs before them
ROUND_WARMUP_SECONDS = 0.1
MAX_REPEAT = 1000
MAX_MIN_TIME = 24 * 3600.0


@dataclass(frozen=True)
class Rounds:
    """How the rounds time each artifact: `count` rounds of at least `seconds` each, from
    `--repeat` and `--min-time` (kept as given, so a record says how it was timed)."""

    count: int = ROUNDS
    seconds: float = ROUND_SECONDS
    repeat: int | None = None
    min_time: float | None = None
    runs: int = ROUND_RUNS  # timed runs per artifact and round, at least
    warmup_runs: int = ROUND_WARMUP_RUNS
    warmup_seconds: float = ROUND_WARMUP_SECONDS

    @property
    def asked(self) -> bool:
        """True when the user asked for rounds (then even a lone artifact gets them)."""
        return self.repeat is not None or self.min_time is not None


def rounds_for(repeat: int | None, min_time: float | None) -> Rounds:
    """Rounds for `--repeat N` (rounds) and `--min-time SECONDS` (timed seconds per
    artifact over all its rounds); a bad value raises InputError with one sentence."""
    if repeat is not None:
        agent.check_count("--repeat", repeat, low=1, high=MAX_REPEAT, unit="rounds")
    if min_time is not None:
        agent.check_seconds("--min-time", min_time, high=MAX_MIN_TIME, above_zero=True)
    count = repeat or ROUNDS
    seconds = max(ROUND_SECONDS, min_time / count) if min_time else ROUND_SECONDS
    return Rounds(count=count, seconds=seconds, repeat=repeat,
                  min_time=float(min_time) if min_time is not None else None)


def interleave(records: list[ResultRecord], artifacts: list[Artifact],
               bases: Mapping[int, Artifact | None], transport: Transport,
               options_for: Callable[[Artifact], MeasureOptions],
               inputs_for: Callable[[Artifact], dict[str, np.ndarray] | None], *,
               rounds: Rounds = Rounds(), other_model: frozenset[int] = frozenset(),
               progress: ProgressFn | None = None) -> list[ResultRecord]:
    """The records with their rounds: `bases` maps a record's index to the artifact its
    ratio is over (itself for a base, one outside `records` such as bench's --reference,
    or None for an artifact timed in rounds without a ratio). The ratio becomes the
    record's `p50_ratio` (its speedup in `compare`) except for the indices in
    `other_model`, whose base is another model: they keep it in their stability figure
    only. A failure on the link stops the rounds; the records keep their own
    measurements. `records[i]` is the measurement of `artifacts[i]`."""
    own = {i: artifacts[i] for i in bases}
    timed = list({a.path: a for a in [*own.values(),
                                      *(b for b in bases.values() if b is not None)]}.values())
    if not timed:
        return records
    p50s: dict[Path, list[float]] = {artifact.path: [] for artifact in timed}
    p90s: dict[Path, list[float]] = {artifact.path: [] for artifact in timed}
    seconds = dict.fromkeys(p50s, 0.0)
    try:
        for index in range(rounds.count):
            if progress is not None:
                progress("timing interleaved", index, rounds.count)
            for artifact in timed if index % 2 == 0 else timed[::-1]:
                options = dataclasses.replace(options_for(artifact), runs=rounds.runs,
                                              seconds=rounds.seconds,
                                              warmup_runs=rounds.warmup_runs,
                                              warmup_seconds=rounds.warmup_seconds,
                                              profile_ops=False)
                report = agent.measure(transport, artifact.path, options, inputs_for(artifact),
                                       progress=progress)
                p50s[artifact.path].append(report.latency_ms.p50)
                p90s[artifact.path].append(report.latency_ms.p90)
                seconds[artifact.path] += sum(report.samples_ms) / 1000.0
    except transport_errors() as exc:
        log.warning("interleaved timing stopped (%s); speedups are from the separate "
                    "measurements", exc)
        return records
    if progress is not None:
        progress("timing interleaved", rounds.count, rounds.count)
    updated = list(records)
    for i, base in bases.items():
        record, mine = records[i], p50s[own[i].path]
        ratio, ratio_to, ratios = None, None, []
        if base is not None:
            ratio_to = base.path.name
            if base.path == own[i].path:
                ratio = 1.0
            else:
                ratios = [round(a / b, 4) for a, b in zip(mine, p50s[base.path]) if b > 0]
                ratio = round(statistics.median(ratios), 3) if ratios else None
            if i in other_model:
                ratio = None
        figure = judged(dataclasses.replace(
            record.stability, rounds=rounds.count, round_s=round(rounds.seconds, 4),
            rounds_timed_s=round(seconds[own[i].path], 4),
            round_p50s=[round(v, 5) for v in mine],
            round_p90s=[round(v, 5) for v in p90s[own[i].path]], ratio_to=ratio_to,
            ratios=ratios,
            repeat=rounds.repeat, min_time=rounds.min_time), record.samples_ms)
        updated[i] = dataclasses.replace(record, p50_ratio=ratio, stability=figure)
    return updated


def deploy_bases(records: list[ResultRecord],
                 artifacts: list[Artifact]) -> dict[int, Artifact | None]:
    """deploy's pairs: each artifact over the fp32 artifact of its technique and format."""
    groups: dict[tuple[str, str], list[int]] = {}
    for index, record in enumerate(records):
        if record.ok and record.stability is not None:
            groups.setdefault((record.technique, record.format), []).append(index)
    bases: dict[int, Artifact | None] = {}
    for indices in groups.values():
        fp32 = [i for i in indices if records[i].precision == "fp32"]
        if fp32 and len(indices) > 1:
            bases.update({i: artifacts[fp32[0]] for i in indices})
    return bases


def bench_bases(records: list[ResultRecord], artifacts: list[Artifact],
                reference: Artifact | None, *,
                asked: bool) -> tuple[dict[int, Artifact | None], frozenset[int]]:
    """bench's pairs, and the indices paired with another model: each artifact over
    `--reference` when given; else over the fp32 artifact of its model (name and content)
    and format when others of those were benched with it (as deploy pairs them), else over
    the first artifact named. A lone artifact gets rounds (without a ratio) only when they
    were asked for."""
    ok = [i for i, record in enumerate(records) if record.ok and record.stability is not None]
    if reference is not None:
        return {i: reference for i in ok}, frozenset()
    if len(ok) < 2:
        return ({i: None for i in ok} if asked else {}), frozenset()
    groups: dict[tuple, list[int]] = {}
    for i in ok:
        groups.setdefault((model_identity(records[i]), records[i].format), []).append(i)
    bases: dict[int, Artifact | None] = {}
    other: set[int] = set()
    for indices in groups.values():
        fp32 = [i for i in indices if records[i].precision == "fp32"]
        base = fp32[0] if fp32 and len(indices) > 1 else ok[0]
        bases.update({i: artifacts[base] for i in indices})
        if model_identity(records[base]) != model_identity(records[indices[0]]):
            other.update(indices)
    return bases, frozenset(other)

"""The plan for each board, and the plan applied: what to export and how to measure it.

`plan_stage` asks the planner (`edgecomp.hardware.planner`) for the model on a board;
`apply_plan` lets the plan decide what the user left open (explicit choices always win)
and turns it into export settings and the agent's options per format. `threads_for` is the
one place the thread count is decided: the user's `--threads`, else the plan's; the agent
caps it at the cores the board lets it use, and each record keeps both numbers.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping

from edgecomp.agent.runtimes import agent_runtime
from edgecomp.errors import InputError
from edgecomp.export import formats_for, supported_precisions
from edgecomp.export.base import Artifact
from edgecomp.hardware.board import Board
from edgecomp.hardware.facts import BoardFacts
from edgecomp.hardware.plan import Plan
from edgecomp.hardware.planner import make_plan
from edgecomp.model.facts import ModelFacts
from edgecomp.model.source import ModelSource
from edgecomp.pipeline.agent import MeasureOptions
from edgecomp.pipeline.build import ExportSettings, FormatScheme
from edgecomp.pipeline.load import source_facts
from edgecomp.pipeline.request import DeployRequest, ExportChoices, MeasureChoices
from edgecomp.pipeline.rounds import Rounds
from edgecomp.pipeline.timing import timing_for
from edgecomp.vocab import RUNTIME_FORMATS, Format, IoDtype, Precision, RuntimeName

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BoardSettings:
    """The plan applied: what to export, and how to measure artifacts of each format."""

    export: ExportSettings
    measure: MeasureOptions  # for artifacts the plan's runtime does not load
    by_format: Mapping[str, MeasureOptions] = field(default_factory=dict)
    # The plans of the formats built beside the plan's own (the demo builds every format):
    # their artifacts are built with and recorded with them.
    plans: Mapping[str, Plan] = field(default_factory=dict)
    rounds: Rounds = Rounds()  # how compared artifacts are timed interleaved

    def options_for(self, artifact: Artifact) -> MeasureOptions:
        return self.by_format.get(artifact.format, self.measure)


def plan_stage(source: ModelSource, board: Board, overrides: Mapping[str, Any],
               facts: BoardFacts | None = None, *, model: ModelFacts | None = None,
               for_format: Format | None = None) -> Plan | None:
    """The plan for the model on the board; None when `local` has no profile.

    `model` holds the model's facts when the caller already read them; `for_format`
    plans for that format's runtime.
    """
    if board.profile is None:
        if overrides:
            raise InputError(f"--set needs a hardware profile, and {board.name} has none; plan "
                             "for a named profile (see `edgecomp profiles list`).")
        log.info("no hardware profile for %s; deploying without a plan", board.name)
        return None
    return make_plan(board.profile, model or source_facts(source), overrides, board=facts,
                     formats=formats_for(has_module=source.module is not None),
                     for_format=for_format)


def format_plan(source: ModelSource, board: Board, overrides: Mapping[str, Any],
                facts: BoardFacts | None, fmt: Format, *, model: ModelFacts | None
                ) -> Plan | None:
    """The plan for another format a deploy builds beside the plan's own: the user's
    `--set` decisions where they fit that format (a runtime or delegate they chose may
    belong to the other format); None when the board has no runtime for it."""
    asked = {key: value for key, value in overrides.items() if key != "format"}
    for attempt in (asked, {k: v for k, v in asked.items() if k not in ("runtime", "delegate")}):
        try:
            return plan_stage(source, board, attempt, facts, model=model, for_format=fmt)
        except InputError:
            continue
    return None


def _scheme(wanted: ExportChoices, plan: Plan) -> FormatScheme:
    """The quantization options a plan sets where the user left them open."""
    return FormatScheme(per_channel=not wanted.per_tensor and plan.per_channel,
                        reduce_range=wanted.reduce_range or plan.reduce_range,
                        activation_symmetric=plan.activation_symmetric,
                        activation_dtype=plan.activation_dtype,
                        io_dtype=plan.io_dtype if wanted.io_dtype is None else None)


def apply_plan(request: DeployRequest, plan: Plan | None, board: Board, *,
               plan_for: Callable[[Format], Plan | None] | None = None,
               emulated: str | None = None) -> BoardSettings:
    """Let the plan decide what the user left open; explicit choices always win.

    The demo exports both formats at fp32 and int8 for comparison, unless the user set a
    format or precision with `--set`. Each other format built is built and measured with
    its own plan, `plan_for(format)`, where given. On a board whose CPU is `emulated`, the
    timing numbers left open are fewer (`edgecomp.pipeline.timing`), said in a warning.
    """
    wanted = request.export
    demo = request.model.is_demo
    target = board.target
    export = export_settings(wanted)
    choice = request.measure
    timing = timing_for(choice, emulated, board=board.name)
    if timing.note is not None:
        log.warning("%s", timing.note)
    lock_timeout = target.lock_timeout if target is not None else MeasureOptions.lock_timeout
    measure = MeasureOptions(runs=timing.runs, seconds=timing.seconds,
                             warmup_runs=timing.warmup_runs,
                             warmup_seconds=timing.warmup_seconds,
                             threads=threads_for(choice, None), seed=request.data.seed,
                             lock_timeout=lock_timeout, profile_ops=choice.profile_ops)
    by_format: dict[str, MeasureOptions] = {}
    changes: dict[str, Any] = {}
    plans: dict[str, Plan] = {}
    if plan is not None:
        changes = _scheme(wanted, plan).options()
        if wanted.formats is None and (not demo or "format" in plan.overridden):
            changes["formats"] = (plan.format,)
        if wanted.precisions is None and (not demo or "precision" in plan.overridden):
            chosen = plan.precision
            if chosen not in supported_precisions(plan.format):
                # e.g. TensorRT builds fp16 engines from an fp32 ONNX file on the board.
                chosen = Precision.FP32
            changes["precisions"] = tuple(dict.fromkeys((Precision.FP32, chosen)))
        measure = replace(measure, threads=threads_for(choice, plan),
                          throttle_c=plan.throttle_c)
        by_format[plan.format.value] = _agent_options(measure, plan)
        for fmt in changes.get("formats", export.formats):
            other = plan_for(Format(fmt)) if plan_for is not None and \
                fmt != plan.format else None
            if other is not None:
                plans[fmt] = other
                by_format[fmt] = _agent_options(
                    replace(measure, threads=threads_for(choice, other)), other)
        changes["by_format"] = tuple((Format(fmt), _scheme(wanted, other))
                                     for fmt, other in plans.items())
    user = _user_runtime(choice, target)
    if user is not None:
        fmt = RUNTIME_FORMATS[user].value
        planned = by_format.get(fmt, measure)
        # The plan's delegate belongs to the plan's runtime; another runtime picks its own.
        runtime, delegate = agent_runtime(user, "auto")
        if planned.runtime == runtime:
            delegate = planned.delegate
        by_format[fmt] = replace(planned, runtime=runtime, delegate=delegate)
    return BoardSettings(export=replace(export, **changes), measure=measure, by_format=by_format,
                    plans=plans, rounds=timing.rounds)


def export_settings(wanted: ExportChoices, *,
                default_formats: tuple[Format, ...] | None = None) -> ExportSettings:
    """The artifacts the user's choices ask for, before any plan: every format (or
    `default_formats`) at fp32 and int8 where they left it open."""
    return ExportSettings(
        formats=tuple(wanted.formats or default_formats or formats_for()),
        precisions=wanted.precisions or (Precision.FP32, Precision.INT8),
        io_dtype=wanted.io_dtype or IoDtype.FLOAT32,
        per_channel=not wanted.per_tensor, calibration_method=wanted.calibration_method,
        reduce_range=wanted.reduce_range)


def _user_runtime(choice: MeasureChoices, target) -> RuntimeName | None:
    """The runtime the user asked for: the flag, else the target file's; None: the plan's."""
    name = choice.runtime if choice.runtime not in (None, "auto") else \
        (getattr(target.runtime, "value", target.runtime) if target is not None else None)
    if name in (None, "auto"):
        return None
    try:
        return RuntimeName(name)
    except ValueError:
        raise InputError(f"runtime {name!r}: choose one of auto, "
                         f"{', '.join(r.value for r in RuntimeName)}.") from None


def _agent_options(measure: MeasureOptions, plan: Plan) -> MeasureOptions:
    """`measure` with the agent's runtime and delegate for the plan's. A delegate the plan
    chose from the profile but the board lacks is measured on the CPU and flagged; one the
    user set with --set fails with the agent's sentence. (A runtime measured through
    another, such as TensorRT through onnxruntime's execution provider, is asked of that
    one: `agent_runtime`; on a board without it the record says what ran instead.)"""
    runtime, delegate = agent_runtime(plan.runtime, plan.delegate)
    return replace(measure, runtime=runtime, delegate=delegate,
                   on_missing_delegate="fail" if "delegate" in plan.overridden else "cpu")


def threads_for(choice: MeasureChoices, plan: Plan | None) -> int | None:
    """The threads to ask the board for: the user's `--threads`, else the plan's (from the
    board's cores), else None (the agent takes every core it may use). The agent caps the
    number at those cores; a record keeps both (`threads`, `device.threads_requested`)."""
    if choice.threads is not None:
        return choice.threads
    return plan.threads if plan is not None else None

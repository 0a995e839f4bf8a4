"""deploy(request) -> records: plan → apply plan → prepare → compress → export → measure → record.

Each stage is a small function on frozen values that a library user can call alone;
`deploy` strings them together. Bad input is refused before anything is written (no
artifact, no row); a failure while measuring one artifact becomes a failed record and the
others go on; the connection to the board is closed in one place.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping


from edgecomp.hardware.board import Board, board_facts
from edgecomp.pipeline.build import (DataPlan, ExportPlan, Prepared, Search, Training, compress,
                            export_all, load_training, plan_recipe, prepare,
                            recipe_export_defaults)
from edgecomp.errors import InputError
from edgecomp.export import formats_for, supported_precisions
from edgecomp.export.base import Artifact
from edgecomp.model.facts import ModelFacts
from edgecomp.hardware.facts import BoardFacts
from edgecomp.hardware.plan import Plan
from edgecomp.hardware.planner import make_plan
from edgecomp.remote.base import MeasureOptions, transport_errors
from edgecomp.pipeline.measure import (failed_record, measure_all, measured_inputs,
                                     reference_outputs, verify)
from edgecomp.pipeline.rounds import Rounds, bench_bases, deploy_bases, interleave, rounds_for
from edgecomp.pipeline.fleet import Member, board_progress, concurrently, connect
from edgecomp.results.provenance import stamp
from edgecomp.results.record import ResultRecord
from edgecomp.quantize.search import AgreementTarget, flag_records
from edgecomp.model.signature import ShapeChoice
from edgecomp.model.source import ModelSource, check_data, check_model_name
from edgecomp.vocab import (RUNTIME_FORMATS, CalibrationMethod, DelegateName, Format, IoDtype,
                            Precision, RuntimeName)

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]


# ---------------------------------------------------------------------------------------
# deploy(request): the stages in order, each on frozen values.


@dataclass(frozen=True)
class ModelSpec:
    """Which model: `package.module:function` (+ weights), a .pt2 or .onnx file, or the demo."""

    spec: str | None = None  # None or "demo": the built-in demo CNN on the digits
    weights: Path | None = None
    input_shape: ShapeChoice | None = None  # one shape, or shapes by input name
    name: str | None = None  # the name results and files record (`--name`); None: the source's

    def __post_init__(self) -> None:
        if self.name is not None:
            check_model_name(self.name)

    @property
    def is_demo(self) -> bool:
        return self.spec in (None, "", "demo")


@dataclass(frozen=True)
class ExportChoices:
    """What the user fixed about the artifacts; `None` leaves the decision to the plan."""

    formats: tuple[Format, ...] | None = None
    precisions: tuple[Precision, ...] | None = None
    io_dtype: IoDtype | None = None
    per_tensor: bool = False
    calibration_method: CalibrationMethod = CalibrationMethod.MINMAX
    reduce_range: bool = False


@dataclass(frozen=True)
class MeasureChoices:
    """How long to time each artifact; `threads`/`runtime` of None leave them to the plan."""

    runs: int = 50
    seconds: float = 1.0
    warmup_runs: int = 5
    warmup_seconds: float = 0.5
    threads: int | None = None
    runtime: str | None = None  # an agent runtime name; None or "auto": the target/plan's
    profile_ops: bool = False  # per-op times from the runtime's profiler (`--profile-ops`)
    repeat: int | None = None  # interleaved rounds (None: remote.rounds.ROUNDS)
    min_time: float | None = None  # timed seconds per artifact over its rounds, at least

    def __post_init__(self) -> None:
        if self.runs <= 0 or self.seconds < 0 or self.warmup_runs < 0 or \
                self.warmup_seconds < 0:
            raise InputError("--runs must be positive; --seconds and the warm-up not negative.")
        if self.threads is not None and self.threads < 1:
            raise InputError("--threads must be a positive number of threads.")
        rounds_for(self.repeat, self.min_time)  # refuses bad values with one sentence

    @property
    def rounds(self) -> Rounds:
        return rounds_for(self.repeat, self.min_time)


@dataclass(frozen=True)
class DeployRequest:
    """Everything `deploy` needs; every field has a default that deploys the demo locally."""

    model: ModelSpec = ModelSpec()
    target: str = "local"
    data: DataPlan = DataPlan()
    export: ExportChoices = ExportChoices()
    measure: MeasureChoices = MeasureChoices()
    overrides: Mapping[str, Any] = field(default_factory=dict)  # plan decisions (`--set`)
    recipe: str | None = None  # a recipe file or name: compress first
    train: str | None = None  # training data for passes that fine-tune
    loss: str | None = None  # "pkg.mod:fn": loss(outputs, labels) for the training loop
    train_fn: str | None = None  # "pkg.mod:fn": train(model, ctx, epochs) -> model
    baseline: bool = True  # with a recipe, also the uncompressed fp32 artifacts
    out_dir: Path | None = None  # default ./edgecomp-out/<model>
    rebuild: bool = False  # export again instead of reusing the artifact cache's files
    record: bool = True  # add the records to the results store
    command: str = "edgecomp.pipeline.deploy.deploy"  # stored with the run
    agreement: AgreementTarget = AgreementTarget()  # what int8 must reach against float
    search: bool = True  # with evaluation data: choose int8 among candidates by agreement
    tag: str | None = None  # the run's name (`--tag`), recorded with its git commit and branch
    targets: tuple[str, ...] = ()  # a fleet: measure on every one of these boards at once

    @property
    def target_names(self) -> list[str]:
        """The boards to measure on: `targets`, else `target`; each once."""
        return list(dict.fromkeys(self.targets or (self.target,)))


@dataclass(frozen=True)
class Settings:
    """The plan applied: what to export, and how to measure artifacts of each format."""

    export: ExportPlan
    measure: MeasureOptions  # for artifacts the plan's runtime does not load
    by_format: Mapping[str, MeasureOptions] = field(default_factory=dict)
    # The plans of the formats built beside the plan's own (the demo builds every format):
    # their artifacts are built with and recorded with them.
    plans: Mapping[str, Plan] = field(default_factory=dict)
    rounds: Rounds = Rounds()  # how compared artifacts are timed interleaved

    def options_for(self, artifact: Artifact) -> MeasureOptions:
        return self.by_format.get(artifact.format, self.measure)


def deploy(request: DeployRequest = DeployRequest(), *, progress: ProgressFn | None = None,
           on_plan: Callable[[Plan, str], None] | None = None) -> list[ResultRecord]:
    """Plan, compress, export, verify, measure and record a model on a target, or on every
    board of `request.targets` at once.

    Returns one record per artifact and board; a measurement that failed (or a board that
    could not be reached, in a fleet) is a record with `error` set. Bad input raises
    `InputError` before any artifact or row is written. A prebuilt `.tflite` is deployed as
    given: measured on the target (and run on `--eval` data). In a fleet, boards whose
    plans ask for the same artifacts share one build; each board verifies and times them
    in its own runtime. `on_plan(plan, target)` sees each board's plan.
    """
    names = request.target_names
    if request.model.spec and Path(request.model.spec).suffix.lower() == ".tflite":
        return bench([Path(request.model.spec)], targets=names,
                     measure=request.measure, eval_spec=request.data.eval,
                     seed=request.data.seed, record=request.record, command=request.command,
                     progress=progress, tag=request.tag, input_shape=request.model.input_shape,
                     name=request.model.name)
    data = _data_for(request)
    recipe = _load_recipe(request.recipe)
    training = load_training(request.train or ("digits:train" if request.model.is_demo
                                               else None), loss=request.loss,
                             train_fn=request.train_fn) if recipe is not None else Training()
    source = load_source(request.model, data, progress=progress)
    with ExitStack() as stack:
        members = connect(names, stack)
        model = source_facts(source)  # read once: the plans and the int8 search use them
        planned = []
        for member in members:
            facts = board_facts(member.board, member.transport.info if member.transport else None)
            plan = plan_stage(source, member.board, request.overrides, facts, model=model)
            if plan is not None and on_plan is not None:
                on_plan(plan, member.name)
            planned.append((member, plan, apply_plan(
                request, plan, member.board,
                plan_for=lambda fmt, board=member.board, facts=facts: format_plan(
                    source, board, request.overrides, facts, fmt, model=model))))
        out_dir = request.out_dir or Path("edgecomp-out") / source.name
        groups = _builds(planned, recipe)
        prepared_by_need: dict[bool, Prepared] = {}
        jobs = []
        for index, group in enumerate(groups):
            where = out_dir if len(groups) == 1 else out_dir / _build_dir(group, index)
            build = _build(request, source, data, group, recipe, training, model, where,
                           prepared_by_need, progress=progress)
            jobs += [(member, plan, settings, build) for member, plan, settings in group]
        fleet = len(members) > 1
        measured = concurrently([
            lambda job=job: _measure_member(*job, progress=board_progress(
                progress, job[0].name, fleet)) for job in jobs])
    records = stamp(flag_records([r for rs in measured for r in rs], request.agreement),
                    tag=request.tag)
    if request.record:
        run_id = record_stage(records, command=request.command)
        records = [replace(record, run_id=run_id) for record in records]
    return records


@dataclass(frozen=True)
class Build:
    """The artifacts built once for the boards sharing a plan, and what verifies them."""

    prepared: Prepared
    artifacts: list[Artifact]
    reference: Any  # the float model's outputs on the evaluation set, or None
    verified: dict[str, Any]  # the int8 search's verifications, by artifact sha256
    verified_on: str | None  # the board those verifications ran on


def _build_key(plan: Plan | None, settings: Settings, recipe) -> tuple:
    """What decides the artifacts: the export settings and, with a recipe, the plan's
    pruning choices. Threads and delegates only change how they are measured."""
    pruning = None
    if recipe is not None and plan is not None:
        decisions = plan.to_json()["decisions"]
        pruning = tuple((key, decisions[key]["value"]) for key in ("pruning", "channel_multiple")
                        if key in decisions)
    return (settings.export, pruning)


def _builds(planned: list, recipe) -> list[list]:
    """The boards grouped by the artifacts their plans ask for, in the order given."""
    groups: dict[tuple, list] = {}
    for member, plan, settings in planned:
        groups.setdefault(_build_key(plan, settings, recipe), []).append(
            (member, plan, settings))
    return list(groups.values())


def _build_dir(group: list, index: int) -> str:
    """A folder per distinct build in a fleet: the first board's profile and the build's
    number, so two builds never overwrite each other's files."""
    member, plan, _ = group[0]
    return f"{index + 1}-{plan.profile if plan is not None else member.name}"


def _build(request: DeployRequest, source: ModelSource, data: DataPlan, group: list, recipe,
           training: Training, model: ModelFacts | None, out_dir: Path,
           prepared_by_need: dict[bool, Prepared], *,
           progress: ProgressFn | None = None) -> Build:
    """Compress and export the artifacts of one plan; the int8 search verifies its
    candidates on the group's first reachable board. Artifacts exported before with the
    same key come from the artifact cache (unless `request.rebuild`)."""
    from edgecomp.export.cache import ArtifactCache

    lead = next((entry for entry in group if entry[0].transport is not None), group[0])
    member, plan, settings = lead
    cache = ArtifactCache.open(built_for=", ".join(m.name for m, _, _ in group),
                               rebuild=request.rebuild)
    needs_calib = Precision.INT8 in settings.export.precisions
    if needs_calib not in prepared_by_need:
        prepared_by_need[needs_calib] = prepare(source, data, needs_calib=needs_calib)
    prepared = replace(prepared_by_need[needs_calib],
                       plan=plan.to_json() if plan is not None else None)
    reference = reference_outputs(prepared)  # the uncompressed float model's outputs
    verified: dict[str, Any] = {}
    artifacts: list[Artifact] = []
    if recipe is not None:
        if request.baseline:
            baseline = replace(settings.export, precisions=(Precision.FP32,))
            artifacts += export_all(prepared, baseline, out_dir, progress=progress,
                                    cache=cache)
        prepared, settings = compress_stage(prepared, settings, recipe, plan,
                                            training=training, user_export=request.export,
                                            out_dir=out_dir, progress=progress)
    # A recipe that trains for int8 (qat) fixed the scheme itself: no search then.
    trained_int8 = recipe is not None and recipe_export_defaults(recipe)[0] == Precision.INT8
    search = None if trained_int8 or member.transport is None else \
        _search(request, prepared, reference, member.transport, verified, model)
    try:
        artifacts += export_all(prepared, settings.export, out_dir, progress=progress,
                                search=search, cache=cache)
    except transport_errors() as exc:
        if search is None or len(group) == 1:
            raise
        # The board judging the int8 candidates went away: the other boards still get the
        # plan's scheme, and that board's records say what happened.
        log.warning("the int8 search stopped (%s went away: %s); exporting the plan's scheme",
                    member.name, exc)
        verified.clear()
        search = None
        artifacts += export_all(prepared, settings.export, out_dir, progress=progress,
                                cache=cache)
    return Build(prepared=prepared, artifacts=artifacts, reference=reference,
                 verified=verified, verified_on=member.name if search else None)


def _measure_member(member: Member, plan: Plan | None, settings: Settings, build: Build, *,
                    progress: ProgressFn | None = None) -> list[ResultRecord]:
    """Verify and time a build's artifacts on one board, in that board's runtime; a board
    that cannot be reached gives one failed record per artifact."""
    # This board's own plan (its threads and delegate), with what the build added (the
    # recipe's reports).
    prepared = replace(build.prepared, plan={**(build.prepared.plan or {}), **plan.to_json()}
                       if plan is not None else build.prepared.plan)
    if member.transport is None:
        return [failed_record(artifact, prepared, member.reached, member.error or "unreachable")
                for artifact in build.artifacts]
    # Verifications made on another board are not this board's: its kernels run them again.
    verified = build.verified if build.verified_on == member.name else None
    records = measure_all(build.artifacts, prepared, member.transport, settings.options_for,
                          reference=build.reference, progress=progress, verified=verified)
    records = interleave(records, build.artifacts, deploy_bases(records, build.artifacts),
                         member.transport, settings.options_for,
                         lambda artifact: measured_inputs(prepared), rounds=settings.rounds,
                         progress=progress)
    # Artifacts of another format than the plan's carry that format's plan.
    return [replace(r, plan={**(build.prepared.plan or {}), **settings.plans[r.format].to_json()})
            if r.format in settings.plans else r for r in records]


def _search(request: DeployRequest, prepared: Prepared, reference, transport,
            verified: dict[str, Any], model: ModelFacts | None) -> Search | None:
    """Accuracy-aware int8 when there is evaluation data to judge it by (and the float
    model's outputs to compare with); the verifications are kept for the records.
    Dynamic int8 is a candidate only where `model` is MatMul-heavy."""
    if not request.search or prepared.eval is None or reference is None:
        return None

    def check(artifact: Artifact):
        result = verify(artifact, prepared, reference, transport)
        verified[artifact.manifest["sha256"]] = result
        return result

    return Search(check=check, target=request.agreement,
                  allow_dynamic=model is not None and model.conv_share is not None
                  and model.conv_share < 0.5)


def source_facts(source: ModelSource) -> ModelFacts | None:
    """What the planner and the int8 search know about the model (None for an artifact)."""
    from edgecomp.model.facts import facts_from_onnx, model_facts

    if source.module is not None:
        return model_facts(source.module, source.example_inputs, name=source.name)
    if source.onnx_path is not None:
        return facts_from_onnx(source.onnx_path, name=source.name)
    return None


def _data_for(request: DeployRequest) -> DataPlan:
    """The demo's data is built in: real digits, named in every record."""
    if not request.model.is_demo:
        return request.data
    return replace(request.data, calib=request.data.calib or "digits:train",
                   eval=request.data.eval or "digits:val")


def _load_recipe(spec: str | None):
    """Load and validate the recipe before anything is written."""
    if spec is None:
        return None
    from edgecomp.compress.recipe import load_recipe

    return load_recipe(spec)


def load_source(model: ModelSpec, data: DataPlan, *, progress: ProgressFn | None = None
                ) -> ModelSource:
    """Load the model; the data's sample shape helps find a factory's input shape."""
    from edgecomp.model.demo import demo_model
    from edgecomp.model.load import load_model

    if model.is_demo:
        return _named(demo_model(progress=progress), model.name)
    dataset = None
    if data.calib not in (None, "random") or data.eval:
        from edgecomp.model.data import load_data

        dataset = load_data(data.eval or data.calib, **data.image_options)
    return _named(load_model(model.spec, weights=model.weights, input_shape=model.input_shape,
                             data=dataset), model.name)


def _named(source: ModelSource, name: str | None) -> ModelSource:
    """The source under the user's `--name`, where they gave one."""
    return replace(source, name=name) if name else source


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


def _scheme(wanted: ExportChoices, plan: Plan) -> dict[str, Any]:
    """The quantization options a plan sets where the user left them open."""
    changes = {"per_channel": not wanted.per_tensor and plan.per_channel,
               "reduce_range": wanted.reduce_range or plan.reduce_range,
               "activation_symmetric": plan.activation_symmetric,
               "activation_dtype": plan.activation_dtype.value}
    if wanted.io_dtype is None:
        changes["io_dtype"] = plan.io_dtype.value
    return changes


def apply_plan(request: DeployRequest, plan: Plan | None, board: Board, *,
               plan_for: Callable[[Format], Plan | None] | None = None) -> Settings:
    """Let the plan decide what the user left open; explicit choices always win.

    The demo exports both formats at fp32 and int8 for comparison, unless the user set a
    format or precision with `--set`. Each other format built is built and measured with
    its own plan, `plan_for(format)`, where given.
    """
    wanted = request.export
    demo = request.model.is_demo
    target = board.target
    export = export_plan(wanted)
    choice = request.measure
    lock_timeout = target.lock_timeout if target is not None else MeasureOptions.lock_timeout
    measure = MeasureOptions(runs=choice.runs, seconds=choice.seconds,
                             warmup_runs=choice.warmup_runs,
                             warmup_seconds=choice.warmup_seconds, threads=choice.threads,
                             seed=request.data.seed, lock_timeout=lock_timeout,
                             profile_ops=choice.profile_ops)
    by_format: dict[str, MeasureOptions] = {}
    changes: dict[str, Any] = {}
    plans: dict[str, Plan] = {}
    if plan is not None:
        changes = _scheme(wanted, plan)
        if wanted.formats is None and (not demo or "format" in plan.overridden):
            changes["formats"] = (plan.format.value,)
        if wanted.precisions is None and (not demo or "precision" in plan.overridden):
            chosen = plan.precision
            if chosen not in supported_precisions(plan.format):
                # e.g. TensorRT builds fp16 engines from an fp32 ONNX file on the board.
                chosen = Precision.FP32
            changes["precisions"] = tuple(dict.fromkeys((Precision.FP32, chosen)))
        measure = replace(measure, threads=choice.threads or plan.threads,
                          throttle_c=plan.throttle_c)
        by_format[plan.format.value] = _agent_options(measure, plan)
        for fmt in changes.get("formats", export.formats):
            other = plan_for(Format(fmt)) if plan_for is not None and \
                fmt != plan.format.value else None
            if other is not None:
                plans[fmt] = other
                by_format[fmt] = _agent_options(
                    replace(measure, threads=choice.threads or other.threads), other)
        changes["by_format"] = tuple((fmt, tuple(sorted(_scheme(wanted, other).items())))
                                     for fmt, other in plans.items())
    user = _user_runtime(choice, target)
    if user is not None:
        fmt = RUNTIME_FORMATS[user].value
        planned = by_format.get(fmt, measure)
        # The plan's delegate belongs to the plan's runtime; another runtime picks its own.
        runtime, delegate = _AGENT_RUNTIMES.get(user, (user.value, "auto"))
        if planned.runtime == runtime:
            delegate = planned.delegate
        by_format[fmt] = replace(planned, runtime=runtime, delegate=delegate)
    return Settings(export=replace(export, **changes), measure=measure, by_format=by_format,
                    plans=plans, rounds=choice.rounds)


def export_plan(wanted: ExportChoices, *,
                default_formats: tuple[Format, ...] | None = None) -> ExportPlan:
    """The artifacts the user's choices ask for, before any plan: every format (or
    `default_formats`) at fp32 and int8 where they left it open."""
    return ExportPlan(
        formats=tuple(f.value for f in wanted.formats or default_formats or formats_for()),
        precisions=wanted.precisions or (Precision.FP32, Precision.INT8),
        io_dtype=(wanted.io_dtype or IoDtype.FLOAT32).value,
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


# TensorRT is measured through onnxruntime's TensorRT execution provider; on a board
# without it the record says what ran instead and is flagged (`results.execution`).
_AGENT_RUNTIMES = {RuntimeName.TENSORRT: (RuntimeName.ONNXRUNTIME.value,
                                          DelegateName.TENSORRT.value)}


def _agent_options(measure: MeasureOptions, plan: Plan) -> MeasureOptions:
    """`measure` with the agent's runtime and delegate for the plan's. A delegate the plan
    chose from the profile but the board lacks is measured on the CPU and flagged; one the
    user set with --set fails with the agent's sentence."""
    runtime, delegate = _AGENT_RUNTIMES.get(plan.runtime,
                                            (plan.runtime.value, plan.delegate.value))
    return replace(measure, runtime=runtime, delegate=delegate,
                   on_missing_delegate="fail" if "delegate" in plan.overridden else "cpu")


def compress_stage(prepared: Prepared, settings: Settings, recipe, plan: Plan | None, *,
                   training: Training, user_export: ExportChoices, out_dir: Path,
                   progress: ProgressFn | None = None) -> tuple[Prepared, Settings]:
    """Run the recipe (the plan fills in its pruning kind and channel multiple), then let the
    recipe's export defaults choose the precision and formats the user left open."""
    if plan is not None:
        recipe = plan_recipe(recipe, plan)
    prepared, _reports = compress(prepared, recipe, train=training.data, progress=progress,
                                  out_dir=out_dir, loss_fn=training.loss_fn,
                                  train_fn=training.train_fn)
    precision, formats = recipe_export_defaults(recipe)
    changes: dict[str, Any] = {}
    if precision is not None and user_export.precisions is None:
        changes["precisions"] = (precision,)
    if formats and user_export.formats is None:
        changes["formats"] = tuple(f.value for f in formats)
    return prepared, replace(settings, export=replace(settings.export, **changes))


def record_stage(records: list[ResultRecord], *, command: str) -> str | None:
    """Store one run's records in a single transaction; returns the run id."""
    from edgecomp.results.store import Store

    if not records:
        return None
    with Store() as store:
        return store.add_run(records, command=command)


def export_model(model: ModelSpec, data: DataPlan, choices: ExportChoices, out_dir: Path, *,
                 progress: ProgressFn | None = None, rebuild: bool = False) -> list[Artifact]:
    """`edgecomp export`: the chosen formats (default LiteRT) and precisions, no board;
    artifacts exported before with the same key come from the artifact cache."""
    from edgecomp.export.cache import ArtifactCache

    export = export_plan(choices, default_formats=(Format.TFLITE,))
    source = load_source(model, data, progress=progress)
    prepared = prepare(source, data, needs_calib=Precision.INT8 in export.precisions)
    return export_all(prepared, export, out_dir, progress=progress,
                      cache=ArtifactCache.open(built_for="edgecomp export", rebuild=rebuild))


def bench(paths: list[Path], *, target: str = "local", measure: MeasureChoices = MeasureChoices(),
          eval_spec: str | None = None, reference: Path | None = None, seed: int = 0,
          record: bool = True, command: str = "edgecomp.pipeline.deploy.bench",
          progress: ProgressFn | None = None, tag: str | None = None,
          targets: list[str] | None = None, input_shape: ShapeChoice | None = None,
          input_values: Mapping[str, float] | None = None,
          name: str | None = None) -> list[ResultRecord]:
    """`edgecomp bench`: measure artifacts that already exist, edgecomp's or anyone's (a
    manifest says what they are; without one they are read from the file), on `target` or
    on every board of `targets` at once.

    With evaluation data, each artifact is fed that data in the board's runtime (and timed
    on its first sample): labels give top-1; a `reference` artifact (e.g. the fp32 model)
    gives agreement, its outputs computed on the same board. Without it, `input_shape`
    chooses open dimensions (else they are 1, said in a warning) and `input_values`
    constant values (else floats are random, integers 0) of the inputs timed. `name`
    (`--name`) is the model name the records carry instead of the manifests' (the files
    stay as they are).
    """
    from edgecomp.model.data import load_data, timing_data
    from edgecomp.export.bundle import artifact_from_file, artifact_inputs
    from edgecomp.model.signature import fix_shapes, resolve

    if name is not None:
        check_model_name(name)
    artifacts = [artifact_from_file(Path(path)) for path in paths]
    if name is not None:
        artifacts = [replace(a, manifest={**a.manifest, "model": name}) for a in artifacts]
    base = artifact_from_file(Path(reference)) if reference is not None else None
    if base is not None and eval_spec is None:
        raise InputError("--reference compares outputs on evaluation data: pass --eval too.")
    if input_values and eval_spec:
        raise InputError("--input-value sets the inputs timed without data; with --eval, "
                         "the evaluation data holds the values.")
    eval_data = load_data(eval_spec) if eval_spec else None
    prepared_sets = []
    for artifact in [*artifacts, *([base] if base is not None else [])]:
        name = artifact.path.name
        inputs = resolve(fix_shapes(artifact_inputs(artifact), input_shape, model=name),
                         eval_data, model=name)
        chosen = eval_data is None and (input_shape is not None or bool(input_values))
        source = ModelSource(name=artifact.manifest["model"], kind="artifact", module=None,
                             inputs=inputs, sha256=artifact.manifest["source_sha256"],
                             spec=str(artifact.path), timing=timing_data(
                                 inputs, values=input_values, seed=seed) if chosen else None)
        bound = check_data(source, eval_data, what="evaluation") if eval_data else None
        prepared_sets.append(Prepared(source=source, calib=None, eval=bound))
    names = list(dict.fromkeys(targets or [target]))
    with ExitStack() as stack:
        members = connect(names, stack)
        fleet = len(members) > 1
        measured = concurrently([
            lambda member=member: _bench_member(
                member, artifacts, base, prepared_sets,
                DeployRequest(target=member.name, measure=measure, data=DataPlan(seed=seed)),
                fleet=fleet, progress=board_progress(progress, member.name, fleet))
            for member in members])
    records = stamp([r for rs in measured for r in rs], tag=tag)
    if record:
        run_id = record_stage(records, command=command)
        records = [replace(r, run_id=run_id) for r in records]
    return records


def _bench_member(member: Member, artifacts: list[Artifact], base: Artifact | None,
                  prepared_sets: list[Prepared], request: DeployRequest, *, fleet: bool,
                  progress: ProgressFn | None = None) -> list[ResultRecord]:
    """Measure the artifacts on one board (its reference outputs computed there too)."""
    from edgecomp.model.signature import stacked

    if member.transport is None:
        return [failed_record(artifact, prepared, member.reached, member.error or "unreachable")
                for artifact, prepared in zip(artifacts, prepared_sets)]
    settings = apply_plan(request, None, member.board)
    transport = member.transport
    try:
        board_facts(member.board, transport.info)  # keeps what the board says for later plans
    except transport_errors() as exc:  # the measurements below say what went wrong
        log.warning("could not read what %s reports about itself: %s", member.name, exc)
    outputs = None
    if base is not None:
        ref_prepared = prepared_sets[-1]
        try:
            outputs = transport.run_batch(base.path, stacked(ref_prepared.eval,
                                                             ref_prepared.source.inputs))
        except transport_errors() as exc:
            if not fleet:
                raise
            return [failed_record(artifact, prepared, transport,
                                  f"the reference could not be run on {transport.target}: {exc}")
                    for artifact, prepared in zip(artifacts, prepared_sets)]
    records = []
    for artifact, prepared in zip(artifacts, prepared_sets):
        records += measure_all([artifact], prepared, transport, settings.options_for,
                               reference=outputs, progress=progress)
    inputs = {a.path: measured_inputs(p) for a, p in zip([*artifacts, *([base] if base else [])],
                                                          prepared_sets)}
    bases, other_model = bench_bases(records, artifacts, base, asked=settings.rounds.asked)
    records = interleave(records, artifacts, bases, transport, settings.options_for,
                         lambda artifact: inputs[artifact.path], rounds=settings.rounds,
                         other_model=other_model, progress=progress)
    return [_flag_unplanned(record, member.board) for record in records]


def _flag_unplanned(record: ResultRecord, board) -> ResultRecord:
    """bench plans nothing: a CPU measurement on a board whose profile has an accelerator
    says so."""
    from edgecomp.results.execution import unplanned_flag

    flag = unplanned_flag(record.device, board.profile, runtime=record.runtime) \
        if record.ok else None
    return replace(record, flags=[*record.flags, flag]) if flag else record

"""deploy(request) -> records: plan → apply plan → prepare → compress → export → measure → record.

Each stage is a small function on frozen values that a library user can call alone;
`deploy` strings them together. Bad input is refused before anything is written (no
artifact, no row); a failure while measuring one artifact becomes a failed record and the
others go on; the connection to the board is closed in one place.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from edgecomp.export.base import Artifact
from edgecomp.hardware.board import board_facts
from edgecomp.hardware.plan import Plan
from edgecomp.model.facts import ModelFacts
from edgecomp.model.source import ModelSource
from edgecomp.pipeline import agent
from edgecomp.pipeline.apply import (BoardSettings, apply_plan, export_settings, format_plan,
                                     plan_stage)
from edgecomp.pipeline.bench import bench
from edgecomp.pipeline.build import DataSets, Prepared, Search, export_all, prepare, read_data
from edgecomp.pipeline.compress import (Training, compress_stage, load_training,
                                        recipe_export_defaults, recipe_formats)
from edgecomp.pipeline.fleet import Member, board_progress, concurrently, connect
from edgecomp.pipeline.load import data_for, load_recipe, load_source, source_facts
from edgecomp.pipeline.measure import (MeasureData, Verified, measure_all, measured_inputs,
                                       reference_outputs, verify_on)
from edgecomp.pipeline.record import check_store, failed_record, record_stage
from edgecomp.pipeline.request import DataSpec, DeployRequest, ExportChoices, ModelSpec
from edgecomp.pipeline.rounds import deploy_bases, interleave
from edgecomp.remote.base import transport_errors
from edgecomp.results.flags import flag_records
from edgecomp.results.provenance import stamp
from edgecomp.results.record import ResultRecord
from edgecomp.vocab import Format, Precision

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]


# ---------------------------------------------------------------------------------------
# deploy(request): the stages in order, each on frozen values.


def deploy(request: DeployRequest = DeployRequest(), *, progress: ProgressFn | None = None,
           on_plan: Callable[[Plan, str], None] | None = None) -> list[ResultRecord]:
    """Plan, compress, export, verify, measure and record a model on a target, or on every
    board of `request.targets` at once.

    Returns one record per artifact and board; a measurement that failed (or a board that
    could not be reached, in a fleet) is a record with `error` set. Bad input raises
    `InputError` before any artifact or row is written, and so does a store that cannot
    be opened; a store that fails after measuring raises `RunKept` with the records. A
    prebuilt `.tflite` is deployed as given: measured on the target (and run on `--eval`
    data). In a fleet, boards whose plans ask for the same artifacts share one build; each
    board verifies and times them in its own runtime. `on_plan(plan, target)` sees each
    board's plan.
    """
    names = request.target_names
    if request.model.spec and Path(request.model.spec).suffix.lower() == ".tflite":
        return bench([Path(request.model.spec)], targets=names,
                     measure=request.measure, eval_spec=request.data.eval,
                     seed=request.data.seed, record=request.record, command=request.command,
                     progress=progress, tag=request.tag, input_shape=request.model.input_shape,
                     name=request.model.name)
    data = data_for(request)
    recipe = load_recipe(request.recipe)
    training = load_training(request.train or ("digits:train" if request.model.is_demo
                                               else None), loss=request.loss,
                             train_fn=request.train_fn) if recipe is not None else Training()
    if request.record:
        check_store()  # a store that cannot take the run fails before the work
    sets = read_data(data)  # read once: the model's loader and each build share it
    source = load_source(request.model, data, progress=progress, sets=sets)
    with ExitStack() as stack:
        members = connect(names, stack)
        model = source_facts(source)  # read once: the plans and the int8 search use them
        planned = []
        for member in members:
            transport = member.transport
            facts = board_facts(member.board, (lambda t=transport: agent.info(t))
                                if transport is not None else None)
            plan = plan_stage(source, member.board, request.overrides, facts, model=model)
            if plan is not None and on_plan is not None:
                on_plan(plan, member.name)
            planned.append((member, plan, apply_plan(
                request, plan, member.board, emulated=facts.emulated,
                plan_for=lambda fmt, board=member.board, facts=facts: format_plan(
                    source, board, request.overrides, facts, fmt, model=model))))
        if recipe is not None:  # formats the recipe cannot export: refused or left out now
            planned = [(member, plan, _recipe_settings(recipe, settings, request, source))
                       for member, plan, settings in planned]
        out_dir = request.out_dir or Path("edgecomp-out") / source.name
        groups = _builds(planned, recipe)
        prepared_by_need: dict[bool, Prepared] = {}
        jobs = []
        for index, group in enumerate(groups):
            where = out_dir if len(groups) == 1 else out_dir / _build_dir(group, index)
            build = _build(request, source, data, sets, group, recipe, training, model, where,
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


def _recipe_settings(recipe, settings: BoardSettings, request: DeployRequest,
                     source: ModelSource) -> BoardSettings:
    """The board's settings for the recipe's precision, before any pass runs; a warning
    for each format left out (`recipe_formats`)."""
    checked, notes = recipe_formats(recipe, settings, request.export,
                                    has_module=source.module is not None)
    for note in notes:
        log.warning("%s", note)
    return checked


@dataclass(frozen=True)
class Build:
    """The artifacts built once for the boards sharing a plan, and what verifies them."""

    prepared: Prepared
    artifacts: list[Artifact]
    reference: Any  # the float model's outputs on the evaluation set, or None
    verified: dict[str, Verified]  # the int8 search's verifications, by artifact sha256
    verified_on: str | None  # the board those verifications ran on


def _build_key(plan: Plan | None, settings: BoardSettings, recipe) -> tuple:
    """What decides the artifacts: the export settings and, with a recipe, the plan's
    pruning choices. Threads and delegates only change how they are measured."""
    pruning = None
    if recipe is not None and plan is not None:
        pruning = (plan.pruning, plan.channel_multiple)
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


def _build(request: DeployRequest, source: ModelSource, data: DataSpec, sets: DataSets,
           group: list, recipe,
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
        prepared_by_need[needs_calib] = prepare(source, data, needs_calib=needs_calib,
                                                sets=sets)
    prepared = replace(prepared_by_need[needs_calib],
                       plan=plan.record() if plan is not None else None)
    reference = reference_outputs(prepared)  # the uncompressed float model's outputs
    verified: dict[str, Verified] = {}
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
        _search(request, prepared, reference, member.transport, settings, verified, model,
                progress=progress)
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


def _measure_member(member: Member, plan: Plan | None, settings: BoardSettings, build: Build, *,
                    progress: ProgressFn | None = None) -> list[ResultRecord]:
    """Verify and time a build's artifacts on one board, in that board's runtime; a board
    that cannot be reached gives one failed record per artifact."""
    # This board's own plan (its threads and delegate).
    prepared = replace(build.prepared, plan=plan.record() if plan is not None else None)
    if member.transport is None:
        return [failed_record(artifact, prepared, member.reached, member.error or "unreachable")
                for artifact in build.artifacts]
    # Verifications made on another board are not this board's: its kernels run them again.
    verified = build.verified if build.verified_on == member.name else None
    records = measure_all(build.artifacts, member.transport, settings.options_for,
                          MeasureData(prepared, reference=build.reference, verified=verified),
                          progress=progress)
    records = interleave(records, build.artifacts, deploy_bases(records, build.artifacts),
                         member.transport, settings.options_for,
                         lambda artifact: measured_inputs(prepared), rounds=settings.rounds,
                         progress=progress)
    # Artifacts of another format than the plan's carry that format's plan.
    return [replace(r, plan=settings.plans[r.format].record())
            if r.format in settings.plans else r for r in records]


def _search(request: DeployRequest, prepared: Prepared, reference, transport,
            settings: BoardSettings, verified: dict[str, Verified],
            model: ModelFacts | None, *, progress: ProgressFn | None = None) -> Search | None:
    """Accuracy-aware int8 when there is evaluation data to judge it by (and the float
    model's outputs to compare with). Candidates are judged on `transport`'s board with
    the executor the kept artifact will be timed with there; the verifications are kept
    for the records. Dynamic int8 is a candidate only where `model` is MatMul-heavy."""
    if not request.search or prepared.eval is None or reference is None:
        return None
    data = MeasureData(prepared, reference=reference)

    def check(artifact: Artifact):
        result = verify_on(transport, artifact, settings.options_for(artifact), data,
                           progress=progress)
        verified[artifact.manifest.sha256] = result
        return result.check

    return Search(check=check, target=request.agreement,
                  allow_dynamic=model is not None and model.conv_share is not None
                  and model.conv_share < 0.5)


def export_model(model: ModelSpec, data: DataSpec, choices: ExportChoices, out_dir: Path, *,
                 progress: ProgressFn | None = None, rebuild: bool = False) -> list[Artifact]:
    """`edgecomp export`: the chosen formats (default LiteRT) and precisions, no board;
    artifacts exported before with the same key come from the artifact cache."""
    from edgecomp.export.cache import ArtifactCache

    export = export_settings(choices, default_formats=(Format.TFLITE,))
    sets = read_data(data)
    source = load_source(model, data, progress=progress, sets=sets)
    prepared = prepare(source, data, needs_calib=Precision.INT8 in export.precisions, sets=sets)
    return export_all(prepared, export, out_dir, progress=progress,
                      cache=ArtifactCache.open(built_for="edgecomp export", rebuild=rebuild))

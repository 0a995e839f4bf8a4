"""bench(paths) -> records: measure artifacts that already exist, edgecomp's or anyone's, on
one board or several at once, timed interleaved when several are compared."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping

from edgecomp.errors import InputError
from edgecomp.export.base import Artifact
from edgecomp.hardware.board import board_facts
from edgecomp.model.signature import ShapeChoice
from edgecomp.model.source import ModelSource, check_data, check_model_name
from edgecomp.pipeline import agent
from edgecomp.pipeline.apply import apply_plan
from edgecomp.pipeline.build import Prepared
from edgecomp.pipeline.fleet import Member, board_progress, concurrently, connect
from edgecomp.pipeline.measure import MeasureData, measure_all, measured_inputs
from edgecomp.pipeline.record import check_store, failed_record, record_stage
from edgecomp.pipeline.request import DataSpec, DeployRequest, MeasureChoices
from edgecomp.pipeline.rounds import bench_bases, interleave
from edgecomp.remote.base import transport_errors
from edgecomp.results.provenance import check_tag, stamp
from edgecomp.results.record import ResultRecord

log = logging.getLogger(__name__)

ProgressFn = Callable[[str, int, int], None]


def bench(paths: list[Path], *, target: str = "local", measure: MeasureChoices = MeasureChoices(),
          eval_spec: str | None = None, reference: Path | None = None, seed: int = 0,
          record: bool = True, command: str = "edgecomp.pipeline.bench",
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

    check_tag(tag)  # refused before anything is measured, as the CLI refuses it
    if name is not None:
        check_model_name(name)
    artifacts = [artifact_from_file(Path(path)) for path in paths]
    if name is not None:
        artifacts = [replace(a, manifest=replace(a.manifest, model=name)) for a in artifacts]
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
        source = ModelSource(name=artifact.manifest.model, kind="artifact", module=None,
                             inputs=inputs, sha256=artifact.manifest.source_sha256,
                             spec=str(artifact.path), timing=timing_data(
                                 inputs, values=input_values, seed=seed) if chosen else None)
        bound = check_data(source, eval_data, what="evaluation") if eval_data else None
        prepared_sets.append(Prepared(source=source, calib=None, eval=bound))
    names = list(dict.fromkeys(targets or [target]))
    if record:
        check_store()  # a store that cannot take the run fails before the work
    with ExitStack() as stack:
        members = connect(names, stack)
        fleet = len(members) > 1
        measured = concurrently([
            lambda member=member: _bench_member(
                member, artifacts, base, prepared_sets,
                DeployRequest(target=member.name, measure=measure, data=DataSpec(seed=seed)),
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
    """Measure the artifacts on one board (its reference outputs computed there too, with
    the executor the reference's format is measured with)."""
    from edgecomp.model.signature import stacked

    if member.transport is None:
        return [failed_record(artifact, prepared, member.reached, member.error or "unreachable")
                for artifact, prepared in zip(artifacts, prepared_sets)]
    transport = member.transport
    emulated = None
    try:
        # Kept for later plans; an emulated board is timed with fewer runs.
        emulated = board_facts(member.board, lambda: agent.info(transport)).emulated
    except transport_errors() as exc:  # the measurements below say what went wrong
        log.warning("could not read what %s reports about itself: %s", member.name, exc)
    settings = apply_plan(request, None, member.board, emulated=emulated)
    outputs = None
    if base is not None:
        ref_prepared = prepared_sets[-1]
        try:
            outputs, _ = agent.outputs(transport, base.path,
                                       stacked(ref_prepared.eval, ref_prepared.source.inputs),
                                       settings.options_for(base))
        except transport_errors() as exc:
            if not fleet:
                raise
            return [failed_record(artifact, prepared, transport,
                                  f"the reference could not be run on {transport.target}: {exc}")
                    for artifact, prepared in zip(artifacts, prepared_sets)]
    records = []
    for artifact, prepared in zip(artifacts, prepared_sets):
        records += measure_all([artifact], transport, settings.options_for,
                               MeasureData(prepared, reference=outputs), progress=progress)
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

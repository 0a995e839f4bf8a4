"""measure_on: one artifact verified and timed on a board, as numbered steps.

    1. push the artifact and its inputs (the evaluation set, the sample timed),
    2. verify: run the evaluation set in the runtime, delegate and threads it is timed with,
    3. time it (latency, load, memory, power),
    4. fetch the verification's outputs and compare them with the float model's,
    5. clean up what the measurement left in the run's folder, whatever happened.

One boundary: any failure on the board or its link becomes that artifact's failed record
(`measure_all` goes on with the others and keeps their finished records).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from edgecomp.agent.protocol import RunReport
from edgecomp.errors import DeviceError
from edgecomp.export.base import Artifact
from edgecomp.model.reference import model_outputs, onnx_outputs
from edgecomp.model.signature import stacked
from edgecomp.pipeline import agent
from edgecomp.pipeline.agent import MeasureOptions, ProgressFn, read_outputs, write_inputs
from edgecomp.pipeline.build import Prepared
from edgecomp.pipeline.record import failed_record, measured_record
from edgecomp.remote.base import Transport, transport_errors
from edgecomp.results.agreement import Verification, compare_outputs, top1
from edgecomp.results.record import ResultRecord

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verified:
    """An artifact's verification on a board, and what ran it there."""

    check: Verification | None  # None: no labels and no float outputs to judge by
    run: RunReport


@dataclass(frozen=True)
class MeasureData:
    """What an artifact is verified and recorded with on a board."""

    prepared: Prepared  # the model with its evaluation set (and the plan the records carry)
    reference: list[np.ndarray] | None = None  # the float model's outputs on that set
    # Verifications made already on this board (by artifact sha256), e.g. while the int8
    # candidates were compared: not run again.
    verified: dict[str, Verified] | None = None


def measure_on(transport: Transport, artifact: Artifact, options: MeasureOptions,
               data: MeasureData, *, progress: ProgressFn | None = None) -> ResultRecord:
    """Verify and time one artifact on the board `transport` reaches, with `options`; any
    failure there or on its link is the artifact's failed record. The board's long loops
    report to `progress` as they run."""
    prepared = data.prepared
    timed = measured_inputs(prepared)
    known = (data.verified or {}).get(artifact.manifest.sha256)
    evaluation = prepared.eval if known is None else None
    outputs = transport.scratch("out.npz") if evaluation is not None else None
    with tempfile.TemporaryDirectory(prefix="edgecomp-measure-") as tmp:
        here = Path(tmp)
        try:
            # Step 1: push the artifact and its inputs.
            model = agent.push_model(transport, artifact.path)
            evaluation_there = None if evaluation is None else transport.push(write_inputs(
                here / "eval.npz", stacked(evaluation, prepared.source.inputs)))
            timed_there = None if timed is None else \
                transport.push(write_inputs(here / "timed.npz", timed))
            # Step 2: verify, with the executor it is timed with.
            ran = None if evaluation is None else \
                agent.run(transport, model, evaluation_there, outputs, options,
                          progress=progress, name=artifact.path.name)
            # Step 3: time it.
            report = agent.time_model(transport, model, options, inputs=timed_there,
                                      name=artifact.path.name, progress=progress)
            # Step 4: fetch the outputs and judge them.
            if ran is not None:
                transport.fetch(outputs, here / "out.npz")
                known = Verified(judge(artifact, read_outputs(here / "out.npz"), data), ran)
        except DeviceError as exc:
            return failed_record(artifact, prepared, transport, str(exc))
        except transport_errors() as exc:
            return failed_record(artifact, prepared, transport,
                                 f"the connection to {transport.target} failed "
                                 f"({type(exc).__name__}: {exc})")
        finally:
            # Step 5: clean up.
            if outputs is not None:
                transport.clean([outputs])
    return measured_record(artifact, prepared, transport, report,
                           known.check if known else None,
                           verified_by=known.run if known else None)


def verify_on(transport: Transport, artifact: Artifact, options: MeasureOptions,
              data: MeasureData, *, progress: ProgressFn | None = None) -> Verified:
    """Steps 1, 2 and 4 of `measure_on` alone (the int8 search judges candidates so, on
    the board and with the executor that will time the one kept); a failure raises."""
    outputs, ran = agent.outputs(transport, artifact.path,
                                 stacked(data.prepared.eval, data.prepared.source.inputs),
                                 options, progress=progress)
    return Verified(judge(artifact, outputs, data), ran)


def judge(artifact: Artifact, outputs: list[np.ndarray], data: MeasureData
          ) -> Verification | None:
    """The artifact's outputs on the evaluation set against the float model's (or, without
    them, against the labels)."""
    evaluation = data.prepared.eval
    if data.reference is not None:
        try:
            return compare_outputs(data.reference, outputs, evaluation)
        except ValueError as exc:
            raise DeviceError(f"{artifact.path.name} cannot be compared with the float "
                              f"model: {exc}.") from exc
    if evaluation.y is None:
        return None
    return Verification(accuracy=round(top1(outputs[0], evaluation.y), 3),
                        float_accuracy=None, accuracy_delta=None, agreement=None,
                        samples=len(outputs[0]))


def measure_all(artifacts: list[Artifact], transport: Transport,
                options_for: Callable[[Artifact], MeasureOptions], data: MeasureData, *,
                progress: ProgressFn | None = None) -> list[ResultRecord]:
    """`measure_on` for every artifact, in order."""
    records = []
    for index, artifact in enumerate(artifacts):
        if progress is not None:
            progress("measuring artifacts", index, len(artifacts))
        records.append(measure_on(transport, artifact, options_for(artifact), data,
                                  progress=progress))
    if progress is not None:
        progress("measuring artifacts", len(artifacts), len(artifacts))
    return records


def reference_outputs(prepared: Prepared) -> list[np.ndarray] | None:
    """The float model's outputs on the evaluation set, one array per output: the PyTorch
    module, or for an ONNX source the ONNX file itself run by onnxruntime here."""
    source, eval_set = prepared.source, prepared.eval
    if eval_set is None:
        return None
    if source.module is not None:
        return model_outputs(source.module, eval_set, source.inputs)
    if source.onnx_path is not None:
        return onnx_outputs(source.onnx_path, eval_set, source.inputs)
    return None


def measured_inputs(prepared: Prepared) -> dict[str, np.ndarray] | None:
    """The inputs the agent times with: the first evaluation (else calibration) sample,
    else the sample made for the shapes --input-shape chose (else the agent makes one)."""
    data = prepared.eval if prepared.eval is not None else prepared.calib
    if data is None:
        data = prepared.source.timing
    if data is None:
        return None
    return {key: value[:1] for key, value in stacked(data, prepared.source.inputs).items()}

"""measure_on verifies an artifact in the very runtime, delegate and threads it times it with,
whatever the options ask, and says so in the record."""

from __future__ import annotations

import os

import pytest

from edgecomp.pipeline.agent import MeasureOptions
from edgecomp.pipeline.build import ExportSettings, export_all, prepare
from edgecomp.pipeline.measure import MeasureData, measure_on, reference_outputs
from edgecomp.pipeline.request import DataSpec
from edgecomp.remote.local import LocalTransport
from edgecomp.vocab import Precision

CORES = len(os.sched_getaffinity(0))


@pytest.fixture(scope="module")
def built(demo_source, tmp_path_factory):
    """The demo's fp32 and int8 artifacts in both formats, with its evaluation data."""
    prepared = prepare(demo_source, DataSpec(calib="digits:train", eval="digits:val",
                                             calib_size=64, eval_size=40), needs_calib=True)
    artifacts = export_all(prepared, ExportSettings(formats=("tflite", "onnx"),
                                                precisions=(Precision.FP32, Precision.INT8)),
                           tmp_path_factory.mktemp("built"))
    data = MeasureData(prepared, reference=reference_outputs(prepared))
    return {(a.format.value, a.precision.value): a for a in artifacts}, data


class Recording(LocalTransport):
    """The local agent, keeping the arguments of every command it runs."""

    def __init__(self):
        super().__init__()
        self.commands: list[list[str]] = []

    def run_agent(self, args, *, what):
        self.commands.append(list(args))
        return super().run_agent(args, what=what)


def executor_flags(args: list[str]) -> dict[str, str]:
    """The flags of an agent command that choose what executes the model."""
    chosen = {}
    for flag in ("--runtime", "--delegate", "--threads", "--on-missing-delegate"):
        if flag in args:
            chosen[flag] = args[args.index(flag) + 1]
    return chosen


@pytest.mark.slow
@pytest.mark.parametrize("fmt, precision, runtime, delegate, threads", [
    ("tflite", "int8", "ai_edge_litert", "xnnpack", 1),
    ("tflite", "fp32", "ai_edge_litert", "cpu", 2),
    ("tflite", "int8", "auto", "auto", None),
    ("onnx", "int8", "onnxruntime", "cpu", 1),
    ("onnx", "fp32", "onnxruntime", "auto", 2),
    ("onnx", "fp32", "auto", "auto", None),
])
def test_verification_runs_with_the_executor_it_is_timed_with(built, fmt, precision, runtime,
                                                              delegate, threads):
    artifacts, data = built
    options = MeasureOptions(runs=5, seconds=0, warmup_runs=1, warmup_seconds=0,
                             runtime=runtime, delegate=delegate, threads=threads)
    with Recording() as transport:
        record = measure_on(transport, artifacts[(fmt, precision)], options, data)
    assert record.ok, record.error
    run, measure = [c for c in transport.commands if c[0] in ("run", "measure")]
    assert run[0] == "run" and measure[0] == "measure"  # verified, then timed
    assert executor_flags(run) == executor_flags(measure)
    assert executor_flags(run)["--runtime"] == runtime
    # What the agent reports for each: one runtime, one delegate, one thread count.
    verified = record.device.verification
    assert verified is not None
    assert verified.runtime == record.runtime.split()[0]
    assert verified.runtime == {"tflite": "ai_edge_litert", "onnx": "onnxruntime"}[fmt]
    assert verified.delegate == record.device.delegate
    assert verified.threads == record.threads == min(threads or CORES, CORES)
    assert record.device.threads_requested == threads
    assert record.agreement is not None and record.agreement.cosine > 0.9


@pytest.mark.slow
def test_a_verification_made_by_the_search_is_reused_with_its_executor(built):
    from edgecomp.pipeline.measure import verify_on

    artifacts, data = built
    artifact = artifacts[("onnx", "int8")]
    options = MeasureOptions(runs=5, seconds=0, warmup_runs=1, warmup_seconds=0, threads=1)
    with Recording() as transport:
        found = verify_on(transport, artifact, options, data)
        known = MeasureData(data.prepared, reference=data.reference,
                            verified={artifact.manifest.sha256: found})
        record = measure_on(transport, artifact, options, known)
    assert [c[0] for c in transport.commands] == ["run", "measure"]  # not run twice
    assert executor_flags(transport.commands[0]) == executor_flags(transport.commands[1])
    assert record.device.verification.threads == record.threads == 1
    assert record.agreement == found.check.agreement

"""The agent's reports survive JSON both ways; another version or a bad field is refused."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from edgecomp.agent import device
from edgecomp.agent.protocol import (PROTOCOL_VERSION, AgentInfo, LatencyStats, MeasureReport,
                                     PowerReport, ProtocolError, TargetFacts, TensorSpec, Warmup)
from edgecomp.errors import DeviceError
from edgecomp.pipeline.agent import parse_report


def a_report() -> MeasureReport:
    state = device.device_state()
    return MeasureReport(
        agent_version="2", python="3.8.10", runtime="ai_edge_litert", runtime_version="2.3.0",
        delegate="xnnpack", execution_providers=(), threads=1, threads_requested=1,
        load_ms=1.5, first_inference_ms=0.4, warmup=Warmup(runs=5, seconds=0.5),
        samples_ms=(0.1, 0.2, 0.3), latency_ms=LatencyStats(0.2, 0.28, 0.298, 0.2, 0.08, 3),
        idle_rss_mb=40.0, peak_rss_mb=45.0, rss_growth_mb=5.0,
        inputs=(TensorSpec("x", (1, 16), "float32", None),), outputs=(),
        device_before=state, device_after=state, throttle_c=80.0, throttled_during=None,
        lock_wait_s=0.0, power=PowerReport(probe="none", energy_mj=None, reason="no sensor"),
        target=TargetFacts(name="local", transport="local"))


def test_measure_report_round_trips_through_json():
    report = a_report()
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is True and data["protocol_version"] == PROTOCOL_VERSION
    assert MeasureReport.from_dict(data) == report


def test_agent_info_round_trips_through_json():
    info = AgentInfo(agent_version="2", python="3.8.10", arch="aarch64", cpu_model="Cortex-A72",
                     online_cores=4, runtimes={"onnxruntime": "1.17.0", "tflite_runtime": None},
                     execution_providers=("CPUExecutionProvider",),
                     device=device.device_state(), missing=())
    assert AgentInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info


def test_another_protocol_version_is_refused_with_a_sentence():
    data = a_report().to_dict()
    data["protocol_version"] = PROTOCOL_VERSION + 1
    with pytest.raises(ProtocolError, match="protocol version"):
        MeasureReport.from_dict(data)
    with pytest.raises(DeviceError, match="update edgecomp") as err:
        parse_report(MeasureReport, data, where="pi4")
    assert "pi4" in str(err.value) and str(err.value).count(".") <= 3


@pytest.mark.parametrize("change, message", [
    (lambda d: d.pop("load_ms"), "MeasureReport.load_ms is missing"),
    (lambda d: d.update(threads="4"), "MeasureReport.threads should be int"),
    (lambda d: d.update(threads=True), "MeasureReport.threads should be an integer"),
    (lambda d: d["latency_ms"].pop("p99"), "MeasureReport.latency_ms.p99 is missing"),
    (lambda d: d.update(samples_ms=[0.1, "x"]), r"MeasureReport.samples_ms\[1\]"),
    (lambda d: d["device_after"].update(temperatures_c=[]), "temperatures_c should be an obj"),
])
def test_missing_or_ill_typed_fields_are_named(change, message):
    data = a_report().to_dict()
    change(data)
    with pytest.raises(ProtocolError, match=message):
        MeasureReport.from_dict(data)


def test_integers_are_accepted_where_floats_are_expected():
    report = a_report()  # one report: the live device state differs between readings
    data = report.to_dict()
    data["load_ms"] = 2
    assert MeasureReport.from_dict(data).load_ms == 2.0
    assert replace(report, load_ms=2.0) == MeasureReport.from_dict(data)


def test_an_older_agent_refusing_new_options_is_named_as_older():
    from edgecomp.errors import DeviceError
    from edgecomp.remote.base import parse_agent_output

    old = json.dumps({"ok": False, "protocol_version": PROTOCOL_VERSION - 1, "kind": "bad_args",
                      "error": "bad arguments: unrecognized arguments: --profile-ops"})
    with pytest.raises(DeviceError, match=f"speaks protocol version {PROTOCOL_VERSION - 1}, "
                                          f"this edgecomp speaks {PROTOCOL_VERSION}"):
        parse_agent_output(old, where="pi")

"""Every transport returns the same typed reports: LocalTransport and a real-sshd board."""

from __future__ import annotations

from dataclasses import fields

import pytest

from edgecomp.agent.protocol import (AgentInfo, DeviceState, LatencyStats, MeasureReport,
                                     PowerReport, TargetFacts)
from edgecomp.pipeline.agent import MeasureOptions
from edgecomp.remote.local import LocalTransport
from edgecomp.pipeline import agent

OPTIONS = MeasureOptions(runs=5, seconds=0, warmup_runs=1, warmup_seconds=0, threads=1,
                         throttle_c=95.0)


@pytest.fixture(params=["local", "ssh"])
def transport(request):
    if request.param == "local":
        with LocalTransport() as local:
            yield local
        return
    from edgecomp.remote.ssh import SshTransport
    from edgecomp.hardware.targets import get_target

    board = request.getfixturevalue("board")
    with SshTransport(get_target(board.name)) as ssh:
        yield ssh


@pytest.mark.slow
def test_info_is_typed(transport):
    info = agent.info(transport)
    assert isinstance(info, AgentInfo) and isinstance(info.device, DeviceState)
    assert info.online_cores >= 1 and info.runtimes["ai_edge_litert"]
    assert info.missing == ()


@pytest.mark.slow
def test_measure_report_has_the_same_shape_everywhere(transport, deployed_artifact):
    report = agent.measure(transport, deployed_artifact, OPTIONS)
    assert type(report) is MeasureReport
    assert isinstance(report.latency_ms, LatencyStats) and isinstance(report.power, PowerReport)
    assert isinstance(report.device_before, DeviceState)
    assert report.threads == 1 and report.threads_requested == 1
    assert report.throttle_c == 95.0
    assert report.runtime == "ai_edge_litert" and report.delegate == "xnnpack"
    assert len(report.samples_ms) == report.latency_ms.count >= 5
    assert isinstance(report.target, TargetFacts)
    assert report.target.transport == transport.name and report.target.name == transport.target
    assert MeasureReport.from_dict(report.to_dict()) == report
    assert {f.name for f in fields(report)} == {f.name for f in fields(MeasureReport)}

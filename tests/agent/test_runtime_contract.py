"""Every runtime module through one contract, and the host's vocabularies derived from them.

A runtime is declared once, by a module of `edgecomp.agent.runtimes`; these tests hold the
agent's choices and the host's RuntimeName, DelegateName, RUNTIME_FORMATS, labels and CPU
executors to what those modules say, and show that a new module is found on its own.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
import textwrap

import pytest

import edgecomp.agent.runtimes as runtimes_package
from edgecomp.agent.__main__ import build_parser
from edgecomp.agent.failure import AgentError
from edgecomp.agent.runtimes import (RUNTIMES, agent_runtime, agent_runtimes, all_runtimes,
                                     cpu_executors, delegate_choices, delegate_names,
                                     format_runtimes, label, open_runtime, runtime_facts,
                                     runtime_formats, runtime_names)
from edgecomp.agent.runtimes.base import Runtime, RuntimeFacts, check_facts
from edgecomp.registry import Registry, UnknownName
from edgecomp.results.execution import CPU_EXECUTORS
from edgecomp.vocab import RUNTIME_FORMATS, DelegateName, Format, RuntimeName, _derived, choices

PACKAGE = runtimes_package.__name__
# What the project declared by hand before the runtime modules did: the derived facts must
# not change any of it.
BEFORE = {
    "runtimes": ["ai_edge_litert", "tflite_runtime", "tensorflow", "onnxruntime", "tensorrt"],
    "delegates": ["xnnpack", "cpu", "gpu", "nnapi", "tensorrt"],
    "agent_delegates": ("auto", "xnnpack", "cpu", "gpu", "nnapi", "tensorrt"),
    "format_runtimes": {".tflite": ["ai_edge_litert", "tflite_runtime", "tensorflow"],
                        ".onnx": ["onnxruntime"]},
    "labels": {"ai_edge_litert": "LiteRT", "tflite_runtime": "tflite_runtime",
               "tensorflow": "TensorFlow Lite", "onnxruntime": "onnxruntime"},
    "cpu_executors": {"xnnpack", "cpu", "CPUExecutionProvider", "XnnpackExecutionProvider"},
    "packages": {"ai_edge_litert": ("ai_edge_litert.interpreter", "ai-edge-litert"),
                 "tflite_runtime": ("tflite_runtime.interpreter", "tflite-runtime"),
                 "tensorflow": ("tensorflow", "tensorflow"),
                 "onnxruntime": ("onnxruntime", "onnxruntime")},
}
ADAPTER_METHODS = ("load", "inputs", "outputs", "set_inputs", "invoke", "get_outputs")


@pytest.mark.parametrize("name", RUNTIMES.names())
def test_every_runtime_module_declares_every_fact(name):
    facts = RUNTIMES.get(name)
    assert isinstance(facts, RuntimeFacts) and facts.name == name
    # One module per runtime, named after it, holding its facts.
    assert importlib.import_module(f"{PACKAGE}.{name}").FACTS is facts
    for field in ("name", "package", "module", "format", "label"):
        assert isinstance(getattr(facts, field), str) and getattr(facts, field), field
    assert isinstance(facts.preference, int) and not isinstance(facts.preference, bool)
    assert isinstance(facts.delegates, tuple) and facts.delegates
    assert all(isinstance(d, str) for d in facts.delegates) and "auto" not in facts.delegates
    assert isinstance(facts.cpu_executors, frozenset)
    assert all(isinstance(e, str) for e in facts.cpu_executors)
    assert facts.format in choices(Format) and facts.suffix == "." + facts.format
    assert (facts.adapter is None) != (facts.via is None)
    if facts.adapter is not None:
        assert issubclass(facts.adapter, Runtime)
        for method in ADAPTER_METHODS:
            assert getattr(facts.adapter, method) is not getattr(Runtime, method), method
    else:  # measured through another runtime, which takes that delegate
        through, delegate = facts.via
        assert runtime_facts(through).adapter is not None
        assert delegate in runtime_facts(through).delegates
        assert runtime_facts(through).format == facts.format


def test_the_check_names_the_runtime_and_the_missing_fact():
    facts = runtime_facts("onnxruntime")
    check_facts(facts)
    with pytest.raises(TypeError, match="runtime 'onnxruntime': label should be"):
        check_facts(dataclasses.replace(facts, label=""))
    with pytest.raises(TypeError, match="delegates should be"):
        check_facts(dataclasses.replace(facts, delegates=("auto", "cpu")))
    with pytest.raises(TypeError, match="declares both"):
        check_facts(dataclasses.replace(facts, via=("onnxruntime", "cpu")))
    with pytest.raises(TypeError, match="declares neither"):
        check_facts(dataclasses.replace(facts, adapter=None))
    with pytest.raises(TypeError, match="must register a RuntimeFacts"):
        check_facts({"name": "onnxruntime"})


def test_every_formats_runtimes_are_ordered_by_preference():
    assert format_runtimes() == BEFORE["format_runtimes"]
    for suffix, names in format_runtimes().items():
        preferences = [runtime_facts(name).preference for name in names]
        assert preferences == sorted(set(preferences)), suffix  # strictly increasing
    ranks = [facts.preference for facts in all_runtimes()]
    assert len(ranks) == len(set(ranks)), "two runtimes share a preference"


def test_the_agent_choices_come_from_the_modules():
    assert [f.name for f in agent_runtimes()] == list(BEFORE["packages"])
    assert dict((f.name, (f.module, f.package)) for f in agent_runtimes()) == BEFORE["packages"]
    assert delegate_choices() == BEFORE["agent_delegates"]
    parser = build_parser()
    for delegate in delegate_choices():
        assert parser.parse_args(["measure", "m.onnx", "--delegate", delegate]).delegate == \
            delegate
    with pytest.raises(AgentError, match="choose from 'auto', 'xnnpack', 'cpu', 'gpu', "
                                         "'nnapi', 'tensorrt'"):
        parser.parse_args(["run", "m.onnx", "--delegate", "warp"])


def test_the_host_vocabularies_equal_the_registry():
    assert choices(RuntimeName) == list(runtime_names()) == BEFORE["runtimes"]
    assert choices(DelegateName) == list(delegate_names()) == BEFORE["delegates"]
    assert {r.value: f.value for r, f in RUNTIME_FORMATS.items()} == runtime_formats()
    assert RUNTIME_FORMATS[RuntimeName.TENSORRT] is Format.ONNX
    assert (RuntimeName.AI_EDGE_LITERT, DelegateName.NNAPI) == ("ai_edge_litert", "nnapi")
    assert CPU_EXECUTORS == cpu_executors() == BEFORE["cpu_executors"]
    for name, text in BEFORE["labels"].items():
        assert label(name) == label(RuntimeName(name)) == text
    assert label("a-runtime-this-agent-lacks") == "a-runtime-this-agent-lacks"


def test_tensorrt_is_measured_through_onnxruntime():
    assert agent_runtime(RuntimeName.TENSORRT, "auto") == ("onnxruntime", "tensorrt")
    assert agent_runtime(RuntimeName.ONNXRUNTIME, DelegateName.CPU) == ("onnxruntime", "cpu")
    assert agent_runtime("ai_edge_litert", "auto") == ("ai_edge_litert", "auto")
    with pytest.raises(UnknownName, match="unknown runtime 'warp'; choose one of ai_edge"):
        agent_runtime("warp", "auto")


NEW_RUNTIME = '''
"""A runtime only this test knows: .fake files, "loaded" with the json module."""

from . import RUNTIMES
from .base import Runtime, RuntimeFacts


class FakeRuntime(Runtime):
    def load(self):
        self.executed = "fake-cpu"


FACTS = RUNTIMES.register()(RuntimeFacts(
    name="fakert", package="fake-runtime", module="json", format="fake", preference=45,
    delegates=("cpu", "warp"), label="Fake RT", cpu_executors=frozenset({"fake-cpu"}),
    adapter=FakeRuntime))
'''


@pytest.fixture()
def fresh_runtimes(tmp_path, monkeypatch):
    """The runtime registry loaded afresh from the package plus a directory holding a new
    module, every runtime module imported again into it; all restored afterwards."""
    (tmp_path / "fakert.py").write_text(textwrap.dedent(NEW_RUNTIME))
    monkeypatch.setattr(runtimes_package, "__path__", [*runtimes_package.__path__,
                                                       str(tmp_path)])
    monkeypatch.setattr(runtimes_package, "RUNTIMES",
                        Registry("runtime", PACKAGE, check=check_facts))
    # The registering modules run again; base and the shared adapter stay as they are.
    for name in RUNTIMES.names():
        monkeypatch.delitem(sys.modules, f"{PACKAGE}.{name}")
        monkeypatch.delattr(runtimes_package, name)
    try:
        yield runtimes_package.RUNTIMES
    finally:
        for name in [*RUNTIMES.names(), "fakert"]:
            sys.modules.pop(f"{PACKAGE}.{name}", None)  # monkeypatch puts the originals back
        if hasattr(runtimes_package, "fakert"):
            delattr(runtimes_package, "fakert")


def test_a_new_runtime_module_is_found_without_editing_any_list(fresh_runtimes, tmp_path):
    assert "fakert" in fresh_runtimes.names() and "onnxruntime" in fresh_runtimes.names()
    assert runtime_names()[-2:] == ("fakert", "tensorrt")  # by preference
    assert format_runtimes()[".fake"] == ["fakert"]
    assert delegate_choices() == BEFORE["agent_delegates"] + ("warp",)
    assert "fake-cpu" in cpu_executors() and label("fakert") == "Fake RT"
    assert _derived("RuntimeName", runtime_names(), "").FAKERT == "fakert"
    model = tmp_path / "model.fake"
    runtime = open_runtime(str(model), "auto", 1)
    assert runtime.name == "fakert" and type(runtime).__name__ == "FakeRuntime"
    runtime.load()
    assert runtime.executed == "fake-cpu"


def test_the_fresh_registry_is_gone_afterwards():
    assert "fakert" not in RUNTIMES and runtimes_package.RUNTIMES is RUNTIMES
    assert runtime_names() == tuple(BEFORE["runtimes"])

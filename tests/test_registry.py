"""The one registry mechanism, on a package made for each test."""

from __future__ import annotations

import importlib
import sys
import textwrap

import pytest

from edgecomp.registry import Registry, UnknownName

PACKAGE = "edgecomp_registry_demo"
INIT = '''
from edgecomp.registry import Registry

WIDGETS = Registry("widget", __name__)
'''
WIDGET = '''
from . import WIDGETS


@WIDGETS.register()
class Widget:
    name = "{name}"
'''
HIDDEN = '''
from . import WIDGETS

IMPORTED = True


@WIDGETS.register("hidden")
class Hidden:
    pass
'''


@pytest.fixture()
def demo(tmp_path, monkeypatch):
    """A package on sys.path with widgets alpha and beta and a module `_hidden`; its
    registry, and the package's modules forgotten afterwards."""
    package = tmp_path / PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(INIT))
    for name in ("beta", "alpha"):
        (package / f"{name}.py").write_text(textwrap.dedent(WIDGET.format(name=name)))
    (package / "_hidden.py").write_text(textwrap.dedent(HIDDEN))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE).WIDGETS
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == PACKAGE]:
            del sys.modules[name]


def test_every_module_of_the_package_is_found(demo):
    assert demo.names() == ["alpha", "beta"] and len(demo) == 2 and "alpha" in demo
    assert demo.get("beta").__module__ == f"{PACKAGE}.beta"
    assert [name for name, _ in demo.items()] == ["alpha", "beta"] == list(demo)


def test_modules_starting_with_an_underscore_are_not_imported(demo):
    demo.load()
    assert "hidden" not in demo and f"{PACKAGE}._hidden" not in sys.modules
    assert f"{PACKAGE}.alpha" in sys.modules


def test_an_unknown_name_lists_the_known_ones(demo):
    with pytest.raises(UnknownName) as raised:
        demo.get("gamma")
    assert str(raised.value) == "unknown widget 'gamma'; choose one of alpha, beta"
    assert isinstance(raised.value, LookupError)


def test_a_second_implementation_under_a_name_is_refused(demo):
    original = demo.get("alpha")

    class Impostor:
        name = "alpha"

    with pytest.raises(RuntimeError, match="two widgets registered as 'alpha'"):
        demo.register()(Impostor)
    assert demo.get("alpha") is original
    assert demo.register("alpha", "first")(original) is original  # the same one: fine
    assert demo.get("first") is original


def test_the_check_refuses_an_implementation_before_it_is_registered(demo):
    def check(implementation):
        if not hasattr(implementation, "load"):
            raise TypeError("%s declares no load()" % implementation.name)

    registry = Registry("runtime", PACKAGE, check=check)

    class Broken:
        name = "broken"

    with pytest.raises(TypeError, match="broken declares no load"):
        registry.register()(Broken)
    assert "broken" not in registry and registry.names() == []


def test_a_failed_load_is_tried_again(demo, tmp_path):
    broken = tmp_path / PACKAGE / "aardvark.py"  # imported before alpha and beta
    broken.write_text("raise ImportError('aardvark is broken')\n")
    with pytest.raises(ImportError, match="aardvark is broken"):
        demo.load()
    broken.unlink()
    importlib.invalidate_caches()
    assert demo.names() == ["alpha", "beta"]  # imports again instead of keeping a half load


def test_every_extension_point_is_found_the_same_way():
    """Exporters, passes, transports, store backends, runtimes and power probes: each a
    Registry over the package that holds its implementations, each found there."""
    from edgecomp.agent.power import PROBES
    from edgecomp.agent.runtimes import RUNTIMES
    from edgecomp.compress.base import PASSES
    from edgecomp.export import EXPORTERS
    from edgecomp.remote.base import TRANSPORTS
    from edgecomp.results.store import BACKENDS

    points = {"edgecomp.export": EXPORTERS, "edgecomp.compress": PASSES,
              "edgecomp.remote": TRANSPORTS, "edgecomp.results.store": BACKENDS,
              "edgecomp.agent.runtimes": RUNTIMES, "edgecomp.agent.power": PROBES}
    for package, registry in points.items():
        assert isinstance(registry, Registry) and registry.package == package
        assert len(registry) >= 2, package
        for name, found in registry.items():
            module = found.__module__ if isinstance(found, type) else type(found).__module__
            assert module.startswith(package + "."), (package, name, module)
    assert set(EXPORTERS) >= {"tflite", "onnx"}
    assert set(TRANSPORTS) == {"local", "ssh", "labgrid"}
    assert set(BACKENDS) == {"sqlite", "postgresql"}


def test_threads_asking_at_once_all_wait_for_the_whole_package(tmp_path, monkeypatch):
    """Boards of a fleet are opened from threads of their own: none may see the registry
    half loaded (it once told a board there was no such transport as `ssh`)."""
    import threading

    package = tmp_path / "slow_registry_demo"
    package.mkdir()
    (package / "__init__.py").write_text(textwrap.dedent(INIT))
    for name in ("alpha", "beta", "gamma"):
        (package / f"{name}.py").write_text(
            "import time\ntime.sleep(0.2)\n" + textwrap.dedent(WIDGET.format(name=name)))
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        widgets = importlib.import_module("slow_registry_demo").WIDGETS
        seen, start = [], threading.Barrier(4)

        def ask():
            start.wait()
            seen.append(widgets.names())

        threads = [threading.Thread(target=ask) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert seen == [["alpha", "beta", "gamma"]] * 4
    finally:
        for name in [n for n in sys.modules if n.split(".")[0] == "slow_registry_demo"]:
            del sys.modules[name]

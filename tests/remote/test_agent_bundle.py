"""The agent zipapp: the same bytes on every build, runnable by a bare python anywhere."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile

from edgecomp.remote.agent_bundle import agent_pyz, agent_sources, build_pyz_bytes


def test_two_builds_give_the_same_sha256(tmp_path, monkeypatch):
    first = agent_pyz()
    first_sha = hashlib.sha256(first.read_bytes()).hexdigest()
    assert first.name == f"edgecomp-agent-{first_sha[:16]}.pyz"
    monkeypatch.setenv("EDGECOMP_CACHE", str(tmp_path / "other-cache"))
    second = agent_pyz()
    assert second != first and second.is_relative_to(tmp_path)
    assert hashlib.sha256(second.read_bytes()).hexdigest() == first_sha
    assert agent_pyz() == second  # cached: not rewritten
    # Entry order, dates and modes are fixed, whatever the files' own mtimes.
    with zipfile.ZipFile(second) as archive:
        infos = archive.infolist()
    names = [i.filename for i in infos]
    assert names == sorted(names) and "edgecomp/agent/power/hwmon.py" in names
    assert {i.date_time for i in infos} == {(1980, 1, 1, 0, 0, 0)}
    assert {i.external_attr >> 16 for i in infos} == {0o100644}
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)


def test_sources_change_the_hash():
    files = agent_sources()
    changed = dict(files, **{"edgecomp/agent/stats.py": files["edgecomp/agent/stats.py"] + b"#"})
    assert build_pyz_bytes(files) == build_pyz_bytes(dict(reversed(list(files.items()))))
    assert build_pyz_bytes(changed) != build_pyz_bytes(files)


def test_a_plain_isolated_python_runs_info_outside_the_repo(tmp_path):
    copy = tmp_path / "agent.pyz"
    copy.write_bytes(agent_pyz().read_bytes())
    result = subprocess.run([sys.executable, "-I", str(copy), "info"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120,
                            env={"PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] and report["online_cores"] >= 1

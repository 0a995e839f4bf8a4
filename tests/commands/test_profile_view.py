"""The per-op profile table: node names from a stranger's model are shown as written,
never read as markup, with what a terminal would obey escaped."""

from __future__ import annotations

import dataclasses

from rich.console import Console

from edgecomp.commands.profile_view import print_profiles
from tests.results.records import record

NODE = "[bold]conv\x1b[2J\nINFO forged"


def test_node_names_are_shown_escaped_and_never_as_markup():
    profile = {"top": [{"op_type": "Conv", "name": NODE, "executor": "CPU", "ms": 0.5,
                        "share": 0.5}],
               "runs": 10, "total_ms": 1.0, "outside_delegate_share": 0.0,
               "data_movement_share": 0.1, "source": "onnxruntime profiler"}
    measured = dataclasses.replace(record(), artifact_name="[red]m\nx.onnx", profile=profile)
    console = Console(width=300, record=True, force_terminal=False)
    print_profiles([measured], console)
    out = console.export_text()
    assert "\x1b" not in out and "\nINFO forged" not in out
    assert "[bold]conv\\x1b[2J\\nINFO forged" in out
    assert "[red]m\\nx.onnx on local: per-op profile" in out

"""Target files: validated once, with the file and field named on error."""

from __future__ import annotations

import pytest

from edgecomp.errors import InputError
from edgecomp.targets import get_target, load_targets, parse_target

GOOD = {"name": "pi", "host": "10.0.0.5", "profile": "pi4"}


def test_repo_examples_load():
    targets = load_targets()
    assert targets["pi4-example"].profile == "pi4"
    assert targets["pi4-example"].port == 22


@pytest.mark.parametrize("field, value, message", [
    ("host", "pi; rm -rf ~", "characters"),
    ("workdir", "$(reboot)", "characters"),
    ("python", "python3 && curl evil", "characters"),
    ("workdir", "/tmp/../etc", "'..'"),
    ("port", 70000, "between"),
    ("port", "22", "must be int"),
    ("colour", "red", "unknown field target.colour"),
])
def test_fields_that_would_break_a_shell_command_are_refused(field, value, message):
    with pytest.raises(InputError, match=message) as err:
        parse_target({"target": {**GOOD, field: value}}, source="boards/pi.toml")
    assert "boards/pi.toml" in str(err.value)


def test_missing_field_is_named():
    with pytest.raises(InputError, match="target.profile is missing"):
        parse_target({"target": {"name": "x", "host": "h"}}, source="x.toml")


def test_unknown_target_lists_the_known_ones():
    with pytest.raises(InputError, match="known targets: local, .*pi4-example"):
        get_target("nope")

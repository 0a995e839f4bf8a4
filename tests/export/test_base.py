"""What every exporter shares: the manifest is strict JSON and artifacts stay in -o."""

from __future__ import annotations

import json

from edgecomp.export.base import manifest_json


def test_a_manifest_never_holds_nan():
    text = manifest_json({"search": [{"cosine": float("nan"), "size": 3}],
                          "max_abs_err": float("inf"), "ok": 0.5})
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"search": [{"cosine": None, "size": 3}],
                                "max_abs_err": None, "ok": 0.5}

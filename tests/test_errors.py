"""Messages stay plain text: the terminal escape codes other tools colour their text with
(torch.onnx's exporter does) never reach records, manifests, JSON or logs."""

from __future__ import annotations

import json
import logging

import pytest

from edgecomp.cli import PlainFormatter
from edgecomp.errors import DeviceError, ExportError, plain_text, terminal_safe

# What torch.onnx's exporter raised for a model it cannot trace (see tests/export/test_onnx.py).
TORCH_ONNX = ("Failed to export the model with torch.export. \x1b[96mThis is step 1/3\x1b[0m "
              "of exporting the model to ONNX. Next steps:")


@pytest.mark.parametrize("raw, plain", [
    (TORCH_ONNX, "Failed to export the model with torch.export. This is step 1/3 of exporting "
                 "the model to ONNX. Next steps:"),
    ("\x1b[1;31merror\x1b[0m: \x1b[2Kbad", "error: bad"),  # colour, erase line
    ("see \x1b]8;;https://example.org\x1b\\the docs\x1b]8;;\x1b\\", "see the docs"),  # link
    ("first\r\nsecond\n", "first\nsecond\n"),  # Windows line ends keep every line
    ("10%\r100%", "100%"),  # what a terminal shows last
    ("bell\x07 nul\x00 c1\x9b tab\tend", "bell nul c1 tab\tend"),
    ("déjà vu — 1.5×, ✓", "déjà vu — 1.5×, ✓"),  # text is left as it is
])
def test_plain_text_removes_escape_sequences_and_controls(raw, plain):
    assert plain_text(raw) == plain


def test_our_errors_carry_plain_messages():
    error = ExportError(f"torch.onnx could not export m: {TORCH_ONNX}")
    assert "\x1b" not in str(error) and "This is step 1/3 of exporting" in str(error)
    assert str(DeviceError("plain")) == "plain"


def test_a_failed_record_stores_a_plain_error(tmp_path):
    from edgecomp.pipeline.build import Prepared
    from edgecomp.export.base import Artifact
    from edgecomp.remote.local import LocalTransport
    from edgecomp.pipeline.record import failed_record
    from tests.results.records import manifest

    path = tmp_path / "m.fp32.tflite"
    path.write_bytes(b"model")
    artifact = Artifact(path=path, manifest=manifest(sha256="a" * 64, source_sha256="5" * 64))
    prepared = Prepared(source=None, calib=None, eval=None)  # only its plan is read
    failed = failed_record(artifact, prepared, LocalTransport(),
                           "the connection failed (SSHException: \x1b[31mreset\x1b[0m)")
    assert failed.error == "the connection failed (SSHException: reset)"
    assert "\\u001b" not in json.dumps(failed.to_json())


def test_log_lines_are_plain():
    record = logging.LogRecord("edgecomp.pipeline.build", logging.WARNING, __file__, 1,
                               "%s", (f"int8 skipped: {TORCH_ONNX}",), None)
    line = PlainFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line.startswith("WARNING edgecomp.pipeline.build: int8 skipped: Failed to export")
    assert "\x1b" not in line


def test_a_log_line_carrying_a_name_stays_one_line_with_its_controls_escaped():
    """A file name with a line break cannot forge a log line in a CI log."""
    record = logging.LogRecord("edgecomp.x", logging.WARNING, __file__, 1,
                               "could not read %s: %s", ("m.onnx\nERROR forged", "\x1b]0;t\x07"),
                               None)
    line = PlainFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line.startswith("WARNING edgecomp.x: could not read m.onnx\\nERROR forged: ")
    assert not {"\n", "\x1b", "\x07"} & set(line)


@pytest.mark.parametrize("raw, shown", [
    ("plain name é", "plain name é"),
    ("a\x1b[31mb", "a\\x1b[31mb"), ("one\ntwo\rthree\tfour", "one\\ntwo\\rthree\\tfour"),
    ("c1\x9bJ", "c1\\x9bJ"), ("\u202eevil", "\\u202eevil"), ("lone\ud800", "lone\\ud800"),
])
def test_terminal_safe_escapes_only_what_a_terminal_cannot_show(raw, shown):
    assert terminal_safe(raw) == shown

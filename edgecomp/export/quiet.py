"""Keep converters' native chatter (absl, oneDNN, MLIR progress) out of the user's terminal.

litert-torch and torch.onnx print from C++ straight to file descriptors 1 and 2, which
Python-level logging settings cannot silence. While a converter runs, both descriptors
point at a temporary file; its text is logged at debug level (shown with --debug).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from contextlib import contextmanager
from typing import Iterator

log = logging.getLogger(__name__)


@contextmanager
def native_output_captured() -> Iterator[None]:
    """Redirect fds 1 and 2 to a temp file for the duration, unless debugging."""
    if log.isEnabledFor(logging.DEBUG) or os.environ.get("EDGECOMP_SHOW_CONVERTER_OUTPUT"):
        yield
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            text = sink.read().decode("utf-8", "replace")
            if text.strip():
                log.debug("converter output:\n%s", text[-20000:])

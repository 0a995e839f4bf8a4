"""Files a hostile stranger would hand edgecomp, shared by the tests that refuse them."""

from __future__ import annotations

import os
from pathlib import Path


class Payload:
    """A pickle that creates a marker file (runs a shell command) when loaded without
    weights_only: the marker's existence proves code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))

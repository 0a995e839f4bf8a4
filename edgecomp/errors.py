"""The one error type users see: a sentence saying what is wrong and what to do."""

from __future__ import annotations

import re

# Control characters left after rich has decoded the escape sequences: C0 (but tab and
# newline), DEL and C1 (e.g. a lone 0x9b CSI, which rich's decoder does not read).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain_text(text: str) -> str:
    """An external tool's text as plain message text: terminal escape sequences (colours,
    cursor movement, hyperlinks) and other control characters removed, lines kept.

    torch.onnx and other tools colour their messages for a terminal; once such text is
    part of our message it is written to records, manifests, JSON and logs, where the
    escapes are noise. rich (already the CLI's) decodes the sequences; a carriage return
    keeps what a terminal would show last on that line.
    """
    if "\x1b" not in text and not _CONTROL.search(text) and "\r" not in text:
        return text  # the common case, without importing rich
    from rich.text import Text

    text = text.replace("\r\n", "\n")  # rich would keep only what follows the \r
    return _CONTROL.sub("", Text.from_ansi(text).plain)


def terminal_safe(text: str) -> str:
    """Text from users' files (model and file names, manifests, stored results) as a
    terminal or CI log may show it: every character that is not printable (control
    characters and so escape sequences, line breaks, tabs, lone surrogates, bidirectional
    overrides) written as its Python escape (`\\x1b`, `\\n`, `\\u202e`), the rest as is.

    A name is kept exact in the store and JSON; only where it is printed is it made
    safe, so that it can neither colour, move or retitle a terminal nor forge a log line.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class EdgecompError(Exception):
    """A problem the user can fix; the CLI prints the message and exits non-zero.

    Text quoted from other tools may carry terminal escape codes: the message is kept
    plain (`plain_text`) wherever it is written."""

    def __init__(self, *args: object):
        super().__init__(*(plain_text(arg) if isinstance(arg, str) else arg for arg in args))


class InputError(EdgecompError):
    """A model, data file, option or profile given by the user is unusable."""


class ExportError(EdgecompError):
    """An exporter could not produce a valid artifact from the model."""


class DeviceError(EdgecompError):
    """A board or the local agent could not be reached or failed to measure."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, for one-sentence errors about another
    tool's failure (its own message may run over many lines)."""
    text = str(exc).strip().splitlines()
    return text[0][:300].rstrip(".") if text else type(exc).__name__


def last_line(text: str) -> str:
    """The last non-empty line of another program's output, for a one-sentence error (what
    a failing command says last is usually why)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "no message"

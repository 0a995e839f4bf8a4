"""The agent's one exception: a failure reported as JSON, never as a traceback."""


class AgentError(Exception):
    """A failure reported as JSON: one sentence and a short kind code."""

    def __init__(self, message, kind):
        Exception.__init__(self, message)
        self.kind = kind


def first_line(exc):
    """The first line of an exception's message (runtimes raise long C++ dumps)."""
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__

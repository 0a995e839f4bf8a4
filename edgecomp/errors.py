"""The one error type users see: a sentence saying what is wrong and what to do."""


class EdgecompError(Exception):
    """A problem the user can fix; the CLI prints the message and exits non-zero."""


class InputError(EdgecompError):
    """A model, data file, option or profile given by the user is unusable."""


class ExportError(EdgecompError):
    """An exporter could not produce a valid artifact from the model."""


class DeviceError(EdgecompError):
    """A board or the local agent could not be reached or failed to measure."""

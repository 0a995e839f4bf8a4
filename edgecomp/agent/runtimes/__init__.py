"""The inference runtimes the agent drives, one module each, and the choice of one for an
artifact.

Each module of this package declares one runtime's `RuntimeFacts` (name, pip package,
module, format, delegates, label, what counts as the CPU, preference) and registers them in
RUNTIMES, so adding a runtime is one new module. The agent's --runtime and --delegate
choices come from these facts, and so do the host's: `edgecomp.vocab` derives RuntimeName,
DelegateName and RUNTIME_FORMATS from them, and the planner and the results read labels,
CPU executors and how a runtime is measured through the functions under "For the host".

numpy and the runtimes are imported inside the adapters: the agent starts without them.
"""

import importlib
import os

from ...registry import Registry
from ..failure import AgentError, first_line
from .base import check_facts

RUNTIMES = Registry("runtime", __name__, check=check_facts)
# What to do when the requested accelerator is not on the board: fail with a sentence, or
# run on the CPU and say so in the report's `fallback`.
ON_MISSING = ("fail", "cpu")


def all_runtimes():
    """Every registered runtime's facts, in preference order."""
    return sorted((facts for _, facts in RUNTIMES.items()),
                  key=lambda facts: (facts.preference, facts.name))


def agent_runtimes():
    """The runtimes the agent loads models with itself (its --runtime choices besides
    auto), in preference order; the others are measured through one of these."""
    return [facts for facts in all_runtimes() if facts.adapter is not None]


def format_runtimes():
    """Artifact suffix -> the agent's runtimes for it, best first (formats in the order of
    their best runtime)."""
    found = {}
    for facts in agent_runtimes():
        found.setdefault(facts.suffix, []).append(facts.name)
    return found


def delegate_choices():
    """The agent's --delegate choices: auto (each runtime's default), then its runtimes'."""
    return ("auto",) + _union(facts.delegates for facts in agent_runtimes())


def _union(groups):
    """The items of every group in first-seen order, each once."""
    seen = []
    for group in groups:
        seen.extend(item for item in group if item not in seen)
    return tuple(seen)


def _text(name):
    """A vocabulary member's text, or the text itself (enum members do not hash as text)."""
    return getattr(name, "value", name)


def _or_list(words):
    return "%s or %s" % (", ".join(words[:-1]), words[-1]) if len(words) > 1 else words[0]


# For the host: the facts behind its vocabularies, labels and measurement options.

def runtime_facts(name):
    """The RuntimeFacts of the runtime `name` (text or RuntimeName); UnknownName listing the
    known ones else."""
    return RUNTIMES.get(_text(name))


def runtime_names():
    """Every runtime's name in preference order: the host's RuntimeName values."""
    return tuple(facts.name for facts in all_runtimes())


def delegate_names():
    """Every delegate any runtime takes, first-seen in preference order, without auto: the
    host's DelegateName values."""
    return _union(facts.delegates for facts in all_runtimes())


def runtime_formats():
    """Runtime name -> the format (a host `Format` value) it loads, in preference order."""
    return dict((facts.name, facts.format) for facts in all_runtimes())


def label(name):
    """How reasons shown to users name the runtime `name`; the name itself where no module
    declares it (a board's agent may report a runtime this one does not know)."""
    name = _text(name)
    return runtime_facts(name).label if name in RUNTIMES else name


def cpu_executors():
    """Every executor name that means the model ran on the CPU (LiteRT's "xnnpack" and
    "cpu", onnxruntime's CPU providers), as the agent reports them in `delegate`."""
    return frozenset().union(*(facts.cpu_executors for facts in all_runtimes()))


def agent_runtime(name, delegate):
    """(runtime, delegate) to ask the agent for, to measure runtime `name` with `delegate`:
    the runtime and delegate it is measured through where it declares one (tensorrt ->
    ("onnxruntime", "tensorrt")), else the two unchanged, as text."""
    facts = runtime_facts(name)
    return facts.via if facts.via is not None else (facts.name, _text(delegate))


# For the agent: whether a runtime is here, and opening one for an artifact.

def runtime_version(name):
    """The installed version of runtime `name`, "unknown" without one, None if broken."""
    facts = runtime_facts(name)
    try:
        from importlib import metadata  # Python 3.8+
        return metadata.version(facts.package)
    except Exception:  # metadata raises PackageNotFoundError or odd errors on old pips
        pass
    try:
        module = importlib.import_module(facts.module.split(".")[0])
        return getattr(module, "__version__", "unknown")
    except Exception:  # a broken runtime install is the same as none
        return None


def runtime_available(name):
    """Whether runtime `name`'s module can be found (without importing it)."""
    module_name = runtime_facts(name).module.split(".")[0]
    try:
        import importlib.util
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


def ort_available_providers():
    """onnxruntime's providers on this board; () where it is missing or broken."""
    if not runtime_available("onnxruntime"):
        return ()
    try:
        import onnxruntime
        return tuple(onnxruntime.get_available_providers())
    except Exception:  # a broken install offers nothing
        return ()


def open_runtime(path, requested, threads, delegate="auto", on_missing="fail"):
    """Pick the runtime for the artifact's format, or explain which package to install."""
    suffix = os.path.splitext(path)[1].lower()
    formats = format_runtimes()
    if suffix not in formats:
        raise AgentError("%s: unknown model type %r; the agent runs %s files"
                         % (path, suffix, " and ".join(formats)), "bad_artifact")
    candidates = formats[suffix]
    if requested != "auto":
        known = sorted(facts.name for facts in agent_runtimes())
        if requested not in known:
            raise AgentError("unknown runtime %r; choose auto or one of %s"
                             % (requested, ", ".join(known)), "bad_args")
        if requested not in candidates:
            raise AgentError("runtime %s cannot run %s files; use one of %s"
                             % (requested, suffix, ", ".join(candidates)), "bad_args")
        candidates = [requested]
    # A delegate the format's runtimes do not take (tensorrt for .tflite) is refused, or
    # measured on the runtime's default path where the CPU is allowed instead.
    best, asked, fallback = runtime_facts(formats[suffix][0]), delegate, None
    if delegate != "auto" and delegate not in best.delegates:
        if on_missing != "cpu":
            raise AgentError("%s has no %s delegate; use --delegate %s for %s files"
                             % (best.label, delegate, _or_list(("auto",) + best.delegates),
                                suffix), "bad_args")
        fallback = ("%s has no %s delegate; measured with %s instead"
                    % (best.label, delegate, best.adapter.default_path))
        delegate = "auto"
    for name in candidates:
        if runtime_available(name):
            facts = runtime_facts(name)
            runtime = facts.adapter(facts, path, threads=threads, delegate=delegate,
                                    on_missing=on_missing)
            if fallback:
                runtime.requested, runtime.fallback = asked, fallback
            return runtime
    if requested != "auto":
        raise AgentError("the requested runtime %s is not installed on this board: install it "
                         "with `pip install %s`, or ask for another runtime"
                         % (requested, runtime_facts(requested).package), "missing_runtime")
    raise AgentError("no runtime for %s files on this board: install one with `pip install %s`"
                     % (suffix, runtime_facts(candidates[0]).package), "missing_runtime")


def import_runtime(runtime):
    """Import the runtime's module, turning a broken install into an install hint."""
    try:
        importlib.import_module(runtime.facts.module)
    except ImportError as exc:
        raise AgentError("the %s runtime failed to import (%s); reinstall it with `pip install "
                         "%s`" % (runtime.name, exc, runtime.facts.package), "missing_runtime")


def load_model(runtime):
    """Load the runtime's model, every failure a sentence with its kind."""
    if not os.path.isfile(runtime.path):
        raise AgentError("model file %s does not exist on this board" % runtime.path,
                         "bad_artifact")
    import_runtime(runtime)
    try:
        runtime.load()
    except AgentError:
        raise
    except Exception as exc:  # runtimes raise RuntimeError, ValueError, their own Fail types
        raise AgentError("%s could not load %s (truncated or unsupported model?): %s"
                         % (runtime.name, os.path.basename(runtime.path), first_line(exc)),
                         "bad_artifact")

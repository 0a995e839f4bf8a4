"""What every runtime declares (its facts) and what every runtime adapter does."""

from dataclasses import dataclass
from typing import FrozenSet, Optional, Tuple

from ..failure import AgentError


@dataclass(frozen=True)
class RuntimeFacts(object):
    """Everything the agent and the host know about one runtime, declared once in its module.

    A runtime is either loaded by the agent itself (`adapter`) or measured through another
    runtime's delegate (`via`), never both.
    """

    name: str  # the agent's --runtime value and the host's RuntimeName
    package: str  # the pip package that installs it
    module: str  # the module imported to use it
    format: str  # the artifact format it loads, a host `Format` value ("tflite", "onnx")
    # Lower first: the order the runtimes of one format are tried in, and the order every
    # vocabulary lists runtimes in.
    preference: int
    delegates: Tuple[str, ...]  # where it can execute the model, besides "auto" (its default)
    label: str  # how reasons shown to users name it
    cpu_executors: FrozenSet[str]  # what the agent reports as the executor when it ran on the CPU
    adapter: Optional[type] = None  # the Runtime subclass the agent loads models with
    via: Optional[Tuple[str, str]] = None  # (runtime, delegate) the agent measures it through

    @property
    def suffix(self):
        """The file suffix of the artifacts it loads (".tflite")."""
        return "." + self.format


# (fact, what it must be, test) for every fact a runtime module declares.
_FACT_CHECKS = (
    ("name", "a non-empty str", lambda v: isinstance(v, str) and v != ""),
    ("package", "a non-empty str", lambda v: isinstance(v, str) and v != ""),
    ("module", "a non-empty str", lambda v: isinstance(v, str) and v != ""),
    ("format", "a non-empty str without a dot",
     lambda v: isinstance(v, str) and v != "" and "." not in v),
    ("preference", "an int", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    ("delegates", "a non-empty tuple of str without 'auto'",
     lambda v: isinstance(v, tuple) and len(v) > 0 and "auto" not in v
     and all(isinstance(d, str) and d for d in v)),
    ("label", "a non-empty str", lambda v: isinstance(v, str) and v != ""),
    ("cpu_executors", "a frozenset of str",
     lambda v: isinstance(v, frozenset) and all(isinstance(e, str) and e for e in v)),
    ("adapter", "a Runtime subclass or None",
     lambda v: v is None or (isinstance(v, type) and issubclass(v, Runtime))),
    ("via", "None or a (runtime, delegate) pair of str",
     lambda v: v is None or (isinstance(v, tuple) and len(v) == 2
                             and all(isinstance(part, str) and part for part in v))),
)


def check_facts(facts):
    """The runtime registry's check: TypeError naming the runtime and the fact it lacks."""
    if not isinstance(facts, RuntimeFacts):
        raise TypeError("a runtime module must register a RuntimeFacts, not %r" % (facts,))
    for field, wanted, test in _FACT_CHECKS:
        if not test(getattr(facts, field)):
            raise TypeError("runtime %r: %s should be %s, got %r"
                            % (facts.name, field, wanted, getattr(facts, field)))
    if (facts.adapter is None) == (facts.via is None):
        raise TypeError("runtime %r declares %s: give an adapter the agent loads models "
                        "with, or the (runtime, delegate) it is measured through"
                        % (facts.name, "both" if facts.adapter else "neither"))


class Runtime(object):
    """One inference runtime: load a model, feed inputs, invoke, read outputs."""

    # How the runtime runs when its delegate is missing, for the report's `fallback`.
    default_path = "its CPU kernels"

    def __init__(self, facts, path, *, threads, delegate, on_missing="fail"):
        self.facts = facts
        self.name = facts.name
        self.path = path
        self.threads = threads
        self.delegate = delegate
        self.requested = delegate
        self.on_missing = on_missing
        self.executed = "unknown"  # what really ran the model, known after load()
        self.providers = ()
        self.fallback_ops = None  # ops outside the delegate, where the runtime tells
        self.fallback = None  # why what ran is not what was asked, known after load()

    def _missing(self, message, instead):
        """The requested accelerator is not here: fail, or go on with `instead` and say so."""
        if self.on_missing != "cpu":
            raise AgentError(message, "missing_delegate")
        self.fallback = "%s; measured with %s instead" % (message.split("; ")[0], instead)

    def load(self):
        """Load the model at `path` with the delegate; sets `executed` (and `fallback`)."""
        raise NotImplementedError

    def inputs(self):
        """The model's inputs as TensorSpecs."""
        raise NotImplementedError

    def outputs(self):
        """The model's outputs as TensorSpecs."""
        raise NotImplementedError

    def set_inputs(self, arrays):
        raise NotImplementedError

    def invoke(self):
        raise NotImplementedError

    def get_outputs(self):
        raise NotImplementedError

"""One way to find the implementations of every extension point: exporters, compression
passes, transports, results-store backends, and the agent's runtimes and power probes.

Each implementation is defined in a module of its extension point's package and registers
itself there with the registry's decorator, under its name (or several names). The first
time the registry is asked, it imports every module of that package, so adding an
implementation is one new file and nothing else; modules whose names start with `_` are
left alone. A registry may check what an implementation declares when it registers, so
a missing fact fails at once with the implementation's name.

Standard library only and Python 3.8 compatible: the on-device agent finds its runtimes and
power probes with it too (the agent's zipapp carries this module).
"""

import importlib
import pkgutil
import threading


class UnknownName(LookupError):
    """A name no implementation registered; the message lists the names that are."""

    def __str__(self):
        return str(self.args[0]) if self.args else "unknown name"


class Registry(object):
    """The implementations of one extension point, by name."""

    def __init__(self, what, package, check=None):
        """`what` names one implementation in messages ("format", "runtime"); `package` is
        the package whose modules define them; `check(implementation)`, when given, raises
        TypeError saying what the implementation fails to declare."""
        self.what = what
        self.package = package
        self.check = check
        self._found = {}
        self._state = "new"  # "loading" while the package's modules are imported, then "loaded"
        # Boards of a fleet are opened from threads of their own: the first to ask loads the
        # package, the others wait for it (the loading thread itself may ask again while a
        # module imports, and gets what is registered so far).
        self._lock = threading.RLock()

    def register(self, *names):
        """Class or function decorator: the implementation under `names` (default: its
        `name` attribute). Registering a second, different one under a name is an error."""
        def add(implementation):
            if self.check is not None:
                self.check(implementation)
            for name in names or (implementation.name,):
                known = self._found.get(name)
                if known is not None and known is not implementation:
                    raise RuntimeError("two %ss registered as %r: %r and %r"
                                       % (self.what, name, known, implementation))
                self._found[name] = implementation
            return implementation
        return add

    def load(self):
        """Every implementation by name, the package's modules imported on the first call."""
        if self._state != "loaded":
            with self._lock:
                if self._state == "new":
                    self._import_all()
        return self._found

    def _import_all(self):
        self._state = "loading"  # a module importing its own registry does not recurse
        try:
            package = importlib.import_module(self.package)
            for info in sorted(pkgutil.iter_modules(package.__path__),
                               key=lambda found: found.name):
                if not info.name.startswith("_"):
                    importlib.import_module(self.package + "." + info.name)
        except BaseException:
            self._state = "new"
            raise
        self._state = "loaded"

    def get(self, name):
        """The implementation registered as `name`; UnknownName (listing the others) else."""
        found = self.load()
        if name not in found:
            raise UnknownName("unknown %s %r; choose one of %s"
                              % (self.what, name, ", ".join(self.names())))
        return found[name]

    def names(self):
        """The registered names, sorted."""
        return sorted(self.load())

    def items(self):
        """(name, implementation) pairs, sorted by name."""
        return sorted(self.load().items(), key=lambda item: item[0])

    def values(self):
        """The implementations, in the order of their names."""
        return [implementation for _, implementation in self.items()]

    def __getitem__(self, name):
        return self.get(name)

    def __contains__(self, name):
        return name in self.load()

    def __iter__(self):
        return iter(self.names())

    def __len__(self):
        return len(self.load())

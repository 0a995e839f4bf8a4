"""The board lock: one measurement at a time per board, freed by the kernel if we die."""

import errno
import json
import os
import time

from .failure import AgentError


def default_lock_path():
    base = os.environ.get("XDG_RUNTIME_DIR") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "edgecomp", "board.lock")


class BoardLock(object):
    """An exclusive flock: one measurement per board. The kernel frees it if we die."""

    def __init__(self, path, timeout, label):
        self.path = path
        self.timeout = timeout
        self.label = label
        self.handle = None
        self.waited = 0.0

    def __enter__(self):
        import fcntl
        directory = os.path.dirname(self.path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory)
        self.handle = open(self.path, "a+")
        start = time.time()
        while True:
            try:
                fcntl.flock(self.handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.time() - start >= self.timeout:
                    holder = self._holder()
                    self.handle.close()
                    raise AgentError(
                        "the board is busy: another measurement (%s) has held %s for over "
                        "%.0f s; wait for it, or raise lock_timeout in the target's file" % (
                            holder or "holder unknown", self.path, self.timeout),
                        "lock_timeout")
                time.sleep(0.1)
        self.waited = time.time() - start
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(json.dumps({"pid": os.getpid(), "since": time.time(),
                                      "what": self.label}))
        self.handle.flush()
        return self

    def _holder(self):
        try:
            with open(self.path) as handle:
                info = json.loads(handle.read() or "{}")
            if not isinstance(info, dict) or not info.get("pid"):
                return None  # the holder has not written its name (yet)
            return "pid %s measuring %s since %s" % (
                info.get("pid"), info.get("what"),
                time.strftime("%H:%M:%S", time.localtime(info.get("since", 0))))
        except (OSError, ValueError):
            return None

    def __exit__(self, *exc):
        import fcntl
        try:
            self.handle.seek(0)
            self.handle.truncate()
        finally:
            fcntl.flock(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()

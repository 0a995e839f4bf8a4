"""The agent's watch on its host: exit as soon as the host's connection or parent is gone.

A host that was killed, or a link that dropped, closes the pipe the agent reads as stdin
(sshd closes the channel's pipes when its connection ends) or leaves the agent with another
parent. Nobody reads the agent's answer any more, so it exits at once: the kernel frees the
board lock it holds, and the next measurement on the board does not wait for a run that
nobody will read. The host opts in (`--watch-host`) because it keeps stdin open for the
whole command; a plain `python3 agent.pyz ...` from a shell with no stdin must not exit.
"""

import os
import select
import signal
import threading

POLL_S = 0.5
EXIT_CODE = 3  # the agent's "host went away" status (2 is a reported failure)


def watch_host(on_gone=None):
    """Start a daemon thread that ends the process when stdin reaches end of file or the
    parent process changes (it died; the agent was adopted). `on_gone` is for tests."""
    parent = os.getppid()
    thread = threading.Thread(target=_watch, args=(parent, on_gone or _exit_now),
                              name="edgecomp-host-watchdog")
    thread.daemon = True
    thread.start()
    return thread


def _watch(parent, on_gone):
    while True:
        if os.getppid() != parent:
            return on_gone("the agent's parent process went away")
        try:
            readable, _, _ = select.select([0], [], [], POLL_S)
            if readable and not os.read(0, 65536):
                return on_gone("the host closed the agent's input")
        except (OSError, ValueError):
            return on_gone("the agent's input is gone")


def _exit_now(reason):
    # os._exit: no cleanup handlers that could block on a runtime's threads; the kernel
    # closes the lock file, which frees the board lock.
    try:
        os.write(2, ("edgecomp agent: %s; exiting\n" % reason).encode())
    except OSError:
        pass
    end_children()
    os._exit(EXIT_CODE)


def end_children():
    """SIGKILL the agent's own child processes (a power probe's tegrastats, a runtime's
    tool), which would otherwise outlive it; read from /proc, where boards have it."""
    me = os.getpid()
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            if parent == me:
                os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or not ours to read

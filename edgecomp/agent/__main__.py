"""edgecomp's on-device agent: load an artifact in the board's runtime and measure it.

Shipped to boards as one zipapp (edgecomp-agent-<sha>.pyz). Python 3.8+, standard
library only; numpy and the inference runtime are imported inside the runtime adapters.
Every command prints exactly one JSON object on stdout and exits 0, or prints
{"ok": false, "error": ..., "kind": ...} and exits 2. Long loops say how far they are in
lines on stderr while they run (`edgecomp.agent.progress`).

    python3 agent.pyz info
    python3 agent.pyz measure MODEL [--runs N] [--seconds S] [--delegate D] [--profile-ops]
    python3 agent.pyz run MODEL --input-npz IN.npz --output-npz OUT.npz

With --watch-host (before the command) the agent exits as soon as its stdin closes or its
parent goes away: the host keeps stdin open while it waits for the answer
(`edgecomp.agent.watchdog`).
"""

import argparse
import json
import os
import sys

from .failure import AgentError
from .measure import COMMANDS
from .protocol import failure
from .runtimes import ON_MISSING, delegate_choices
from .watchdog import watch_host


class QuietParser(argparse.ArgumentParser):
    """argparse that reports bad arguments as agent JSON errors instead of exiting."""

    def error(self, message):
        raise AgentError("bad arguments: %s" % message, "bad_args")


def add_runtime_options(parser):
    parser.add_argument("model")
    # No argparse choices: open_runtime names the runtimes an artifact's format can use.
    parser.add_argument("--runtime", default="auto")
    parser.add_argument("--delegate", default="auto", choices=delegate_choices())
    parser.add_argument("--threads", type=int)
    # When the --delegate's accelerator is not on the board: fail, or measure on the CPU
    # and say so in the report's `fallback`.
    parser.add_argument("--on-missing-delegate", default="fail", choices=ON_MISSING)


def build_parser():
    parser = QuietParser(prog="edgecomp-agent")
    parser.add_argument("--watch-host", action="store_true")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("info")
    measure = commands.add_parser("measure")
    add_runtime_options(measure)
    measure.add_argument("--runs", type=int, default=50)
    measure.add_argument("--seconds", type=float, default=1.0)
    measure.add_argument("--warmup-runs", type=int, default=5)
    measure.add_argument("--warmup-seconds", type=float, default=0.5)
    measure.add_argument("--input-npz")
    measure.add_argument("--seed", type=int, default=0)
    measure.add_argument("--lock")
    measure.add_argument("--lock-timeout", type=float, default=600.0)
    # The profile's throttle temperature; --hot-c is its older name.
    measure.add_argument("--throttle-c", "--hot-c", dest="throttle_c", type=float, default=80.0)
    measure.add_argument("--power-probe", default="none")
    measure.add_argument("--power-seconds", type=float)
    measure.add_argument("--power-hz", type=float, default=50.0)
    measure.add_argument("--power-idle-seconds", type=float, default=1.0)
    # Per-op times from the runtime's profiler, in a pass after the timed runs.
    measure.add_argument("--profile-ops", action="store_true")
    measure.add_argument("--profile-runs", type=int, default=20)
    measure.add_argument("--profile-seconds", type=float, default=1.0)
    run = commands.add_parser("run")
    add_runtime_options(run)
    run.add_argument("--input-npz", required=True)
    run.add_argument("--output-npz", required=True)
    return parser


def main(argv=None):
    # Runtimes print banners to stdout from C code; point fd 1 at stderr while working so
    # that stdout carries exactly one JSON object.
    sys.stdout.flush()
    json_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    try:
        args = build_parser().parse_args(argv)
        if args.watch_host:
            watch_host()
        if args.command not in COMMANDS:
            raise AgentError("give a command: info, measure or run", "bad_args")
        result, code = COMMANDS[args.command](args).to_dict(), 0
    except AgentError as exc:
        result, code = failure(str(exc), exc.kind), 2
    except KeyboardInterrupt:
        result, code = failure("interrupted", "interrupted"), 2
    sys.stdout.flush()
    json_out.write(json.dumps(result) + "\n")
    json_out.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())

"""`edgecomp results push`: record the runs kept on this machine while their store failed."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    results = subparsers.add_parser(
        "results", help="the results kept on this machine for the store",
        description="Runs measured while the results store could not record them are kept "
                    "on this machine (one file per run) until the store takes them.")
    commands = results.add_subparsers(dest="results_command", metavar="COMMAND",
                                      required=True)
    push = commands.add_parser(
        "push", help="record the runs kept for the store, each once",
        description="Record every run kept for the store and remove each one's file once "
                    "it is committed; a run the store already holds is not recorded again.")
    push.add_argument("--store", metavar="URL",
                      help="the results store: a postgresql:// URL or a SQLite file "
                           "(default: EDGECOMP_DB)")
    push.set_defaults(func=run_push)


def run_push(args) -> int:
    from edgecomp.commands.ui import console
    from edgecomp.results.store import Store, spool

    with Store(args.store) as store:
        # Opening the store records what it can; what is left fails here with its reason.
        pushed = store.pushed + spool.push(store)
        location = store.location
    if pushed:
        console.print(f"recorded {len(pushed)} kept run(s) in {location}: "
                      f"{', '.join(pushed)}", markup=False, highlight=False, soft_wrap=True)
    else:
        console.print(f"no runs are kept for {location}.", markup=False, highlight=False,
                      soft_wrap=True)
    return 0

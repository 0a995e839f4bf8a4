"""`edgecomp report`: recorded results as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

from edgecomp.commands import args as shared
from edgecomp.errors import InputError

DEFAULT_OUT = Path("edgecomp-report.html")


def add_parser(subparsers) -> None:
    report = subparsers.add_parser(
        "report", help="write an HTML report of recorded results (opens offline)",
        description="The best artifact per model and board with the reason, latency "
                    "distributions, the per-op profile, accuracy against latency and size "
                    "with the Pareto front, energy, every artifact's plan and int8 search, and "
                    "the conditions of each run, from the results store, in one HTML file.")
    report.add_argument("--model", help="only this model")
    report.add_argument("--target", help="only this target")
    report.add_argument("--technique", help="only this technique (a recipe's name, or none)")
    report.add_argument("--tag", metavar="NAME", help="only runs with this --tag")
    report.add_argument("--since", metavar="WHEN",
                        help="only results since a date (2026-11-01), a time "
                             "(2026-11-01T08:00) or an age (90m, 12h, 7d, 2w)")
    report.add_argument("--failed", action="store_true",
                        help="list failed measurements too (in the tables, not the charts)")
    shared.add_output_arg(report, "-o", "--out", folder=False, default=DEFAULT_OUT,
                          help=f"the HTML file to write (default ./{DEFAULT_OUT})")
    report.set_defaults(func=run_report)


def run_report(args) -> int:
    from edgecomp.commands.ui import console
    from edgecomp.results.report import write_report
    from edgecomp.results.store import Store, parse_since

    since = parse_since(args.since) if args.since else None
    filters = [f"{flag} {value}" for flag, value in (
        ("--model", args.model), ("--target", args.target), ("--technique", args.technique),
        ("--tag", args.tag), ("--since", args.since)) if value]
    with Store() as store:
        records = store.records(model=args.model, target=args.target,
                                technique=args.technique, tag=args.tag, since=since,
                                include_failed=args.failed, with_samples=True)
        location = store.location
    if not records:
        chosen = f" match {' '.join(filters)}" if filters else " are recorded"
        raise InputError(f"no {'' if args.failed else 'successful '}results{chosen} in "
                         f"{location}; run `edgecomp deploy` first"
                         + (" or loosen the filters." if filters else "."))
    if args.failed:
        filters.append("failed measurements included")
    write_report(args.out, records, source=str(location), filters=filters)
    runs = len({r.run_id for r in records})
    console.print(f"wrote {args.out}: {len(records)} artifact result(s) from {runs} run(s)",
                  markup=False, highlight=False)
    return 0

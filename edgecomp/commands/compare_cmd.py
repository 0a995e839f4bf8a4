"""`edgecomp compare`: the table of recorded results, fastest first."""

from __future__ import annotations

import argparse

from edgecomp.commands import args as shared


def add_parser(subparsers) -> None:
    from edgecomp.results.select import SPECS

    compare = subparsers.add_parser(
        "compare", help="table of recorded results, fastest first",
        epilog=SPECS, formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_argument("--model")
    compare.add_argument("--target")
    compare.add_argument("--technique")
    compare.add_argument("--tag", help="only the runs with this tag")
    compare.add_argument("--since", metavar="WHEN",
                         help="only results since a date (2026-11-01), a time or an age (7d)")
    compare.add_argument("--baseline", metavar="SPEC",
                         help="show each artifact's change against the same artifact in "
                         "SPEC: run:ID, branch:NAME, tag:NAME, file:PATH, a file or a tag "
                         "(latency p50/p90 and size in percent, accuracy in points); the "
                         "baseline's runs are left out of the rows")
    compare.add_argument("--all", action="store_true",
                         help="every recorded run, not only the latest of each artifact")
    compare.add_argument("--failed", action="store_true", help="include failed measurements")
    shared.add_output_arg(compare, "--json", folder=False,
                          help="write the result objects to this JSON file")
    shared.add_output_arg(compare, "--csv", folder=False,
                          help="write the table to this CSV file, one artifact a row, in base "
                          "units (bytes, ms, percent)")
    shared.add_wide_arg(compare)
    compare.set_defaults(func=run_compare)


def run_compare(args) -> int:
    from edgecomp.commands.outcome import print_across_boards
    from edgecomp.commands.tables import comparison_table, write_csv, write_json
    from edgecomp.commands.ui import console, print_table
    from edgecomp.results.compare import compare_stored
    from edgecomp.results.provenance import check_tag
    from edgecomp.results.store import parse_since

    since = parse_since(args.since) if args.since else None
    found = compare_stored(model=args.model, target=args.target, technique=args.technique,
                           tag=check_tag(args.tag), since=since, failed=args.failed,
                           baseline=args.baseline, history=args.all,
                           with_samples=args.json is not None)
    if not found.rows:
        console.print(f"no results recorded in {found.location} yet; run `edgecomp deploy` "
                      "first." if not (args.baseline or args.tag or since or args.technique
                                       or args.model or args.target)
                      else f"no results in {found.location} match these filters.",
                      markup=False)
    else:
        title = f"results in {found.location}" + (f" against {found.baseline}"
                                                  if found.baseline else "")
        print_table(comparison_table(found.rows, title=title, baseline_name=found.baseline,
                                     wide=args.wide), wide=args.wide)
        print_across_boards(found.records, wide=args.wide)
    if args.json:
        write_json(args.json, [row.record for row in found.rows], found.rows)
    if args.csv:
        write_csv(args.csv, found.rows)
    return 0

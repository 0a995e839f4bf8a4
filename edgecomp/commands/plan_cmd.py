"""`edgecomp plan` and `edgecomp profiles`: what the planner decides for a board, and why."""

from __future__ import annotations

import json
from pathlib import Path

from edgecomp.commands import args as shared
from edgecomp.errors import InputError


def add_parser(subparsers) -> None:
    from edgecomp.export import format_names

    plan = subparsers.add_parser("plan", help="decide format, precision, pruning and threads "
                                              "for a target or profile, with reasons")
    plan.add_argument("model", nargs="?", metavar="MODEL", help="default: the built-in demo")
    plan.add_argument("--weights", type=Path)
    shared.add_input_shape_arg(plan)
    plan.add_argument("--target", required=True,
                      help="a target name, or a profile name (no board needed)")
    plan.add_argument("--format", choices=format_names(),
                      help="plan for this format (its runtime, delegate and precision)")
    plan.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="override a decision, repeatable")
    shared.add_output_arg(plan, "--json", folder=False, help="write the plan as JSON")
    plan.add_argument("--wide", action="store_true",
                      help="print the plan's reasons on one line each, past 120 columns")
    plan.set_defaults(func=run_plan)

    profiles = subparsers.add_parser("profiles", help="list or show hardware profiles")
    commands = profiles.add_subparsers(dest="profiles_command", metavar="SUBCOMMAND")
    commands.add_parser("list", help="every profile").set_defaults(func=run_profiles_list)
    show = commands.add_parser("show", help="one profile's facts")
    show.add_argument("name")
    show.set_defaults(func=run_profiles_show)
    profiles.set_defaults(func=run_profiles_list)


def run_plan(args) -> int:
    from edgecomp.atomic import atomic_write_json
    from edgecomp.commands.ui import print_plan
    from edgecomp.hardware.board import board_facts, resolve_board
    from edgecomp.pipeline.request import DataSpec
    from edgecomp.pipeline.apply import plan_stage
    from edgecomp.pipeline.load import load_source
    from edgecomp.pipeline.request import ModelSpec
    from edgecomp.hardware.plan import parse_overrides
    from edgecomp.model.signature import parse_input_shapes

    overrides = parse_overrides(args.overrides)
    if args.format:
        overrides.setdefault("format", parse_overrides([f"format={args.format}"])["format"])
    board = resolve_board(args.target)
    if board.profile is None:
        raise InputError("this machine has no profile; plan for a named profile instead "
                         "(see `edgecomp profiles list`).")
    model = ModelSpec(spec=args.model, weights=args.weights,
                      input_shape=parse_input_shapes(args.input_shape))
    from edgecomp.commands.ui import progress_bars

    with progress_bars() as progress:  # the demo is trained the first time (a minute)
        source = load_source(model, DataSpec(), progress=progress)
    facts = board_facts(board)  # for a target: what its agent said at the last connection
    plan = plan_stage(source, board, overrides, facts)
    print_plan(plan, wide=args.wide)
    _print_facts_source(board, facts)
    if args.json:
        atomic_write_json(args.json, plan.to_json())
    return 0


def _print_facts_source(board, facts) -> None:
    from edgecomp.commands.ui import console

    if facts.source:
        console.print(f"board facts: as reported by {facts.source}", soft_wrap=True)
    elif board.target is not None:
        console.print(f"board facts: none kept for {board.name}, so the plan follows the "
                      f"{board.profile.name} profile alone; `edgecomp targets check "
                      f"{board.name}` reads them", soft_wrap=True)


def run_profiles_list(args) -> int:
    from rich.table import Table

    from edgecomp.commands.ui import console
    from edgecomp.hardware.profiles import load_profiles, profiles_dir

    table = Table(title=f"profiles (yours go in {profiles_dir()})", title_justify="left")
    for column in ("name", "description", "cores", "ISA", "RAM", "delegates", "file"):
        table.add_column(column)
    for profile in load_profiles().values():
        origin = f"user ({profile.source})" if Path(profile.source).parent == profiles_dir() \
            else "shipped"
        table.add_row(profile.name, profile.description, str(profile.cpu.cores),
                      ", ".join(profile.cpu.isa), f"{profile.ram_mb} MB",
                      ", ".join(d.name for d in profile.delegates), origin)
    console.print(table)
    return 0


def run_profiles_show(args) -> int:
    from dataclasses import asdict

    from edgecomp.commands.ui import console
    from edgecomp.hardware.profiles import get_profile

    profile = get_profile(args.name)
    console.print_json(json.dumps(asdict(profile)))
    return 0

"""`edgecomp plan` and `edgecomp profiles`: what the planner decides for a board, and why."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from edgecomp.errors import InputError


def add_parser(subparsers) -> None:
    plan = subparsers.add_parser("plan", help="decide format, precision, pruning and threads "
                                              "for a target or profile, with reasons")
    plan.add_argument("model", nargs="?", metavar="MODEL", help="default: the built-in demo")
    plan.add_argument("--weights", type=Path)
    plan.add_argument("--input-shape")
    plan.add_argument("--target", required=True,
                      help="a target name, or a profile name (no board needed)")
    plan.add_argument("--set", dest="overrides", action="append", default=[],
                      metavar="KEY=VALUE", help="override a decision, repeatable")
    plan.add_argument("--json", type=Path, help="write the plan as JSON")
    plan.set_defaults(func=run_plan)

    profiles = subparsers.add_parser("profiles", help="list or show hardware profiles")
    commands = profiles.add_subparsers(dest="profiles_command", metavar="SUBCOMMAND")
    commands.add_parser("list", help="every profile").set_defaults(func=run_profiles_list)
    show = commands.add_parser("show", help="one profile's facts")
    show.add_argument("name")
    show.set_defaults(func=run_profiles_show)
    profiles.set_defaults(func=run_profiles_list)


def profile_for_target(name: str):
    """The profile of a target, of `local` (this machine), or the profile called `name`."""
    from edgecomp.profiles import get_profile, load_profiles
    from edgecomp.targets import load_targets

    if name == "local":
        if platform.machine() in ("x86_64", "AMD64"):
            return get_profile("x86-64")
        raise InputError("this machine has no profile; plan for a named profile instead "
                         "(see `edgecomp profiles list`).")
    targets = load_targets()
    if name in targets:
        return get_profile(targets[name].profile)
    if name in load_profiles():
        return get_profile(name)
    raise InputError(f"{name!r} is neither a target nor a profile; see `edgecomp targets list` "
                     "and `edgecomp profiles list`.")


def plan_for(source, target: str, overrides: dict[str, str]):
    from edgecomp.modelfacts import facts_from_onnx, model_facts
    from edgecomp.plan import make_plan

    profile = profile_for_target(target)
    if source.module is None:
        facts = facts_from_onnx(source.onnx_path, name=source.name)
    else:
        facts = model_facts(source.module, source.example_input, name=source.name)
    return make_plan(profile, facts, overrides)


def print_plan(plan) -> None:
    from rich.table import Table

    from edgecomp.commands.ui import console

    table = Table(title=f"plan for {plan.model} on {plan.profile}", title_justify="left")
    table.add_column("decision")
    table.add_column("value")
    table.add_column("reason")
    for decision in plan.decisions:
        value = f"{decision.value}" + (" (set)" if decision.overridden else "")
        table.add_row(decision.key, value, decision.reason)
    console.print(table)
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/yellow] {warning}")


def run_plan(args) -> int:
    from edgecomp.plan import parse_overrides
    from edgecomp.sources import load_model, parse_shape

    overrides = parse_overrides(args.overrides)
    source = load_model(args.model, weights=args.weights,
                        input_shape=parse_shape(args.input_shape) if args.input_shape else None)
    plan = plan_for(source, args.target, overrides)
    print_plan(plan)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_name(f".{args.json.name}.tmp")
        tmp.write_text(json.dumps(plan.to_json(), indent=2))
        os.replace(tmp, args.json)
    return 0


def run_profiles_list(args) -> int:
    from rich.table import Table

    from edgecomp.commands.ui import console
    from edgecomp.profiles import REPO_PROFILES, load_profiles, profiles_dir

    table = Table(title=f"profiles (yours go in {profiles_dir()})", title_justify="left")
    for column in ("name", "description", "cores", "ISA", "RAM", "delegates", "file"):
        table.add_column(column)
    for profile in load_profiles().values():
        origin = "repo" if Path(profile.source).parent == REPO_PROFILES else \
            f"user ({profile.source})"
        table.add_row(profile.name, profile.description, str(profile.cpu.cores),
                      ", ".join(profile.cpu.isa), f"{profile.ram_mb} MB",
                      ", ".join(d.name for d in profile.delegates), origin)
    console.print(table)
    return 0


def run_profiles_show(args) -> int:
    from dataclasses import asdict

    from edgecomp.commands.ui import console
    from edgecomp.profiles import get_profile

    profile = get_profile(args.name)
    console.print_json(json.dumps(asdict(profile)))
    return 0

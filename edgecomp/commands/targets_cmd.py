"""`edgecomp targets`: list boards, check one, trust its host key."""

from __future__ import annotations

import sys

from edgecomp.errors import DeviceError, InputError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("targets", help="list, check and trust boards")
    commands = parser.add_subparsers(dest="targets_command", metavar="SUBCOMMAND")
    listing = commands.add_parser("list", help="every known target")
    listing.set_defaults(func=run_list)
    check = commands.add_parser("check", help="reach a board and report what it has")
    check.add_argument("name")
    check.set_defaults(func=run_check)
    trust = commands.add_parser("trust", help="add a board's SSH host key to the inventory")
    trust.add_argument("name")
    trust.add_argument("--yes", action="store_true", help="trust without asking")
    trust.set_defaults(func=run_trust)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_list(args) -> int:
    from rich.table import Table

    from edgecomp.commands.ui import console
    from edgecomp.hardware.targets import inventory_dir, load_targets

    table = Table(title=f"targets (inventory: {inventory_dir()})", title_justify="left")
    for column in ("name", "address", "profile", "groups", "python", "power probe", "file"):
        table.add_column(column)
    table.add_row("local", "this machine", "-", "-", "this python", "none", "built in")
    for target in load_targets().values():
        where = f"labgrid {target.labgrid.describe()}" if target.labgrid is not None else \
            f"{target.user}@{target.host}:{target.port}"
        table.add_row(target.name, where, target.profile, ", ".join(target.groups) or "-",
                      target.python, target.power_probe, target.source)
    console.print(table)
    return 0


def run_check(args) -> int:
    from edgecomp.agent.protocol import PROTOCOL_VERSION
    from edgecomp.hardware.board import remember_info, resolve_board
    from edgecomp.hardware.facts import facts_from_info, profile_mismatches
    from edgecomp.commands.ui import console
    from edgecomp.paths import board_facts_file
    from edgecomp.pipeline import agent
    from edgecomp.remote.connect import open_transport

    with open_transport(args.name) as transport:
        info = agent.info(transport)
    board = resolve_board(args.name)
    if board.target is not None:
        remember_info(board.target, info)
    device = info.device
    console.print(f"[bold]{args.name}[/bold] reachable; agent python {info.python} "
                  f"(protocol {PROTOCOL_VERSION})")
    console.print(f"  CPU      {info.cpu_model} ({info.arch}; {device.online_cores}/"
                  f"{device.cores} cores online, {info.online_cores} usable, governor "
                  f"{device.governor or 'unknown'})")
    console.print(f"  ISA      {', '.join(device.isa) or 'none reported'}")
    console.print("  emulated " + (f"yes: {device.emulated} (its timings are not board timings)"
                                   if device.emulated else "no"))
    console.print(f"  memory   {_mb(device.mem_available_mb)} available of "
                  f"{_mb(device.mem_total_mb)}")
    console.print(f"  disk     {_mb(device.disk_free_mb)} free in the work directory")
    console.print(f"  kernel   {device.kernel} ({device.machine})")
    if device.temperatures_c:
        console.print("  thermal  " + ", ".join(f"{k} {v:.1f}°C"
                                                for k, v in device.temperatures_c.items()))
    for name, version in info.runtimes.items():
        console.print(f"  runtime  {name}: {version or 'not installed'}")
    if info.execution_providers:
        console.print(f"  onnxruntime providers: {', '.join(info.execution_providers)}")
    for line in info.missing:
        console.print(f"  [yellow]missing[/yellow] {line}")
    if board.target is not None and board.profile is not None:
        mismatches = profile_mismatches(board.profile, facts_from_info(info, source=""))
        if mismatches:
            console.print(f"[yellow]warning:[/yellow] {args.name} does not match its "
                          f"{board.profile.name} profile: {'; '.join(mismatches)}",
                          soft_wrap=True)
        console.print(f"  kept in {board_facts_file(args.name)} for `edgecomp plan --target "
                      f"{args.name}`", soft_wrap=True)
    return 1 if len(info.missing) == 2 else 0


def _mb(value) -> str:
    return "?" if value is None else f"{value:.0f} MiB"


def run_trust(args) -> int:
    from edgecomp.commands.ui import console
    from edgecomp.remote.host_keys import fetch_host_key, host_key_name, key_fingerprint
    from edgecomp.hardware.targets import get_target, inventory_known_hosts

    if args.name == "local":
        raise InputError("the local target needs no host key.")
    target = get_target(args.name)
    key = fetch_host_key(target)
    fingerprint = key_fingerprint(key)
    console.print(f"{target.name} ({target.host}:{target.port}) presents "
                  f"{key.get_name()} {fingerprint}")
    known = inventory_known_hosts()
    import paramiko

    host_keys = paramiko.HostKeys()
    if known.is_file():
        host_keys.load(str(known))
    name = host_key_name(target)
    existing = host_keys.lookup(name) or {}
    if existing.get(key.get_name()) == key:
        console.print("already trusted.")
        return 0
    if existing:
        # Any key already known for this address, of this type or another, means the board
        # changed its identity: a server now offering ECDSA where ed25519 was known is
        # refused like a changed ed25519 key.
        known_keys = ", ".join(f"{kind} {key_fingerprint(value)}"
                               for kind, value in existing.items())
        raise DeviceError(f"{known} already holds a different key for {name} ({known_keys}); "
                          f"the board now presents {key.get_name()} {fingerprint}. edgecomp "
                          "never replaces or adds to a known key: if the board was "
                          "reinstalled, delete those lines by hand, then trust again.")
    if not args.yes:
        if sys.stdin is None or not sys.stdin.isatty():
            raise InputError("confirm the fingerprint: run in a terminal, or pass --yes after "
                             "checking it on the board (ssh-keygen -lf /etc/ssh/ssh_host_*.pub).")
        try:
            answer = input("Trust this key? Compare it with the board's own fingerprint [y/N] ")
        except EOFError:
            answer = ""
        if answer.strip().lower() not in ("y", "yes"):
            console.print("not trusted.")
            return 1
    from edgecomp.atomic import atomic_path

    host_keys.add(name, key.get_name(), key)
    with atomic_path(known) as tmp:
        host_keys.save(str(tmp))
    console.print(f"trusted; saved in {known}")
    return 0

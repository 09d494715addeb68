"""``tracker gateways add|list|remove``: the servers allowed to forward positions for many
devices (``POST /ingest/traccar``)."""
from __future__ import annotations

import argparse
import re

from tracker.accounts import gateways
from tracker.cli.common import EXIT_USAGE, CommandError, on_database, table
from tracker.positions.model import MARKER_ID_PATTERN

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
NAME_RULE = "1 to 64 characters of A-Z a-z 0-9 _ . -"


async def add(args: argparse.Namespace) -> int:
    if NAME.fullmatch(args.name) is None:
        raise CommandError(f"a gateway name is {NAME_RULE}", EXIT_USAGE)
    if args.prefix and MARKER_ID_PATTERN.fullmatch(args.prefix) is None:
        raise CommandError(f"--prefix {args.prefix!r} cannot begin a marker id", EXIT_USAGE)
    token = await on_database(lambda conn: gateways.add(conn, args.name, args.prefix or ""))
    scope = f"marker ids starting with {args.prefix!r}" if args.prefix else "any marker id"
    print(f"gateway {args.name} added, may report for {scope}; its token (shown only now): {token}")
    return 0


async def remove(args: argparse.Namespace) -> int:
    await on_database(lambda conn: gateways.remove(conn, args.name))
    print(f"gateway {args.name} removed")
    return 0


async def listing(args: argparse.Namespace) -> int:
    found = await on_database(gateways.listing)
    table(("gateway", "prefix", "added"),
          [(g.name, g.prefix or "(any)", f"{g.created_at:%Y-%m-%d %H:%M:%S}") for g in found], "no gateways")
    return 0


def add_commands(commands) -> None:
    group = commands.add_parser(
        "gateways", help="servers that forward many devices' positions (Traccar): POST /ingest/traccar"
    ).add_subparsers(title="gateways commands")
    adding = group.add_parser("add", help="add a gateway and print its token (once)")
    adding.add_argument("name")
    adding.add_argument("--prefix", help="it may only report marker ids that start with this")
    adding.set_defaults(run=add)
    group.add_parser("list", help="list the gateways (never their tokens)").set_defaults(run=listing)
    removing = group.add_parser("remove", help="remove a gateway: its token stops working")
    removing.add_argument("name")
    removing.set_defaults(run=remove)

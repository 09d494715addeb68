"""``tracker db init``: the schema created if it does not exist."""
from __future__ import annotations

import argparse
import asyncio

from tracker.cli.common import on_database


def add_commands(commands) -> None:
    db = commands.add_parser("db", help="database commands")
    db_commands = db.add_subparsers(title="db commands")
    init = db_commands.add_parser("init", help="create the schema if it does not exist")
    init.set_defaults(run=_db_init)


async def _db_init(args: argparse.Namespace) -> int:
    await on_database(lambda conn: asyncio.sleep(0))  # connecting creates the schema
    print("schema ready")
    return 0

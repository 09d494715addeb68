"""tracker: send positions, simulate markers, manage devices and the database.

Every failure ends with a one-line explanation on stderr and a non-zero exit code. Each
group of commands is a module of this package with its own ``add_commands``.
"""
from __future__ import annotations

import argparse
import asyncio
import sys

from tracker.cli import accounts, db, devices, gateways, geofences, history, journeys, mqtt, tracks, webhooks
from tracker.cli.common import EXIT_UNAVAILABLE, EXIT_USAGE, CommandError
from tracker.stream.producer import KafkaUnavailable

#: The groups, in the order ``tracker --help`` lists them.
GROUPS = (tracks, devices, accounts, geofences, webhooks, journeys, gateways, mqtt, db, history)


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return EXIT_USAGE
    try:
        return asyncio.run(args.run(args)) or 0
    except CommandError as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return exc.code
    except KafkaUnavailable as exc:
        print(f"tracker: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except KeyboardInterrupt:
        print("tracker: interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tracker", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands")
    for group in GROUPS:
        group.add_commands(commands)
    return parser

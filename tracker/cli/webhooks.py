"""``tracker webhooks``: the URLs events are POSTed to."""
from __future__ import annotations

import argparse

from tracker.cli.common import EXIT_USAGE, CommandError, on_database, table
from tracker.webhooks.destinations import redact


def add_commands(commands) -> None:
    webhooks = commands.add_parser("webhooks", help="URLs that events are POSTed to").add_subparsers(
        title="webhooks commands")
    add = webhooks.add_parser("add", help="add a webhook and print its signing secret (once)")
    add.add_argument("url", help="an http or https URL")
    add.add_argument("--type", dest="types", action="append", default=[], metavar="TYPE",
                     help="an event type it wants, such as geofence_enter (repeat for more; default every type)")
    add.add_argument("--marker", dest="markers", action="append", default=[], metavar="MARKER_OR_PREFIX",
                     help="a marker id, or a prefix ending in * (repeat for more; default every marker)")
    add.set_defaults(run=_webhooks_add)
    webhooks.add_parser("list", help="list the webhooks (never their secrets)").set_defaults(run=_webhooks_list)
    remove = webhooks.add_parser("remove", help="remove a webhook and its deliveries")
    remove.add_argument("webhook_id", type=int, metavar="ID")
    remove.set_defaults(run=_webhooks_remove)


async def _webhooks_add(args: argparse.Namespace) -> int:
    from tracker.webhooks import store as webhook_store
    from tracker.webhooks.model import BadWebhook, parse_and_resolve

    try:
        new = await parse_and_resolve({"url": args.url, "types": args.types, "markers": args.markers})
    except BadWebhook as exc:
        raise CommandError(str(exc), EXIT_USAGE) from None
    webhook = await on_database(lambda conn: webhook_store.add(conn, new, None))
    print(f"webhook {webhook.webhook_id} added for {redact(webhook.url)} ({', '.join(webhook.types) or 'every type'}; "
          f"{' '.join(webhook.markers) or 'every marker'}); its secret (shown only now): {webhook.secret}")
    return 0


async def _webhooks_list(args: argparse.Namespace) -> int:
    from tracker.webhooks import store as webhook_store

    webhooks = await on_database(webhook_store.load)
    table(("id", "url", "types", "markers", "by", "added"),
           [(str(w.webhook_id), redact(w.url), " ".join(w.types) or "all", " ".join(w.markers) or "all",
             w.created_by or "(command line)", f"{w.created_at:%Y-%m-%d %H:%M}") for w in webhooks], "no webhooks")
    return 0


async def _webhooks_remove(args: argparse.Namespace) -> int:
    from tracker.webhooks import store as webhook_store

    try:
        await on_database(lambda conn: webhook_store.delete(conn, args.webhook_id))
    except webhook_store.UnknownWebhook:
        raise CommandError(f"no webhook {args.webhook_id}") from None
    print(f"webhook {args.webhook_id} removed")
    return 0

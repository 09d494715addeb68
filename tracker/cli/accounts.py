"""``tracker users``, ``groups``, ``tokens``, ``sessions``, ``share`` and ``shares``: who may see which markers."""
from __future__ import annotations

import argparse
import sys
from datetime import timedelta

from tracker.accounts.permissions import ROLES
from tracker.cli.common import EXIT_USAGE, CommandError, on_database, table
from tracker.positions.model import format_time
from tracker.settings import settings


def add_commands(commands) -> None:
    users = commands.add_parser("users", help="people who may read positions").add_subparsers(title="users commands")
    add = users.add_parser("add", help="add a user and print its generated password (once)")
    add.add_argument("name")
    add.add_argument("--role", choices=ROLES, required=True,
                     help="admin: sees every marker and manages accounts; viewer: sees its groups' markers")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    add.set_defaults(run=_users_add)
    users.add_parser("list", help="list the users and their groups").set_defaults(run=_users_list)
    remove = users.add_parser("remove", help="remove a user (its tokens, sessions and links end)")
    remove.add_argument("name")
    remove.set_defaults(run=_account_change("remove_user", "name", done="user {name} removed"))
    passwd = users.add_parser("passwd", help="set a new password (printed once unless --password-stdin)")
    passwd.add_argument("name")
    passwd.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    passwd.set_defaults(run=_users_passwd)

    groups = commands.add_parser("groups", help="sets of markers that viewers may see").add_subparsers(
        title="groups commands")
    add = groups.add_parser("add", help="add an empty group")
    add.add_argument("name")
    add.set_defaults(run=_account_change("add_group", "name", done="group {name} added"))
    groups.add_parser("list", help="list the groups, their markers and members").set_defaults(run=_groups_list)
    remove = groups.add_parser("remove", help="remove a group")
    remove.add_argument("name")
    remove.set_defaults(run=_account_change("remove_group", "name", done="group {name} removed"))
    for verb, helptext in (("grant", "add markers to a group"), ("revoke", "take markers out of a group")):
        grant = groups.add_parser(verb, help=f"{helptext}: marker ids, or prefixes ending in * (truck-*)")
        grant.add_argument("name")
        grant.add_argument("markers", nargs="+", metavar="MARKER_OR_PREFIX")
        grant.set_defaults(run=_groups_grant, verb=verb)
    members = groups.add_parser("members", help="add users to a group (or take them out with --remove)")
    members.add_argument("name")
    members.add_argument("users", nargs="+", metavar="USER")
    members.add_argument("--remove", action="store_true")
    members.set_defaults(run=_groups_members)
    friends = groups.add_parser("friends", help="let the group's phones see each other in OwnTracks "
                                                "(or stop it with --off)")
    friends.add_argument("name")
    friends.add_argument("--off", action="store_true")
    friends.set_defaults(run=_groups_friends)

    tokens = commands.add_parser("tokens", help="API tokens for programs").add_subparsers(title="tokens commands")
    add = tokens.add_parser("add", help="make a token for a user and print it (once)")
    add.add_argument("user")
    add.add_argument("--expires", help="lifetime: 3600, 90m, 12h, 30d (default: never)")
    add.set_defaults(run=_tokens_add)
    tokens.add_parser("list", help="list the tokens (never the tokens themselves)").set_defaults(run=_tokens_list)
    revoke = tokens.add_parser("revoke", help="stop a token from working")
    revoke.add_argument("token_id", type=int, metavar="ID")
    revoke.set_defaults(run=_account_change("revoke_token", "token_id", done="token {token_id} revoked"))

    sessions = commands.add_parser("sessions", help="browser sessions (signed in at /login)").add_subparsers(
        title="sessions commands")
    listing = sessions.add_parser("list", help="list the sessions that have not expired")
    listing.add_argument("--user", help="only this user's")
    listing.set_defaults(run=_sessions_list)
    end = sessions.add_parser("end", help="end sessions (signed out within 2 s, live feeds too)")
    end.add_argument("session_ids", type=int, nargs="*", metavar="ID")
    end.add_argument("--user", help="every session of this user")
    end.set_defaults(run=_sessions_end)

    share = commands.add_parser("share", help="print a link that shows one marker without an account")
    share.add_argument("marker")
    share.add_argument("--hours", type=float, default=24.0, help="until the link expires (default 24, at most 720)")
    share.set_defaults(run=_share)
    shares = commands.add_parser("shares", help="share links").add_subparsers(title="shares commands")
    shares.add_parser("list", help="list the links").set_defaults(run=_shares_list)
    revoke = shares.add_parser("revoke", help="stop a link from working")
    revoke.add_argument("share_id", type=int, metavar="ID")
    revoke.set_defaults(run=_shares_revoke)


def _account_change(change: str, *fields: str, done: str):
    """A command that calls ``tracker.accounts.store.<change>(conn, *args.<fields>)`` and says ``done``."""
    async def run(args: argparse.Namespace) -> int:
        from tracker.accounts import store as accounts

        await on_database(lambda conn: getattr(accounts, change)(conn, *(getattr(args, f) for f in fields)))
        print(done.format(**vars(args)))
        return 0

    return run


MIN_PASSWORD = 8


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    """(password, generated?): one line of standard input with --password-stdin, else a new one."""
    from tracker.accounts.credentials import new_password

    if not args.password_stdin:
        return new_password(), True
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD:
        raise CommandError(f"the password must be at least {MIN_PASSWORD} characters", EXIT_USAGE)
    return password, False


async def _users_add(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    password, generated = _password(args)
    await on_database(lambda conn: accounts.add_user(conn, args.name, args.role, password))
    print(f"user {args.name} ({args.role}) added" + (f"; password (shown only now): {password}" if generated else ""))
    return 0


async def _users_passwd(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    password, generated = _password(args)
    await on_database(lambda conn: accounts.set_password(conn, args.name, password))
    print(f"user {args.name} has a new password" + (f" (shown only now): {password}" if generated else "")
          + "; its sessions have ended")
    return 0


async def _users_list(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    users = await on_database(accounts.list_users)
    table(("user", "role", "added", "groups"),
           [(u.name, u.role, f"{u.created_at:%Y-%m-%d %H:%M}", ", ".join(u.groups) or "-") for u in users],
           "no users: add the first admin with `tracker users add NAME --role admin`")
    return 0


async def _groups_grant(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts
    from tracker.accounts.permissions import parse_grant

    grants = [parse_grant(text) for text in args.markers]
    change = accounts.grant if args.verb == "grant" else accounts.revoke_grant
    await on_database(lambda conn: change(conn, args.name, grants))
    print(f"group {args.name}: {'granted' if args.verb == 'grant' else 'revoked'} {' '.join(args.markers)}")
    return 0


async def _groups_members(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    change = accounts.remove_members if args.remove else accounts.add_members
    await on_database(lambda conn: change(conn, args.name, args.users))
    print(f"group {args.name}: {'removed' if args.remove else 'added'} {' '.join(args.users)}")
    return 0


async def _groups_friends(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    await on_database(lambda conn: accounts.set_friends(conn, args.name, not args.off))
    print(f"group {args.name}: its phones {'no longer see' if args.off else 'see'} each other in OwnTracks")
    return 0


async def _groups_list(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    groups = await on_database(accounts.list_groups)
    table(("group", "markers", "members", "friends"),
           [(g.name, " ".join(g.markers) or "-", ", ".join(g.members) or "-", "yes" if g.friends else "no")
            for g in groups], "no groups")
    return 0


async def _tokens_add(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    try:
        expires = None if args.expires is None else accounts.parse_duration(args.expires, longest=timedelta(days=3650))
    except accounts.AccountError as exc:
        raise CommandError(f"--expires: {exc}", EXIT_USAGE) from None
    token_id, token = await on_database(lambda conn: accounts.add_token(conn, args.user, expires))
    lifetime = "never expires" if expires is None else f"expires in {args.expires}"
    print(f"token {token_id} for {args.user} ({lifetime}; shown only now): {token}")
    return 0


async def _tokens_list(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    tokens = await on_database(accounts.list_tokens)
    table(("id", "user", "made", "expires", "revoked"),
           [(str(t.token_id), t.user_name, f"{t.created_at:%Y-%m-%d %H:%M}",
             f"{t.expires_at:%Y-%m-%d %H:%M}" if t.expires_at else "never",
             f"{t.revoked_at:%Y-%m-%d %H:%M}" if t.revoked_at else "-") for t in tokens], "no tokens")
    return 0


async def _sessions_list(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    sessions = await on_database(lambda conn: accounts.list_sessions(conn, args.user))
    table(("id", "user", "signed in", "expires"),
          [(str(s.session_id), s.user_name, f"{s.created_at:%Y-%m-%d %H:%M}", f"{s.expires_at:%Y-%m-%d %H:%M}")
           for s in sessions], "no sessions")
    return 0


async def _sessions_end(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    if bool(args.session_ids) == bool(args.user):
        raise CommandError("give session ids or --user NAME (one of them)", EXIT_USAGE)
    ended = await on_database(lambda conn: accounts.end_sessions(conn, args.session_ids, args.user))
    print(f"{ended} session{'s' if ended != 1 else ''} ended" + (f" of {args.user}" if args.user else ""))
    return 0


async def _share(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    if not 0 < args.hours <= 720:
        raise CommandError("--hours must be more than 0 and at most 720 (30 days)", EXIT_USAGE)
    share_id, token, expires_at = await on_database(
        lambda conn: accounts.add_share(conn, args.marker, None, timedelta(hours=args.hours)))
    path = f"/s/{token}"
    where = f"{settings.public_url}{path}" if settings.public_url else f"{path} (on this tracker's address; set TRACKER_PUBLIC_URL for a full URL)"
    print(f"share {share_id} of {args.marker}, until {format_time(expires_at)} (shown only now): {where}")
    return 0


async def _shares_list(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    shares = await on_database(lambda conn: accounts.list_shares(conn, None))
    table(("id", "marker", "by", "expires", "revoked"),
           [(str(s.share_id), s.marker_id, s.created_by or "(command line)", f"{s.expires_at:%Y-%m-%d %H:%M}",
             f"{s.revoked_at:%Y-%m-%d %H:%M}" if s.revoked_at else "-") for s in shares], "no share links")
    return 0


async def _shares_revoke(args: argparse.Namespace) -> int:
    from tracker.accounts import store as accounts

    await on_database(lambda conn: accounts.revoke_share(conn, args.share_id, None))
    print(f"share {args.share_id} revoked")
    return 0

"""What every command of ``tracker`` shares: its errors, exit codes and Postgres connection."""
from __future__ import annotations

from tracker.settings import settings

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3


class CommandError(Exception):
    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


async def on_database(action):
    """Run ``action(connection)`` on a database whose schema exists; account and device
    errors become one-line command errors."""
    import psycopg

    from tracker.accounts.store import AccountError
    from tracker.storage.schema import create_schema
    from tracker.accounts.devices import DeviceExists, UnknownDevice
    from tracker.accounts.gateways import GatewayError

    try:
        conn = await psycopg.AsyncConnection.connect(settings.database_url, autocommit=True)
        await create_schema(conn)
    except psycopg.OperationalError as exc:
        raise CommandError(f"cannot reach Postgres: {first_line(exc)}", EXIT_UNAVAILABLE) from None
    try:
        return await action(conn)
    except (AccountError, GatewayError) as exc:
        raise CommandError(str(exc)) from None
    except psycopg.DataError as exc:
        raise CommandError(f"refused by Postgres: {first_line(exc)}", EXIT_USAGE) from None
    except psycopg.Error as exc:
        raise CommandError(f"Postgres failed: {first_line(exc)}", EXIT_UNAVAILABLE) from None
    except DeviceExists as exc:
        raise CommandError(f"device {exc.args[0]!r} exists already (rotate gives it a new secret)") from None
    except UnknownDevice as exc:
        raise CommandError(f"no device {exc.args[0]!r}") from None
    finally:
        await conn.close()


def first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__


def table(header: tuple[str, ...], rows: list[tuple[str, ...]], empty: str) -> None:
    if not rows:
        print(empty)
        return
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())

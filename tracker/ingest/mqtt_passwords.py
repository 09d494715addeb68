"""Mosquitto's password file, kept in step with the device registry: a device's MQTT user is
its id and its password its secret (``tracker devices add``, ``rotate``, ``remove``).

The file is written here, in Mosquitto's own format (``user:$7$<iterations>$<salt>$<hash>``,
PBKDF2-HMAC-SHA512 as ``mosquitto_passwd`` writes it), so no Mosquitto tool is needed where
the command runs (a worker's container). It is replaced whole (a new file renamed over the
old), so the broker never reads half of it. Then the broker is told to read it again:
SIGHUP to ``TRACKER_MQTT_PID_FILE`` when it is set (``scripts/services``); under docker
compose, ``docker/mosquitto/run.sh`` notices the change within two seconds. Nothing
happens when ``TRACKER_MQTT_PASSWORD_FILE`` is unset.

The bridge's user name is reserved: no device may take it (whatever its case), since a
device's password is its MQTT user's and the bridge's user reads every phone's topic. A
device id with ``:`` cannot be a user of the file, so it is refused while MQTT is on.
Writers (the bridge at start, ``tracker devices`` anywhere) take a lock beside the file.
"""
from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import secrets
import signal
import tempfile
from urllib.parse import urlsplit

from tracker.cli.common import EXIT_UNAVAILABLE, EXIT_USAGE, CommandError
from tracker.settings import settings

#: What mosquitto_passwd uses.
ITERATIONS = 101
SALT_BYTES = 12
#: The bridge's user in scripts/services and docker-compose.yml, reserved even when
#: TRACKER_MQTT_URL names another.
BRIDGE_USER = "tracker-bridge"


def password_hash(password: str, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS, 64)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def reserved_users() -> set[str]:
    """The bridge's user names, case-folded."""
    return {name.casefold() for name in (BRIDGE_USER, urlsplit(settings.mqtt_url).username) if name}


def check_device_id(device_id: str) -> None:
    """Refuse a device id that cannot be a phone's MQTT user (one line, exit 2)."""
    if device_id.casefold() in reserved_users():
        raise CommandError(f"{device_id!r} is reserved for the MQTT bridge's user; choose another device id",
                           EXIT_USAGE)
    if settings.mqtt_password_file and ":" in device_id:
        raise CommandError(f"{device_id!r}: a device id with ':' cannot be an MQTT user; choose another",
                           EXIT_USAGE)


def set_password(device_id: str, secret: str) -> bool:
    """Add or replace ``device_id``'s password; True if Mosquitto's file was changed."""
    check_device_id(device_id)
    return _change(device_id, password_hash(secret))


def remove(device_id: str) -> bool:
    """Remove ``device_id``'s user (never the bridge's); True if the file was changed."""
    if device_id.casefold() in reserved_users():
        return False
    return _change(device_id, None)


def ensure_bridge_user() -> bool:
    """The bridge's own user (``TRACKER_MQTT_URL``'s, with ``TRACKER_MQTT_PASSWORD``), for a
    bridge that starts beside a password file it shares with the broker (docker compose)."""
    user = urlsplit(settings.mqtt_url).username
    if not settings.mqtt_password_file or not user:
        return False
    if not settings.mqtt_password:
        raise CommandError("TRACKER_MQTT_PASSWORD is empty: the bridge has no password to log in with",
                           EXIT_UNAVAILABLE)
    entries = _read(settings.mqtt_password_file)
    if user in entries and _matches(entries[user], settings.mqtt_password):
        return False
    return _change(user, password_hash(settings.mqtt_password))


def _matches(entry: str, password: str) -> bool:
    parts = entry.split("$")
    if len(parts) != 5 or parts[1] != "7" or parts[2] != str(ITERATIONS):
        return False
    return secrets.compare_digest(password_hash(password, base64.b64decode(parts[3])), entry)


def _read(path: str) -> dict[str, str]:
    try:
        with open(path) as file:
            lines = file.read().splitlines()
    except FileNotFoundError:
        return {}
    return dict(line.split(":", 1) for line in lines if ":" in line)


def _change(user: str, entry: str | None) -> bool:
    path = settings.mqtt_password_file
    if not path:
        return False
    try:
        with open(f"{path}.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when closed
            _write(path, user, entry)
    except OSError as exc:
        raise CommandError(f"cannot write Mosquitto's password file {path}: {exc}", EXIT_UNAVAILABLE) from None
    _reload()
    return True


def _write(path: str, user: str, entry: str | None) -> None:
    entries = _read(path)
    if entry is None:
        entries.pop(user, None)
    else:
        entries[user] = entry
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile("w", dir=directory, prefix=".passwd-", delete=False) as file:
        file.write("".join(f"{name}:{value}\n" for name, value in sorted(entries.items())))
    # The old file's mode, or readable by the broker, which runs as a user of its own.
    os.chmod(file.name, os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o644)
    os.replace(file.name, path)


def _reload() -> None:
    if not settings.mqtt_pid_file:
        return
    try:
        with open(settings.mqtt_pid_file) as pid_file:
            os.kill(int(pid_file.read().strip()), signal.SIGHUP)
    except (OSError, ValueError) as exc:
        raise CommandError(f"could not tell Mosquitto to reload its passwords: {exc}", EXIT_UNAVAILABLE) from None

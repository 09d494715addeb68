"""Mosquitto's password file, kept in step with the device registry: a device's MQTT user is
its id and its password its secret (``tracker devices add``, ``rotate``, ``remove``).

The file is written here, in Mosquitto's own format (``user:$7$<iterations>$<salt>$<hash>``,
PBKDF2-HMAC-SHA512 as ``mosquitto_passwd`` writes it), so no Mosquitto tool is needed where
the command runs (a worker's container). It is replaced whole (a new file renamed over the
old), so the broker never reads half of it. Then the broker is told to read it again:
SIGHUP to ``TRACKER_MQTT_PID_FILE`` when it is set (``scripts/services``); under docker
compose, ``docker/mosquitto/run.sh`` notices the change within two seconds. Nothing
happens when ``TRACKER_MQTT_PASSWORD_FILE`` is unset.
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
import signal
import tempfile
from urllib.parse import urlsplit

from tracker.commands import EXIT_UNAVAILABLE, CommandError
from tracker.settings import settings

#: What mosquitto_passwd uses.
ITERATIONS = 101
SALT_BYTES = 12


def password_hash(password: str, salt: bytes | None = None) -> str:
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, ITERATIONS, 64)
    return f"$7${ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def set_password(device_id: str, secret: str) -> bool:
    """Add or replace ``device_id``'s password; True if Mosquitto's file was changed."""
    return _change(device_id, password_hash(secret))


def remove(device_id: str) -> bool:
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
    return set_password(user, settings.mqtt_password)


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
    except OSError as exc:
        raise CommandError(f"cannot write Mosquitto's password file {path}: {exc}", EXIT_UNAVAILABLE) from None
    _reload()
    return True


def _reload() -> None:
    if not settings.mqtt_pid_file:
        return
    try:
        with open(settings.mqtt_pid_file) as pid_file:
            os.kill(int(pid_file.read().strip()), signal.SIGHUP)
    except (OSError, ValueError) as exc:
        raise CommandError(f"could not tell Mosquitto to reload its passwords: {exc}", EXIT_UNAVAILABLE) from None

"""Mosquitto's password file, kept in step with the device registry: a device's MQTT user is
its id and its password its secret (``tracker devices add``, ``rotate``, ``remove``).

Written with Debian's ``mosquitto_passwd`` (its hash format is Mosquitto's own), then the
broker is told to read it again (SIGHUP to ``TRACKER_MQTT_PID_FILE``; under docker compose,
``docker compose kill -s HUP mosquitto``). Nothing happens when
``TRACKER_MQTT_PASSWORD_FILE`` is unset.
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess

from tracker.commands import EXIT_UNAVAILABLE, CommandError
from tracker.settings import settings


def set_password(device_id: str, secret: str) -> bool:
    return _passwd("-b", settings.mqtt_password_file, device_id, secret)


def remove(device_id: str) -> bool:
    return _passwd("-D", settings.mqtt_password_file, device_id)


def _passwd(*args: str | None) -> bool:
    """True if Mosquitto's file was changed (and the broker told)."""
    if not settings.mqtt_password_file:
        return False
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not os.path.exists(tool):
        raise CommandError("TRACKER_MQTT_PASSWORD_FILE is set but mosquitto_passwd is missing "
                           "(Debian's mosquitto package)", EXIT_UNAVAILABLE)
    done = subprocess.run([tool, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise CommandError(f"mosquitto_passwd failed: {(done.stderr or done.stdout).strip()[:200]}", EXIT_UNAVAILABLE)
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

"""A Mosquitto of its own for a test module: the broker of ``scripts/services`` (Debian's
``mosquitto``), configured from this tree's ``docker/mosquitto`` files (the ACL, the limits
block of ``mosquitto.conf`` and the ``tracker_acl.c`` plugin, compiled here), on a free port.
Tests of the broker's rules run on it, so they check the rules of the code under test, not
those the shared broker was started with."""
from __future__ import annotations

import getpass
import subprocess
import time
from pathlib import Path

from tracker.testing import ROOT, free_port, wait_for

MOSQUITTO = Path("/usr/sbin/mosquitto")
BRIDGE_USER = "tracker-bridge"


def limits_block() -> str:
    """The limits block of docker/mosquitto/mosquitto.conf, as scripts/services copies it."""
    lines = (ROOT / "docker" / "mosquitto" / "mosquitto.conf").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# --- limits"))
    end = next(i for i, line in enumerate(lines) if line.startswith("# --- end of limits"))
    return "\n".join(lines[start:end + 1])


class PrivateBroker:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.passwords = directory / "passwd"
        self.log = directory / "mosquitto.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> "PrivateBroker":
        if not MOSQUITTO.exists():
            raise AssertionError("the MQTT tests need Debian's mosquitto and mosquitto-dev (scripts/system-packages)")
        plugin = self.directory / "tracker_acl.so"
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-o", str(plugin),
                        str(ROOT / "docker" / "mosquitto" / "tracker_acl.c")], check=True)
        self.passwords.touch()
        config = self.directory / "mosquitto.conf"
        config.write_text(f"""listener {self.port} 127.0.0.1
allow_anonymous false
password_file {self.passwords}
acl_file {ROOT / "docker" / "mosquitto" / "acl"}
{limits_block()}
plugin {plugin}
plugin_opt_bridge_user {BRIDGE_USER}
log_dest file {self.log}
log_type all
user {getpass.getuser()}
""")
        self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.STDOUT)
        wait_for(lambda: self.log.exists() and "running" in self.log.read_text(), 10, "mosquitto to start")
        return self

    def add_user(self, name: str, password: str) -> None:
        """A user in the password file (Mosquitto's format, as ``tracker devices add`` writes it)."""
        from tracker.ingest.mqtt_passwords import password_hash

        with self.passwords.open("a") as file:
            file.write(f"{name}:{password_hash(password)}\n")
        self.proc.send_signal(1)  # SIGHUP: read the passwords again
        time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

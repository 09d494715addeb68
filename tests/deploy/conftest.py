"""The Docker quickstart, booted for real: a clean copy of the checkout, `.env` made as the
README says, `docker compose up -d --build`, and the stack used as a person would.

Run with `make test-deploy` (CI's last step). It needs a running Docker daemon
(`scripts/images engine` starts one as root) and fails, never skips, without one. Images
that cannot be pulled are replaced by the stand-ins `scripts/images build` makes.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.integration.conftest import FIGURES
from tracker.testing import ROOT, wait_for

#: The compose project: the clean copy's folder name.
PROJECT = "tracker-quickstart"
BASE_URL = "http://127.0.0.1:4200"
#: The services of the default profile, and those that have a health check.
SERVICES = {"kafka", "postgres", "worker-1", "worker-2", "simulator", "nginx"}
MQTT_SERVICES = {"mosquitto", "mqtt-bridge"}
UNCHECKED = {"simulator", "mqtt-bridge"}
ARTIFACTS = ROOT / "tests" / "artifacts"  # no health check: running is all they say
BOOT_SECONDS = 300


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed step leaves the stack's logs in tests/artifacts/deploy-STEP.log."""
    report = yield
    deployment = item.funcargs.get("deployment") if hasattr(item, "funcargs") else None
    if report.failed and call.when == "call" and isinstance(deployment, Deployment):
        logs = deployment.compose("--profile", "mqtt", "logs", "--no-color", "--timestamps",
                                  check=False, timeout=120).stdout
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / f"deploy-{item.name}.log").write_text(logs)
    return report


def pytest_collection_modifyitems(items):
    for item in items:
        if "/deploy/" in str(item.fspath):
            item.add_marker(pytest.mark.deploy)


def compose_command() -> list[str]:
    """`docker compose` (v2) when the docker CLI has it, else `docker-compose` (v1)."""
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor docker-compose is installed (scripts/images engine)")


def readme_quickstart() -> list[str]:
    """The commands of the README's first quickstart ("With Docker"), comments dropped."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### With Docker"):]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [re.sub(r"\s+#.*$", "", line) for line in block.splitlines() if line.strip()]


class Deployment:
    """The stack of a clean copy of the checkout in ``root``."""

    def __init__(self, root: Path):
        self.root = root
        self.compose_cmd = compose_command()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACKER_", "POSTGRES_"))}
        self.admin_password: str | None = None
        self.token: str | None = None
        self.figures = FIGURES  # printed at the end of the run

    def run(self, command: list[str], timeout: float = 600, check: bool = True,
            env: dict | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run(command, cwd=self.root, env=env or self.env, capture_output=True, text=True,
                                timeout=timeout)
        if check and result.returncode != 0:
            pytest.fail(f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
                        f"{result.stderr[-3000:]}")
        return result

    def compose(self, *args: str, **kwargs) -> subprocess.CompletedProcess:
        return self.run([*self.compose_cmd, *args], **kwargs)

    def readme_command(self, line: str, **kwargs) -> subprocess.CompletedProcess:
        """A README line, with `docker compose` spelt as this machine has it (and `exec`
        without a terminal: the tests have none)."""
        if line.startswith("docker compose "):
            args = line.split()[2:]
            if args[0] == "exec":
                args.insert(1, "-T")
            return self.compose(*args, **kwargs)
        return self.run(["bash", "-c", line], **kwargs)

    def containers(self) -> list[dict]:
        ids = self.compose("ps", "-q").stdout.split()
        if not ids:
            return []
        return json.loads(self.run(["docker", "inspect", *ids]).stdout)

    def states(self) -> dict[str, str]:
        """service -> its health ("healthy", "starting", ...) or, without a check, its status."""
        states = {}
        for container in self.containers():
            service = container["Config"]["Labels"]["com.docker.compose.service"]
            state = container["State"]
            states[service] = state.get("Health", {}).get("Status") or state["Status"]
        return states

    def wait_healthy(self, services: set[str], timeout: float = BOOT_SECONDS) -> float:
        started = time.monotonic()

        def ready():
            states = self.states()
            return all(states.get(s) == ("running" if s in UNCHECKED else "healthy") for s in services)

        try:
            wait_for(ready, timeout, f"{sorted(services)} healthy")
        except Exception:
            logs = self.compose("logs", "--tail", "40", check=False).stdout
            pytest.fail(f"not healthy after {timeout} s: {self.states()}\n{logs[-8000:]}")
        return time.monotonic() - started

    def api(self, path: str, method: str = "GET", body: bytes | None = None,
            headers: dict | None = None, token: bool = True) -> tuple[int, dict, bytes]:
        """A request through nginx on 127.0.0.1:4200, with the admin's token unless told not."""
        headers = dict(headers or {})
        if token and self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(BASE_URL + path, data=body, method=method, headers=headers)
        try:
            with _OPENER.open(request, timeout=15) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def api_json(self, path: str):
        status, _, body = self.api(path)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def cli(self, *args: str) -> str:
        """`docker compose exec worker-1 tracker ...`, as the README has devices registered."""
        return self.compose("exec", "-T", "worker-1", "tracker", *args).stdout


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def clean_copy(target: Path) -> None:
    """The checkout's files as git knows them (tracked, and new files not ignored): what a
    fresh clone holds, plus the changes not committed yet."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if not source.is_file():
            continue  # deleted in the working tree
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


@pytest.fixture(scope="session")
def deployment(tmp_path_factory):
    """The stack booted from a clean copy, as the README's quickstart does it."""
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        pytest.fail("the Docker daemon does not answer: start it (scripts/images engine)")
    root = tmp_path_factory.mktemp("deploy") / PROJECT
    root.mkdir()
    clean_copy(root)
    deployment = Deployment(root)
    leftover = subprocess.run(["docker", "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                              capture_output=True, text=True).stdout.split()
    if leftover:  # an earlier run that was killed
        subprocess.run(["docker", "rm", "-f", *leftover], capture_output=True)
    volumes = subprocess.run(["docker", "volume", "ls", "-q", "--filter", f"label=com.docker.compose.project={PROJECT}"],
                             capture_output=True, text=True).stdout.split()
    if volumes:  # its data: Postgres would keep the passwords of that run's .env, not this one's
        subprocess.run(["docker", "volume", "rm", "-f", *volumes], capture_output=True)
    started = time.monotonic()
    built = deployment.run(["scripts/images", "build"], timeout=1200, env={**deployment.env, "PYTHON": sys.executable})
    overrides = deployment.run(["scripts/images", "env"], env={**deployment.env, "PYTHON": sys.executable}).stdout
    for name, value in re.findall(r"^export (TRACKER_[A-Z_]+_IMAGE)=(\S+)$", overrides, re.M):
        deployment.env[name] = value
    deployment.figures.append(("deploy: scripts/images build", f"{time.monotonic() - started:.0f} s"))
    deployment.figures.append(("deploy: stand-ins", " ".join(sorted(
        value.split("/")[1].split(":")[0] for name, value in deployment.env.items()
        if name.endswith("_IMAGE"))) or "none (the official images)"))
    print(built.stderr, file=sys.stderr)
    try:
        yield deployment
    finally:  # whatever a step left running
        deployment.compose("--profile", "mqtt", "down", "-v", "--remove-orphans", check=False, timeout=300)

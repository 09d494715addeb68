"""The README's Docker quickstart from a clean copy, step by step as a person takes it (the
tests run in this order and share one stack): `.env`, `docker compose up -d --build`, the
first admin, the map in Chromium, a phone through nginx, a worker restarted, the `mqtt`
profile over TLS, the ports, the data kept across `down`/`up` and gone after `down -v`;
then the image itself."""
from __future__ import annotations

import json
import re
import ssl
import stat
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import pytest

from tests.deploy.conftest import MQTT_SERVICES, PROJECT, SERVICES, readme_quickstart
from tracker.testing import wait_for

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
REQUIRED_SECRETS = ("POSTGRES_SUPERUSER_PASSWORD", "TRACKER_DB_PASSWORD", "TRACKER_CLUSTER_SECRET")
PHONE = "docker-phone"
MQTT_PHONE = "docker-mqtt-phone"


def history(deployment, marker_id: str) -> list[dict]:
    status, _, body = deployment.api(f"/api/markers/{marker_id}/history")
    if status == 404:
        return []
    assert status == 200, (status, body[:300])
    return json.loads(body)["positions"]


def test_env_is_made_as_the_readme_says(deployment):
    commands = readme_quickstart()
    assert commands[0].startswith("cp .env.example .env") and commands[1].startswith("python3 -c")
    for line in commands[:2]:
        deployment.readme_command(line)
    env_file = deployment.root / ".env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    values = dict(re.findall(r"(?m)^([A-Z_]+)=(.*)$", env_file.read_text()))
    for name in REQUIRED_SECRETS:
        assert re.fullmatch(r"[0-9a-f]{48}", values.get(name, "")), name


def test_compose_up_builds_and_every_service_becomes_healthy(deployment):
    up = readme_quickstart()[2]
    assert up == "docker compose up -d --build"
    started = time.monotonic()
    deployment.readme_command(up, timeout=1200)
    built = time.monotonic() - started
    healthy = deployment.wait_healthy(SERVICES)
    deployment.figures.append(("deploy: docker compose up -d --build", f"{built:.0f} s, healthy {healthy:.0f} s later"))
    assert set(deployment.states()) == SERVICES  # the mqtt profile's services stay off


def test_the_first_admin_is_created_with_the_readmes_command(deployment):
    line = readme_quickstart()[3]
    # in the running worker: a one-off container (`run`) would be named worker-1 by Docker's
    # DNS too, and nginx would send requests to it, and to its address once it is gone
    assert line == "docker compose exec worker-1 tracker users add admin --role admin"
    output = deployment.readme_command(line).stdout
    deployment.admin_password = re.search(r"password \(shown only now\): (\S+)", output).group(1)
    token = deployment.cli("tokens", "add", "admin")
    deployment.token = re.search(r"shown only now\): (\S+)", token).group(1)
    assert deployment.api("/api/markers", token=False)[0] == 401
    assert deployment.api("/api/markers")[0] == 200


def test_signing_in_through_nginx_shows_the_simulators_markers_moving(deployment, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    try:
        page.goto("http://127.0.0.1:4200/")
        assert "/login?next=%2Fmap" in page.url, page.url  # / -> /map -> the login form
        page.fill("#user", "admin")
        page.fill("#password", deployment.admin_password)
        with page.expect_navigation():
            page.click("button[type=submit]")
        assert page.url.split("#")[0] == "http://127.0.0.1:4200/map", page.url
        page.wait_for_function("() => window.tracker && window.tracker.markers.size >= 50", timeout=60_000)
        before = page.evaluate("""() => Object.fromEntries(Array.from(window.tracker.markers.entries())
            .filter(([id]) => id.startsWith('sim-')).map(([id, m]) => [id, [m.lat, m.lon]]))""")
        assert len(before) == 50
        page.wait_for_function(
            """before => Array.from(window.tracker.markers.entries()).filter(([id, m]) => before[id]
                 && (m.lat !== before[id][0] || m.lon !== before[id][1])).length >= 10""",
            arg=before, timeout=60_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "deploy-map.png"))
    finally:
        page.close()


def test_a_traccar_client_request_through_nginx_lands_in_the_history(deployment):
    output = deployment.cli("devices", "add", PHONE)
    secret = re.search(r"shown only now\): (\S+)", output).group(1)
    now = int(time.time())
    query = urllib.parse.urlencode({"id": PHONE, "lat": 48.8584, "lon": 2.2945, "timestamp": now - 5,
                                    "speed": 3, "batt": 77})
    status, _, body = deployment.api(f"/ingest/osmand/{secret}?{query}", method="POST", token=False)
    assert status == 200, body
    status, _, _ = deployment.api(f"/ingest/osmand/not-the-secret?{query}", method="POST", token=False)
    assert status == 401
    points = wait_for(lambda: history(deployment, PHONE), 60, "the phone's fix in the history")
    assert len(points) == 1
    assert (points[0]["lat"], points[0]["lon"], points[0]["battery"]) == (48.8584, 2.2945, 77)
    # The live path too: the marker in the cluster's list, its position from the latest table.
    wait_for(lambda: PHONE in {row["marker_id"] for row in deployment.api_json("/api/markers")}, 60,
             "the phone among the markers")
    status, headers, body = deployment.api(f"/api/markers/{PHONE}")
    assert status == 200 and headers["X-Tracker-Position-Source"] == "latest", (status, headers, body)
    latest = json.loads(body)
    assert (latest["lat"], latest["lon"]) == (48.8584, 2.2945)


def test_while_worker_1_restarts_every_marker_is_answered(deployment):
    markers = sorted(row["marker_id"] for row in deployment.api_json("/api/markers"))
    assert len(markers) == 51, markers  # the simulator's 50 and the phone
    restarted = threading.Event()
    result = {}

    def restart():
        result["restart"] = deployment.compose("restart", "worker-1", check=False)
        restarted.set()

    thread = threading.Thread(target=restart)
    failures: list[tuple[float, str, int, bytes]] = []
    requests = 0
    started = time.monotonic()
    thread.start()
    # Through the restart and until worker-1 is healthy again (and has taken its partitions back).
    while not restarted.is_set() or deployment.states().get("worker-1") != "healthy":
        for marker in markers:
            status, _, body = deployment.api(f"/api/markers/{marker}")
            requests += 1
            if status != 200:
                failures.append((round(time.monotonic() - started, 1), marker, status, body[:160]))
        assert time.monotonic() - started < 180, "worker-1 not healthy again after 3 minutes"
    thread.join()
    assert result["restart"].returncode == 0, result["restart"].stderr
    deployment.figures.append(("deploy: restart of worker-1", f"{time.monotonic() - started:.0f} s, "
                               f"{requests:,} requests for {len(markers)} markers, {len(failures)} failed"))
    assert failures == [], failures[:20]


def _certificate(certs: Path) -> None:
    """A self-signed certificate for 127.0.0.1, where the README has the broker's own."""
    certs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(certs / "privkey.pem"), "-out", str(certs / "fullchain.pem")],
                   check=True, capture_output=True)
    (certs / "privkey.pem").chmod(0o644)  # read by the broker's own user inside the container


def test_the_mqtt_profile_takes_an_owntracks_message_over_tls(deployment):
    import paho.mqtt.client as mqtt

    certs = deployment.root / "docker/mosquitto/certs"
    _certificate(certs)
    deployment.compose("--profile", "mqtt", "up", "-d", "--build", timeout=900)
    deployment.wait_healthy(SERVICES | MQTT_SERVICES)
    secret = re.search(r"shown only now\): (\S+)", deployment.cli("devices", "add", MQTT_PHONE)).group(1)
    tst = int(time.time()) - 5
    payload = json.dumps({"_type": "location", "lat": 48.8606, "lon": 2.3376, "tst": tst, "acc": 9,
                          "batt": 64, "tid": "dp"}).encode()

    def publish(password: str):
        """The broker's answer to a CONNECT as the phone, and the PUBACK when let in."""
        answers = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{MQTT_PHONE}-{time.monotonic_ns()}")
        client.username_pw_set(MQTT_PHONE, password)
        client.tls_set(ca_certs=str(certs / "fullchain.pem"), cert_reqs=ssl.CERT_REQUIRED)
        client.on_connect = lambda c, userdata, flags, reason, properties: answers.append(reason)
        client.connect("127.0.0.1", 8883)
        client.loop_start()
        try:
            wait_for(lambda: answers, 10, "the broker's CONNACK")
            if answers[0].is_failure:
                return answers[0], None
            info = client.publish(f"owntracks/{MQTT_PHONE}/phone", payload, qos=1)
            info.wait_for_publish(10)
            return answers[0], info.is_published()
        finally:
            client.disconnect()
            client.loop_stop()

    # The worker wrote the device into the password file; the broker reads it again within 2 s.
    wait_for(lambda: not publish(secret)[0].is_failure, 20, "the new device let in over TLS")
    assert publish("wrong-password")[0].is_failure
    points = wait_for(lambda: history(deployment, MQTT_PHONE), 60, "the MQTT fix in the history")
    assert (points[0]["lat"], points[0]["lon"], points[0]["battery"]) == (48.8606, 2.3376, 64)


def _published_ports(deployment) -> set[int]:
    ports = set()
    for container in deployment.containers():
        for bindings in (container["NetworkSettings"]["Ports"] or {}).values():
            ports.update(int(binding["HostPort"]) for binding in bindings or [])
    return ports


def _docker_proxy_ports() -> set[int]:
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout
    return {int(re.search(r":(\d+)\s", line).group(1)) for line in listening.splitlines() if "docker-proxy" in line}


def test_only_nginx_and_mosquittos_tls_port_listen_on_the_host(deployment):
    assert _published_ports(deployment) == {4200, 8883}
    assert _docker_proxy_ports() == {4200, 8883}


def test_the_data_outlives_down_and_up(deployment):
    deployment.compose("--profile", "mqtt", "down", timeout=300)
    assert deployment.containers() == []
    assert _docker_proxy_ports() == set()
    deployment.compose("up", "-d", timeout=600)
    deployment.wait_healthy(SERVICES)
    assert _published_ports(deployment) == {4200}
    assert len(history(deployment, PHONE)) == 1 and len(history(deployment, MQTT_PHONE)) == 1
    form = urllib.parse.urlencode({"user": "admin", "password": deployment.admin_password, "next": "/map"})
    status, headers, _ = deployment.api("/login", "POST", form.encode(), token=False,
                                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 303 and headers["Set-Cookie"].startswith("tracker_session="), status
    markers = {row["marker_id"] for row in deployment.api_json("/api/markers")}
    assert {PHONE, MQTT_PHONE} <= markers and len(markers) >= 52  # the tables came back too


def test_down_v_removes_the_data(deployment):
    deployment.compose("--profile", "mqtt", "down", "-v", timeout=300)
    volumes = deployment.run(["docker", "volume", "ls", "-q", "--filter",
                              f"label=com.docker.compose.project={PROJECT}"]).stdout.split()
    assert volumes == []
    deployment.compose("up", "-d", "postgres", timeout=300)
    deployment.wait_healthy({"postgres"})
    # A new database: the init script made the schema again, and it holds no table yet (no
    # accounts, devices or history).
    tables = deployment.compose("exec", "-T", "postgres", "psql", "-U", "postgres", "-d", "tracker", "-tAc",
                                "SELECT nspname, count(tablename) FROM pg_namespace LEFT JOIN pg_tables "
                                "ON schemaname = nspname WHERE nspname = 'tracker' GROUP BY nspname").stdout
    assert tables.split() == ["tracker|0"], tables
    deployment.compose("down", "-v", timeout=300)


# --- the tracker's image ---------------------------------------------------------------------

def _image(deployment) -> dict:
    return json.loads(deployment.run(["docker", "image", "inspect", "gps-tracker:latest"]).stdout)[0]


def test_the_image_runs_as_a_user_and_holds_no_compiler_and_no_npm(deployment):
    image = _image(deployment)
    assert image["Config"]["User"] == "tracker"
    shell = deployment.run(["docker", "run", "--rm", "--entrypoint", "sh", "gps-tracker:latest", "-c",
                            "id -u; for c in gcc cc c++ g++ clang make npm node; do command -v $c; done; true"])
    assert shell.stdout.split() == ["10001"], shell.stdout
    deployment.figures.append(("deploy: gps-tracker image", f"{image['Size'] / 1e6:.0f} MB "
                               f"on {deployment.env.get('TRACKER_PYTHON_IMAGE', 'python:3.11-slim')}"))


def test_the_image_holds_exactly_the_locked_packages(deployment):
    lock = (deployment.root / "docker/requirements.lock").read_text()
    locked = {line.lower().replace("_", "-") for line in lock.splitlines()
              if line and not line.startswith("#") and not line.startswith(("setuptools==", "wheel=="))}
    freeze = deployment.run(["docker", "run", "--rm", "gps-tracker:latest", "pip", "freeze", "--all"]).stdout
    installed = {line.lower().replace("_", "-") for line in freeze.splitlines()}
    installed = {line for line in installed if not line.startswith(("pip==", "gps-tracker"))}
    assert installed == locked, (installed ^ locked)


def _rows_above_the_dependencies(deployment) -> list[tuple[int, str]]:
    """The image's history rows (size, instruction) newer than the dependencies' layer."""
    history = deployment.run(["docker", "history", "--no-trunc", "--human=false", "--format",
                              "{{.Size}}\t{{.CreatedBy}}", "gps-tracker:latest"]).stdout.splitlines()
    rows = [(int(size), created) for size, created in (line.split("\t", 1) for line in history)]
    at = next(i for i, (_, created) in enumerate(rows) if "COPY /opt/venv /opt/venv" in created)
    return rows[:at]


def test_a_code_change_rebuilds_without_the_dependency_layer(deployment):
    before = _image(deployment)["RootFS"]["Layers"]
    module = deployment.root / "tracker" / "__init__.py"
    module.write_text(module.read_text() + "# changed\n")
    started = time.monotonic()
    deployment.compose("build", "worker-1", timeout=900)
    seconds = time.monotonic() - started
    after = _image(deployment)["RootFS"]["Layers"]
    above = _rows_above_the_dependencies(deployment)
    changed = sum(size for size, _ in above)
    deployment.figures.append(("deploy: rebuild after a code change",
                               f"{seconds:.0f} s, {changed / 1e6:.1f} MB of new layers"))
    # The instructions above the dependencies' layer that make layers of their own (the
    # project's wheel, its install, the working directory) are new; every layer below, the
    # dependencies' included, is the same as before.
    top = sum(1 for _, created in above if re.search(r"\b(RUN|COPY|ADD|WORKDIR)\b", created))
    assert len(after) == len(before) and after[-top:] != before[-top:]
    assert after[:-top] == before[:-top], "the dependencies' layer was built again"
    assert changed < 10e6, above

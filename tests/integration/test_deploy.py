"""The deployment files: docker-compose.yml accepted by Compose, publishing nginx alone and
holding no secret; the Postgres init script giving the app a role that owns only its schema;
and the nginx configuration valid, proxying to two real workers, with security headers,
rate limits and an access log without secrets."""
import http.server
import os
import re
import shutil
import socket
import struct
import sys
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
import yaml

from tracker.testing import ROOT, free_port, run_sync, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
SERVICES = {"kafka", "postgres", "worker-1", "worker-2", "simulator", "nginx"}
#: Services of the `mqtt` profile, started only with `--profile mqtt`.
MQTT_SERVICES = {"mosquitto", "mqtt-bridge", "mqtt-password"}
#: What .env holds (placeholders for the tests; real ones are generated, see .env.example).
REQUIRED_SECRETS = ("POSTGRES_SUPERUSER_PASSWORD", "TRACKER_DB_PASSWORD", "TRACKER_CLUSTER_SECRET")
TEST_ENV = {"POSTGRES_SUPERUSER_PASSWORD": "superpw0", "TRACKER_DB_PASSWORD": "trackerpw0",
            "TRACKER_CLUSTER_SECRET": "clustersecret0"}
INTERPOLATION = re.compile(r"^\$\{(?P<name>[A-Z][A-Z0-9_]*)(?P<op>:?[-?])?(?P<arg>[^}]*)\}$")
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|PASSWD|PWD", re.IGNORECASE)


# --- docker-compose.yml --------------------------------------------------------------------

def compose_command():
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def compose_config(tmp_path, values):
    """``compose config`` with ``values`` as the only .env (the developer's own .env unread),
    the `mqtt` profile's services included (Compose v2 leaves them out otherwise)."""
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env_file = tmp_path / "test.env"
    env_file.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
    env = {k: v for k, v in os.environ.items()
           if k not in TEST_ENV and k != "TRACKER_METRICS_TOKEN" and not re.fullmatch(r"TRACKER_\w+_IMAGE", k)}
    return subprocess.run([*command, "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file),
                           "--profile", "mqtt", "config"], capture_output=True, text=True, cwd=tmp_path, env=env)


def test_compose_file_is_accepted_and_has_the_six_services_and_the_mqtt_profile(tmp_path):
    result = compose_config(tmp_path, TEST_ENV)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    default = {name for name, service in config["services"].items() if not service.get("profiles")}
    assert default == SERVICES and set(config["services"]) == SERVICES | MQTT_SERVICES
    assert config["volumes"].keys() >= {"kafka_data", "postgres_data"}
    assert "TrackingNetwork" in config["networks"]
    for name, service in config["services"].items():
        assert "TrackingNetwork" in service["networks"], name
    assert config["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert any(p["published"] in (4200, "4200") for p in config["services"]["nginx"]["ports"])
    assert sorted(name for name, service in config["services"].items() if service.get("ports")) \
        == ["mosquitto", "nginx"]
    bridge = config["services"]["mqtt-bridge"]["environment"]
    assert bridge["TRACKER_MQTT_URL"] == "mqtt://tracker-bridge@mosquitto:1883"
    assert bridge["TRACKER_MQTT_PASSWORD_FILE"] == config["services"]["worker-1"]["environment"][
        "TRACKER_MQTT_PASSWORD_FILE"], "the bridge and the workers write different password files"
    for worker in ("worker-1", "worker-2"):
        service = config["services"][worker]
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert "--web-host" in service["command"] and worker in service["command"]
        environment = service["environment"]
        assert environment["TRACKER_DATABASE_URL"] == "postgresql://tracker:trackerpw0@postgres:5432/tracker"
        assert environment["TRACKER_CLUSTER_SECRET"] == "clustersecret0"
    postgres = config["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"] == "superpw0" and postgres["TRACKER_DB_PASSWORD"] == "trackerpw0"


def test_the_mqtt_profile_stops_before_the_broker_and_the_bridge_without_their_password(tmp_path):
    """Not a ${VAR:?} (Compose reads those in every service, so the default stack would need
    it too): a one-shot service both wait for, which fails saying why."""
    result = compose_config(tmp_path, {**TEST_ENV, "TRACKER_MQTT_PASSWORD": ""})
    assert result.returncode == 0, result.stderr  # the default stack does not need it
    config = yaml.safe_load(result.stdout)
    check = config["services"]["mqtt-password"]
    assert check["profiles"] == ["mqtt"] and check["restart"] == "no"
    for name in ("mosquitto", "mqtt-bridge"):
        assert config["services"][name]["depends_on"]["mqtt-password"]["condition"] == \
            "service_completed_successfully", name
    # `config` may print the file's `$$` as written; the container gets `$`
    command = [part.replace("$$", "$") for part in check["command"]]
    for password, status in (("", 1), ("s3cret", 0)):
        ran = subprocess.run(command, env={"PATH": os.environ["PATH"], "TRACKER_MQTT_PASSWORD": password},
                             capture_output=True, text=True)
        assert ran.returncode == status, ran.stderr
    assert "TRACKER_MQTT_PASSWORD" in ran.stderr or status == 0
    empty = subprocess.run(command, env={"PATH": os.environ["PATH"]}, capture_output=True, text=True)
    assert empty.returncode == 1 and "set it in .env" in empty.stderr


def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    for missing in REQUIRED_SECRETS:
        result = compose_config(tmp_path, {k: v for k, v in TEST_ENV.items() if k != missing})
        assert result.returncode != 0, f"compose accepted a .env without {missing}"
        assert missing in result.stderr and ".env" in result.stderr, result.stderr


def _compose_yaml():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _placeholders(value):
    """``value`` with each ``${NAME...}`` written ``__NAME__``."""
    return re.sub(r"\$\{([A-Z][A-Z0-9_]*)[^}]*\}", r"__\1__", value)


def test_compose_file_publishes_only_nginx_and_holds_no_secret():
    """Read without Docker: what Compose would publish and pass, before interpolation."""
    config = _compose_yaml()
    services = config["services"]
    assert set(services) == SERVICES | MQTT_SERVICES
    assert {name for name, service in services.items() if service.get("profiles")} == MQTT_SERVICES
    assert all(services[name]["profiles"] == ["mqtt"] for name in MQTT_SERVICES)
    for name, service in services.items():
        if name not in ("nginx", "mosquitto"):
            assert "ports" not in service, f"{name} is published to the host"
        assert service.get("network_mode") is None and service["networks"] == ["TrackingNetwork"], name
    assert services["nginx"]["ports"] == ["4200:80"]
    assert services["mosquitto"]["ports"] == ["8883:8883"], "Mosquitto publishes more than its TLS port"
    kafka = services["kafka"]["environment"]
    assert "localhost" not in kafka["KAFKA_ADVERTISED_LISTENERS"]

    interpolated = set()
    for name, service in services.items():
        for key, value in (service.get("environment") or {}).items():
            value = str(value)
            interpolated.update(m.group(1) for m in re.finditer(r"\$\{([A-Z][A-Z0-9_]*)", value))
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):  # a _FILE is where one is kept
                assert INTERPOLATION.match(value), f"{name}: {key} holds a literal value"
            for url in re.finditer(r"://[^/:@\s]+:(?P<password>[^@\s/]*)@", _placeholders(value)):
                assert re.fullmatch(r"__[A-Z0-9_]+__", url.group("password")), \
                    f"{name}: {key} holds a literal password"
    for name in ("worker-1", "worker-2"):
        environment = services[name]["environment"]
        url = urllib.parse.urlsplit(_placeholders(environment["TRACKER_DATABASE_URL"]))
        assert (url.scheme, url.username, url.password, url.hostname, url.path) \
            == ("postgresql", "tracker", "__TRACKER_DB_PASSWORD__", "postgres", "/tracker")
        assert INTERPOLATION.match(environment["TRACKER_CLUSTER_SECRET"]).group("name") == "TRACKER_CLUSTER_SECRET"
    assert "TRACKER_DATABASE_URL" not in services["simulator"]["environment"]
    # Compose refuses to start without the required ones: ${NAME:?message}.
    uses = [m for s in services.values() for v in (s.get("environment") or {}).values()
            for m in re.finditer(r"\$\{(?P<name>[A-Z][A-Z0-9_]*)(?P<op>:?[-?])?[^}]*\}", str(v))]
    assert {m.group("name") for m in uses} >= set(REQUIRED_SECRETS)
    for match in uses:
        if match.group("name") in REQUIRED_SECRETS:
            assert match.group("op") == ":?", match.group(0)
    postgres = services["postgres"]
    assert INTERPOLATION.match(postgres["environment"]["POSTGRES_PASSWORD"]).group("name") \
        == "POSTGRES_SUPERUSER_PASSWORD"

    # The init script is mounted where the postgres image runs it on its first start.
    mounts = [volume.split(":") for volume in postgres["volumes"]]
    init = [(source, target) for source, target, *_ in mounts if target.startswith("/docker-entrypoint-initdb.d/")]
    assert len(init) == 1 and init[0][1].endswith(".sh"), postgres["volumes"]
    script = ROOT / init[0][0]
    assert script.is_file() and os.access(script, os.X_OK), script

    # .env.example names every variable the compose file reads, with no value; .env is ignored.
    example = (ROOT / ".env.example").read_text()
    for name in interpolated:
        line = re.search(rf"(?m)^#? ?{name}=(.*)$", example)
        assert line and line.group(1) == "", f".env.example: {name}"
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert ignored.returncode == 0, ".env is not in .gitignore"
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


# --- docker/mosquitto ------------------------------------------------------------------------

def test_compose_mosquitto_reads_the_password_file_again_when_the_tracker_rewrites_it():
    """docker/mosquitto/run.sh and mosquitto.conf on Debian's Mosquitto, with the container's
    paths moved to a folder of the test and the TLS listener left out: a device added with the
    tracker's own password writer can log in two seconds later, and not once removed."""
    import paho.mqtt.client as mqtt

    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not os.path.exists(mosquitto):
        pytest.fail("Mosquitto is expected (scripts/system-packages installs it)")
    import tempfile

    tmp_path = Path(tempfile.mkdtemp(prefix="tracker-mosquitto-"))
    tmp_path.chmod(0o755)  # the broker drops to a user of its own, which must reach the files
    passwords = tmp_path / "passwords"
    passwords.mkdir(mode=0o755)
    port = free_port()
    conf = (ROOT / "docker/mosquitto/mosquitto.conf").read_text().split("\nlistener 1883")[0]
    conf = conf.replace("/passwords/", f"{passwords}/").replace("/mosquitto/config/acl", str(ROOT / "docker/mosquitto/acl"))
    plugin = tmp_path / "tracker_acl.so"
    subprocess.run([str(ROOT / "scripts/services"), "mqtt-plugin", str(plugin)], check=True, timeout=60)
    assert "plugin /usr/lib/tracker_acl.so" in conf, "the broker's config does not load the tracker's plugin"
    conf = conf.replace("/usr/lib/tracker_acl.so", str(plugin))
    conf = conf.replace("persistence true", "persistence false") + f"\nlistener {port} 127.0.0.1\n"
    (tmp_path / "mosquitto.conf").write_text(conf)
    script = (ROOT / "docker/mosquitto/run.sh").read_text()
    script = script.replace("/mosquitto/config/mosquitto.conf", str(tmp_path / "mosquitto.conf"))
    script = script.replace("/passwords", str(passwords)).replace("mosquitto -c", f"{mosquitto} -c")
    (tmp_path / "run.sh").write_text(script)
    env = {**os.environ, "TRACKER_MQTT_PASSWORD_FILE": str(passwords / "passwd")}
    env.pop("TRACKER_MQTT_PID_FILE", None)
    broker = subprocess.Popen(["sh", str(tmp_path / "run.sh")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def change(call):
        code = f"from tracker.ingest import mqtt_passwords; mqtt_passwords.{call}"
        subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, check=True, timeout=30)

    def logs_in(password):
        """True if the broker lets phone-1 in, False if it refuses, None if it is not up."""
        answers = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.username_pw_set("phone-1", password)
        client.on_connect = lambda c, userdata, flags, reason, properties: answers.append(not reason.is_failure)
        try:
            client.connect("127.0.0.1", port)
        except OSError:
            return None
        client.loop_start()
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and not answers:
                time.sleep(0.02)
            return answers[0] if answers else None
        finally:
            client.disconnect()
            client.loop_stop()

    def subscribe_as(user, password, topic):
        """The broker's answer to ``user`` subscribing to ``topic``, in words."""
        answers = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        client.username_pw_set(user, password)
        client.on_subscribe = lambda c, userdata, mid, reasons, properties: answers.extend(map(str, reasons))
        client.connect("127.0.0.1", port)
        client.loop_start()
        try:
            client.subscribe(topic, qos=1)
            wait_for(lambda: answers, 5, f"the broker's answer to {topic}")
            return answers[0]
        finally:
            client.disconnect()
            client.loop_stop()

    try:
        wait_for(lambda: logs_in("s3cret") is False, 10, "the broker up, refusing an unknown user")
        change("set_password('phone-1', 's3cret')")
        wait_for(lambda: logs_in("s3cret"), 10, "the new device let in")
        assert logs_in("wrong") is False
        assert subscribe_as("phone-1", "s3cret", "$share/tracker/owntracks/+/+") == "Not authorized"
        assert subscribe_as("phone-1", "s3cret", "owntracks/+/+") == "Not authorized"  # other phones
        assert subscribe_as("phone-1", "s3cret", "owntracks/phone-1/+") == "Granted QoS 1"  # its friends
        change("remove('phone-1')")
        wait_for(lambda: logs_in("s3cret") is False, 10, "the removed device refused")
    finally:
        broker.terminate()
        output = broker.communicate(timeout=10)[0].decode(errors="replace")
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert broker.returncode == 0, output
    assert "Reloading config" in output


# --- docker/postgres-init.sh ----------------------------------------------------------------

def test_postgres_init_script_gives_the_app_a_role_that_owns_only_its_schema():
    """The script against the test Postgres (as its superuser), with a role and a database
    of the test's own; then the app's schema created as that role."""
    from tracker.storage.schema import create_schema

    url = os.environ.get("TRACKER_DATABASE_URL")
    if not url or not shutil.which("psql"):
        pytest.skip("needs the real services (scripts/services) and psql")
    info = psycopg.conninfo.conninfo_to_dict(url)
    admin = psycopg.conninfo.make_conninfo(url, user="postgres", dbname="postgres")
    try:
        psycopg.connect(admin, connect_timeout=5).close()
    except psycopg.OperationalError as error:
        pytest.skip(f"no superuser on the test Postgres: {error}")
    name = "initdb" + uuid.uuid4().hex[:10]
    env = {**os.environ, "PGHOST": info.get("host", "127.0.0.1"), "PGPORT": str(info.get("port", 5432)),
           "POSTGRES_USER": "postgres", "TRACKER_DB_NAME": name, "TRACKER_DB_USER": name,
           "TRACKER_DB_PASSWORD": "it's a \"pass\" word"}
    try:
        result = subprocess.run([str(ROOT / "docker" / "postgres-init.sh")], env=env,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        with psycopg.connect(admin, autocommit=True) as conn:
            role = conn.execute("SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolcanlogin,"
                                " rolpassword LIKE 'SCRAM-SHA-256$%%' FROM pg_authid WHERE rolname = %s",
                                (name,)).fetchone()
            owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s",
                                 (name,)).fetchone()
        assert role == (False, False, False, False, True, True)
        assert owner == ("postgres",)

        app_url = psycopg.conninfo.make_conninfo(url, user=name, dbname=name)
        with psycopg.connect(app_url, autocommit=True) as conn:
            assert conn.execute("SELECT current_schema()").fetchone() == (name,)
            assert conn.execute("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = %s",
                                (name,)).fetchone() == (name,)
            for statement in ("CREATE TABLE public.t (x int)", "CREATE SCHEMA other",
                              f'CREATE DATABASE "{name}x"', "CREATE ROLE someone"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    conn.execute(statement)
        with psycopg.connect(app_url, autocommit=True) as conn:
            conn.execute("CREATE TEMP TABLE staging (x int)")  # the history writer needs TEMP

        async def app_schema():
            async with await psycopg.AsyncConnection.connect(app_url, autocommit=True) as conn:
                await create_schema(conn)
                cursor = await conn.execute("SELECT DISTINCT schemaname FROM pg_tables WHERE tableowner = %s",
                                            (name,))
                return await cursor.fetchall()

        assert run_sync(app_schema()) == [(name,)]
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'DROP ROLE IF EXISTS "{name}"')


# --- docker/nginx.conf -----------------------------------------------------------------------

def nginx_version(binary):
    output = subprocess.run([binary, "-v"], capture_output=True, text=True).stderr
    match = re.search(r"nginx/(\d+)\.(\d+)\.(\d+)", output)
    return tuple(int(part) for part in match.groups()) if match else (0, 0, 0)


def nginx_config(tmp_path, listen_port, upstreams, binary=NGINX):
    """docker/nginx.conf with the workers and the port of this test, inside a main config;
    its logs go to tmp_path. ``upstreams=None``: the workers' names stay (only for an nginx
    that resolves them at run time)."""
    site = (ROOT / "docker" / "nginx.conf").read_text()
    if upstreams is not None:
        servers = iter(upstreams)
        site = re.sub(r"server worker-\d:6066", lambda _: f"server 127.0.0.1:{next(servers)}", site)
        assert next(servers, None) is None, "docker/nginx.conf names fewer workers than the test starts"
    if nginx_version(binary) < (1, 27, 3):  # `resolve` in upstream{} came with 1.27.3
        site = re.sub(r"(\n\s*server \S+) resolve\b", r"\1", site)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen_port};")
    site = site.replace("/var/log/nginx/", f"{tmp_path}/")
    (tmp_path / "site.conf").write_text(site)
    main = tmp_path / "nginx.conf"
    main.write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    access_log {tmp_path}/main-access.log;
    client_body_temp_path {tmp_path};
    proxy_temp_path {tmp_path};
    include {tmp_path}/site.conf;
}}
""")
    return main


@pytest.fixture(scope="module")
def nginx_binary():
    if not Path(NGINX).exists():
        pytest.fail("Debian's nginx is needed (apt-get install nginx)")
    return NGINX


def test_nginx_configuration_passes_nginx_t(tmp_path, nginx_binary):
    main = nginx_config(tmp_path, free_port(), [free_port(), free_port()])
    result = subprocess.run([nginx_binary, "-t", "-p", str(tmp_path), "-c", str(main)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    if nginx_version(nginx_binary) >= (1, 27, 3):  # the file as the container reads it
        main = nginx_config(tmp_path, free_port(), None, nginx_binary)
        result = subprocess.run([nginx_binary, "-t", "-p", str(tmp_path), "-c", str(main)],
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr


def test_nginx_resolves_the_workers_at_run_time():
    """The workers are looked up through Docker's DNS again and again, not once at start."""
    site = (ROOT / "docker" / "nginx.conf").read_text()
    assert re.search(r"(?m)^resolver 127\.0\.0\.11 valid=\d+s ipv6=off;", site)
    servers = re.findall(r"(?m)^\s*server (worker-\d):6066 (.*);", site)
    assert [name for name, _ in servers] == ["worker-1", "worker-2"]
    assert all(params.split()[0] == "resolve" for _, params in servers)
    assert re.search(r"upstream tracker_workers \{\s*zone ", site)
    image = _compose_yaml()["services"]["nginx"]["image"]
    version = tuple(int(p) for p in re.search(r"\bnginx:(\d+)\.(\d+)\.(\d+)-", image).groups())
    assert version >= (1, 27, 3), image


class _Dns:
    """A DNS server on 127.0.0.1 (UDP) that answers A queries from ``names`` (changeable)."""

    def __init__(self, names):
        self.names = dict(names)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                query, client = self.sock.recvfrom(512)
            except OSError:
                return
            labels, at = [], 12
            while query[at]:
                labels.append(query[at + 1:at + 1 + query[at]].decode())
                at += 1 + query[at]
            question = query[12:at + 5]
            qtype = struct.unpack("!H", query[at + 1:at + 3])[0]
            address = self.names.get(".".join(labels).lower())
            answers = b""
            if address and qtype == 1:
                answers = struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(address)
            flags = 0x8180 if address else 0x8183  # a response; NXDOMAIN for unknown names
            header = query[:2] + struct.pack("!HHHHH", flags, 1, 1 if answers else 0, 0, 0)
            self.sock.sendto(header + question + answers, client)

    def close(self):
        self.sock.close()


class _Backend:
    """A stand-in worker at ADDRESS:PORT that answers every GET with its own address."""

    def __init__(self, address, port):
        name = address.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(name)))
                self.end_headers()
                self.wfile.write(name)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer((address, port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def test_nginx_finds_a_recreated_worker_without_a_restart(tmp_path, nginx_binary):
    """Docker gives a recreated container a new address: nginx follows its name there.
    Needs nginx >= 1.27.3 (the image's); its resolver is pointed at a DNS server of the test."""
    if nginx_version(nginx_binary) < (1, 27, 3):
        pytest.skip("this nginx cannot resolve upstream names at run time (1.27.3 and later can)")
    port = free_port()
    dns = _Dns({"worker-1": "127.0.0.2", "worker-2": "127.0.0.3"})
    backends = [_Backend("127.0.0.2", port), _Backend("127.0.0.3", port)]
    listen = free_port()
    main = nginx_config(tmp_path, listen, None)
    site = (tmp_path / "site.conf").read_text()
    site = re.sub(r"resolver 127\.0\.0\.11 valid=\d+s", f"resolver 127.0.0.1:{dns.port} valid=1s", site)
    site = site.replace(":6066", f":{port}")
    (tmp_path / "site.conf").write_text(site)
    proc = subprocess.Popen([nginx_binary, "-p", str(tmp_path), "-c", str(main), "-g", "daemon off;"])
    base = f"http://127.0.0.1:{listen}/api/whoami"
    try:
        def answered_by(expected):
            seen = set()
            for _ in range(6):
                try:
                    status, _, body = _request(base)
                except OSError:  # nginx is not listening yet
                    return False
                if status == 200:
                    seen.add(body.decode())
            return seen == expected

        wait_for(lambda: answered_by({"127.0.0.2", "127.0.0.3"}), 20, "both workers behind nginx")
        backends[0].close()  # worker-1 is recreated elsewhere
        backends[0] = _Backend("127.0.0.4", port)
        dns.names["worker-1"] = "127.0.0.4"
        wait_for(lambda: answered_by({"127.0.0.4", "127.0.0.3"}), 20, "nginx to find worker-1 again")
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
        for backend in backends:
            backend.close()
        dns.close()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def _request(url, method="GET", body=None, headers=None):
    """(status, headers, body) without following redirects."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _assert_security_headers(headers, what):
    for name, value in SECURITY_HEADERS.items():
        assert headers.get_all(name) == [value], (what, name, headers.get_all(name))
    policies = headers.get_all("Content-Security-Policy")
    assert policies and len(policies) == 1, (what, policies)
    policy = policies[0]
    for directive in ("frame-ancestors 'none'", "script-src 'self' 'unsafe-inline'", "default-src 'self'"):
        assert directive in policy, (what, policy)
    assert "https://tile.openstreetmap.org" in policy, (what, policy)


@pytest.fixture
def proxied(stack, tmp_path, nginx_binary):
    """Two real workers with the real nginx in front: (base url, workers, tmp_path)."""
    if not stack.workers:
        workers = [stack.worker().start(), stack.worker().start()]
        for worker in workers:
            worker.wait_ready()
    workers = stack.workers[:2]
    # Ready, and done rebalancing: each answers for the whole cluster (not 503).
    wait_for(lambda: all(w.get("/api/markers")[0] == 200 for w in workers), 60, "the workers to answer")
    port = free_port()
    main = nginx_config(tmp_path, port, [w.web_port for w in workers])
    proc = subprocess.Popen([nginx_binary, "-p", str(tmp_path), "-c", str(main), "-g", "daemon off;"])
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _status(base + "/health") == 200, 20, "nginx to answer")
        yield base, workers, tmp_path
    finally:
        proc.terminate()
        proc.wait(10)


def test_nginx_proxies_the_map_and_the_api_to_both_workers(stack, proxied):
    base, workers, tmp_path = proxied
    stack.send([(b"proxied", b'{"marker_id": "proxied", "lat": 1.5, "lon": 2.5, "time": %d}' % int(time.time()))])
    wait_for(lambda: stack.history_count() == 1, 60, "the position to be stored")
    # The live table is a stage of its own: wait until each worker shows the marker too.
    def shown(worker):
        status, body = worker.get("/api/markers")
        return status == 200 and any(row["marker_id"] == "proxied" for row in body)

    wait_for(lambda: all(shown(w) for w in workers), 60, "the marker on both workers")
    auth = {"Authorization": f"Bearer {stack.admin_token}"}
    status, headers, _ = _request(base + "/")
    assert status == 302 and headers["Location"].endswith("/map")
    _assert_security_headers(headers, "/")
    request = urllib.request.Request(base + "/", headers=auth)
    with urllib.request.urlopen(request, timeout=10) as response:  # / redirects to the map
        assert response.url.endswith("/map") and b"leaflet" in response.read()
        _assert_security_headers(response.headers, "/map")
    status, headers, _ = _request(base + "/map")  # without credentials: the login form
    assert status in (302, 303) and "/login" in headers["Location"]
    for _ in range(4):  # round robin: both workers answer, and answer the same
        status, headers, body = _request(base + "/api/markers", headers=auth)
        assert status == 200 and b'"marker_id":"proxied"' in body, (status, body)
        _assert_security_headers(headers, "/api/markers")
    status, headers, _ = _request(base + "/api/markers")
    assert status == 401
    _assert_security_headers(headers, "/api/markers without credentials")
    status, headers, _ = _request(base + "/health")
    assert status == 200
    _assert_security_headers(headers, "/health")

    lines = (tmp_path / "access.log").read_text().splitlines()
    api = [re.search(r'"GET /api/markers HTTP/1\.1" (\d+) .* upstream=127\.0\.0\.1:(\d+)$', line)
           for line in lines if '"GET /api/markers HTTP/1.1" 200 ' in line]
    assert len(api) == 4 and all(api), lines
    assert {match.group(2) for match in api} == {str(w.web_port) for w in workers}


def test_nginx_never_passes_on_a_clients_cluster_header(stack, proxied):
    base, workers, _ = proxied
    secret = {"X-Tracker-Cluster": stack.env["TRACKER_CLUSTER_SECRET"]}
    assert workers[0].get("/api/markers", token=None, headers=secret)[0] == 200  # the worker trusts it
    assert _request(base + "/api/markers", headers=secret)[0] == 401  # nginx drops it


def test_the_session_cookie_is_secure_behind_a_tls_proxy(stack, proxied):
    base, _, _ = proxied
    form = urllib.parse.urlencode({"user": "admin", "password": stack.admin_password, "next": "/map"}).encode()
    for proto, secure in ((None, False), ("https", True)):
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if proto:
            headers["X-Forwarded-Proto"] = proto
        status, answer, _ = _request(base + "/login", "POST", form, headers)
        cookie = answer["Set-Cookie"]
        assert status == 303 and cookie.startswith("tracker_session=") and "HttpOnly" in cookie, (status, cookie)
        assert ("Secure" in cookie) is secure, (proto, cookie)


def test_nginx_logs_no_secret(proxied):
    base, _, tmp_path = proxied
    secrets = ["SUPERSECRET", "OTHERSECRET", "SHARESECRET", "FIRSTSECRET", "SECONDSECRET", "ENCODEDSECRET"]
    requests = [
        "/ingest/osmand/SUPERSECRET?id=x&token=OTHERSECRET",
        "/ingest/osmand?id=x&lat=1&lon=2&token=OTHERSECRET",
        "/ingest//osmand/SUPERSECRET/",
        "/s/SHARESECRET",
        "/s/SHARESECRET/markers.geojson",
        "/ingest/osmand?token=FIRSTSECRET&id=x&token=SECONDSECRET",
        "/ingest/osmand?id=x&tok%65n=ENCODEDSECRET",
        "/api/markers?token=SUPERSECRET",
    ]
    for path in requests:
        status, headers, _ = _request(base + path)
        assert status < 500, (path, status)
        _assert_security_headers(headers, path)
    try:  # too large: nginx answers 413 itself (and would log an error quoting the request)
        _request(base + "/ingest/osmand/SUPERSECRET", method="POST", body=b"x" * 100_000)
    except OSError:
        pass  # nginx may close the connection before reading the whole body
    # nginx writes its logs as it answers, but give it a moment.
    wait_for(lambda: (tmp_path / "access.log").read_text().count("\n") >= len(requests) + 2, 5, "the access log")
    log = (tmp_path / "access.log").read_text()
    error_log = (tmp_path / "error.log").read_text() if (tmp_path / "error.log").exists() else ""
    for secret in secrets:
        assert secret not in log, (secret, log)
        assert secret not in error_log, (secret, error_log)
    assert '"GET /ingest/osmand/***?id=x&token=*** HTTP/1.1"' in log
    assert '"GET /ingest/osmand?id=x&lat=1&lon=2&token=*** HTTP/1.1"' in log
    assert '"GET /s/*** HTTP/1.1"' in log and '"GET /s/***/markers.geojson HTTP/1.1"' in log
    assert '"POST /ingest/osmand/*** HTTP/1.1" 413 ' in log


def test_nginx_limits_password_attempts(proxied):
    base, _, _ = proxied
    form = urllib.parse.urlencode({"user": "admin", "password": "not-the-password", "next": "/map"}).encode()
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    statuses = [_request(base + "/login", "POST", form, headers)[0] for _ in range(12)]
    assert statuses[0] == 401, statuses  # the worker's answer to a wrong password
    assert statuses.count(429) >= 4, statuses  # then nginx's
    assert _request(base + "/login")[0] == 200  # the form itself is not limited


def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return None

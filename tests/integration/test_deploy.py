"""The deployment files: docker-compose.yml accepted by Compose, and the nginx configuration
valid and proxying the map and the API to two real workers."""
import re
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from tracker.testing import ROOT, free_port, wait_for

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


def compose_command():
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"],
                                                 capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_accepted_and_has_the_six_services():
    command = compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run([*command, "-f", str(ROOT / "docker-compose.yml"), "config"],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    assert set(config["services"]) == {"kafka", "postgres", "worker-1", "worker-2", "simulator", "nginx"}
    assert config["volumes"].keys() >= {"kafka_data", "postgres_data"}
    assert "TrackingNetwork" in config["networks"]
    for name, service in config["services"].items():
        assert "TrackingNetwork" in service["networks"], name
    assert config["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert any(p["published"] in (4200, "4200") for p in config["services"]["nginx"]["ports"])
    for worker in ("worker-1", "worker-2"):
        service = config["services"][worker]
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert "--web-host" in service["command"] and worker in service["command"]


def nginx_config(tmp_path, listen_port, upstreams):
    """docker/nginx.conf with the workers and the port of this test, inside a main config."""
    site = (ROOT / "docker" / "nginx.conf").read_text()
    servers = iter(upstreams)
    site = re.sub(r"server worker-\d:6066", lambda _: f"server 127.0.0.1:{next(servers)}", site)
    site = site.replace("listen 80;", f"listen 127.0.0.1:{listen_port};")
    (tmp_path / "site.conf").write_text(site)
    main = tmp_path / "nginx.conf"
    main.write_text(f"""
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log;
events {{}}
http {{
    log_format upstream '$request $status $upstream_addr';
    access_log {tmp_path}/access.log upstream;
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


def test_nginx_proxies_the_map_and_the_api_to_both_workers(stack, tmp_path, nginx_binary):
    workers = [stack.worker().start(), stack.worker().start()]
    for worker in workers:
        worker.wait_ready()
    stack.send([(b"proxied", b'{"marker_id": "proxied", "lat": 1.5, "lon": 2.5, "time": %d}' % int(time.time()))])
    wait_for(lambda: stack.history_count() == 1, 60, "the position to be stored")
    port = free_port()
    main = nginx_config(tmp_path, port, [w.web_port for w in workers])
    proc = subprocess.Popen([nginx_binary, "-p", str(tmp_path), "-c", str(main), "-g", "daemon off;"])
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: _status(base + "/health") == 200, 20, "nginx to answer")
        with urllib.request.urlopen(base + "/", timeout=10) as response:  # / redirects to the map
            assert response.url.endswith("/map") and b"leaflet" in response.read()
        for _ in range(4):  # round robin: both workers answer, and answer the same
            with urllib.request.urlopen(base + "/api/markers", timeout=10) as response:
                assert b'"marker_id":"proxied"' in response.read()
    finally:
        proc.terminate()
        proc.wait(10)
    api_lines = [line for line in (tmp_path / "access.log").read_text().splitlines()
                 if line.startswith("GET /api/markers ")]
    assert len(api_lines) == 4 and all(" 200 " in line for line in api_lines)
    assert {line.rsplit(":", 1)[1] for line in api_lines} == {str(w.web_port) for w in workers}


def _status(url):
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status
    except OSError:
        return None

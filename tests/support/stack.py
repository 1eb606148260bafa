"""Shared by the stack tests: render the nginx template, make a certificate, run the real
gunicorn (scripts/api.sh) and nginx as processes with their output captured to files."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "nginx" / "canopy.conf.template"
RENDER = ROOT / "scripts" / "render-nginx.sh"
GEN_CERT = ROOT / "scripts" / "gen-cert.sh"
# make test builds the bundle before the stack tests; CANOPY_STACK_WEB_ROOT points elsewhere.
WEB_DIST = Path(os.environ.get("CANOPY_STACK_WEB_ROOT", ROOT / "services" / "web" / "dist"))
TEST_SECRET = "stack-test-secret-key-0123456789-abcdefghijklmnop"
# env_overrides with these prefixes go to scripts/render-nginx.sh too (the nginx limits).
NGINX_SETTINGS = ("NGINX_WS_", "NGINX_AUTH_")


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    assert found, "nginx is not installed (make test installs it: apt-get install nginx)"
    return found


def make_cert(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run([str(GEN_CERT), str(cert), str(key)], check=True, capture_output=True, timeout=60)
    return cert, key


def render_nginx(output: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    """Runs scripts/render-nginx.sh with exactly the given settings (plus PATH)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin", "NGINX_BIN": nginx_binary()}
    env.update(settings)
    return subprocess.run([str(RENDER), str(output)], env=env, capture_output=True, text=True, timeout=30, check=False)


def nginx_args(conf: Path) -> list[str]:
    return [nginx_binary(), "-p", str(conf.parent), "-c", str(conf), "-e", "stderr"]


def insecure_ssl_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


@dataclass
class Process:
    """A child process in its own session, stdout and stderr appended to files."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_dir: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def stdout_path(self) -> Path:
        return self.log_dir / f"{self.name}.stdout.log"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.name}.stderr.log"

    def start(self) -> None:
        assert not self.running, f"{self.name} is already running"
        with open(self.stdout_path, "ab") as out, open(self.stderr_path, "ab") as err:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.logs()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        # Anything left in its process group (a worker whose master died) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        return self.proc.returncode

    def logs(self) -> str:
        parts = [p.read_text(errors="replace") for p in (self.stdout_path, self.stderr_path) if p.exists()]
        return "\n".join(parts)


@dataclass
class Stack:
    """gunicorn (scripts/api.sh) + nginx (the rendered template) on free loopback ports; with
    `replicas` > 1, that many gunicorn processes on `database_url` (PostgreSQL) behind nginx's
    session hash. `api` is the first replica, `apis` all of them."""

    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    web_root: Path = WEB_DIST
    api_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    replicas: int = 1
    database_url: str = ""

    def __post_init__(self) -> None:
        self.data_dir = self.workdir / "data"
        self.log_dir = self.workdir / "logs"
        self.run_dir = self.workdir / "nginx"
        for d in (self.data_dir, self.log_dir, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.cert_file, self.key_file = make_cert(self.workdir / "certs")
        self.nginx_conf = self.run_dir / "nginx.conf"
        self.api_ports = [self.api_port] + [free_port() for _ in range(self.replicas - 1)]
        self.apis = [
            Process(
                "gunicorn" if i == 0 else f"gunicorn-{i}",
                [str(ROOT / "scripts" / "api.sh")],
                self._api_env(port),
                self.log_dir,
            )
            for i, port in enumerate(self.api_ports)
        ]
        self.api = self.apis[0]
        self.nginx = Process(
            "nginx", [*nginx_args(self.nginx_conf), "-g", "daemon off;"], dict(os.environ), self.log_dir
        )

    # ---- addresses -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"https://127.0.0.1:{self.https_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"wss://127.0.0.1:{self.https_port}/ws/session"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def replica_url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.api_ports[index]}"

    @property
    def log_paths(self) -> list[Path]:
        paths = [p for api in self.apis for p in (api.stdout_path, api.stderr_path)]
        return [*paths, self.nginx.stdout_path, self.nginx.stderr_path]

    def all_logs(self) -> str:
        return "\n".join(api.logs() for api in self.apis) + "\n" + self.nginx.logs()

    # ---- processes ---------------------------------------------------------------------
    def _api_env(self, port: int) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LLM_", "RATE_LIMIT_", "WS_", "TLS_", "POSTGRES", "REPLICAS", "LEASE_"))
        }
        env.update(
            API_HOST="127.0.0.1",
            API_PORT=str(port),
            DATA_DIR=str(self.data_dir),
            DATABASE_URL=self.database_url,
            REPLICAS=str(self.replicas),
            SECRET_KEY=TEST_SECRET,
            ENVIRONMENT="development",
            HTTPS_PORT=str(self.https_port),
            HTTP_PORT=str(self.http_port),
            LLM_PROVIDER="offline",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.env_overrides)
        return env

    def start(self) -> None:
        if not (self.web_root / "index.html").is_file():
            raise RuntimeError(f"No web bundle at {self.web_root}: build it first (make web-build; make test does it)")
        result = render_nginx(
            self.nginx_conf,
            TLS_CERT_FILE=str(self.cert_file),
            TLS_KEY_FILE=str(self.key_file),
            HTTPS_PORT=str(self.https_port),
            HTTP_PORT=str(self.http_port),
            API_UPSTREAM=",".join(f"127.0.0.1:{port}" for port in self.api_ports),
            WEB_ROOT=str(self.web_root),
            NGINX_LISTEN_ADDR="127.0.0.1",
            NGINX_RUN_DIR=str(self.run_dir),
            **{k: v for k, v in self.env_overrides.items() if k.startswith(NGINX_SETTINGS)},
            # As root (CI), workers would drop to www-data, which cannot enter pytest's 0700
            # temp folders; scripts/run.sh makes the same choice when it has to.
            **({"NGINX_USER": "root"} if os.geteuid() == 0 else {}),
        )
        assert result.returncode == 0, result.stderr
        check = subprocess.run(
            [*nginx_args(self.nginx_conf), "-t", "-q"], capture_output=True, text=True, timeout=30, check=False
        )
        assert check.returncode == 0, check.stderr
        self.start_api()
        self.nginx.start()
        self.wait_ready()

    def start_api(self) -> None:
        for index in range(len(self.apis)):
            self.start_replica(index)

    def start_replica(self, index: int) -> None:
        self.apis[index].start()
        wait_until(lambda: self._api_ready(index), 60, f"gunicorn {index} answering /api/readyz")

    def stop_api(self, sig: int = signal.SIGTERM) -> int | None:
        codes = [api.stop(sig) for api in self.apis]
        return codes[0]

    def restart_api(self) -> None:
        self.stop_api()
        self.start_api()
        self.wait_ready()

    def wait_ready(self, timeout: float = 60) -> None:
        """Polls /api/readyz through nginx over TLS."""
        wait_until(self._ready_through_nginx, timeout, "/api/readyz through nginx")

    def _api_ready(self, index: int = 0) -> bool:
        self.apis[index].check_alive()
        try:
            url = self.replica_url(index) + "/api/readyz"
            return httpx.get(url, timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def _ready_through_nginx(self) -> bool:
        for api in self.apis:
            api.check_alive()
        self.nginx.check_alive()
        try:
            return httpx.get(self.base_url + "/api/readyz", verify=False, timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        self.nginx.stop(signal.SIGQUIT)
        for api in self.apis:
            api.stop()


@contextlib.contextmanager
def running_stack(workdir: Path, **options: Any) -> Iterator[Stack]:
    """A started `Stack(workdir, **options)` for a fixture, always stopped afterwards; a start that fails
    prints the tail of the processes' logs. Fails the test at once, saying so, when no web bundle is built."""
    web_root = Path(options.get("web_root", WEB_DIST))
    if not (web_root / "index.html").is_file():
        pytest.fail(f"No web bundle in {web_root}: run `make web-build` first (`make test` does).", pytrace=False)
    stack = Stack(workdir, **options)
    try:
        try:
            stack.start()
        except BaseException:
            print(stack.all_logs()[-5000:])
            raise
        yield stack
    finally:
        stack.stop()

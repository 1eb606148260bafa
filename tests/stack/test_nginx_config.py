"""The nginx template renders into a complete nginx.conf that the real nginx accepts."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.support.stack import TEMPLATE, make_cert, nginx_args, render_nginx

PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("certs"))


def settings(certs: tuple[Path, Path], tmp_path: Path, **extra: str) -> dict[str, str]:
    web = tmp_path / "web"
    web.mkdir(exist_ok=True)
    (web / "index.html").write_text("<!doctype html><title>t</title>")
    values = {
        "TLS_CERT_FILE": str(certs[0]),
        "TLS_KEY_FILE": str(certs[1]),
        "WEB_ROOT": str(web),
        "HTTPS_PORT": "18443",
        "HTTP_PORT": "18080",
        "API_UPSTREAM": "127.0.0.1:18000",
        "NGINX_LISTEN_ADDR": "127.0.0.1",
    }
    values.update(extra)
    return values


def render(tmp_path: Path, values: dict[str, str]) -> tuple[Path, str]:
    conf = tmp_path / "run" / "nginx.conf"
    result = render_nginx(conf, **values)
    assert result.returncode == 0, result.stderr
    return conf, conf.read_text()


def nginx_test(conf: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*nginx_args(conf), "-t"], capture_output=True, text=True, timeout=30, check=False)


def test_rendered_config_passes_nginx_t(certs: tuple[Path, Path], tmp_path: Path) -> None:
    conf, text = render(tmp_path, settings(certs, tmp_path))
    result = nginx_test(conf)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    assert "[warn]" not in result.stderr, result.stderr
    assert f"pid {tmp_path / 'run'}/nginx.pid;" in text


def test_only_known_placeholders_are_substituted(certs: tuple[Path, Path], tmp_path: Path) -> None:
    _, text = render(tmp_path, settings(certs, tmp_path))
    assert not PLACEHOLDER.search(text), PLACEHOLDER.findall(text)
    # nginx's own variables survive rendering.
    for variable in (
        "$http_upgrade",
        "$connection_upgrade",
        "$remote_addr",
        "$host",
        "$uri",
        "$request_uri",
        "$loggable_path",
        "$scheme",
        "$time_iso8601",
    ):
        assert variable in text, variable
    assert "listen 127.0.0.1:18443 ssl" in text
    assert "listen 127.0.0.1:18080 default_server;" in text
    assert "server 127.0.0.1:18000" in text
    assert "return 301 https://$host:18443$request_uri;" in text


def test_every_template_placeholder_is_one_the_renderer_knows() -> None:
    renderer = (TEMPLATE.parent.parent / "scripts" / "render-nginx.sh").read_text()
    known = set(re.findall(r"^\s*\[([A-Z0-9_]+)\]=", renderer, re.M))
    used = set(PLACEHOLDER.findall(TEMPLATE.read_text()))
    assert used and used <= known, used - known


def test_public_port_443_redirects_without_a_port(certs: tuple[Path, Path], tmp_path: Path) -> None:
    conf, text = render(tmp_path, settings(certs, tmp_path, PUBLIC_HTTPS_PORT="443"))
    assert "return 301 https://$host$request_uri;" in text
    assert '"wss://$host"' in text
    assert nginx_test(conf).returncode == 0


def test_security_and_protocol_settings(certs: tuple[Path, Path], tmp_path: Path) -> None:
    _, text = render(tmp_path, settings(certs, tmp_path))
    assert re.search(r"^\s*ssl_protocols TLSv1\.2 TLSv1\.3;", text, re.M)
    assert "Strict-Transport-Security" in text
    csp = re.search(r'add_header Content-Security-Policy "([^"]+)" always;', text)
    assert csp, "no CSP"
    directives = dict(d.strip().split(" ", 1) for d in csp.group(1).split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["connect-src"].startswith("'self'")
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-eval" not in csp.group(1)
    for header in ('X-Content-Type-Options "nosniff"', 'X-Frame-Options "DENY"', "Referrer-Policy"):
        assert f"add_header {header}" in text
    assert "try_files $uri $uri/ /index.html;" in text
    assert "proxy_buffering off;" in text
    read_timeout = re.search(r"proxy_read_timeout (\d+)s;", text)
    assert read_timeout and int(read_timeout.group(1)) > 90, "must outlast the 90 s WebSocket heartbeat"
    assert re.search(r"limit_req zone=\w+ burst=\d+", text)
    assert "limit_req_status 429;" in text
    assert "keepalive 16;" in text
    assert "hash $canopy_session_key consistent;" in text
    assert re.search(r'"~\^/ws/"\s+\$arg_session;', text)
    assert "client_max_body_size 1m;" in text


def test_access_log_never_records_query_strings(certs: tuple[Path, Path], tmp_path: Path) -> None:
    _, text = render(tmp_path, settings(certs, tmp_path))
    log_format = re.search(r"log_format canopy (.*?);\n", text, re.S)
    assert log_format
    fmt = log_format.group(1)
    leaks = ("$request ", '$request"', "$request_uri", "$args", "$query_string", "$arg_", "$http_referer", "$is_args")
    for leaky in leaks:
        assert leaky not in fmt, leaky
    assert "$loggable_path" in fmt
    assert "access_log /dev/stdout canopy;" in text
    assert "error_log stderr" in text
    # Every access_log line uses the safe format.
    assert re.findall(r"^\s*access_log\s+(\S+)(?:\s+(\S+))?;", text, re.M) == [("/dev/stdout", "canopy")]


def test_renderer_rejects_missing_and_unsafe_settings(certs: tuple[Path, Path], tmp_path: Path) -> None:
    values = settings(certs, tmp_path)
    del values["TLS_KEY_FILE"]
    result = render_nginx(tmp_path / "a.conf", **values)
    assert result.returncode != 0 and "TLS_KEY_FILE" in result.stderr
    result = render_nginx(tmp_path / "b.conf", **settings(certs, tmp_path, WEB_ROOT="/srv/x; include /etc/passwd"))
    assert result.returncode != 0 and "WEB_ROOT" in result.stderr
    result = render_nginx(tmp_path / "c.conf", **settings(certs, tmp_path, HTTPS_PORT="99999"))
    assert result.returncode != 0
    for limit in ("NGINX_WS_CONN_PER_IP", "NGINX_AUTH_CONN_PER_IP"):
        for bad in ("0", "65536", "4;"):
            result = render_nginx(tmp_path / "d.conf", **settings(certs, tmp_path, **{limit: bad}))
            assert result.returncode != 0 and limit in result.stderr, (limit, bad)
    assert not (tmp_path / "a.conf").exists() and not (tmp_path / "b.conf").exists()


def test_a_broken_config_fails_nginx_t(certs: tuple[Path, Path], tmp_path: Path) -> None:
    """The check above can fail: the same config with a typo is rejected."""
    conf, text = render(tmp_path, settings(certs, tmp_path))
    conf.write_text(text.replace("proxy_buffering off;", "proxy_bufering off;", 1))
    result = nginx_test(conf)
    assert result.returncode != 0
    assert "proxy_bufering" in result.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="already checked as non-root by the test above")
def test_runs_as_a_non_root_user() -> None:
    """Run as root (CI), check the rendering and `nginx -t` again as `nobody`."""
    runuser = shutil.which("runuser")
    assert runuser, "runuser (util-linux) is missing"
    base = Path(tempfile.mkdtemp(prefix="canopy-nonroot-"))
    try:
        os.chown(base, 65534, 65534)
        conf = base / "run" / "nginx.conf"
        script = f"""
set -euo pipefail
scripts/gen-cert.sh {base}/certs/cert.pem {base}/certs/key.pem
mkdir -p {base}/web && echo ok > {base}/web/index.html
TLS_CERT_FILE={base}/certs/cert.pem TLS_KEY_FILE={base}/certs/key.pem WEB_ROOT={base}/web \\
  HTTPS_PORT=18443 HTTP_PORT=18080 scripts/render-nginx.sh {conf}
grep -q '^# user: not set' {conf}
# nginx reopens /dev/stdout for its access log: give it a pipe of its own user, as a terminal would be.
{" ".join(nginx_args(conf))} -t 2>&1 | cat
"""
        result = subprocess.run(
            [runuser, "-u", "nobody", "--", "bash", "-c", script],
            cwd=TEMPLATE.parent.parent,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test is successful" in result.stdout


def test_connection_limits_per_address_follow_the_settings(certs: tuple[Path, Path], tmp_path: Path) -> None:
    """Rendered from their settings (defaults 4 and 256); tests/stack/test_nginx_limits.py exceeds them for real."""
    _, text = render(tmp_path, settings(certs, tmp_path))
    assert "limit_conn_zone $binary_remote_addr zone=canopy_auth_conn:" in text
    assert "limit_conn_zone $binary_remote_addr zone=canopy_ws:" in text
    assert location(text, "/api/auth/").count("limit_conn canopy_auth_conn 4;") == 1
    assert location(text, "/ws/").count("limit_conn canopy_ws 256;") == 1
    conf, text = render(tmp_path, settings(certs, tmp_path, NGINX_AUTH_CONN_PER_IP="7", NGINX_WS_CONN_PER_IP="9"))
    assert "limit_conn canopy_auth_conn 7;" in location(text, "/api/auth/")
    assert "limit_conn canopy_ws 9;" in location(text, "/ws/")
    assert nginx_test(conf).returncode == 0


def location(text: str, prefix: str) -> str:
    block = text[text.index(f"location ^~ {prefix} ") :]
    return block[: block.index("}")]

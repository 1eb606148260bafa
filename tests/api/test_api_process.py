"""The real `make api` process: gunicorn with one uvicorn worker, on a free port."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.helpers import ApiProcess


def test_make_api_serves_the_auth_flow_and_metrics(tmp_path: Path) -> None:
    api = ApiProcess(tmp_path)
    api.start()
    try:
        with httpx.Client(base_url=api.url) as c:
            assert c.post("/api/auth/register", json={"username": "carol", "password": "password1"}).status_code == 201
            r = c.post("/api/auth/login", data={"username": "carol", "password": "password1"})
            assert r.status_code == 200
            token = r.json()["access_token"]
            refresh_cookie = r.cookies.get("canopy_refresh")
            assert refresh_cookie
            # The cookie is Secure, so a plain-http client would not send it back: pass it explicitly.
            r = c.post("/api/auth/refresh", headers={"Cookie": f"canopy_refresh={refresh_cookie}"})
            assert r.status_code == 200
            assert c.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"}).json()["username"] == "carol"
            m = c.get("/metrics", follow_redirects=False)
            assert m.status_code == 200 and "canopy_logins_total" in m.text
    finally:
        assert api.stop() == 0
    logs = api.logs()
    assert "Booting worker" in logs and "canopy.worker.CanopyWorker" in logs
    assert token not in logs and "password1" not in logs and refresh_cookie not in logs
    assert (tmp_path / "canopy.db").exists()

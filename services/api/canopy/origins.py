"""Refuses cross-site browser requests to the auth routes and the session socket (login CSRF,
cross-site WebSocket hijacking).

A browser names the page's origin in `Origin` (and, in current browsers, `Sec-Fetch-Site`).
Allowed: no `Origin` at all (curl, scripts, the tests' clients: no browser, no ambient
cookie to abuse) unless `Sec-Fetch-Site: cross-site`; an `Origin` on the app's own host; an
origin listed in ALLOWED_ORIGINS. "Own host" compares with the `Host` header, port included
when it has one; nginx forwards `$host`, which has no port, so behind nginx any port of the
same host name counts as own (the same site, which SameSite cookies do not separate either).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

log = logging.getLogger("canopy.origins")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
AUTH_PREFIX = "/api/auth/"
SOCKET_PATH = "/ws/session"
_REFUSED = b'{"detail":"Cross-site request refused"}'


def same_host(origin: str, host: str) -> bool:
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    host = host.strip().lower()
    return host == parts.netloc.lower() or (":" not in host.strip("[]") and host.strip("[]") == parts.hostname)


def origin_allowed(origin: str | None, fetch_site: str | None, host: str | None, allowed: Iterable[str]) -> bool:
    if origin is None:
        return fetch_site != "cross-site"
    origin = origin.strip().rstrip("/")
    if origin in allowed:
        return True
    return host is not None and same_host(origin, host)


class OriginGuardMiddleware:
    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(o.rstrip("/") for o in allowed_origins)

    def _guarded(self, scope: Scope) -> bool:
        if scope["type"] == "websocket":
            return bool(scope["path"] == SOCKET_PATH)
        return scope["type"] == "http" and scope["method"] not in SAFE_METHODS and scope["path"].startswith(AUTH_PREFIX)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._guarded(scope):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if origin_allowed(headers.get("origin"), headers.get("sec-fetch-site"), headers.get("host"), self.allowed):
            await self.app(scope, receive, send)
            return
        log.info(
            "refused a cross-site %s to %s (Origin %.100s)", scope["type"], scope["path"], headers.get("origin", "-")
        )
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "origin not allowed"})  # HTTP 403
            return
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"cache-control", b"no-store"),
                    (b"content-length", str(len(_REFUSED)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": _REFUSED})

"""Replica-to-replica calls: a request one replica makes of the replica that holds a session.

Today these carry MCP tool calls (`canopy.agents.forwarding`): an MCP request reaches any
replica (its session id is inside the JSON-RPC body, where nginx cannot hash it), and the
replica that holds the session's lease runs the tool instead of the receiver claiming the
session (which would close every tab with 1012).

The endpoint (`CALL_PATH`) is on the API port only: nginx answers 404 for `/api/internal/`.
Each request is signed: `X-Canopy-Timestamp` (Unix seconds) and `X-Canopy-Signature`, an
HMAC-SHA256 of `timestamp.body` under a key derived from SECRET_KEY (every replica has the
same one, as it must to accept each other's access tokens). Every body carries a random nonce;
a signature older or newer than `MAX_SKEW_SECONDS`, or seen before (a replay), is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from typing import Any

import httpx
import orjson

CALL_PATH = "/api/internal/agent-call"
TIMESTAMP_HEADER = "X-Canopy-Timestamp"
SIGNATURE_HEADER = "X-Canopy-Signature"
MAX_SKEW_SECONDS = 30.0
CALL_TIMEOUT_SECONDS = 15.0  # a holder that has not answered by then: the call fails, nothing is claimed
CONNECT_TIMEOUT_SECONDS = 2.0
_KEY_LABEL = b"canopy replica calls v1"  # derives a key for this purpose only from SECRET_KEY


class ReplicaCallError(Exception):
    """The holder could not be reached, did not answer in time, or refused the call."""


class CallSigner:
    def __init__(self, secret_key: str) -> None:
        self._key = hmac.new(secret_key.encode(), _KEY_LABEL, hashlib.sha256).digest()
        self._seen: dict[str, float] = {}  # signatures accepted within the skew window: replays are refused

    def _sign(self, timestamp: str, body: bytes) -> str:
        return hmac.new(self._key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()

    def headers(self, body: bytes) -> dict[str, str]:
        timestamp = str(int(time.time()))
        return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: self._sign(timestamp, body)}

    def verify(self, timestamp: str | None, signature: str | None, body: bytes) -> bool:
        if not timestamp or not signature or not timestamp.isdigit():
            return False
        now = time.time()
        if abs(now - int(timestamp)) > MAX_SKEW_SECONDS:
            return False
        if not hmac.compare_digest(self._sign(timestamp, body), signature):
            return False
        self._seen = {sig: at for sig, at in self._seen.items() if now - at <= 2 * MAX_SKEW_SECONDS}
        if signature in self._seen:
            return False
        self._seen[signature] = now
        return True


class ReplicaClient:
    """Sends signed calls to other replicas; one connection pool for all of them."""

    def __init__(self, signer: CallSigner, timeout: float = CALL_TIMEOUT_SECONDS) -> None:
        self.signer = signer
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS)), trust_env=False
        )

    async def call(self, address: str, payload: dict[str, Any]) -> dict[str, Any]:
        # A nonce: two identical calls in one second must not look like a replay of each other.
        body = orjson.dumps({**payload, "nonce": uuid.uuid4().hex})
        headers = {"Content-Type": "application/json", **self.signer.headers(body)}
        try:
            response = await self._http.post(address + CALL_PATH, content=body, headers=headers)
        except httpx.TimeoutException:
            raise ReplicaCallError("did not answer in time") from None
        except httpx.HTTPError as exc:
            raise ReplicaCallError(f"unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise ReplicaCallError(f"refused the call ({response.status_code})")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ReplicaCallError("answered something else than an object")
        return answer

    async def aclose(self) -> None:
        await self._http.aclose()

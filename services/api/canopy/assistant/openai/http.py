"""One streamed ``POST /chat/completions``: the HTTP request, its retries, and failures mapped to protocol codes.

Failures become :class:`ProviderError`: 502 for an unreachable server, refused credentials, an error
status that persists after retries, cut streams; 504 for timeouts. 408, 409, 429 and 5xx are retried
(as the official OpenAI client does), ``MAX_RETRIES`` times, honouring ``Retry-After`` up to a cap.

The API key is only ever put into the ``Authorization`` header; it is not logged, not in any message,
not in ``repr``; upstream error texts are scrubbed of it.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Final, Protocol

import httpx
from pydantic import SecretStr

from canopy.assistant.base import ProviderError

log = logging.getLogger("canopy.assistant.openai")

MAX_RETRIES: Final = 2
RETRY_AFTER_CAP: Final = 10.0
MAX_ERROR_BODY: Final = 64 * 1024
# Statuses worth another try: timeout, conflict (lock contention upstream), rate limit, server errors.
RETRY_STATUSES: Final = frozenset({408, 409, 429})


class ResponseReader(Protocol):
    """What reads a 200 response's body (the stream accumulator of one round)."""

    @property
    def finished(self) -> bool:
        """True once the answer is complete (a finish reason arrived), even if the body's end is lost."""
        ...

    async def read(self, response: httpx.Response) -> None: ...


class CompletionsClient:
    """Sends one round's request to ``{base}/chat/completions`` over the app's shared ``httpx.AsyncClient``."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        key: SecretStr,
        *,
        timeout: float,
        overall_timeout: float,
        max_retries: int,
        retry_backoff: float,
        retry_after_cap: float,
    ) -> None:
        self._client = client
        self.url = base_url.rstrip("/") + "/chat/completions"
        parsed = httpx.URL(self.url)
        self.where = f"{parsed.scheme}://{parsed.host}" + (f":{parsed.port}" if parsed.port else "")
        self._key = key
        self._timeout = timeout
        self._overall = overall_timeout
        self._max_retries = max_retries
        self._backoff = retry_backoff
        self._retry_after_cap = retry_after_cap

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", "Content-Type": "application/json"}
        key = self._key.get_secret_value()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return headers

    def scrub(self, text: str) -> str:
        key = self._key.get_secret_value()
        if key and len(key) >= 4:
            text = text.replace(key, "[redacted]")
        return text

    async def send(
        self, body: dict[str, Any], reader: ResponseReader, *, round_no: int, on_retry: Callable[[], None]
    ) -> None:
        """Send until an attempt succeeds or fails for good; ``on_retry`` counts each new try."""
        attempt = 0
        while True:
            delay = await self._attempt(body, reader, round_no, attempt)
            if delay is None:
                return
            attempt += 1
            on_retry()
            await asyncio.sleep(delay)

    async def _attempt(self, body: dict[str, Any], reader: ResponseReader, round_no: int, attempt: int) -> float | None:
        """One HTTP request; returns a delay before retrying, or None when the round is done."""
        timeout = httpx.Timeout(self._timeout)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._overall):
                async with self._client.stream(
                    "POST", self.url, json=body, headers=self._headers(), timeout=timeout
                ) as response:
                    status = response.status_code
                    log.info(
                        "llm request round=%d attempt=%d status=%d model=%s",
                        round_no,
                        attempt + 1,
                        status,
                        body.get("model"),
                    )
                    if status != 200:
                        return await self._failed_status(response, attempt)
                    await reader.read(response)
        except TimeoutError:
            raise ProviderError(504, f"the LLM provider did not finish within {self._overall:g} s") from None
        except httpx.ConnectTimeout:
            raise ProviderError(
                504, "timed out connecting to the assistant's provider", f"connect timeout to {self.where}"
            ) from None
        except httpx.TimeoutException:
            waited = time.monotonic() - started
            raise ProviderError(
                504, f"the LLM provider sent nothing for {self._timeout:g} s (after {waited:.1f} s)"
            ) from None
        except httpx.ConnectError as exc:
            raise ProviderError(
                502, "cannot connect to the assistant's provider", f"{self.where}: {self.scrub(str(exc)) or 'refused'}"
            ) from None
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            if reader.finished:
                return None  # everything that matters arrived; only the end of the body was lost
            raise ProviderError(502, f"the LLM stream was cut before it finished ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise ProviderError(502, f"LLM request failed: {type(exc).__name__}") from None
        return None

    async def _failed_status(self, response: httpx.Response, attempt: int) -> float | None:
        status = response.status_code
        message = self.scrub(await _error_message(response))
        if status in (401, 403):
            raise ProviderError(
                502,
                f"the assistant's provider rejected the server's credentials (HTTP {status}); "
                "an administrator should check LLM_API_KEY",
                message,
            )
        retryable = status in RETRY_STATUSES or status >= 500
        if retryable and attempt < self._max_retries:
            delay = _retry_after(response.headers.get("retry-after"))
            if delay is None:
                delay = self._backoff * (2**attempt)
            delay = min(max(delay, 0.0), self._retry_after_cap)
            log.warning(
                "llm request got HTTP %d; retry %d of %d in %.2f s", status, attempt + 1, self._max_retries, delay
            )
            return delay
        if retryable:
            what = "is rate limiting" if status == 429 else "failed"
            raise ProviderError(
                502, f"the assistant's provider {what} (HTTP {status}) after {attempt} retries", message
            )
        raise ProviderError(502, f"the assistant's provider refused the request (HTTP {status})", message)


def describe_error(error: Any) -> str:
    """A short text for an upstream ``error`` object (or anything else a server put there)."""
    if isinstance(error, dict):
        msg = error.get("message") or error.get("type") or error.get("code") or "unknown error"
        return str(msg)[:300]
    return str(error)[:300]


async def _error_message(response: httpx.Response) -> str:
    raw = b""
    async for chunk in response.aiter_bytes():
        raw += chunk
        if len(raw) >= MAX_ERROR_BODY:
            break
    text = raw[:MAX_ERROR_BODY].decode("utf-8", "replace")
    try:
        data = json.loads(text)
    except ValueError:
        return " ".join(text.split())[:300] or response.reason_phrase or "no details"
    if isinstance(data, dict):
        if "error" in data:
            return describe_error(data["error"])
        if "message" in data:
            return str(data["message"])[:300]
        if "detail" in data:
            return str(data["detail"])[:300]
    return " ".join(text.split())[:300]


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()

"""Chooses the assistant from the settings."""

from __future__ import annotations

from typing import Any

import httpx

from canopy.assistant.base import Provider
from canopy.config import Settings


def make_provider(settings: Settings, client: httpx.AsyncClient) -> Provider:
    if settings.llm_provider == "openai":
        from canopy.assistant.openai import OpenAIProvider

        return OpenAIProvider(client, settings)
    from canopy.assistant.offline import OfflineAssistant

    return OfflineAssistant(chunk_delay=settings.offline_chunk_delay_ms / 1000)


def describe(provider: Provider) -> dict[str, Any]:
    """The `assistant` field of `session_ready`: the provider's name and, for the offline one, its cheat sheet."""
    if provider.name == "offline":
        from canopy.assistant.offline import CHEAT_SHEET

        return {"name": provider.name, "examples": list(CHEAT_SHEET)}
    return {"name": provider.name, "examples": []}


def make_http_client(settings: Settings) -> httpx.AsyncClient:
    """One shared client for the provider; per-request timeouts come from the provider."""
    timeout = httpx.Timeout(settings.llm_timeout_seconds, connect=min(10.0, settings.llm_timeout_seconds))
    return httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=100, max_keepalive_connections=20))

"""``OpenAIProvider``: settings in, one :class:`~.rounds.RoundLoop` per turn out."""

from __future__ import annotations

import logging
from typing import Final

import httpx

from canopy.assistant.base import ProviderError, TurnContext, TurnOutcome
from canopy.assistant.openai.http import MAX_RETRIES, RETRY_AFTER_CAP, CompletionsClient
from canopy.assistant.openai.rounds import LoopSettings, RoundLoop
from canopy.config import Settings

log = logging.getLogger("canopy.assistant.openai")

OVERALL_TIMEOUT_FACTOR: Final = 5.0  # one request may last this many times llm_timeout_seconds


class OpenAIProvider:
    """Streams turns from an OpenAI-compatible server over the app's shared ``httpx.AsyncClient``."""

    name = "openai"

    def __init__(
        self,
        client: httpx.AsyncClient,
        settings: Settings,
        *,
        max_retries: int = MAX_RETRIES,
        retry_backoff: float = 0.5,
        retry_after_cap: float = RETRY_AFTER_CAP,
        overall_timeout: float | None = None,
    ) -> None:
        timeout = settings.llm_timeout_seconds
        self._client = CompletionsClient(
            client,
            settings.llm_base_url,
            settings.llm_api_key,
            timeout=timeout,
            overall_timeout=overall_timeout if overall_timeout is not None else timeout * OVERALL_TIMEOUT_FACTOR,
            max_retries=max_retries,
            retry_backoff=retry_backoff,
            retry_after_cap=retry_after_cap,
        )
        self.model = settings.llm_model
        self._loop_settings = LoopSettings(
            model=settings.llm_model,
            max_rounds=settings.llm_max_rounds,
            context_chars=settings.llm_context_chars,
            history_messages=settings.llm_history_messages,
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(url={self._client.where!r}, model={self.model!r})"

    async def run_turn(self, ctx: TurnContext) -> TurnOutcome:
        loop = RoundLoop(self._client, self._loop_settings, ctx)
        try:
            outcome = await loop.run()
        except ProviderError as exc:
            # The detail (the provider's address and answer, already scrubbed of the key) is for this log only.
            log.warning("llm turn failed: %s %s %s", exc.code, exc.message, self._client.scrub(exc.detail))
            await ctx.debug(loop.debug_info(error=exc.code))
            raise
        await ctx.debug(loop.debug_info())
        return outcome

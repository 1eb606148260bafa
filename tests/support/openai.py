"""Helpers for the OpenAI-compatible provider's tests: the provider against the fake LLM, the app configured
for it, and views of what was sent and received."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from starlette.testclient import TestClient

from canopy.assistant.openai import OpenAIProvider
from canopy.config import Settings
from canopy.main import create_app
from tests.conftest import make_settings
from tests.fake_llm.fixture import API_KEY, FakeLLM
from tests.support.ws import Frame


def make_provider(
    http: httpx.AsyncClient,
    base_url: str,
    scenario: str,
    tag: str,
    *,
    key: str = API_KEY,
    timeout: float = 10.0,
    **kwargs: Any,
) -> OpenAIProvider:
    s = Settings(
        _env_file=None,
        llm_provider="openai",
        llm_base_url=base_url,
        llm_api_key=key,
        llm_model=f"scenario:{scenario}:{tag}",
        llm_timeout_seconds=timeout,
    )
    kwargs.setdefault("retry_backoff", 0.01)
    return OpenAIProvider(http, s, **kwargs)


def new_tag() -> str:
    return FakeLLM.model("x").rsplit(":", 1)[1]


def tool_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in body["messages"] if m["role"] == "tool"]


@contextmanager
def openai_client(
    tmp_path: Path, base_url: str, model: str, *, key: str = API_KEY, **overrides: Any
) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path, llm_provider="openai", llm_base_url=base_url, llm_api_key=key, llm_model=model, **overrides
    )
    with TestClient(create_app(settings), base_url="https://testserver") as tc:
        yield tc


def prompt(ws: Any, text: str, frame_id: str = "q") -> None:
    ws.send_json({"type": "user_prompt", "data": {"prompt": text}, "id": frame_id})


def finals(frames: list[Frame]) -> list[Frame]:
    return [f for f in frames if f["type"] == "assistant_response" and not f["data"]["chunk"]]

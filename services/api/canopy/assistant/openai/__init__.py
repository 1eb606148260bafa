"""The provider for any OpenAI-compatible chat-completions endpoint (``LLM_PROVIDER=openai``).

Three parts, each readable alone:

- :mod:`.http`: one streamed ``POST /chat/completions`` with retries, timeouts and upstream
  statuses mapped to protocol error codes (502/504); the only place that sees the API key;
- :mod:`.stream`: one round's response accumulated (text, reasoning, tool calls as they complete);
- :mod:`.rounds`: the round loop of a turn: messages, tool results back to the model, the round
  limit, usage, and whether the answer was cut (``finish_reason`` ``length``/``content_filter``).

:mod:`.provider` ties them to the settings.
"""

from canopy.assistant.openai.provider import OpenAIProvider

__all__ = ["OpenAIProvider"]

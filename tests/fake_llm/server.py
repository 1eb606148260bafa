"""A scripted OpenAI-compatible chat-completions server that replays the streaming wire format.

Run it as a real process (stdlib only)::

    python -m tests.fake_llm.server --port 8765        # or: python tests/fake_llm/server.py --port 8765

Point the app at it with ``LLM_BASE_URL=http://127.0.0.1:8765/v1``, ``LLM_API_KEY=test-key`` and
``LLM_MODEL=scenario:<name>`` (optionally ``scenario:<name>:<tag>``: the tag keeps a test's retry
counters, gates and recorded requests apart from other tests'). Any other model name plays
``plain_text``. Every request must carry ``Authorization: Bearer test-key``, or it gets a 401.

The HTTP layer is written by hand on asyncio streams so that each scenario controls exactly
what goes on the wire: chunked bodies where one SSE event is one write, one write holding
many events, events cut into byte fragments across writes (TCP_NODELAY is set), CRLF line
endings, a body that stops without its terminating chunk, a server that never answers.
Every response says ``Connection: close``.

Control routes (JSON):

- ``GET /_requests[?tag=T]``: every chat request received: ``{n, path, headers, body, model,
  scenario, tag, status, finished, client_closed, keepalives, gates}``;
- ``POST /_reset``: forget requests, counters and gates;
- ``POST /_release?tag=T&gate=G``: open a gate a scenario waits at;
- ``GET /_wait_closed?tag=T[&timeout=S]``: waits until the connection of the latest chat request
  with that tag is closed; ``{closed, client_closed, finished, keepalives, n}``;
- ``GET /_health``: ``{ok: true}``.

``LLM_MODEL=scenario:by_prompt[:TAG]`` lets each prompt choose: ``[scenario:NAME]`` or
``[scenario:NAME:TAG]`` anywhere in the last user message plays NAME; without one, ``echo``
answers "You said: <prompt>". That suits an app process whose settings are fixed.

The code is in three parts: this module (HTTP plumbing, control routes, choosing a scenario),
:mod:`tests.fake_llm.wire` (the response writer, chunk builders and the request checks: as strict as
the strictest real server, so a request LiteLLM would refuse is refused here too) and
:mod:`tests.fake_llm.scenarios` (the scripted behaviours, see ``SCENARIOS``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

if not __package__:  # run as a script (python tests/fake_llm/server.py): make `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fake_llm.scenarios import SCENARIOS, Req, State
from tests.fake_llm.wire import BadRequest, Out, Record, validate

API_KEY = "test-key"

STATE: State


async def read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes] | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0") or 0)
    body = await reader.readexactly(length) if length else b""
    return method, target, headers, body


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        request = await read_request(reader)
        if request is None:
            return
        method, target, headers, body = request
        url = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path.startswith("/_"):
            await control(method, url.path, query, writer)
        elif method == "POST" and url.path.rstrip("/") in ("/v1/chat/completions", "/chat/completions"):
            await chat(url.path, headers, body, query, reader, writer)
        else:
            await simple(writer, 404, {"error": {"message": f"no route {method} {url.path}"}})
    except Exception as exc:  # keep serving; tell the test what went wrong
        print(f"fake-llm: handler error {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
    finally:
        with contextlib.suppress(Exception):
            writer.close()
            await writer.wait_closed()


async def simple(writer: asyncio.StreamWriter, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    writer.write(
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n".encode()
        + body
    )
    await writer.drain()


async def control(method: str, path: str, query: dict[str, str], writer: asyncio.StreamWriter) -> None:
    tag = query.get("tag")
    if path == "/_health":
        await simple(writer, 200, {"ok": True, "scenarios": sorted(SCENARIOS)})
    elif path == "/_requests":
        await simple(writer, 200, [r.public() for r in STATE.records if tag is None or r.tag == tag])
    elif path == "/_reset" and method == "POST":
        STATE.records.clear()
        STATE.counters.clear()
        STATE.gates.clear()
        await simple(writer, 200, {"ok": True})
    elif path == "/_release" and method == "POST":
        STATE.gate(tag or "", query.get("gate", "")).set()
        await simple(writer, 200, {"ok": True})
    elif path == "/_wait_closed":
        timeout = float(query.get("timeout", "5"))
        deadline = time.monotonic() + timeout
        record: Record | None = None
        async with STATE.new_record:
            while True:
                matching = [r for r in STATE.records if tag is None or r.tag == tag]
                if matching:
                    record = matching[-1]
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(STATE.new_record.wait(), remaining)
        closed = False
        if record is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(record.closed.wait(), max(deadline - time.monotonic(), 0))
            closed = record.closed.is_set()
        await simple(
            writer,
            200,
            {
                "closed": closed,
                "n": record.n if record else None,
                "client_closed": record.client_closed if record else False,
                "finished": record.finished if record else False,
                "keepalives": record.keepalives if record else 0,
            },
        )
    else:
        await simple(writer, 404, {"error": f"no control route {method} {path}"})


PROMPT_SCENARIO = re.compile(r"\[scenario:([a-z_]+)(?::([A-Za-z0-9_.-]+))?\]")


def scenario_from_prompt(body: Any, tag: str) -> tuple[str, str]:
    """``scenario:by_prompt``: the last user message picks the scenario with ``[scenario:NAME]`` or
    ``[scenario:NAME:TAG]`` (for an app process whose LLM_MODEL is fixed); ``echo`` otherwise."""
    messages = body.get("messages") if isinstance(body, dict) else None
    for m in reversed(messages if isinstance(messages, list) else []):
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
            match = PROMPT_SCENARIO.search(m["content"])
            if match:
                return match.group(1), match.group(2) or tag
            break
    return "echo", tag


async def chat(
    path: str,
    headers: dict[str, str],
    raw: bytes,
    query: dict[str, str],
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
) -> None:
    try:
        body: Any = json.loads(raw) if raw else None
    except ValueError:
        body = raw.decode("utf-8", "replace")
    record = Record(n=len(STATE.records) + 1, method="POST", path=path, headers=headers, body=body)
    model = body.get("model", "") if isinstance(body, dict) else ""
    record.model = model if isinstance(model, str) else ""
    name, tag = "plain_text", ""
    if record.model.startswith("scenario:"):
        name, _, tag = record.model[len("scenario:") :].partition(":")
    if name == "by_prompt":
        name, tag = scenario_from_prompt(body, tag)
    record.scenario, record.tag = name, tag
    STATE.records.append(record)
    async with STATE.new_record:
        STATE.new_record.notify_all()
    out = Out(writer, record)

    async def watch() -> None:
        """The client closing its side (EOF) or resetting: the request is abandoned."""
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass
        record.client_closed = not record.finished

    async def play() -> None:
        auth = headers.get("authorization", "")
        if auth != f"Bearer {API_KEY}":
            # like real servers, name the key that was sent (the client must not leak it further)
            sent = auth.removeprefix("Bearer ").strip() or "(none)"
            await out.json(
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {sent}.",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
            return
        scenario = SCENARIOS.get(name)
        if scenario is None:
            await out.json(
                404,
                {
                    "error": {
                        "message": f"The model `{record.model}` does not exist.",
                        "type": "invalid_request_error",
                        "code": "model_not_found",
                    }
                },
            )
            return
        try:
            req = Req(record, validate(body), tag, query, STATE)
            await scenario(req, out)
        except BadRequest as exc:
            if record.status == 0:
                await out.json(400, {"error": {"message": f"fake-llm: {exc}", "type": "invalid_request_error"}})
            else:
                raise
        except (KeyError, IndexError, TypeError, ValueError) as exc:  # a scenario's own check blew up
            if record.status == 0:
                await out.json(
                    500, {"error": {"message": f"fake-llm: scenario {name} failed: {exc!r}", "type": "server_error"}}
                )
            raise

    watcher = asyncio.create_task(watch())
    player = asyncio.create_task(play())
    try:
        done, _ = await asyncio.wait({watcher, player}, return_when=asyncio.FIRST_COMPLETED)
        if player in done:
            exc = player.exception()
            if exc is not None and not isinstance(exc, ConnectionError):
                print(f"fake-llm: scenario {name} failed: {exc!r}", file=sys.stderr, flush=True)
        else:
            player.cancel()
            with contextlib.suppress(BaseException):
                await player
    finally:
        watcher.cancel()
        with contextlib.suppress(BaseException):
            await watcher
        with contextlib.suppress(Exception):
            writer.close()
            await writer.wait_closed()
        record.closed.set()


async def main(host: str, port: int) -> None:
    global STATE
    STATE = State()
    server = await asyncio.start_server(handle, host, port, limit=1 << 22)
    print(f"fake-llm listening on http://{host}:{port}/v1", flush=True)
    async with server:
        await server.serve_forever()


def cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(args.host, args.port))


if __name__ == "__main__":
    cli()

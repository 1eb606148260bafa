"""One logging configuration for the app, gunicorn and uvicorn; optional JSON lines.

A request id travels in a context variable so every line of a request carries it.
Uvicorn's access log prints the request line with its query string, which may hold
`?token=` (or `?%74oken=`, which works just as well): the redacting filter cuts the
query string off every request line and WebSocket line, then rewrites any token-like
value left anywhere else before output.
"""

from __future__ import annotations

import contextvars
import json
import logging
import logging.config
import re
from typing import Any

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_SECRET_QUERY = re.compile(r"(?i)([?&](?:token|access_token|refresh_token|api_key|key|password)=)[^&\s\"']*")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
# uvicorn's lines: `"GET /path?query HTTP/1.1" 200` (access) and `"WebSocket /ws/session?query" [accepted]`.
_REQUEST_QUERY = re.compile(r'("(?:[A-Z]+|WebSocket) [^"?\s]*)\?[^"\s]*')
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+")


def redact(text: str) -> str:
    text = _REQUEST_QUERY.sub(r"\1", text)
    text = _SECRET_QUERY.sub(r"\1[redacted]", text)
    text = _BEARER.sub(r"\1[redacted]", text)
    return _JWT.sub("[redacted-jwt]", text)


class RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = redact(str(record.msg))
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        if record.exc_info:
            payload["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(payload, ensure_ascii=False)


def logging_config(level: str = "INFO", json_output: bool = False) -> dict[str, Any]:
    formatter = (
        {"()": JsonFormatter}
        if json_output
        else {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": RedactingFilter}},
        "formatters": {"default": formatter},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "default", "filters": ["redact"]},
        },
        "root": {"level": level, "handlers": ["stderr"]},
        "loggers": {
            name: {"level": level, "handlers": ["stderr"], "propagate": False}
            for name in ("canopy", "uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error", "gunicorn.access")
        }
        # Driver loggers print SQL parameters, which include what users type: never below WARNING.
        # httpx logs every request's full URL at INFO (credentials in it included): WARNING too.
        | {name: {"level": "WARNING"} for name in ("aiosqlite", "sqlalchemy.engine", "asyncpg", "httpx", "httpcore")},
    }


def configure_logging(level: str = "INFO", json_output: bool = False) -> None:
    logging.config.dictConfig(logging_config(level, json_output))

"""Errors that become protocol `error` frames."""

from __future__ import annotations


class SessionError(Exception):
    """A request on a session failed; `code` is the protocol error code (400, 404, 409, 429, 500)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StorageError(SessionError):
    def __init__(self, message: str = "Storage unavailable; the change was not applied") -> None:
        super().__init__(500, message)


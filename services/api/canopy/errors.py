"""The one error type of every layer: the tree engine, the live session and the assistant.

A `CanopyError` carries a protocol `code` (an HTTP-like status: 400, 404, 409, 413, 429, 500,
502, 504) and a `message` a person (or a model) can read. Layers subclass it only where a caller
must tell them apart (`canopy.tree.DeltaError`, `canopy.assistant.base.ProviderError`,
`canopy.realtime.errors.StorageError`). It is translated in exactly two places: to an `error`
frame by the WebSocket connection's read loop, and to a JSON response by the app's one REST
exception handler (`canopy.main`).
"""

from __future__ import annotations


class CanopyError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code}, {self.message!r})"

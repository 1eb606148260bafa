"""The session's errors: the one `CanopyError` (an `error` frame on a socket, a JSON error in REST)."""

from __future__ import annotations

from canopy.errors import CanopyError

# A request on a session failed. The same type as every other layer's error, so the connection's
# one `except SessionError` also turns a tree's `DeltaError` or a provider's `ProviderError` into a frame.
SessionError = CanopyError


class StorageError(CanopyError):
    def __init__(self, message: str = "Storage unavailable; the change was not applied") -> None:
        super().__init__(500, message)

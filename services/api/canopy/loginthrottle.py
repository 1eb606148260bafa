"""Failed-login budgets: per username and address, per username from anywhere, per address.

Keys are short hashes, never the raw username, so a client cannot grow memory with long
names; a name that cannot exist (not 3-32 of `A-Za-z0-9_.-`) shares one fixed key and is
refused before any database or hashing work. Every window is capped (oldest keys out).
"""

from __future__ import annotations

import hashlib
import math
import re

from canopy.config import Settings
from canopy.ratelimit import SlidingWindow

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{3,32}$")
INVALID_USERNAME_KEY = b"invalid-username"
ACCOUNT_WINDOW_SECONDS = 15 * 60.0
IP_WINDOW_SECONDS = 15 * 60.0


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=12).digest()


def account_key(username: str) -> bytes:
    return _digest(username.lower()) if USERNAME_PATTERN.match(username) else INVALID_USERNAME_KEY


class LoginThrottle:
    def __init__(self, settings: Settings) -> None:
        cap = settings.login_throttle_max_keys
        self.pair = SlidingWindow(settings.login_failures_per_minute, 60.0, max_keys=cap)
        self.account = SlidingWindow(settings.login_failures_per_account, ACCOUNT_WINDOW_SECONDS, max_keys=cap)
        self.ip = SlidingWindow(settings.login_failures_per_ip, IP_WINDOW_SECONDS, max_keys=cap)

    def _keys(self, username: str, ip: str) -> tuple[bytes, bytes, bytes]:
        account = account_key(username)
        address = _digest(ip)
        return account + address, account, address

    def retry_after(self, username: str, ip: str) -> int:
        """Whole seconds until this username may be tried from this address again (0: now)."""
        pair, account, address = self._keys(username, ip)
        wait = max(self.pair.retry_after(pair), self.account.retry_after(account), self.ip.retry_after(address))
        return max(1, math.ceil(wait)) if wait > 0 else 0

    def failed(self, username: str, ip: str) -> None:
        pair, account, address = self._keys(username, ip)
        self.pair.hit(pair)
        self.account.hit(account)
        self.ip.hit(address)

    def succeeded(self, username: str, ip: str) -> None:
        """A right password clears this address's count for the name, not the account's or the address's."""
        self.pair.reset(self._keys(username, ip)[0])

    def __len__(self) -> int:
        return len(self.pair) + len(self.account) + len(self.ip)

"""User factories over real HTTP: register and log in many users at once (the bench and the soak use them)."""

from __future__ import annotations

import asyncio

import httpx

PASSWORD = "bench-password-1"  # throwaway local users


async def make_users(api_url: str, count: int, prefix: str) -> list[str]:
    """Registers `count` users (argon2: slow, so a few at a time) and returns their access tokens."""
    sem = asyncio.Semaphore(4)
    async with httpx.AsyncClient(base_url=api_url, trust_env=False, timeout=60) as client:

        async def one(i: int) -> str:
            name = f"{prefix}{i}"
            async with sem:
                r = await client.post("/api/auth/register", json={"username": name, "password": PASSWORD})
                assert r.status_code in (201, 409), r.text
                r = await client.post("/api/auth/login", data={"username": name, "password": PASSWORD})
                assert r.status_code == 200, r.text
                return str(r.json()["access_token"])

        return list(await asyncio.gather(*(one(i) for i in range(count))))

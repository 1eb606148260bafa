"""Reading one sample from a running API's `/metrics` (on the API port: nginx does not serve it)."""

from __future__ import annotations

import httpx


def scrape(api_url: str, sample: str) -> float:
    """The value of `sample` (a metric name with its labels, as exposed); no such sample is a test failure."""
    for line in httpx.get(api_url + "/metrics", trust_env=False, timeout=10).text.splitlines():
        if line.startswith(sample + " "):
            return float(line.split()[-1])
    raise AssertionError(f"no metric {sample}")

"""Browser figures for the tree view (issue #18): headless Debian Chromium through nginx, as the e2e tests run it.

Per tree size (10k, 50k, 100k nodes) it records: open → first row painted, scroll frame times, 100 remote renames at
20/s from another connection of the same session (delay until painted, frames per second meanwhile), the main
thread's worst frame per filter keystroke, expand / collapse all, long tasks during one offline chat turn, and the JS
heap after a forced GC. Everything is measured with user-facing handles (roles and labels), so the same module
measured the react-arborist panel before the rewrite (bench/browser_baseline.json) and measures the current one.

    .venv/bin/python -m bench.browser [--sizes 10000,50000] [--out result.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from playwright.sync_api import Browser, Page, ViewportSize, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from bench.stats import median, percentile
from tests.support.stack import Stack, insecure_ssl_context
from tests.support.ws_client import tree_op

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-precise-memory-info",
]
VIEWPORT: ViewportSize = {"width": 1440, "height": 900}
SIZES = (10_000, 50_000, 100_000)
PASSWORD = "bench-Browser-pw-0123"
SUBTREE = 1000  # nodes per `add` delta while building a tree
UPDATES, UPDATE_RATE = 100, 20.0
UPDATE_WAIT_MS = 90_000  # a view that falls this far behind is reported as such
FILTER_TERM = "Item 4242"
KEY_INTERVAL_S = 0.15  # a brisk typist; the panel's debounce is shorter, so every key runs the filter

# Frame timestamps (rAF) and long tasks, collected from the first script on every page.
INIT_SCRIPT = """
window.__bench = { frames: [], longtasks: [], seen: {} };
(function loop(t) { window.__bench.frames.push(t); requestAnimationFrame(loop); })(performance.now());
try {
  new PerformanceObserver((l) => { for (const e of l.getEntries())
    window.__bench.longtasks.push([e.startTime, e.duration]); }).observe({ type: 'longtask', buffered: true });
} catch (e) {}
"""

# Records when each remote rename's text reaches the DOM, then the frame that paints it (epoch ms).
WATCH_RENAMES = """
() => {
  const seen = window.__bench.seen;
  const re = /^u(\\d+)-(\\d+)$/;
  const scan = (root) => {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      const m = re.exec(n.data.trim());
      if (m && !(m[1] in seen)) {
        seen[m[1]] = -1;
        requestAnimationFrame(() => { seen[m[1]] = performance.timeOrigin + performance.now() - Number(m[2]); });
      }
    }
  };
  const tree = document.querySelector('[role=tree]');
  new MutationObserver((records) => {
    for (const r of records) scan(r.target.nodeType === 3 ? r.target.parentNode : r.target);
  }).observe(tree, { subtree: true, childList: true, characterData: true });
}
"""

SCROLL = """
async () => {
  const tree = document.querySelector('[role=tree]');
  const scroller = [tree, ...tree.querySelectorAll('*')].find((e) => e.scrollHeight > e.clientHeight + 10);
  const times = [];
  let last = await new Promise(requestAnimationFrame);
  for (let i = 0; i < 150; i++) {
    scroller.scrollTop += 240;
    const t = await new Promise(requestAnimationFrame);
    times.push(t - last);
    last = t;
  }
  scroller.scrollTop = 0;
  return times;
}
"""

# Clicks a button by its accessible name and returns ms until the frame after `done()` holds.
CLICK_UNTIL = """
async ([label, level, present]) => {
  const btn = document.querySelector(`button[aria-label="${label}"]`);
  const done = () => !!document.querySelector(`[role=treeitem][aria-level="${level}"]`) === present;
  const t0 = performance.now();
  btn.click();
  while (!done()) await new Promise(requestAnimationFrame);
  await new Promise(requestAnimationFrame);
  return performance.now() - t0;
}
"""


@dataclass
class Session:
    id: str
    first_ids: list[str]  # the first rows' id paths, for renames that land on screen


def build_tree_nodes(n: int) -> Iterator[dict[str, Any]]:
    """Subtrees of up to SUBTREE nodes (1 + 9 x (1 + 10 x (1 + 10))) whose values are `Item <k>`."""
    counter = 0

    def node(children: list[dict[str, Any]]) -> dict[str, Any]:
        nonlocal counter
        counter += 1
        return {"id": f"n{counter}", "value": f"Item {counter}", "children": children}

    left = n - 1  # the root is there already
    while left > 0:
        size = min(SUBTREE, left)
        budget = size - 1
        top = node([])
        while budget > 0:
            mid = node([])
            budget -= 1
            for _ in range(10):
                if budget <= 0:
                    break
                low = node([])
                budget -= 1
                for _ in range(10):
                    if budget <= 0:
                        break
                    low["children"].append(node([]))
                    budget -= 1
                mid["children"].append(low)
            top["children"].append(mid)
        left -= size
        yield top


async def _open(url: str, token: str, session_id: str) -> Any:
    ws = await websockets.connect(url, ssl=insecure_ssl_context(), max_size=2**26, ping_interval=None)
    await ws.send(
        orjson.dumps(
            {"type": "init_session", "id": "init", "data": {"token": token, "session_id": session_id}}
        ).decode()
    )
    while True:
        frame = orjson.loads(await ws.recv())
        if frame["type"] == "session_ready":
            return ws


async def _build(url: str, token: str, session_id: str, n: int) -> list[str]:
    ws = await _open(url, token, session_id)
    first: list[str] = []
    try:
        # one node short: the chat turn's node makes it n, within the default TREE_MAX_NODES (100,000)
        for i, sub in enumerate(build_tree_nodes(n - 1)):
            if i == 0:
                # the leaves of the first subtree's first branch: rows 4-13, on screen from the start
                mid, low = sub["children"][0], sub["children"][0]["children"][0]
                first = [f"/root/{sub['id']}/{mid['id']}/{low['id']}/{c['id']}" for c in low["children"]]
            await ws.send(tree_op(f"b{i}", {"action": "add", "path": "/root/children", "node": sub}))
            while True:
                frame = orjson.loads(await ws.recv())
                if frame.get("id") == f"b{i}":
                    assert frame["type"] == "tree_update", frame
                    break
    finally:
        await ws.close()
    return first


async def _renames(url: str, token: str, session_id: str, paths: list[str]) -> bool:
    """UPDATES renames at UPDATE_RATE per second; each value carries its send time (epoch ms)."""
    ws = await _open(url, token, session_id)

    async def drain() -> None:
        async for _ in ws:
            pass

    reader = asyncio.create_task(drain())
    try:
        start = time.perf_counter()
        for i in range(UPDATES):
            await asyncio.sleep(max(0.0, start + i / UPDATE_RATE - time.perf_counter()))
            value = f"u{i}-{int(time.time() * 1000)}"
            await ws.send(
                tree_op(f"r{i}", {"action": "update", "path": paths[i % len(paths)], "fields": {"value": value}})
            )
    finally:
        await ws.close()
        reader.cancel()
    return True


def in_thread(make: Any) -> Any:
    """Runs `make()`'s coroutine on its own loop: Playwright's sync API owns this thread's loop."""
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(make())))
    thread.start()
    thread.join()
    if not out:
        raise RuntimeError("the websocket client failed (see its traceback above)")
    return out[0]


def frame_stats(times: list[float]) -> dict[str, float]:
    return {"median_ms": median(times), "p95_ms": percentile(times, 95), "max_ms": max(times)}


def worst_gap(frames: list[float], start: float, end: float) -> float:
    """The longest interval between painted frames that overlaps [start, end]."""
    gaps = [b - a for a, b in itertools.pairwise(frames) if b >= start and a <= end]
    return max(gaps, default=0.0)


class Bench:
    def __init__(self, stack: Stack, browser: Browser) -> None:
        self.stack = stack
        self.browser = browser
        self.http = httpx.Client(base_url=stack.api_url, trust_env=False, timeout=120)
        name = f"bb{int(time.time())}"
        assert self.http.post("/api/auth/register", json={"username": name, "password": PASSWORD}).status_code == 201
        self.username = name
        r = self.http.post("/api/auth/login", data={"username": name, "password": PASSWORD})
        self.token = str(r.json()["access_token"])
        self.context = browser.new_context(viewport=VIEWPORT, ignore_https_errors=True, base_url=stack.base_url)
        self.context.add_init_script(INIT_SCRIPT)
        self.console: list[str] = []
        page = self.context.new_page()
        page.goto("/login")
        page.get_by_label("Username").fill(name)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("tree", name="Object tree").wait_for()
        page.close()
        self.console_401 = self._load_console_401()

    def _load_console_401(self) -> int:
        """401s in the console of a fresh, logged-out page load (the login check)."""
        ctx = self.browser.new_context(ignore_https_errors=True, base_url=self.stack.base_url)
        page = ctx.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto("/")
        page.get_by_role("button", name="Log in").wait_for()
        page.evaluate("() => new Promise((r) => setTimeout(r, 300))")
        ctx.close()
        return sum("401" in e for e in errors)

    def session(self, n: int) -> Session:
        r = self.http.post(
            "/api/sessions", json={"title": f"bench {n}"}, headers={"Authorization": f"Bearer {self.token}"}
        )
        assert r.status_code == 201, r.text
        sid = str(r.json()["session_id"])
        first = in_thread(lambda: _build(self.stack.ws_url, self.token, sid, n))
        return Session(sid, first)

    def open_first_row(self, page: Page, sid: str) -> float:
        page.goto(f"/sessions/{sid}")
        return float(
            page.wait_for_function(
                "() => document.querySelector('[role=treeitem]') && performance.now()", polling="raf", timeout=120_000
            ).json_value()
        )

    def measure(self, n: int) -> dict[str, Any]:
        out: dict[str, Any] = {"nodes": n}
        t0 = time.perf_counter()
        s = self.session(n)
        out["build_s"] = time.perf_counter() - t0
        page = self.context.new_page()
        page.set_default_timeout(120_000)
        out["open_ms"] = [self.open_first_row(page, s.id) for _ in range(3)]
        page.get_by_role("treeitem", name="Item 2", exact=True).wait_for()
        out["scroll"] = frame_stats(page.evaluate(SCROLL))
        out["updates"] = self.updates(page, s)
        out["filter"] = self.filter(page)
        out["collapse_ms"] = page.evaluate(CLICK_UNTIL, ["Collapse all", 3, False])
        out["expand_ms"] = page.evaluate(CLICK_UNTIL, ["Expand all", 3, True])
        out["chat"] = self.chat_turn(page)
        out["heap_mb"] = self.heap(page)
        page.close()
        return out

    def updates(self, page: Page, s: Session) -> dict[str, Any]:
        page.evaluate(WATCH_RENAMES)
        f0 = page.evaluate("performance.now()")
        in_thread(lambda: _renames(self.stack.ws_url, self.token, s.id, s.first_ids))
        with contextlib.suppress(PlaywrightTimeout):  # reported as fewer than UPDATES painted
            page.wait_for_function(
                f"() => Object.values(window.__bench.seen).filter((v) => v >= 0).length >= {UPDATES}",
                timeout=UPDATE_WAIT_MS,
                polling=100,
            )
        f1 = page.evaluate("performance.now()")
        delays = [d for d in page.evaluate("Object.values(window.__bench.seen)") if d >= 0] or [float("nan")]
        frames = [t for t in page.evaluate("window.__bench.frames") if f0 <= t <= f1]
        return {
            "painted": len(delays),
            "median_ms": median(delays),
            "p95_ms": percentile(delays, 95),
            "max_ms": max(delays),
            "last_ms": delays[-1],
            "fps": (len(frames) - 1) / ((frames[-1] - frames[0]) / 1000),
            "window_s": (f1 - f0) / 1000,
        }

    def filter(self, page: Page) -> dict[str, Any]:
        box = page.get_by_label("Filter nodes")
        box.click()
        keys: list[float] = []
        for ch in FILTER_TERM:
            keys.append(page.evaluate("performance.now()"))
            page.keyboard.type(ch)
            time.sleep(KEY_INTERVAL_S)  # typing rhythm, not synchronisation
        page.get_by_role("treeitem", name=FILTER_TERM, exact=True).wait_for()
        page.wait_for_function(
            "() => !document.querySelector('[role=treeitem][aria-label=\"Item 4243\"]')", polling="raf"
        )
        end = page.evaluate("performance.now() + 0")
        shown_ms = end - keys[-1]
        page.evaluate("() => new Promise((r) => setTimeout(r, 500))")
        frames = page.evaluate("window.__bench.frames")
        bounds = [*keys[1:], page.evaluate("performance.now()")]
        worst = [worst_gap(frames, a, b) for a, b in zip(keys, bounds, strict=True)]
        box.fill("")
        page.get_by_role("treeitem", name="Item 2", exact=True).wait_for()
        return {"median_ms": median(worst), "max_ms": max(worst), "last_key_to_result_ms": shown_ms}

    def chat_turn(self, page: Page) -> dict[str, Any]:
        box = page.get_by_label("Message")
        box.fill("add 'Bench note' to root")
        start = page.evaluate("performance.now()")
        page.get_by_role("button", name="Send").click()
        page.get_by_role("button", name="Stop").wait_for(state="detached")
        page.get_by_text("Bench note").first.wait_for()
        end = page.evaluate("performance.now()")
        tasks = [d for t, d in page.evaluate("window.__bench.longtasks") if start <= t <= end]
        note = page.get_by_role("treeitem", name="Bench note", exact=True)
        revealed = note.is_visible()
        jump = page.get_by_role("button", name="Jump to change")
        if not revealed and jump.count():
            jump.click()
            with contextlib.suppress(PlaywrightTimeout):
                note.wait_for(timeout=5000)
            revealed = note.is_visible()
        return {
            "longtasks": len(tasks),
            "total_ms": sum(tasks),
            "max_ms": max(tasks, default=0.0),
            "revealed": revealed,
        }

    def heap(self, page: Page) -> float:
        cdp = page.context.new_cdp_session(page)
        cdp.send("HeapProfiler.collectGarbage")
        used = cdp.send("Runtime.getHeapUsage")["usedSize"]
        cdp.detach()
        return float(used) / 1e6


def run(sizes: tuple[int, ...] = SIZES, workdir: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="canopy-browser-") as tmp:
        stack = Stack(
            workdir or Path(tmp),
            env_overrides={
                "RATE_LIMIT_FRAMES_PER_SECOND": "100000",
                "RATE_LIMIT_FRAME_BURST": "100000",
                "RATE_LIMIT_PROMPTS_PER_MINUTE": "100000",
                "WS_MAX_FRAME_BYTES": str(2**20),
                "WS_IDLE_TIMEOUT_SECONDS": "3600",
                "LOG_LEVEL": "WARNING",
            },
        )
        stack.start()
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                try:
                    bench = Bench(stack, browser)
                    results: dict[str, Any] = {"console_401_on_load": bench.console_401, "sizes": []}
                    for n in sizes:
                        print(f"browser bench: {n} nodes", flush=True)
                        results["sizes"].append(bench.measure(n))
                    return results
                finally:
                    browser.close()
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    res = run(tuple(int(s) for s in args.sizes.split(",")))
    text = json.dumps(res, indent=1)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()

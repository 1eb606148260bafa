"""`make bench`: runs every figure on 127.0.0.1 and writes docs/benchmarks.md.

.venv/bin/python -m bench.run            # full (under 10 minutes)
.venv/bin/python -m bench.run --quick    # smaller counts, shorter runs
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench import browser, scale, server, tree_engine
from bench.stats import median, percentile
from tests.support.users import make_users

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "benchmarks.md"
SERVER_BUDGET_S = 480
SCALE_BUDGET_S = 600


def _cmd(argv: list[str]) -> str:
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20, check=False)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.SubprocessError):
        return "not found"


def machine() -> dict[str, str]:
    mem = next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal"))
    load = Path("/proc/loadavg").read_text().split()[:3]
    return {
        "nproc": str(os.cpu_count()),
        "memory": f"{int(mem.split()[1]) // 1024} MiB",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "node": _cmd(["node", "--version"]),
        "nginx": _cmd([server.nginx_binary_path(), "-v"]),
        "load average at start": " ".join(load),
    }


def verdict(ok: bool) -> str:
    return "**pass**" if ok else "**FAIL**"


class Report:
    def __init__(self) -> None:
        self.rows: list[str] = []
        self.notes: list[str] = []

    def row(self, figure: str, median_s: str, p99_s: str, target: str, result: str) -> None:
        self.rows.append(f"| {figure} | {median_s} | {p99_s} | {target} | {result} |")

    def note(self, text: str) -> None:
        self.notes.append(text)


def run_tree(rep: Report, quick: bool) -> None:
    res = tree_engine.run(quick)
    for n, r in res.items():
        for op in ("update", "move", "add+remove"):
            s = r[op]
            target = "≤ 50 µs at 100k" if n == 100_000 else "—"
            result = verdict(s["median_us"] <= 50 and s["p99_us"] <= 50) if n == 100_000 else "info"
            rep.row(
                f"tree {n // 1000}k nodes: one delta `{op}` ({s['ops']} ops)",
                f"{s['median_us']:.1f} µs",
                f"{s['p99_us']:.1f} µs",
                target,
                result,
            )
        s = r["snapshot"]
        target = "≤ 150 ms at 100k" if n == 100_000 else "—"
        result = verdict(s["median_ms"] <= 150) if n == 100_000 else "info"
        if n == 100_000 and s["median_ms"] <= 150 < s["p99_ms"]:
            result = "**pass** (median); p99 over"
        rep.row(
            f"tree {n // 1000}k nodes: snapshot serialised, Tree.to_json ({s['runs']} runs, {s['bytes'] / 1e6:.2f} MB)",
            f"{s['median_ms']:.2f} ms",
            f"{s['p99_ms']:.2f} ms",
            target,
            result,
        )
    for n, r in res.items():
        s = r["snapshot"]
        rep.note(
            f"Tree {n // 1000}k: the whole session_ready frame with the tree embedded "
            f"{s['frame_median_ms']:.2f} ms; Tree.to_dict (fresh Python objects, for REST) "
            f"{s['to_dict_median_ms']:.1f} ms (p99 {s['to_dict_p99_ms']:.1f}); tree memory "
            f"{r['memory']['tree_mb']:.1f} MB (tracemalloc: nodes, strings, id index)."
        )
    rep.note(
        "Snapshot: each tree node is itself the dict the wire format needs ({id, value, props?, children}), "
        "kept in step by every delta, so a snapshot is one orjson.dumps of the root, all in Rust, with no "
        "per-node Python work. Before this (a fresh dict per node, then orjson) the 100k snapshot took "
        "120-160 ms here; the cost is ~70 B more per node (+23% tree memory at 100k). "
        "Tree shape: breadth-first, fan-out 10 (depth 6 at 100k); deltas act on leaves at the deepest level."
    )
    rep.note("The add+remove figure is two deltas (an add, then the remove of that node), timed together.")
    for n, r in res.items():
        s = r["plan"]
        rep.row(
            f"tree {n // 1000}k nodes: offline assistant plans one prompt, an add under a named node "
            f"(and one to the root)",
            f"{s['named_median_ms']:.2f} ms ({s['top_median_ms']:.2f} ms)",
            f"{s['named_p99_ms']:.2f} ms",
            "—",
            "info",
        )
    rep.note(
        "Offline planning: the planner tries a turn's changes on the live tree and reverts them before it "
        "returns (before: a copy of the whole tree per turn, ~300 ms of event loop at 100k); what remains "
        "at 100k is one walk that indexes node names when the prompt names a node."
    )


async def run_server(rep: Report, quick: bool, workdir: Path) -> None:
    runs = 3 if quick else 5
    seconds = 3.0 if quick else 6.0
    users = 100
    stack = server.start_stack(workdir / "stack")
    echo = None
    try:
        t0 = time.perf_counter()
        tokens = await make_users(stack.api_url, users, "bench")
        rep.note(
            f"Setup: registering and logging in {users} users (argon2) took {time.perf_counter() - t0:.1f} s; "
            "tokens are reused by every figure."
        )
        ws_api = f"ws://127.0.0.1:{stack.api_port}/ws/session"
        wpid = server.worker_pid(stack.api.proc.pid)  # type: ignore[union-attr]

        # prompt -> first tree_update
        for label, toks, rounds, pace in (
            ("1 user", tokens[:1], 30 if quick else 60, None),
            ("100 concurrent users, all prompting at the same instant", tokens, 1 if quick else 2, None),
            ("100 concurrent users, each prompting after a random 0-2 s pause", tokens, 3 if quick else 5, 1.0),
        ):
            p50s, p99s, allv = [], [], []
            meter = server.CpuMeter(wpid)
            for _ in range(runs):
                with meter:
                    v = await server.prompt_latency(ws_api, toks, rounds, pace)
                p50s.append(percentile(v, 50))
                p99s.append(percentile(v, 99))
                allv.extend(v)
            at100 = len(toks) == 100
            ok = median(p50s) <= 5 and median(p99s) <= 25
            rep.row(
                f"offline prompt → first tree_update, {label} ({runs} runs x {len(toks) * rounds} prompts)",
                f"p50 {median(p50s):.2f} ms",
                f"p99 {median(p99s):.2f} ms (worst run {max(p99s):.2f})",
                "p50 ≤ 5 ms, p99 ≤ 25 ms at 100",
                verdict(ok) if at100 else "info",
            )
            rep.note(f"Prompt latency, {label}: {meter.summary()} (includes session attach and warm-up).")
            if toks is tokens and pace is None and not ok:
                per_turn = median(p50s) / 50
                rep.note(
                    f"Prompt latency over target ({label}), why: all 100 turns run on the one worker's event "
                    "loop, so in a burst the median prompt waits for about 50 other turns to reach their "
                    f"first change; a p50 of {median(p50s):.0f} ms means ~{per_turn:.2f} ms of worker time per "
                    "turn up to its first tree_update (reading and validating the frame, storing the user's "
                    "message, the chat_message broadcast, the assistant's parse, applying and committing the "
                    "change, the broadcast). A 5 ms p50 for such a burst needs ≤ 0.1 ms per turn, which "
                    "CPython with a committed write per turn cannot do on one core: it would take several "
                    "replicas with sessions pinned to them (REPLICAS, docs/scaling.md; the scale rows below share "
                    "this machine's 2 cores with the client, so they cannot show it) or a compiled server. "
                    "Group commit already merges the burst's writes (1 user: p50 ~2 ms; the burst went from "
                    "~190 ms to this with executemany batches). With human pacing (next row) the target holds."
                )
                rep.note(
                    "Prompt latency, the same burst against the last idle-machine run before issues #12-#17 "
                    "(commit ad94848, p50 34 ms), in counted instructions (python -m bench.ab_instructions: "
                    "valgrind, so the machine's drifting speed does not enter; 2026-11-26 23:40-23:51 UTC): per "
                    "prompt ad94848 2.16-2.18 M, cc1ed02 (#13's refactor alone) 2.22 M, fdbf54c (+ the offline "
                    "assistant v2 of #14) 2.91 M, ac45e15 (+ #12's hardening) 2.94 M, 7516b62 (+ #15-#18) 3.03 M, "
                    "HEAD 2.45 M; per socket attach 2.62-2.66, 2.74, 2.79, 3.79, 4.13 and 3.17 M: #13 cost ~2% per "
                    "prompt, #12 ~1% per prompt and a database read per attach. HEAD's remaining +12% per "
                    "prompt is what #14-#17 added to a turn (the planner's wider grammar, ~+60k; per-user undo "
                    "state, actors and authors on frames and rows, quotas); per attach, #12's token-generation "
                    "check. What took it back: the offline planner (0.83 M -> 0.34 M instructions per plan), two "
                    "undo_state frames per turn gone (clients see turns from their frames), no writer task per "
                    "flush, fewer statements per attach, and the worker's gc.freeze() (docs/operations.md)."
                )
        rep.note(
            "Prompt latency: API directly (no nginx), OFFLINE_CHUNK_DELAY_MS=0, each user its own session; "
            "the client waits for the whole turn before the next prompt; the 100-user rounds send all 100 "
            "prompts at once (a worst-case burst: 100 turns queue on one worker); the paced rows give each user a "
            "random think time (mean 1 s) before each prompt, about 100 prompts/s in all. Figures are the "
            "median over runs of each run's p50 / p99."
        )

        # persisted changes per second
        rates = []
        total = 0
        meter = server.CpuMeter(wpid)
        for _ in range(runs):
            with meter:
                rate, done = await server.tree_op_throughput(ws_api, tokens, seconds)
            rates.append(rate)
            total += done
        rep.row(
            f"persisted tree_ops/s, {users} sessions, 1 in flight each ({runs} runs x {seconds:.0f} s)",
            f"{median(rates):,.0f}/s",
            f"{percentile(rates, 1):,.0f}/s (slowest run)",
            "≥ 2,000/s",
            verdict(median(rates) >= 2000),
        )
        rep.note(
            "tree_op throughput: each `tree_update` is awaited before the next `tree_op` on that socket, "
            "and the server commits each change before it broadcasts; the 'p99' column is the slowest run "
            "(1st percentile of the per-run rates). " + meter.summary() + f"; {total:,} changes in all."
        )
        rep.note(
            "tree_op throughput, what moved it: group commit (realtime/group_commit.py) turns each batch of "
            "concurrent sessions' writes into one executemany per prepared statement on one kept connection "
            "(before: one execute per row and per statement, each a hop to aiosqlite's thread, and a pool "
            "checkout per batch): ~830/s → the figure above. Each caller still awaits its own commit before "
            "its broadcast."
        )
        if median(rates) < 2000:
            rep.note(
                "tree_ops/s under target in this run: the worker shares 2 cores with the benchmark client; "
                "see the CPU figures above."
            )

        # one change fanned out to every tab of a shared session
        p50s, p99s = [], []
        per_run = 100 if quick else 200
        for _ in range(runs):
            v = await server.fanout_latency(
                stack.api_url, ws_api, tokens[:3], ["bench0", "bench1", "bench2"], 10, per_run
            )
            p50s.append(percentile(v, 50))
            p99s.append(percentile(v, 99))
        rep.row(
            f"shared session, 10 tabs of 3 users: one tree_op until every tab has its tree_update "
            f"({runs} runs x {per_run} changes)",
            f"p50 {median(p50s):.2f} ms",
            f"p99 {median(p99s):.2f} ms (worst run {max(p99s):.2f})",
            "—",
            "info",
        )
        rep.note(
            "Fan-out: a session owned by one user and shared with two editors, 10 sockets on it (4/3/3 "
            "per user), API directly; each tree_op (from a rotating tab, one at a time) is timed from its "
            "send until the last of the 10 tabs has read its tree_update: the commit, the broadcast "
            "(one encoded frame queued to 10 outboxes) and 10 socket writes and reads on the same 2 cores."
        )

        # ping through nginx vs echo
        echo = server.EchoBehindNginx(workdir / "echo", stack)
        echo.start()
        canopy_r, echo_r = [], []
        meter = server.CpuMeter(wpid)
        for _ in range(runs):
            with meter:
                canopy_r.append(await server.ping_rate(stack.ws_url, tokens, 100, seconds))
            echo_r.append(await server.ping_rate(echo.ws_url, None, 100, seconds))
        ratios = [c / e for c, e in zip(canopy_r, echo_r, strict=True)]
        rep.row(
            f"authenticated ping/pong via nginx wss, 100 conns ({runs} runs x {seconds:.0f} s)",
            f"{median(canopy_r):,.0f} msg/s = {median(ratios):.2f} x echo ({median(echo_r):,.0f} msg/s)",
            f"ratio {percentile(ratios, 1):.2f} (worst run; runs {min(ratios):.2f}-{max(ratios):.2f})",
            "≥ 0.85 x echo",
            verdict(median(ratios) >= 0.85)
            + (" (runs straddle the target: within this machine's noise)" if min(ratios) < 0.85 <= max(ratios) else ""),
        )
        rep.note(
            "Ping/pong: the Python benchmark client runs on the same 2 cores as nginx and the server, so "
            "both rates are partly client-bound; runs alternate Canopy / echo so load drift hits both. "
            "The echo is bench/echo_app.py on bare uvicorn (websockets-sansio), behind a second nginx "
            "rendered from the same template and certificate. During the Canopy runs: " + meter.summary() + "."
        )
        echo.stop()
        echo = None

        # idle sessions
        n = 2000 if quick else 10_000
        idle = await server.idle_sessions(ws_api, tokens, n, stack.api.proc.pid)  # type: ignore[union-attr]
        ok = idle["failures"] == 0 and idle["kb_per_conn"] <= 30
        rep.row(
            f"idle authenticated sessions on one worker: {idle['opened']}/{n} opened",
            f"{idle['kb_per_conn']:.1f} KB RSS per connection",
            "— (one measurement)",
            "≤ 30 KB each",
            verdict(ok),
        )
        rep.note(
            f"Idle sessions: worker RSS {idle['rss_before_kb']} KB → {idle['rss_after_kb']} KB after opening "
            f"{idle['opened']} authenticated sockets in {idle['open_seconds']:.1f} s (API directly, "
            f"{len(tokens)} users, so the sockets share {len(tokens)} sessions: the figure is per connection, "
            "session state was loaded before the baseline). RSS is a single before/after reading, not a "
            "median of runs. Failures: "
            + (f"{idle['failures']} (first: {idle['first_failure']})" if idle["failures"] else "none")
            + "."
        )
        rep.note(
            "Idle sessions, what moved it (56 → ~26 KB per socket; measured with tracemalloc): the app's "
            "per-socket writer task and asyncio.Queue are gone (a flush runs only while frames wait, and the "
            "reader sends its own replies), as is the last sent frame it kept alive; /ws/session is served by "
            "a pure ASGI middleware ahead of FastAPI's router and dependency machinery (~13 KB of frames and "
            "objects per socket); one idle timer per socket instead of a timeout per frame. What remains is "
            "mostly uvicorn's and websockets' own per-connection state (~18 KB: protocol, receive queue, "
            "handshake headers, keepalive timer). Per-message deflate (WS_PER_MESSAGE_DEFLATE, off by "
            "default) would add ~50 KB per socket (zlib state both ways)."
        )
        if not ok:
            rep.note(
                "RSS per connection over target in this run: the figure includes allocator fragmentation "
                "(RSS, not live objects) and varies with the machine's other load."
            )
    finally:
        if echo is not None:
            echo.stop()
        stack.stop()


BROWSER_BASELINE = ROOT / "bench" / "browser_baseline.json"


def _browser_rows(rep: Report, r: dict[str, Any], before: dict[str, Any] | None) -> None:
    k = f"{r['nodes'] // 1000}k"
    big = r["nodes"] == 100_000

    def was(text: str) -> str:
        return f" (before: {text})" if before else ""

    b = before or {}
    up, bup = r["updates"], b.get("updates", {})
    rep.row(
        f"browser {k}: open session → first row",
        f"{median(r['open_ms']):.0f} ms",
        f"max {max(r['open_ms']):.0f} ms" + was(f"{median(b.get('open_ms', [0])):.0f} ms"),
        "≤ 1 s at 100k",
        verdict(median(r["open_ms"]) <= 1000) if big else "info",
    )
    rep.row(
        f"browser {k}: scroll, frame time",
        f"{r['scroll']['median_ms']:.1f} ms",
        f"p95 {r['scroll']['p95_ms']:.1f} ms" + was(f"{b.get('scroll', {}).get('p95_ms', 0):.1f} ms"),
        "—",
        "info",
    )
    ok = up["painted"] == browser.UPDATES and up["p95_ms"] <= 100 and up["fps"] >= 50
    rep.row(
        f"browser {k}: {browser.UPDATES} remote renames at {browser.UPDATE_RATE:.0f}/s → painted",
        f"{up['median_ms']:.0f} ms, {up['fps']:.0f} fps",
        f"p95 {up['p95_ms']:.0f} ms, last {up['last_ms']:.0f} ms, {up['painted']} painted"
        + was(f"p95 {bup.get('p95_ms', 0):.0f} ms, {bup.get('fps', 0):.0f} fps, {bup.get('painted', '?')} painted"),
        "p95 ≤ 100 ms, ≥ 50 fps at 100k",
        verdict(ok) if big else "info",
    )
    f, bf = r["filter"], b.get("filter", {})
    rep.row(
        f"browser {k}: filter, worst frame per keystroke",
        f"{f['median_ms']:.0f} ms",
        f"max {f['max_ms']:.0f} ms" + was(f"{bf.get('median_ms', 0):.0f} / {bf.get('max_ms', 0):.0f} ms"),
        "≤ 50 ms at 100k",
        verdict(f["max_ms"] <= 50) if big else "info",
    )
    rep.row(
        f"browser {k}: expand all / collapse all",
        f"{r['expand_ms']:.0f} / {r['collapse_ms']:.0f} ms",
        "—" + was(f"{b.get('expand_ms', 0):.0f} / {b.get('collapse_ms', 0):.0f} ms"),
        "≤ 150 ms at 100k",
        verdict(max(r["expand_ms"], r["collapse_ms"]) <= 150) if big else "info",
    )
    c, bc = r["chat"], b.get("chat", {})
    rep.row(
        f"browser {k}: long tasks during one chat turn",
        f"{c['longtasks']}, longest {c['max_ms']:.0f} ms",
        f"total {c['total_ms']:.0f} ms" + was(f"{bc.get('longtasks', '?')}, longest {bc.get('max_ms', 0):.0f} ms"),
        "none over 100 ms at 100k",
        verdict(c["max_ms"] <= 100) if big else "info",
    )
    rep.row(
        f"browser {k}: JS heap after GC",
        f"{r['heap_mb']:.1f} MB",
        "—" + was(f"{b.get('heap_mb', 0):.1f} MB"),
        "—",
        "info",
    )
    rep.note(
        f"Browser {k}: a node added far down the tree by the assistant was "
        + ("revealed (on screen, or a 'Jump to change' button offered)" if c["revealed"] else "NOT revealed")
        + f"; the filter's last keystroke → result shown {f['last_key_to_result_ms']:.0f} ms; "
        f"building the tree took {r['build_s']:.1f} s."
    )


def run_browser(rep: Report, quick: bool) -> None:
    res = browser.run(browser.SIZES[:2] if quick else browser.SIZES)
    baseline = json.loads(BROWSER_BASELINE.read_text()) if BROWSER_BASELINE.exists() else None
    old = {s["nodes"]: s for s in baseline["sizes"]} if baseline else {}
    for r in res["sizes"]:
        _browser_rows(rep, r, old.get(r["nodes"]))
    rep.row(
        "browser: 401s in the console on a logged-out page load",
        str(res["console_401_on_load"]),
        "—" + (f" (before: {baseline['console_401_on_load']})" if baseline else ""),
        "0",
        verdict(res["console_401_on_load"] == 0),
    )
    rep.note(
        "Browser figures (bench/browser.py): Debian Chromium, headless, 1440x900, through nginx with TLS; "
        "trees of 1,000-node subtrees (Item 1 … Item N) under the root, all expanded; the renames come from "
        "a second connection of the same session and hit rows on screen; delay = sent (epoch ms in the "
        "value) → the animation frame after the text reached the DOM. Filter: 'Item 4242' typed one key "
        "per 150 ms; per key, the longest frame while that key was handled. Expand/collapse: click → the "
        "frame after the rows changed. Chat: the offline assistant adds a node at the end of the root."
    )
    rep.note(
        "Browser, open → first row, where the time goes at 100k (CPU profile and trace of this Chromium): "
        "the renderer receiving the ~5 MB session_ready frame (native WebSocket work before the message event, "
        "~150-200 ms here), JSON.parse (~30-50 ms), normalising the tree in place (~15 ms), the row model's "
        "flatten (~6 ms) and the first layout and paint; the rest is the page load, the login check and the "
        "socket's handshake, as at 10k. What moved it: the snapshot's parent index (100k map entries, ~60 ms) "
        "is no longer made before the first paint but afterwards in idle-time steps of 8 ms "
        "(TreeDocument.indexSome; a delta or check that comes first finishes it), and a snapshot reaches the "
        "tree view at once instead of at the next animation frame. Playwright's DevTools Network domain, on "
        "for every page it drives, also sees every WebSocket frame: the same page opened by a bare DevTools "
        "client without it showed its first row ~80-150 ms sooner at 100k (one A/B on a shared machine)."
    )
    rep.note(
        "Browser, filter, what moved it: each keystroke's search runs outside React's render in slices of at "
        "most 6 ms between frames (features/tree FilterSearch): native indexOf over the index's one lower-cased "
        "text, hits mapped to nodes by a cursor that only moves forward; a term that contains the last one "
        "searches only the last one's matches; a term every row survives reuses the index's row arrays (no "
        "copy). The index itself is built in idle-time steps once the filter box has focus."
    )
    if baseline:
        rep.note(
            "'before' figures: " + baseline["measured_on"] + " — the react-arborist panel, measured with "
            "this same module (bench/browser_baseline.json)."
        )


def run_web(rep: Report) -> None:
    res = server.web_bundle()
    out = res["output"]
    total = next((line for line in out.splitlines() if "total" in line.lower()), out.splitlines()[-1] if out else "")
    rep.row(
        "web bundle: initial JS, gzip -9 (npm run size)",
        total.strip() or "?",
        "— (deterministic)",
        "≤ 150 KB",
        verdict(res["rc"] == 0),
    )
    rep.note(
        "Web bundle: measured on services/web/dist as it stands (make bench runs web-build first; "
        "python -m bench.run alone does not rebuild it)."
    )
    rep.note("npm run size output:\n\n```\n" + out + "\n```")


def write(
    rep: Report,
    mach: dict[str, str],
    quick: bool,
    started: dt.datetime,
    elapsed: float,
    errors: list[str],
    out: Path = OUT,
) -> None:
    lines = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`.venv/bin/python -m bench.run`"
        + (" --quick" if quick else "")
        + "); do not edit by hand.",
        "",
        f"- Date: {started.strftime('%Y-%m-%d %H:%M UTC')} (took {elapsed:.0f} s)",
        f"- Mode: {'quick' if quick else 'full'}",
        "- Machine: " + ", ".join(f"{k} {v}" for k, v in mach.items()),
        "- Everything runs on 127.0.0.1: the real API (scripts/api.sh: gunicorn + one uvicorn worker, SQLite in a "
        "temp dir, offline assistant, rate limits raised) and nginx from nginx/canopy.conf.template with a "
        "self-signed certificate, started by tests/support/stack.py.",
        (
            "- The machine was shared with other work during the run (load average at start above its core "
            "count), which widens the tails."
            if float(mach["load average at start"].split()[0]) > (os.cpu_count() or 1)
            else "- The machine was otherwise idle at the start of the run (load average below its core count)."
        ),
        "",
        "| figure | median | p99 | target | result |",
        "| --- | --- | --- | --- | --- |",
        *rep.rows,
        "",
        "## Notes",
        "",
    ]
    lines += [n if n.startswith("npm") else f"- {n}" for n in rep.notes]
    if errors:
        lines += ["", "## Not measured", "", *[f"- {e}" for e in errors]]
    out.write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts and shorter runs")
    parser.add_argument("--only", choices=["tree", "server", "browser", "scale", "web"], action="append")
    parser.add_argument("--out", type=Path, default=OUT, help="where to write the report (default docs/benchmarks.md)")
    args = parser.parse_args()
    os.chdir(ROOT)
    server.raise_nofile()
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    mach = machine()
    rep = Report()
    errors: list[str] = []
    parts = args.only or ["tree", "server", "browser", "scale", "web"]
    if "tree" in parts:
        try:
            run_tree(rep, args.quick)
        except Exception:
            errors.append("tree engine figures: " + traceback.format_exc().strip().splitlines()[-1])
    if "server" in parts:
        try:
            with tempfile.TemporaryDirectory(prefix="canopy-bench-") as tmp:
                # a hard bound, so a hung server cannot hold `make bench` past its 10 minutes
                asyncio.run(asyncio.wait_for(run_server(rep, args.quick, Path(tmp)), SERVER_BUDGET_S))
        except Exception:
            traceback.print_exc()
            errors.append("server figures after the last row above: " + traceback.format_exc().strip().splitlines()[-1])
    if "browser" in parts:
        try:
            run_browser(rep, args.quick)
        except Exception:
            traceback.print_exc()
            errors.append("browser figures: " + traceback.format_exc().strip().splitlines()[-1])
    if "scale" in parts:
        try:
            with tempfile.TemporaryDirectory(prefix="canopy-bench-scale-") as tmp:
                Path(tmp).chmod(0o755)
                asyncio.run(asyncio.wait_for(scale.run_scale(rep.row, rep.note, args.quick, Path(tmp)), SCALE_BUDGET_S))
        except Exception:
            traceback.print_exc()
            errors.append(
                "scale-out figures after the last row above: " + traceback.format_exc().strip().splitlines()[-1]
            )
    if "web" in parts:
        try:
            run_web(rep)
        except Exception:
            errors.append("web bundle: " + traceback.format_exc().strip().splitlines()[-1])
    write(rep, mach, args.quick, started, time.perf_counter() - t0, errors, args.out)
    print(args.out.read_text())
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""The offline assistant as a provider: a plan streamed through a `TurnContext`."""

from __future__ import annotations

import asyncio
import re
from typing import Final

from canopy.assistant.base import TurnContext
from canopy.assistant.offline.planner import plan
from canopy.assistant.offline.text import plural
from canopy.tree import DeltaError

# The past tense a reply opens a sentence with, and the verb a proposal names instead.
_DONE_VERBS: Final = {
    "Added": "add",
    "Renamed": "rename",
    "Set": "set",
    "Removed": "remove",
    "Deleted": "delete",
    "Cleared": "clear",
    "Moved": "move",
    "Swapped": "swap",
    "Duplicated": "duplicate",
    "Sorted": "sort",
}
_DONE_AT_SENTENCE: Final = re.compile(r"(?:^|(?<=[.!?] ))(" + "|".join(_DONE_VERBS) + r")\b")
PROPOSAL_NOTE: Final = "Nothing changes until an editor accepts the proposal."
_WORDS: Final = re.compile(r"\s*\S+\s*")


def as_proposal(reply: str) -> str:
    """A review-mode turn's reply: its changes are proposed, not made ("Added 'A'…" → "Proposed: add 'A'…")."""
    text = _DONE_AT_SENTENCE.sub(lambda m: f"Proposed: {_DONE_VERBS[m.group(1)]}", reply)
    text = text.replace("so I created it", "so I proposed creating it").replace("I applied ", "I proposed ")
    return f"{text} {PROPOSAL_NOTE}"


def chunk_reply(reply: str, max_chunks: int = 8) -> list[str]:
    """Split a reply on word boundaries into a few chunks that concatenate to exactly `reply`."""
    words = _WORDS.findall(reply) or ([reply] if reply else [])
    count = min(len(words), max_chunks, max(3, -(-len(words) // 4)))
    if count <= 1:
        return ["".join(words)] if words else []
    size, extra = divmod(len(words), count)
    chunks, start = [], 0
    for i in range(count):
        end = start + size + (1 if i < extra else 0)
        chunks.append("".join(words[start:end]))
        start = end
    return chunks


class OfflineAssistant:
    """A `canopy.assistant.base.Provider` that needs no network."""

    name = "offline"

    def __init__(self, chunk_delay: float = 0.015) -> None:
        self.chunk_delay = chunk_delay

    async def run_turn(self, ctx: TurnContext) -> None:
        the_plan = plan(ctx.prompt, ctx.tree, recent=ctx.recent_nodes)
        for step in the_plan.reasoning:
            await ctx.reasoning(step)
        reply = the_plan.reply
        if the_plan.undo:
            reply = await self._history(ctx, "undo", the_plan.undo)
        elif the_plan.redo:
            reply = await self._history(ctx, "redo", the_plan.redo)
        failures: list[str] = []
        for delta in the_plan.deltas:
            try:
                await ctx.apply(delta)
            except DeltaError as exc:
                failures.append(exc.message)
        if failures:
            reply = self._partial(len(the_plan.deltas), failures)
        if ctx.proposing and len(failures) < len(the_plan.deltas):
            reply = as_proposal(reply)
        await ctx.debug({"provider": self.name, "deltas": len(the_plan.deltas), "failed": len(failures)})
        for i, chunk in enumerate(chunk_reply(reply)):
            if i:
                await asyncio.sleep(self.chunk_delay)
            await ctx.text(chunk)

    @staticmethod
    async def _history(ctx: TurnContext, action: str, count: int) -> str:
        """Undo or redo `count` change sets, one at a time, stopping when there are no more."""
        done = 0
        try:
            for _ in range(count):
                if not await (ctx.undo() if action == "undo" else ctx.redo()):
                    break
                done += 1
        except DeltaError as exc:
            return f"I couldn't {action} the last change: {exc.message}"
        past = "Undid" if action == "undo" else "Redid"
        if done == 0:
            return f"There is nothing to {action}."
        if done == 1 and count == 1:
            return f"{past} the last change."
        if done < count:
            return f"{past} {plural(done, 'change')}; there was nothing more to {action}."
        return f"{past} the last {plural(done, 'change')}."

    @staticmethod
    def _partial(total: int, failures: list[str]) -> str:
        reasons = "; ".join(dict.fromkeys(failures)).rstrip(".") + "."
        if len(failures) == total:
            return f"I couldn't change the tree: {reasons}"
        return f"I applied {total - len(failures)} of {total} changes; the others failed: {reasons}"

"""What planning produces: the `Plan`, the `Stop` that ends planning with a reply, the limits and the
cheat sheet (also sent to the web chat in `session_ready.assistant`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

MAX_VALUE_LENGTH: Final = 500
MAX_NODES_PER_COMMAND: Final = 50
MAX_UNDO_STEPS: Final = 20
MAX_LISTED: Final = 10
MAX_SHOWN_LINES: Final = 40

CHEAT_SHEET: Final = (
    "add 'A', 'B' and 'C' under Tasks (a missing parent is created)",
    "add Testing after Build · add X at the top of Tasks · add 5 tasks under Project",
    "create a list called Groceries with eggs, milk and bread · add to Groceries: eggs, milk (or one item a line)",
    "rename Tasks to Projects · set priority of Task 1 to high · mark Task 1 as done · assign Task 1 to Sam",
    "set due date of Task 1 to 2025-03-01 · remove the priority of Task 1",
    "move Task 1 under Done · move Launch before Build · make Task 1 a child of Done · indent / outdent Task 1",
    "delete Task 1 · delete all done tasks · clear Project (its children) · duplicate Task 1",
    "sort Project alphabetically (or: by priority)",
    "add Beta and mark it as done (join commands with 'and' or 'then'; 'it' is the last node)",
    "undo · redo · undo the last 2 changes · clear the tree · show the tree",
    "how many nodes are there? · what's under Project? · where is Task 1?",
)
HELP_TEXT: Final = (
    "I'm the offline assistant, so I understand plain commands like these:\n"
    + "".join(f"- {line}\n" for line in CHEAT_SHEET)
    + "Names match node values (any case); write Project/Task 1 when a name is used twice, and put a value "
    "in quotes when it contains words like 'to', 'under' or 'after'."
)


@dataclass
class Plan:
    reasoning: list[str]
    deltas: list[dict[str, Any]]
    reply: str
    undo: int = 0  # change sets to revert
    redo: int = 0  # change sets to re-apply
    touched: list[str] = field(default_factory=list)  # the nodes "it" refers to next


class Stop(Exception):
    """Ends planning early with a reply and no deltas."""

    def __init__(self, reply: str, *steps: str) -> None:
        super().__init__(reply)
        self.reply = reply
        self.steps = list(steps)

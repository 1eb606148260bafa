"""The offline assistant: plain-language tree commands, no network.

- `text`: quotes masked as placeholders, polite padding dropped, lists split, replies worded;
- `forms`: whole-prompt forms, matched first (undo/redo with a count, help, show, questions);
- `grammar`: clauses and their readings (`Command`s);
- `result`: the `Plan`, limits and the cheat sheet;
- `planner`: readings checked against the tree (names, paths, pronouns, typos), the plan;
- `actions`: what each command does to the tree, and answers to questions;
- `assistant`: the provider that streams a plan through a `TurnContext`.

`plan()` is pure and deterministic for a given `new_id`; README.md lists what it understands.
"""

from canopy.assistant.offline.assistant import OfflineAssistant, chunk_reply
from canopy.assistant.offline.planner import plan
from canopy.assistant.offline.result import CHEAT_SHEET, HELP_TEXT, MAX_NODES_PER_COMMAND, MAX_VALUE_LENGTH, Plan

__all__ = [
    "CHEAT_SHEET",
    "HELP_TEXT",
    "MAX_NODES_PER_COMMAND",
    "MAX_VALUE_LENGTH",
    "OfflineAssistant",
    "Plan",
    "chunk_reply",
    "plan",
]

"""Whole-prompt forms, matched before the prompt is read as commands: undo/redo (with a count), clear
the tree, help, greetings, show the tree, and questions (answered without changing anything)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from canopy.assistant.offline.grammar import KEY, LEVEL, STATUS_RE
from canopy.assistant.offline.text import NUMBER, number

_COUNT_WORDS: Final = (
    rf"(?:the |my )?(?:last |previous )?({NUMBER}) (?:changes?|steps?|edits?|actions?|turns?|things?|times?)|"
    rf"({NUMBER}) times|(twice|once)|(?:the |my )?last ({NUMBER})|(?:the |my )?last(?: one)?|(\d{{1,3}})"
)
UNDO_RE: Final = re.compile(
    rf"(?:put|bring) (?:it|them) back|"
    rf"(?:undo|revert|go back|take back|roll ?back)"
    rf"(?: (?:that|it|this|my last change|the last (?:change|step|edit|action|turn)|"
    rf"last change|everything i just did|{_COUNT_WORDS}))?",
    re.I,
)
REDO_RE: Final = re.compile(
    rf"(?:redo|re-do|redo that|undo the undo)(?: (?:that|it|this|the last (?:change|step|undo)|{_COUNT_WORDS}))?", re.I
)


def steps_of(match: re.Match[str]) -> int:
    """How many change sets an undo/redo asks for (1 when no number is given)."""
    for group in match.groups():
        if group:
            return number(group)
    return 1


CLEAR_TREE_RE: Final = re.compile(
    r"(?:clear|reset|empty|wipe)(?: out)?(?: (?:the )?(?:(?:whole|entire) )?(?:tree|everything|all|canvas|outline))?"
    r"|(?:delete|remove|clear) (?:everything|all(?: (?:the )?nodes)?|all of it|the (?:whole|entire) tree)|start over",
    re.I,
)
HELP_RE: Final = re.compile(
    r"help|\?|commands|usage|cheat ?sheet|what (?:can|do) you (?:do|understand|know)|how does (?:this|it) work|"
    r"what (?:commands|can i (?:say|type|do))(?: are there)?|how (?:do|can|should) i .+",
    re.I,
)
GREET_RE: Final = re.compile(
    r"(?:hi|hello|hey|hallo|good (?:morning|afternoon|evening)|thanks|thank you)(?: there)?", re.I
)
SHOW_RE: Final = re.compile(
    r"(?:show|list|print|display|describe|summari[sz]e|view)(?: me)?(?: (?:the|all|my))?"
    r"(?: (?:whole |entire )?(?:tree|nodes|items|everything|outline))?|"
    r"what(?:'s| is) in the tree|what does the tree look like|(?:give me )?an? (?:summary|overview)|"
    r"(?:what(?:'s| is) )?the structure(?: of (?:the|my) tree)?|(?:the |my )?tree",
    re.I,
)


# Any of the forms above (each still decides which one it is): a prompt that is none of them costs one scan.
ANY_FORM_RE: Final = re.compile(
    "|".join(f"(?:{form.pattern})" for form in (UNDO_RE, REDO_RE, CLEAR_TREE_RE, HELP_RE, GREET_RE, SHOW_RE)), re.I
)


@dataclass(frozen=True, slots=True)
class Question:
    kind: str  # total | count | children | where | prop | find
    ref: str = ""
    key: str = ""


_THINGS: Final = r"(?:nodes|items|things|entries|tasks|children|kids|subtasks|elements|rows)"
_QUESTION_FORMS: Final = [
    (
        rf"how many {_THINGS}(?: (?:are|do i have|do we have|have i got|exist))?(?: there)?"
        r"(?: (?:in|on) (?:the|my|this) (?:tree|outline|session))?(?: (?:are )?there| in total| altogether| overall)?",
        "total",
    ),
    (r"how big is (?:the|my) tree|count(?: the| all)? nodes", "total"),
    (rf"(?:the )?(?:number|count) of {_THINGS}(?: in (?:the|my) tree)?", "total"),
    (rf"count(?: the| all)?(?: the)? {_THINGS} (?:of|in|under|inside) (.+)", "count"),
    (rf"how many {_THINGS} (?:does|do) (.+) have", "count"),
    (
        rf"how many {_THINGS} (?:are |do i have |have i got )?(?:there )?"
        r"(?:under|in|on|inside|below|beneath) (.+?)(?: are there)?",
        "count",
    ),
    (rf"(?:what|which) {_THINGS} (?:are|is) (?:marked |set )?(?:as |to )?({STATUS_RE}|{LEVEL} priority)", "filter"),
    (rf"(?:list|show|find)(?: me)? (?:all )?(?:the )?({STATUS_RE}|{LEVEL}[ -]priority) {_THINGS}", "filter"),
    (rf"what(?:'s| is| are) ({STATUS_RE}|{LEVEL}[ -]priority)", "filter"),
    (r"what(?:'s| is) left (?:on|in|under) (.+)", "children"),
    (r"what(?:'s| is| are| do i have| have i got| do we have) (?:under|in|inside|below|beneath|on) (.+)", "children"),
    (r"what(?:'s| is| are) the (?:children|contents|items|subtasks|subnodes) (?:of|under|in) (.+)", "children"),
    (
        r"(?:show|list|display|print|view)(?: me)?(?: (?:all|everything))?(?: the)?"
        r"(?: (?:children|contents|items|subtasks|nodes|things))? (?:of|under|in|inside) (.+)",
        "children",
    ),
    (r"what does (.+) (?:contain|have(?: in it)?)", "children"),
    (r"(?:show|list|display|print|open|expand)(?: me)? (.+)", "children"),
    (r"where(?:'s| is| are| can i find) (.+)", "where"),
    (r"where did (.+) go", "where"),
    (rf"what(?:'s| is) (?:the )?({KEY}) (?:of|for|on) (.+)", "prop"),
    (rf"what(?:'s| is) (.+?)(?:'s|s') ({KEY})", "prop"),
    (
        r"(?:is there|do i have|do we have|have i got) (?:a|an|any) (?:node|item|task|entry) (?:called|named) (.+)",
        "find",
    ),
    (r"(?:is there|do i have|do we have|have i got) (?:a|an|any|the) (.+?) (?:node|item|task|entry)", "find"),
    (
        r"(?:find|search(?: for)?|look for|look up|locate)"
        r"(?: (?:a|the|any) (?:node|item|task)s?(?: called| named)?)? (.+)",
        "find",
    ),
    (r"does (.+) exist", "find"),
]
# Compiled once; a "prop" form names its key first ("what is the priority of X") or last ("X's priority").
_KEY_FIRST: Final = "what(?:'s| is) (?:the )?"
_QUESTIONS: Final = tuple(
    (re.compile(pattern, re.I), kind, pattern.startswith(_KEY_FIRST)) for pattern, kind in _QUESTION_FORMS
)


# Questions whose key is not a group of the _QUESTIONS kind: "what priority is Design", "is Design done".
_WHAT_KEY_IS: Final = re.compile(rf"what ({KEY}) (?:is|does) (.+?)(?: have)?", re.I)
_IS_STATUS: Final = re.compile(rf"is (.+?) (?:marked )?(?:as )?(?:{STATUS_RE})(?: yet)?", re.I)


# The first words of every question form: a command ("add ...", "delete ...") skips all of them.
_QUESTION_STARTS: Final = frozenset(
    {"how", "count", "the", "number", "what", "which", "list", "show", "find", "display", "print", "view", "open"}
    | {"expand", "where", "is", "do", "does", "have", "search", "look", "locate"}
)


def question(masked: str) -> Question | None:
    if masked.split(" ", 1)[0].lower().removesuffix("'s") not in _QUESTION_STARTS:  # "what's", "where's"
        return None
    for pattern, kind, key_first in _QUESTIONS:
        m = pattern.fullmatch(masked)
        if not m:
            continue
        groups = m.groups()
        if kind == "prop":
            key, ref = (groups[0], groups[1]) if key_first else (groups[1], groups[0])
            return Question(kind, ref, key)
        return Question(kind, groups[0] if groups else "")
    if m := _WHAT_KEY_IS.fullmatch(masked):
        return Question("prop", m.group(2), m.group(1))
    if m := _IS_STATUS.fullmatch(masked):
        return Question("prop", m.group(1), "status")
    return None

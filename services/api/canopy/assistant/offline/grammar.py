"""The grammar: masked prompt text → readings (`Command`s) the planner checks against the tree.

A prompt is one or more clauses joined by "and"/"then"/";" where the next clause starts with a
verb ("add Research under Project and set its priority to low"). Each clause starts with a verb
that picks a generator; the generator cuts the rest at every keyword that could separate its parts
("A to B to C" gives two readings). Every word must land somewhere: in a node reference (which the
planner must find in the tree), in a new value (which must not hold an unquoted placement word such
as "after" or "with"), or in a keyword. Nothing is dropped silently.

Whole-prompt forms (undo, redo, questions, help, show, clear the tree) are matched before this, in `forms`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final, NamedTuple

from canopy.assistant.offline.text import (
    NUMBER,
    NUMBER_WORDS,
    PLACEHOLDER,
    Separators,
    folded,
    number,
    singular,
    split_list,
    splits,
    trim,
)

MAX_READINGS: Final = 24  # readings of one clause that are tried against the tree


class Command(NamedTuple):
    """One reading of a clause: an action and the node references it needs.

    ``where`` is a placement: "" (under, at the end), "under"/"in" (the same, "under" may create a
    missing parent), "top", "bottom", "after", "before", "up", "down"; for sort it is the order.
    A named tuple: a prompt makes many readings, and one costs a sixth of a frozen dataclass's.
    """

    action: str
    refs: tuple[str, ...] = ()
    values: tuple[str, ...] = ()
    key: str = ""
    where: str = ""
    kids: tuple[str, ...] = ()  # "create X with a, b and c": the new node's children
    count: int = 0  # type: ignore[assignment]  # "add 5 tasks": values is ("Task",); shadows tuple.count, unused
    hint: str = ""  # the unquoted add text, for a "put it in quotes" hint


# Unquoted "names" that name nothing: "add something" asks what to call it instead of adding junk.
VAGUE: Final = frozenset(
    {
        "something",
        "anything",
        "something else",
        "anything else",
        "whatever",
        "somewhere",
        "stuff",
        "things",
        "more",
        "one",
        "another",
        "another one",
        "same",
        "the same",
        "new",
        "new one",
        "a new one",
        "again",
        "here",
        "there",
        "some",
        "a few",
        "several",
        "many",
        "node",
        "item",
        "new node",
    }
)
PRONOUNS: Final = frozenset(
    {
        "it",
        "its",
        "them",
        "they",
        "their",
        "this",
        "that",
        "these",
        "those",
        "this one",
        "that one",
        "this node",
        "that node",
        "these nodes",
        "those nodes",
        "the new node",
        "the new nodes",
        "him",
        "her",
        "both",
        "both of them",
        "all of them",
        "each of them",
        "the two",
        "these two",
        "those two",
    }
)
# Words that place or structure something; left in an unquoted new value they mean we did not
# understand the command, so the value is refused instead of becoming a junk node.
RESERVED: Final = re.compile(
    r"\b(?:after|before|between|with|under|underneath|beneath|beside|then|called|named|titled|somewhere)\b|"
    r"\bnext to\b|\b(?:at|on) (?:the )?root(?: level)?\b|"
    r"\bas (?:an?|the|child|children|subtasks?|sub-tasks?|siblings?|first|last)\b|"
    r"\b(?:at|to) the (?:very )?(?:end|top|bottom|start|beginning|front)\b|"
    r"\b(?:and|,) (?:make|set|mark|rename|move|delete|remove|sort|add|create)\b",
    re.I,
)
# In a new name: "rename Build to Develop and Lanch to Ship" must not name Build 'Develop and Lanch to Ship'.
RENAME_RESERVED: Final = re.compile(r"(?:\band|,) \S.*? (?:to|into|->|\u2192) ", re.I)

GENERIC: Final = frozenset(
    {
        "task",
        "item",
        "node",
        "entry",
        "step",
        "subtask",
        "child",
        "note",
        "idea",
        "row",
        "line",
        "element",
        "point",
        "todo",
        "chapter",
        "section",
        "page",
        "bullet",
    }
)
_NOUN: Final = r"(?:(?:node|item|entry|element|child|subnode|value|subtask|sub-task|row|line)s?|children|entries)"
_ART: Final = r"(?:a|an|one|some|the|another)"
_CONTAINER: Final = (
    r"(?:list|checklist|to-?do list|node|item|group|folder|section|category|project|task|note|page|topic|"
    r"heading|entry|outline|plan|board|column|parent)"
)
_VALUE_PREFIXES: Final = [
    rf"(?:{_ART} )?(?:new )?(?:child |top-level |empty )?{_NOUN} (?:with )?(?:the )?"
    r"(?:values?|names?|titles?|labels?|texts?):? ",
    rf"(?:{_ART} )?(?:new )?(?:child |top-level |empty )?{_CONTAINER}s? (?:called|named|titled|labell?ed|saying):? ",
    rf"(?:{_ART} )?(?:new )?(?:child |top-level |empty )?{_NOUN}:? ",
    r"(?:called|named) ",
    rf"(?:{_ART} )?(?:new )?(?:child |top-level |sub-?)?(?:{_CONTAINER}|subtask|step|idea|note)s?:? (?=\ue000)",
    r"(?:with )?(?:the )?(?:values?|names?):? ",
    r"(?-i:(?:tasks?|subtasks?|steps?|notes?|ideas?|items?|entries|entry|nodes?|children|child)):? ",
    rf"(?:{_ART} )?new (?:task|todo|to-do|list|folder|project|section|group|category|page|heading|note)s?:? ",
    # case-sensitive: "create list Books" names Books, "a project plan" stays one name
    r"(?-i:(?:(?:a|an|the) )?(?:new )?(?:list|folder|project|group|category|section|board|page|heading|task):? "
    r"(?=[A-Z\ue000]))",
]
_ADD_SEPS: Final = Separators(
    (
        r"(?:at|to) the (?:very )?(?:top|start|beginning|front) of|"
        r"as (?:the )?first (?:child|item|node|entry|task|one) (?:of|under|in)",
        "top",
    ),
    (
        r"(?:at|to) the (?:very )?(?:bottom|end) of|"
        r"as (?:the )?last (?:child|item|node|entry|task|one) (?:of|under|in)",
        "bottom",
    ),
    (
        r"(?:right |just |directly |immediately )?(?:after|following|behind|below|next to|beside|alongside)|"
        r"as (?:a |the )?(?:next )?siblings? (?:of|to)",
        "after",
    ),
    (r"(?:right |just |directly |immediately )?(?:before|above|ahead of|in front of)", "before"),
    (
        r"as (?:an? |the )?(?:child|children|subnode|subnodes|item|items|subtasks?|sub-tasks?) (?:of|under|in|to)|"
        r"under(?:neath)?|beneath|inside(?: of)?|within",
        "under",
    ),
    (r"into|in|to|onto|on", "in"),
)
_MOVE_SEPS: Final = Separators(*_ADD_SEPS.pairs[:5], (r"into|in|to|onto", "in"))
_RENAME_SEPS: Final = Separators((r"to|as|into|=|->|\u2192", ""))
_FROM_SEPS: Final = Separators((r"from|under|in|inside", ""))
_ON_SEPS: Final = Separators((r"on|for|of", ""))
_TO_SEPS: Final = Separators(("to", ""))
_AS_SEPS: Final = Separators(("as", ""))
_TO_AS_SEPS: Final = Separators((r"to|as", ""))
_BE_AS_SEPS: Final = Separators((r"be|as|into", ""))
NAMEKEYS: Final = {"value", "name", "title", "label", "text"}
KEY: Final = r"(?:\ue000\d+\ue001|[a-z_][\w.-]*(?: [a-z_][\w.-]*){0,2}?)"
_KNOWN_KEYS: Final = r"(?:priority|status|due date|due|deadline|owner|assignee|tags?|colou?r|estimate|progress|notes?)"
LEVEL: Final = r"(?:low|medium|normal|high|urgent|critical|top|highest|lowest)"
_STATUS: Final = {
    "done": "done",
    "complete": "done",
    "completed": "done",
    "finished": "done",
    "checked": "done",
    "todo": "todo",
    "to do": "todo",
    "to-do": "todo",
    "not done": "todo",
    "undone": "todo",
    "open": "todo",
    "incomplete": "todo",
    "unchecked": "todo",
    "pending": "todo",
    "in progress": "in progress",
    "doing": "in progress",
    "started": "in progress",
    "wip": "in progress",
    "blocked": "blocked",
    "waiting": "blocked",
    "cancelled": "cancelled",
    "canceled": "cancelled",
}
STATUS_RE: Final = "|".join(sorted((re.escape(s) for s in _STATUS), key=len, reverse=True))


def status_value(word: str) -> str:
    return _STATUS.get(word.lower(), word)


# ------------------------------------------------------------------- add


# One pattern, the prefixes tried in their order (an alternation takes the first that matches).
_PREFIX_RE: Final = re.compile("^(?:" + "|".join(f"(?:{p})" for p in _VALUE_PREFIXES) + r")(?=\S)", re.I)


def _strip_prefix(text: str) -> str:
    if " " not in text:  # every prefix ends in a space
        return text
    m = _PREFIX_RE.match(text)
    return text[m.end() :] if m else text


_BIG_COUNT: Final = re.compile(r"(\d{4,}) (?:new |more |empty |blank )?[a-z][\w-]*s", re.I)
_ZERO_COUNT: Final = re.compile(r"(?:0|zero|no) (?:new |more )?[a-z][\w-]*s", re.I)
_COUNT: Final = re.compile(rf"({NUMBER}|an?|one|another) (?:new |more |empty |blank )?([a-z][\w-]*)", re.I)
_NOUN_RE: Final = re.compile(_NOUN, re.I)
_KID_NOUN: Final = re.compile(r"child|children|subtasks?", re.I)
_LISTED: Final = re.compile(
    rf"({NUMBER}) (?:new )?(?:{_NOUN}|{_CONTAINER}s?) (?:called |named |with (?:the )?values? )?:? ?(.+)", re.I
)
_COLON: Final = re.compile(r"(.+?): (.+)")
_KIDS_NOUN: Final = re.compile(rf"^(?:the )?(?:{_NOUN}|tasks|items|subtasks|steps|entries)(?: called| named)?:? ", re.I)
_KIDS_PLURAL: Final = re.compile(r"^[a-z]+s:? (?=[A-Z\ue000])")
_HAS_CONTAINER: Final = re.compile(rf"\b{_CONTAINER}s?\b", re.I)
_ARTICLE: Final = re.compile(r"(?:a|an|the|new|a new) (\S.*)", re.I)


# The first words a count can open with ("0 tasks", "a task", "a couple of items", "3 notes: a, b, c").
_COUNT_STARTS: Final = frozenset(
    {"0", "zero", "no", "a", "an", "one", "another", *(w.split()[0] for w in NUMBER_WORDS)}
)


def _add_values(left: str) -> Command | None:
    """What to add, from the text before the placement: a count, a node with children, or a list."""
    first = left.partition(" ")[0].lower()
    if first in _COUNT_STARTS or first[:1].isdigit() or not left.isascii():  # (re.I: see text.folded)
        counted = _counted(left)
        if counted is not None:
            return counted
    stripped = _strip_prefix(left)
    colon = _COLON.fullmatch(stripped)
    if colon and len(split_list(colon.group(2))) > 1:  # "a grocery list: eggs, milk, bread"
        return Command("add", values=(_value_name(colon.group(1)),), kids=tuple(split_list(colon.group(2))))
    head, sep, tail = stripped.partition(" with ")
    if sep and head and tail:
        named = _KIDS_NOUN.sub("", tail)
        if named == tail and len(split_list(tail)) > 1:  # "with phases Design, Build and Launch"
            named = _KIDS_PLURAL.sub("", tail)
        container = _HAS_CONTAINER.search(head) or stripped != left
        # "with a, b and c" or "a list ... with x" make children; "Meeting with Bob" is not understood
        if named != tail or container or len(split_list(named)) > 1:
            return Command("add", values=(_value_name(head),), kids=tuple(split_list(named)))
    return Command("add", values=tuple(_value_name(v) for v in split_list(stripped)))


def _counted(left: str) -> Command | None:
    """'add 0 tasks', 'add 3 tasks', 'add a task', 'add 2 items: A, B': a count, or None."""
    if _ZERO_COUNT.fullmatch(left):  # "add 0 tasks": nothing to add, never a node '0 tasks'
        return Command("add")
    big = _BIG_COUNT.fullmatch(left)
    # "add 1000 tasks" is a count the limit refuses; "add 2025 goals" is a name
    if big and not 1900 <= int(big.group(1)) <= 2099:
        return Command("add", values=("Item",), count=int(big.group(1)))
    count = _COUNT.fullmatch(left)
    if count and (count.group(2).lower().endswith("s") or count.group(1).lower() in ("a", "an", "one", "another")):
        noun = count.group(2)
        if _NOUN_RE.fullmatch(noun) and not _KID_NOUN.fullmatch(noun):
            noun = "Item"
        name = singular(noun).capitalize()
        if count.group(1).lower() in ("a", "an", "one", "another"):
            # "add a task": numbered like "add 3 tasks"; "add a milk": just the word
            generic = singular(noun).lower() in GENERIC or noun == "Item"
            return Command("add", values=(name,), count=1 if generic else 0)
        return Command("add", values=(name,), count=number(count.group(1)))
    listed = _LISTED.fullmatch(left)
    if listed:
        values = tuple(split_list(listed.group(2)))
        if len(values) > 1 or number(listed.group(1)) == 1:
            return Command("add", values=values, count=-number(listed.group(1)))  # negative: a check only
    return None


def _value_name(text: str) -> str:
    """'a list called X' → X; 'a shopping list' → 'Shopping list' (an article is never part of a name)."""
    text = _strip_prefix(text)
    article = _ARTICLE.fullmatch(text)
    if article and not PLACEHOLDER.fullmatch(article.group(1)):
        return article.group(1)[:1].upper() + article.group(1)[1:]
    return text


_AS_NEW: Final = re.compile(
    r" as (?:an? |the )?(?:new )?(?:top-level |separate )?"
    r"(?:project|list|node|item|task|section|category|entry|group)$",
    re.I,
)
_LATE_NAME: Final = re.compile(
    r"(?:an? |the )?(?:new )?[a-z][\w-]* ((?:to|under|in|into|inside|for) .+?) "
    r"(?:called|named|titled|saying) (.+)",
    re.I,
)


_PROP_ADD: Final = re.compile(
    rf"(?:an? |the )?(?:({LEVEL}) priority|priority (?:of )?({LEVEL})|status (?:of )?(\S+(?: progress)?)|"
    r"(due date|deadline|tag|label|note|owner|assignee|colou?r|estimate) (?:of )?(.+?)) (?:to|on|for) (.+)",
    re.I,
)


def _prop_add(rest: str) -> list[Command]:
    """'add high priority to Build', 'add a due date of 2025-03-01 to Launch': props, not nodes."""
    m = _PROP_ADD.fullmatch(rest)
    if not m:
        return []
    level, level2, status, key, value, ref = m.groups()
    if level or level2:
        return [Command("set", (ref,), ((level or level2).lower(),), key="priority")]
    if status:
        return [Command("set", (ref,), (status_value(status),), key="status")]
    return [_set(ref, key, value)]


# "add (these) to Groceries: eggs, milk": the list after the colon goes under the named parent.
_LIST_UNDER: Final = re.compile(
    r"(?:(?:these|the following|this|those)(?: (?:items|nodes|tasks|things|entries|children))? )?"
    r"(to|in|into|under|inside) (.+?): (.+)",
    re.I,
)
_AT_EDGE: Final = re.compile(r"(.+?),? (?:at|to) the (?:very )?(top|start|beginning|front|bottom|end)", re.I)
_AT_ROOT: Final = re.compile(r"(.+?),? (?:at|on|to|in) (?:the )?(?:root|top)[ -]level|(.+?),? at the root", re.I)


def _at_edge(rest: str, low: str | None) -> list[Command] | None:
    """'add QA at the end', 'add QA to Project at the top': the edge of the parent (the root if none)."""
    top = _AT_ROOT.fullmatch(rest) if low is None or "level" in low or "at the root" in low else None
    if top:  # "add QA at root level"
        return [c._replace(refs=("root",)) for c in gen_add(top.group(1) or top.group(2)) if not c.refs]
    m = _AT_EDGE.fullmatch(rest) if low is None or "at the" in low or "to the" in low else None
    if m is None:
        return None
    edge = "bottom" if m.group(2).lower() in ("bottom", "end") else "top"
    return [
        c._replace(refs=c.refs or ("root",), where=edge)
        for c in gen_add(m.group(1))
        if c.action == "add" and c.where in ("", "in", "under")
    ]


_BETWEEN: Final = re.compile(r"(.+?) (?:in )?between (.+?) and (.+)", re.I)


def gen_add(rest: str) -> list[Command]:
    if props := _prop_add(rest):
        return props
    low = folded(rest)  # the words the costlier forms need
    if (edge := _at_edge(rest, low)) is not None:
        return edge
    listed = _LIST_UNDER.fullmatch(rest) if ": " in rest else None
    if listed:  # "add to Groceries: eggs, milk, bread"
        where = "under" if listed.group(1).lower() in ("under", "inside") else "in"
        return [Command("add", (listed.group(2),), tuple(split_list(listed.group(3))), where=where)]
    rest = _AS_NEW.sub("", rest)
    late = _LATE_NAME.fullmatch(rest)  # "add a subtask to Build called Write tests"
    if late:
        rest = f"{late.group(2)} {late.group(1)}"
    hint = "" if PLACEHOLDER.search(rest) else rest
    out: list[Command] = []
    between = _BETWEEN.fullmatch(rest) if low is None or "between" in low else None
    if between and (what := _add_values(between.group(1))) is not None:
        out.append(Command("add", (between.group(2), between.group(3)), what.values, where="between", count=what.count))
    for left, tag, right in splits(rest, _ADD_SEPS)[::-1][:MAX_READINGS]:
        what = _add_values(left)
        if what is not None:
            out.append(Command("add", (right,), what.values, where=tag, kids=what.kids, count=what.count, hint=hint))
    if not out:
        what = _add_values(rest)
        if what is not None:
            out.append(Command("add", (), what.values, kids=what.kids, count=what.count))
    return out


_NEW_NOUN: Final = re.compile(rf"^(?:child )?(?:{_NOUN}|{_CONTAINER}s?)(?: called| named)?:? (?=\S)", re.I)
_A_NEW: Final = re.compile(r"(?:an? |a new |new )", re.I)


def gen_new(rest: str) -> list[Command]:
    return gen_add(_NEW_NOUN.sub("", rest, count=1))


def gen_start(rest: str) -> list[Command]:
    """'start a list called Books' (but not 'start Build')."""
    return gen_add(rest) if _A_NEW.match(rest) else []


# ------------------------------------------------------------- rename and props


_NAMES: Final = "(?:value|name|title|label|text)"
_NAME_OF: Final = re.compile(rf"^(?:the )?{_NAMES} of ", re.I)
_NAME_POSSESSIVE: Final = re.compile(rf"(.+?)(?:'s|s') {_NAMES} (?:to|as|=) (.+)", re.I)
_NAME_ITS: Final = re.compile(rf"(its|their) {_NAMES} (?:to|as|=) (.+)", re.I)
_BARE_QUOTE: Final = re.compile(r"(.+) (\ue000\d+\ue001)")


def gen_rename(rest: str) -> list[Command]:
    rest = _NAME_OF.sub("", rest, count=1)
    possessive = _NAME_POSSESSIVE.fullmatch(rest) or _NAME_ITS.fullmatch(rest)
    if possessive:
        return [Command("rename", (possessive.group(1),), (possessive.group(2),))]
    out = [Command("rename", (left,), (right,)) for left, _, right in splits(rest, _RENAME_SEPS)]
    bare = _BARE_QUOTE.fullmatch(rest)  # rename Launch "Go live"
    if bare:
        out.append(Command("rename", (bare.group(1),), (bare.group(2),)))
    return out


def gen_call(rest: str) -> list[Command]:
    """'call Build "Development"', 'name it Beta': the new value is the last words; the longest
    existing name wins, as the planner takes the first reading whose node exists."""
    out = gen_rename(rest)
    return out + [Command("rename", (left,), (right,)) for left, right in _last_word_splits(rest)[::-1]]


def gen_assign(rest: str) -> list[Command]:
    """'assign Launch to Sam': the owner."""
    return [_set(left, "owner", right) for left, _, right in splits(rest, _TO_SEPS)]


_ITS: Final = re.compile(r"^(it|that|this)'s ", re.I)
_KEY_IS: Final = re.compile(rf"(?:the )?({_KNOWN_KEYS}) (?:of|for) (.+?) (?:is|should be) (.+)", re.I)
_IS: Final = re.compile(r"(.+?) (?:is|are) (?:now )?(?:marked )?(?:as )?(.+)", re.I)
_DUE: Final = re.compile(r"due (?:on |by )?(.+)", re.I)


def statement(clause: str) -> list[Command]:
    """'Build is done', 'Design is high priority', 'Launch is due 2025-03-01': a clause without a verb."""
    clause = _ITS.sub(r"\1 is ", clause)  # "it's done"
    keyed = _KEY_IS.fullmatch(clause)  # the due date for Launch is 2025-06-01
    if keyed:
        return [_set(keyed.group(2), keyed.group(1), keyed.group(3))]
    m = _IS.fullmatch(clause)
    if not m:
        return []
    due = _DUE.fullmatch(m.group(2))
    if due:
        return [Command("set", (m.group(1),), (due.group(1),), key="due_date")]
    cmd = _level_or_status(m.group(1), m.group(2))
    return [cmd] if cmd else []


def _set(name: str, key: str, value: str) -> Command:
    if key.lower() in NAMEKEYS:
        return Command("rename", (name,), (value,))
    if key.lower() == "status":
        value = status_value(value)
    return Command("set", (name,), (value,), key=key)


_LEVEL_TAIL: Final = re.compile(rf"(?:an? )?({LEVEL})(?: priority|-priority)|priority ({LEVEL})", re.I)
_STATUS_WORD: Final = re.compile(STATUS_RE, re.I)


def _level_or_status(name: str, tail: str) -> Command | None:
    """'high priority' / 'done': the value forms that need no key."""
    level = _LEVEL_TAIL.fullmatch(tail)
    if level:
        return Command("set", (name,), ((level.group(1) or level.group(2)).lower(),), key="priority")
    if _STATUS_WORD.fullmatch(tail):
        return Command("set", (name,), (status_value(tail),), key="status")
    return None


# Without "to", only a value that can't be the start of something else: a level, a status.
_KEY_VALUE: Final = re.compile(rf"(.+?) (?:(priority) ({LEVEL})|(status) ({STATUS_RE}))", re.I)
_KEY_OF_FOR: Final = re.compile(rf"(?:an? |the )?({_KNOWN_KEYS}) (?:of|to) (.+?) (?:for|on|to) (.+)", re.I)
_POSSESSIVE_KEY: Final = re.compile(rf"(.+?)(?:'s|s') ({KEY}) ?(?: to | as |=|: ?)(.+)", re.I)
_ITS_KEY: Final = re.compile(rf"(its|their) ({KEY}) ?(?: to | as |=|: ?)(.+)", re.I)
_KEY_OF: Final = re.compile(rf"(?:the )?({KEY}) (?:of|for|on) (.+)", re.I)
_KEY_TO: Final = re.compile(rf"(?:the )?({KEY}) ?(?: to | as |=|: ?)(.+)", re.I)
_NAME_KEY_TO: Final = re.compile(rf"(.+) ({_KNOWN_KEYS}) (?:to|as|=) (.+)", re.I)
_KEY_WORD_FOR: Final = re.compile(rf"(?:the )?({_KNOWN_KEYS}) (\S+) (?:for|on|of) (.+)", re.I)


def gen_props(rest: str) -> list[Command]:
    out: list[Command] = []
    m = _POSSESSIVE_KEY.fullmatch(rest) or _ITS_KEY.fullmatch(rest)
    if m:
        out.append(_set(m.group(1), m.group(2), m.group(3).strip()))
    m = _KEY_OF.fullmatch(rest)
    if m:
        out += [_set(name, m.group(1), value) for name, _, value in splits(m.group(2), _RENAME_SEPS)]
    m = _KEY_TO.fullmatch(rest)
    if m:
        out += [_set(name, m.group(1), value) for value, _, name in splits(m.group(2), _ON_SEPS)]
    m = _NAME_KEY_TO.fullmatch(rest)
    if m:
        out.append(_set(m.group(1), m.group(2), m.group(3)))
    m = _KEY_WORD_FOR.fullmatch(rest)  # set priority high for X
    if m:
        out.append(_set(m.group(3), m.group(1), m.group(2)))
    m = _KEY_OF_FOR.fullmatch(rest)  # set a deadline of 2025-06-01 for Launch
    if m:
        out.append(_set(m.group(3), m.group(1), m.group(2)))
    m = _KEY_VALUE.fullmatch(rest)  # set Launch priority high
    if m:
        out.append(_set(m.group(1), m.group(2) or m.group(4), m.group(3) or m.group(5)))
    for left, _, right in splits(rest, _TO_AS_SEPS):
        if (cmd := _level_or_status(left, right)) is not None:
            out.append(cmd)
    return out


def gen_set(rest: str) -> list[Command]:
    return gen_props(rest)


_GIVE_KEY_OF: Final = re.compile(rf"(.+?) (?:an? |the )?({KEY}) of (.+)", re.I)


def gen_give(rest: str) -> list[Command]:
    """'give Design high priority' / 'give Design a priority of high'."""
    out = gen_props(rest)
    m = _GIVE_KEY_OF.fullmatch(rest)
    if m:
        out.append(_set(m.group(1), m.group(2), m.group(3)))
    for left, right in _last_word_splits(rest):
        if (cmd := _level_or_status(left, right)) is not None:
            out.append(cmd)
    return out


def gen_change(rest: str) -> list[Command]:
    return gen_props(rest) + gen_rename(rest)


_MARK_TAIL: Final = re.compile(rf"(.+) ({STATUS_RE}|{LEVEL} priority)", re.I)


def gen_mark(rest: str) -> list[Command]:
    out: list[Command] = []
    for left, _, right in splits(rest, _AS_SEPS):
        out.append(_level_or_status(left, right) or Command("set", (left,), (status_value(right),), key="status"))
    m = _MARK_TAIL.fullmatch(rest)
    if m and (cmd := _level_or_status(m.group(1), m.group(2))) is not None:
        out.append(cmd)
    return out


def gen_complete(rest: str) -> list[Command]:
    return [Command("set", (rest,), ("done",), key="status")]


def gen_uncheck(rest: str) -> list[Command]:
    return [Command("set", (rest,), ("todo",), key="status")]


_UNSET_KEY_OF: Final = re.compile(rf"(?:the )?({KEY}) (?:property |prop |field )?(of|on|from|for) (.+)", re.I)
_UNSET_POSSESSIVE: Final = re.compile(rf"(.+?)(?:'s|s') ({KEY})(?: property| prop| field)?", re.I)
_UNSET_ITS: Final = re.compile(rf"(its|their) ({KEY})(?: property| prop| field)?", re.I)


def gen_unset(rest: str) -> list[Command]:
    out: list[Command] = []
    m = _UNSET_KEY_OF.fullmatch(rest)
    if m:
        out.append(Command("unset", (m.group(3),), key=m.group(1), where=m.group(2).lower()))
    m = _UNSET_POSSESSIVE.fullmatch(rest) or _UNSET_ITS.fullmatch(rest)
    if m:
        out.append(Command("unset", (m.group(1),), key=m.group(2)))
    return out


# ------------------------------------------------------------- structure


_CHILDREN_OF: Final = re.compile(
    r"(?:all )?(?:of )?(?:the )?(?:children|subnodes|subtasks|tasks|items|nodes|entries|contents|everything|all) "
    r"(?:of|under|in|inside|from) (.+)",
    re.I,
)
_WITH_ITS_KIDS: Final = re.compile(
    r" (?:and|with|including) (?:all )?(?:of )?(?:its|their) (?:children|subtasks|contents|kids)$", re.I
)
_OUT: Final = re.compile(r"^out ", re.I)


def _children_of(rest: str) -> str | None:
    m = _CHILDREN_OF.fullmatch(rest)
    return m.group(1) if m else None


def gen_remove(rest: str) -> list[Command]:
    rest = _WITH_ITS_KIDS.sub("", rest)
    inner = _children_of(rest)
    if inner is not None:
        return [Command("clear", (inner,))]
    out = [Command("delete", (rest,))]
    items = split_list(rest)
    if len(items) > 1:
        out.append(Command("delete", tuple(items)))
    out += [Command("delete_from", (left, right)) for left, _, right in splits(rest, _FROM_SEPS)]
    return out + gen_unset(rest)


def gen_clear(rest: str) -> list[Command]:
    inner = _children_of(rest)
    if inner is not None:
        return [Command("clear", (inner,))]
    return [*gen_unset(rest), Command("clear", (_OUT.sub("", rest),))]


_TOWARD_TOP: Final = re.compile(r"top|start|beginning|front|first")
_SHIFT: Final = re.compile(
    r"(.+?) (up|down|to the (?:very )?(?:top|start|beginning|front|first position)|"
    r"to the (?:very )?(?:bottom|end|last position)|first|last)"
    r"(?: (?:by )?(?:one|a|1)(?: (?:place|step|spot|position|row|line))?)?",
    re.I,
)
_OUT_OF: Final = re.compile(r"(.+?) (?:out of|up a level from|up one level from) (.+)", re.I)
_ONE_LEVEL: Final = re.compile(r" (?:one level|a level)$", re.I)
_SWAP: Final = re.compile(r"(.+?) (?:and|with) (.+)", re.I)


def gen_move(rest: str) -> list[Command]:
    m = _SHIFT.fullmatch(rest)
    out: list[Command] = []
    if m:
        where = m.group(2).lower()
        if where.startswith("to "):  # "to the start", "to the last position"
            where = "first" if _TOWARD_TOP.search(where) else "last"
        out.append(Command("shift", (m.group(1),), where=where))
    out_of = _OUT_OF.fullmatch(rest)
    if out_of:
        out.append(Command("outdent", (out_of.group(1),)))
    return out + [Command("move", (left, right), where=tag) for left, tag, right in splits(rest, _MOVE_SEPS)]


def gen_outdent(rest: str) -> list[Command]:
    return [Command("outdent", (_ONE_LEVEL.sub("", rest),))]


def gen_indent(rest: str) -> list[Command]:
    return [Command("indent", (_ONE_LEVEL.sub("", rest),))]


def gen_swap(rest: str) -> list[Command]:
    m = _SWAP.fullmatch(rest)
    return [Command("swap", (m.group(1), m.group(2)))] if m else []


_PUT_AT_LEVEL: Final = re.compile(rf"(.+?) (?:on |at |to |as )?(?:an? )?({LEVEL})[ -]priority", re.I)


def gen_put(rest: str) -> list[Command]:
    level = _PUT_AT_LEVEL.fullmatch(rest)  # "put Launch on high priority" changes Launch, adds nothing
    if level:
        return [Command("set", (level.group(1),), (level.group(2).lower(),), key="priority")]
    return gen_move(rest) + gen_add(rest)


_POSSESSIVE_VALUE: Final = re.compile(rf"(.+?)(?:'s|s') ({_KNOWN_KEYS}) (?:to |as |= ?)?(.+)", re.I)
_COPY_OF: Final = re.compile(r"^(?:an? )?(?:cop(?:y|ies)|duplicates?|clones?) of ", re.I)
_CHILD_OF: Final = re.compile(
    rf"(.+?) (?:(?:an?|the) )?(first |last )?"
    rf"(?:child|sub[- ]?task|sub[- ]?node|sub[- ]?item|item|{_NOUN}) (?:of|under|in) (.+)",
    re.I,
)
_SIBLING_OF: Final = re.compile(r"(.+?) (?:a|the) (?:next )?sibling (?:of|to) (.+)", re.I)
_TOP_LEVEL: Final = re.compile(r"(.+?) (?:a )?top-level(?: node| item)?", re.I)
_A_THING: Final = re.compile(rf"(?:{_ART}|new) ", re.I)


def gen_make(rest: str) -> list[Command]:
    if _COPY_OF.match(rest):
        return gen_duplicate(rest)
    m = _CHILD_OF.fullmatch(rest)
    out: list[Command] = []
    if m:
        where = {"first ": "top", "last ": "bottom"}.get((m.group(2) or "").lower(), "in")
        out.append(Command("move", (m.group(1), m.group(3)), where=where))
    m = _POSSESSIVE_VALUE.fullmatch(rest)  # make Build's priority high
    if m:
        out.append(_set(m.group(1), m.group(2), m.group(3)))
    m = _SIBLING_OF.fullmatch(rest)
    if m:
        out.append(Command("move", (m.group(1), m.group(2)), where="after"))
    m = _TOP_LEVEL.fullmatch(rest)
    if m:
        out.append(Command("move", (m.group(1), "root"), where="in"))
    for left, _, right in splits(rest, _BE_AS_SEPS) + [(p[0], "", p[1]) for p in _last_word_splits(rest)]:
        if (cmd := _level_or_status(left, right)) is not None:
            out.append(cmd)
    if _A_THING.match(rest):
        out += gen_add(rest)
    return out


def _last_word_splits(rest: str) -> list[tuple[str, str]]:
    words = rest.split(" ")
    return [(" ".join(words[:i]), " ".join(words[i:])) for i in range(1, len(words))]


def gen_duplicate(rest: str) -> list[Command]:
    rest = _COPY_OF.sub("", rest, count=1)
    out = [Command("duplicate", (rest,))]
    out += [Command("duplicate", (left, right), where=tag) for left, tag, right in splits(rest, _MOVE_SEPS)]
    return out


_ORDER: Final = tuple(
    (re.compile(rf"(?:(.+?) )?(?:{pattern})", re.I), order)
    for pattern, order in (
        (r"alphabetically|by (?:name|title|value|text)|a-z|a to z|in alphabetical order", "name"),
        (r"z-a|z to a|reverse alphabetically|in reverse alphabetical order|by (?:name|title) descending", "-name"),
        (r"by priority", "priority"),
    )
)
_SORT_KIDS_OF: Final = re.compile(r"^(?:the )?(?:children|items|nodes|entries|subtasks|tasks) (?:of|under|in) ", re.I)
_SORT_KIDS_POSSESSIVE: Final = re.compile(r"^(.+?)(?:'s|s') (?:children|items|subtasks|entries|tasks)(?= |$)", re.I)
_SORT_BY_KEY: Final = re.compile(rf"(?:(.+?) )?by ({KEY})( descending| desc| in reverse)?", re.I)


def gen_sort(rest: str) -> list[Command]:
    rest = _SORT_KIDS_OF.sub("", rest)
    rest = _SORT_KIDS_POSSESSIVE.sub(r"\1", rest)
    out: list[Command] = []
    for pattern, order in _ORDER:
        m = pattern.fullmatch(rest)
        if m:
            out.append(Command("sort", (m.group(1) or "root",), where=order))
    m = _SORT_BY_KEY.fullmatch(rest)
    if m and not out:
        out.append(Command("sort", (m.group(1) or "root",), key=m.group(2), where="-key" if m.group(3) else "key"))
    if not out and rest and " by " not in rest:
        out.append(Command("sort", (rest,), where="name"))
    return out


def gen_alphabetize(rest: str) -> list[Command]:
    return [Command("sort", (rest or "root",), where="name")]


VERBS: Final[dict[str, Callable[[str], list[Command]]]] = {
    **dict.fromkeys(("add", "create", "insert", "append", "include"), gen_add),
    "new": gen_new,
    "start": gen_start,
    **dict.fromkeys(("rename", "retitle", "relabel"), gen_rename),
    **dict.fromkeys(("call", "name"), gen_call),
    "assign": gen_assign,
    "change": gen_change,
    **dict.fromkeys(("set", "update"), gen_set),
    "give": gen_give,
    **dict.fromkeys(("mark", "flag"), gen_mark),
    **dict.fromkeys(("complete", "finish", "check", "tick"), gen_complete),
    **dict.fromkeys(("uncheck", "untick", "reopen"), gen_uncheck),
    **dict.fromkeys(("delete", "remove", "erase", "drop", "del", "rm", "trash"), gen_remove),
    **dict.fromkeys(("unset",), gen_unset),
    **dict.fromkeys(("clear", "empty"), gen_clear),
    **dict.fromkeys(("move", "relocate", "nest", "drag", "shift"), gen_move),
    **dict.fromkeys(("put", "place"), gen_put),
    **dict.fromkeys(("outdent", "unindent", "dedent", "unnest"), gen_outdent),
    "indent": gen_indent,
    **dict.fromkeys(("swap", "switch", "exchange"), gen_swap),
    "make": gen_make,
    **dict.fromkeys(("duplicate", "copy", "clone"), gen_duplicate),
    **dict.fromkeys(("sort", "order", "reorder", "arrange"), gen_sort),
    **dict.fromkeys(("alphabetize", "alphabetise"), gen_alphabetize),
}
EXAMPLES: Final = {
    **dict.fromkeys(
        ("add", "create", "insert", "append", "include", "new", "put", "start"), "add 'Buy milk' under Shopping"
    ),
    **dict.fromkeys(("rename", "retitle", "relabel", "change", "call", "name"), "rename Tasks to Projects"),
    "assign": "assign Task 1 to Sam",
    **dict.fromkeys(("set", "update", "give"), "set priority of Task 1 to high"),
    **dict.fromkeys(
        ("mark", "flag", "complete", "finish", "check", "tick", "uncheck", "untick", "reopen"), "mark Task 1 as done"
    ),
    **dict.fromkeys(("delete", "remove", "erase", "drop", "del", "rm", "trash"), "delete Task 1"),
    "unset": "unset priority on Task 1",
    **dict.fromkeys(("clear", "empty"), "clear Project (removes its children)"),
    **dict.fromkeys(
        ("move", "relocate", "nest", "drag", "shift", "place"), "move Task 1 under Done (or: move Launch before Build)"
    ),
    "make": "make Task 1 a child of Done",
    **dict.fromkeys(("outdent", "unindent", "dedent", "unnest", "indent"), "indent Task 2 (or: outdent Task 2)"),
    **dict.fromkeys(("swap", "switch", "exchange"), "swap Build and Launch"),
    **dict.fromkeys(("duplicate", "copy", "clone"), "duplicate Task 1"),
    **dict.fromkeys(
        ("sort", "order", "reorder", "arrange", "alphabetize", "alphabetise"),
        "sort Project alphabetically (or: by priority)",
    ),
}
# Two-word verbs read as one ("check off X", "get rid of X").
_PHRASAL: Final = re.compile(r"^(check|tick|cross) off ", re.I)
_DELETE_PHRASE: Final = re.compile(r"^(?:get rid of|throw (?:away|out)|do away with) ", re.I)
_CROSS: Final = re.compile(r"^cross ", re.I)


_PHRASE_STARTS: Final = frozenset({"check", "tick", "cross", "get", "throw", "do"})


def clause_verb(clause: str) -> tuple[str, str]:
    """The clause's verb (lower case) and the rest."""
    verb, _, rest = clause.partition(" ")
    if verb.lower() in _PHRASE_STARTS or not clause.isascii():  # the phrases' first words (re.I: ASCII only)
        clause = _DELETE_PHRASE.sub("delete ", _PHRASAL.sub(r"\1 ", clause))
        clause = _CROSS.sub("check ", clause)
        verb, _, rest = clause.partition(" ")
    return verb.lower(), rest.strip()


_VERB_ALT: Final = "|".join(sorted(VERBS, key=len, reverse=True))
_CLAUSE_SEP: Final = re.compile(
    rf"(?:,? and then|, then|;|\.|, after that|, afterwards) |"
    rf"(?:,? then|,? and also|,? and|,? also|,) (?=(?:please )?(?:{_VERB_ALT}|undo|redo)\b)",
    re.I,
)


_PROPS: Final = (
    rf"(?:an? |the )?(?:({LEVEL}) priority|priority (?:of )?({LEVEL})|status (?:of )?({STATUS_RE})|"
    r"due (?:date )?(?:of |on |by )?(\S+))"
)
_WITH_PROP: Final = re.compile(rf"(.+?),? with {_PROPS}", re.I)
# An add needs no "with": "add Fix bug, high priority", "add QA (high priority)", "add Taxes due friday".
_TRAILING_PROP: Final = re.compile(
    rf"((?:add|create|insert|new|append) .+?)(?:, | - | \(| (?:at|on|as) | ){_PROPS}\)?", re.I
)
_WITH_KIDS: Final = re.compile(
    r"(.+ (?:under|in|to|into|inside|after|before) .+?) with (?:the )?"
    r"(?:children|subtasks|sub-tasks|items|tasks|entries|"
    r"nodes|steps|subnodes)(?: called| named)?:? (.+)",
    re.I,
)


_SETS: Final = re.compile(r"(?:set|change|update) ", re.I)
_AND_KEY_TO: Final = re.compile(rf"(.+?),? and (?:its |the |their )?({_KNOWN_KEYS}) (?:to|as|=) (.+)", re.I)
_ADDS: Final = re.compile(r"(?:add|create|insert|new|make|put|append) ", re.I)


def _with_parts(clause: str) -> list[str]:
    """'add Fix bug under Project with high priority' → the add, then 'set its priority to high';
    'set X's priority to high and due date to friday' → two sets."""
    if _SETS.match(clause):
        more = _AND_KEY_TO.fullmatch(clause)
        return [more.group(1), f"set its {more.group(2)} to {more.group(3)}"] if more else [clause]
    if not _ADDS.match(clause):
        return [clause]
    low = folded(clause)  # each form below needs one of these words
    if low is not None and "with" not in low and "priority" not in low and "status" not in low and "due" not in low:
        return [clause]
    m = _WITH_PROP.fullmatch(clause) or _TRAILING_PROP.fullmatch(clause)
    if m:
        level, level2, status, due = m.group(2), m.group(3), m.group(4), m.group(5)
        then = (
            f"set its priority to {level or level2}"
            if level or level2
            else f"mark it as {status}"
            if status
            else f"set its due date to {due}"
        )
        return [m.group(1), then]
    m = _WITH_KIDS.fullmatch(clause)
    if m:
        return [m.group(1), f"add {m.group(2)} under it"]
    return [clause]


# A second command with its verb left out: "rename A to B and C to D", "add A under B and C under D",
# "set priority of A to high and B to low" (the second clause gets the first one's words before the name).
_ELIDED: Final = (
    re.compile(r"((rename) .+? (?:to|into) .+?)(?:,? and|,) (.+? (?:to|into) .+)", re.I),
    re.compile(r"(((?:add|create|insert)) .+? under .+?)(?:,? and|,) (.+? under .+)", re.I),
    re.compile(rf"(((?:set|change|update) (?:the )?{KEY} (?:of|for|on)) .+? to .+?)(?:,? and|,) (.+? to .+)", re.I),
)


def _elided(clause: str) -> list[str]:
    if " and " not in clause and "," not in clause:
        return [clause]
    for pattern in _ELIDED:
        m = pattern.fullmatch(clause)
        if m:
            return [m.group(1), *_elided(f"{m.group(2)} {m.group(3)}")]
    return [clause]


def clauses(masked: str) -> list[str]:
    """The prompt's clauses: split before every "and <verb>" / "then <verb>" / "; <verb>"."""
    # A separator needs one of these; `masked` (Text.masked) is trimmed already, so one part stays as it is.
    low = folded(masked)  # a separator needs one of these
    if low is not None and not any(word in low for word in (",", ";", ".", "then", "and", "also")):
        parts = [masked]
    else:
        parts = [trim(p) for p in _CLAUSE_SEP.split(masked)]
    return [r for p in parts if p for q in _with_parts(p) for r in _elided(q)]

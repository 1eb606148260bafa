"""The offline assistant: plain-language tree commands, no network.

`plan()` turns one prompt into a `Plan` (reasoning steps, tree deltas, a reply)
against a snapshot of the tree; it is pure and deterministic for a given
`new_id`. `OfflineAssistant.run_turn` streams a plan through a `TurnContext`.

How a prompt is read:

1. Quoted strings ('...', "...", curly quotes) are replaced by placeholders, so
   words inside them are never taken for keywords; polite padding ("please",
   "can you") and trailing punctuation are dropped.
2. The first word picks the intent (add, rename, set, remove, move, ...).
3. The rest is split at every keyword that could separate its parts ("A to B to
   C" gives two readings). Each reading is a `_Cand` naming the node references
   it needs; the first reading whose references all exist in the tree wins, so
   unquoted multi-word names work ("add Buy milk under Shopping list").
4. The chosen reading is resolved (unknown → "not found" with suggestions,
   several matches → a question listing each candidate) and turned into deltas.
"""

from __future__ import annotations

import asyncio
import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from canopy.assistant.base import TurnContext
from canopy.tree import ROOT_ID, DeltaError, Tree

MAX_VALUE_LENGTH = 500
MAX_NODES_PER_COMMAND = 50
MAX_LISTED = 10
MAX_READINGS = 24  # readings of one prompt that are tried against the tree

# ---------------------------------------------------------------- the plan


@dataclass
class Plan:
    reasoning: list[str]
    deltas: list[dict[str, Any]]
    reply: str
    undo: bool = False


class _Stop(Exception):
    """Ends planning early with a reply and no deltas."""

    def __init__(self, reply: str, *steps: str) -> None:
        super().__init__(reply)
        self.reply = reply
        self.steps = list(steps)


HELP_TEXT = (
    "I'm the offline assistant, so I understand plain commands like these:\n"
    "- add 'A', 'B' and 'C' under Tasks (or: add X at the top of Tasks)\n"
    "- rename Tasks to Projects\n"
    "- set priority of Task 1 to high (or: remove the priority of Task 1)\n"
    "- move Task 1 under Done (or: to the top of Done)\n"
    "- delete Task 1 (or: remove Task 1 from Tasks)\n"
    "- undo, clear the tree, show the tree\n"
    "Names match node values (any case) or ids; put a value in quotes when it "
    "contains words like 'to' or 'under'."
)

# ------------------------------------------------------------ prompt text

_OPEN, _CLOSE = "\ue000", "\ue001"
_PH_RE = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
_QUOTE_RE = re.compile(r"""(?<!\w)'([^'\n]*)'(?!\w)|"([^"\n]*)\"""")
# Curly quotes read as straight ones; the placeholder marks can't come from the user.
_CURLY = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', _OPEN: None, _CLOSE: None})
_LEAD_RE = re.compile(
    r"^(?:(?:please|pls|kindly|hey|ok(?:ay)?|now|then|also|and|so|"
    r"(?:can|could|would|will) you|i (?:want|need|would like) to|i'd like to|let's|lets|go ahead and)"
    r"[\s,]+)+",
    re.I,
)
_TRAILERS = ("please", "pls", "for me", "thanks", "thank you")


class _Text:
    """The prompt with quoted strings masked as placeholders."""

    def __init__(self, prompt: str) -> None:
        self.quotes: list[tuple[str, str]] = []
        masked = _QUOTE_RE.sub(self._mask, prompt.translate(_CURLY))
        masked = re.sub(r"\s+", " ", masked).strip().lstrip("/")
        previous = None
        while previous != masked:
            previous = masked
            masked = _LEAD_RE.sub("", masked).rstrip(" .!?,")
            for word in _TRAILERS:
                head = masked[: -len(word)]
                if (
                    masked.lower().endswith(word)
                    and head.endswith((" ", ","))
                    and head.strip(" ,").lower() not in _VERBS
                ):
                    masked = head.rstrip(" ,")
        self.masked = masked

    def _mask(self, match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        self.quotes.append((match.group(0), inner))
        return f"{_OPEN}{len(self.quotes) - 1}{_CLOSE}"

    def restore(self, part: str) -> str:
        return _PH_RE.sub(lambda m: self.quotes[int(m.group(1))][0], part)

    def literal(self, part: str) -> tuple[str, bool]:
        """The text a part stands for, and whether it was one quoted string."""
        part = part.strip()
        whole = _PH_RE.fullmatch(part)
        if whole:
            return self.quotes[int(whole.group(1))][1], True
        text = self.restore(part).strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]
        return text, False


def _splits(text: str, seps: list[tuple[str, str]]) -> list[tuple[str, str, str]]:
    """Every way to cut `text` at one separator: (left, tag, right), by position, longest first."""
    found: list[tuple[int, int, str, str, str]] = []
    for pattern, tag in seps:
        for m in re.finditer(rf" (?:{pattern})(?= )", text, re.I):
            left, right = text[: m.start()].strip(), text[m.end() :].strip()
            if left and right:
                found.append((m.start(), m.start() - m.end(), left, tag, right))
    found.sort(key=lambda f: (f[0], f[1]))
    return [(left, tag, right) for _, _, left, tag, right in found]


def _split_list(text: str) -> list[str]:
    parts = re.split(r"\s*,\s*(?:and\s+)?|\s+and\s+|\s+&\s+|\s*;\s*", text, flags=re.I)
    return [p for p in (part.strip() for part in parts) if p]


def _quote(value: str, limit: int = 80) -> str:
    mark = '"' if "'" in value and '"' not in value else "'"
    return mark + (value if len(value) <= limit else value[: limit - 1] + "\u2026") + mark


def _join(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# ------------------------------------------------------------- intents

_UNDO_RE = re.compile(
    r"(?:undo|revert|go back)(?: (?:that|it|this|the last (?:change|step|edit|action|turn)|last change))?", re.I
)
_CLEAR_RE = re.compile(
    r"(?:clear|reset|empty|wipe)(?: out)?(?: (?:the )?(?:(?:whole|entire) )?(?:tree|everything|all|canvas))?"
    r"|(?:delete|remove|clear) (?:everything|all(?: (?:the )?nodes)?|all of it)|start over",
    re.I,
)
_HELP_RE = re.compile(
    r"help|\?|commands|usage|what (?:can|do) you (?:do|understand|know)|how does (?:this|it) work", re.I
)
_GREET_RE = re.compile(r"(?:hi|hello|hey|hallo|good (?:morning|afternoon|evening))(?: there)?", re.I)
_SHOW_RE = re.compile(
    r"(?:show|list|print|display|describe|summari[sz]e)(?: me)?(?: (?:the|all|my))?"
    r"(?: (?:tree|nodes|items|everything))?|what(?:'s| is) in the tree",
    re.I,
)

_NOUN = r"(?:(?:node|item|entry|element|child|task|subnode|value)s?|children|entries)"
_ART = r"(?:a|an|one|some|the|two|three|four|five|\d+)"
_ADD_PREFIXES = [
    rf"(?:{_ART} )?(?:new )?(?:child )?{_NOUN} (?:with )?(?:the )?(?:values?|names?|titles?|labels?|texts?):? ",
    rf"(?:{_ART} )?(?:new )?(?:child )?{_NOUN} (?:called|named|titled|labell?ed|saying):? ",
    rf"{_ART} (?:new )?(?:child )?{_NOUN}:? ",
    rf"new (?:child )?{_NOUN}:? ",
    r"(?:nodes?|items?|entry|entries):? ",
    r"(?:with )?(?:the )?(?:values?|names?):? ",
]
_ADD_SEPS = [
    (r"(?:at|to) the (?:top|start|beginning|front) of|as (?:the )?first (?:child|item|node) (?:of|under|in)", "top"),
    (r"(?:at|to) the (?:bottom|end) of|as (?:the )?last (?:child|item|node) (?:of|under|in)", "bottom"),
    (r"as (?:an? )?(?:child|children|subnode|subnodes|item|items) (?:of|under|in|to)", ""),
    (r"under(?:neath)?|beneath|below|into|inside(?: of)?|within|in|to|onto|on", ""),
]
_MOVE_SEPS = [*_ADD_SEPS[:3], (r"under(?:neath)?|beneath|below|into|inside(?: of)?|within|in|to|onto", "")]
_RENAME_SEPS = [(r"to|as|into|=", "")]
_FROM_SEPS = [(r"from|under|in|inside", "")]
_ON_SEPS = [(r"on|for|of", "")]
_NAME_KEYS = {"value", "name", "title", "label", "text"}
_KEY = rf"(?:{_OPEN}\d+{_CLOSE}|[a-z_][\w.-]*(?: [a-z_][\w.-]*){{0,2}}?)"
_KEY_OK = re.compile(r"[a-z_][a-z0-9_.-]{0,63}")
_ROOT_WORDS = {"root", "the root", "root node", "the root node", "top level", "the top level"}
_REF_TRIM = re.compile(r"(?:the )?(?:(?:node|item|entry|element) )?(.+?)(?: (?:node|item|entry|element))?", re.I)


@dataclass
class _Cand:
    """One reading of a prompt: an action and the node references it needs."""

    action: str
    refs: tuple[str, ...]
    values: tuple[str, ...] = ()
    key: str = ""
    where: str = ""
    hint: str = ""


def _gen_add(rest: str) -> list[_Cand]:
    for prefix in _ADD_PREFIXES:
        stripped = re.sub(rf"^{prefix}(?=\S)", "", rest, count=1, flags=re.I)
        if stripped != rest:
            rest = stripped
            break
    hint = "" if _PH_RE.search(rest) else rest
    cands = [
        _Cand("add", (right,), tuple(_split_list(left)), where=tag, hint=hint)
        for left, tag, right in _splits(rest, _ADD_SEPS)[::-1][:MAX_READINGS]
    ]
    return cands or [_Cand("add", (), tuple(_split_list(rest)))]


def _gen_new(rest: str) -> list[_Cand]:
    return _gen_add(re.sub(rf"^(?:child )?{_NOUN}:? (?=\S)", "", rest, count=1, flags=re.I))


def _gen_rename(rest: str) -> list[_Cand]:
    names = "(?:value|name|title|label|text)"
    rest = re.sub(rf"^(?:the )?{names} of ", "", rest, count=1, flags=re.I)
    possessive = re.fullmatch(rf"(.+?)'s {names} (?:to|as|=) (.+)", rest, re.I)
    if possessive:
        return [_Cand("rename", (possessive.group(1),), (possessive.group(2),))]
    return [_Cand("rename", (left,), (right,)) for left, _, right in _splits(rest, _RENAME_SEPS)]


def _set_cand(name: str, key: str, value: str) -> _Cand:
    if key.lower() in _NAME_KEYS:
        return _Cand("rename", (name,), (value,))
    return _Cand("set", (name,), (value,), key=key)


def _gen_props(rest: str) -> list[_Cand]:
    cands: list[_Cand] = []
    m = re.fullmatch(rf"(.+?)'s ({_KEY}) ?(?: to | as |=|: ?)(.+)", rest, re.I)
    if m:
        cands.append(_set_cand(m.group(1), m.group(2), m.group(3).strip()))
    m = re.fullmatch(rf"(?:the )?({_KEY}) (?:of|for|on) (.+)", rest, re.I)
    if m:
        for name, _, value in _splits(m.group(2), _RENAME_SEPS):
            cands.append(_set_cand(name, m.group(1), value))
    m = re.fullmatch(rf"(?:the )?({_KEY}) ?(?: to | as |=|: ?)(.+)", rest, re.I)
    if m:
        for value, _, name in _splits(m.group(2), _ON_SEPS):
            cands.append(_set_cand(name, m.group(1), value))
    return cands


def _gen_set(rest: str) -> list[_Cand]:
    return _gen_props(rest) + _gen_rename(rest)


def _gen_change(rest: str) -> list[_Cand]:
    return _gen_rename(rest) + _gen_props(rest)


def _gen_mark(rest: str) -> list[_Cand]:
    cands = [_Cand("set", (left,), (right,), key="status") for left, _, right in _splits(rest, [("as", "")])]
    m = re.fullmatch(r"(.+) (done|complete|completed|finished|todo|open|blocked|in progress)", rest, re.I)
    if m:
        cands.append(_Cand("set", (m.group(1),), (m.group(2),), key="status"))
    return cands


def _gen_unset(rest: str) -> list[_Cand]:
    cands: list[_Cand] = []
    m = re.fullmatch(rf"(?:the )?({_KEY}) (?:property |prop |field )?(of|on|from|for) (.+)", rest, re.I)
    if m:
        cands.append(_Cand("unset", (m.group(3),), key=m.group(1), where=m.group(2).lower()))
    m = re.fullmatch(rf"(.+?)'s ({_KEY})(?: property| prop| field)?", rest, re.I)
    if m:
        cands.append(_Cand("unset", (m.group(1),), key=m.group(2)))
    return cands


def _gen_remove(rest: str) -> list[_Cand]:
    cands = [_Cand("delete", (rest,))]
    items = _split_list(rest)
    if len(items) > 1:
        cands.append(_Cand("delete", tuple(items)))
    cands += [_Cand("delete_from", (left, right)) for left, _, right in _splits(rest, _FROM_SEPS)]
    return cands + _gen_unset(rest)


def _gen_move(rest: str) -> list[_Cand]:
    return [_Cand("move", (left, right), where=tag) for left, tag, right in _splits(rest, _MOVE_SEPS)]


def _gen_put(rest: str) -> list[_Cand]:
    return _gen_move(rest) + _gen_add(rest)


_VERBS: dict[str, Callable[[str], list[_Cand]]] = {
    **dict.fromkeys(("add", "create", "insert", "append"), _gen_add),
    "new": _gen_new,
    **dict.fromkeys(("rename", "retitle", "relabel"), _gen_rename),
    "change": _gen_change,
    **dict.fromkeys(("set", "update"), _gen_set),
    "mark": _gen_mark,
    **dict.fromkeys(("delete", "remove", "erase", "drop", "del", "rm"), _gen_remove),
    **dict.fromkeys(("unset", "clear"), _gen_unset),
    **dict.fromkeys(("move", "relocate"), _gen_move),
    "put": _gen_put,
}
_EXAMPLES = {
    **dict.fromkeys(("add", "create", "insert", "append", "new", "put"), "add 'Buy milk' under Shopping"),
    **dict.fromkeys(("rename", "retitle", "relabel", "change"), "rename Tasks to Projects"),
    **dict.fromkeys(("set", "update"), "set priority of Task 1 to high"),
    "mark": "mark Task 1 as done",
    **dict.fromkeys(("delete", "remove", "erase", "drop", "del", "rm"), "delete Task 1"),
    **dict.fromkeys(("unset", "clear"), "unset priority on Task 1"),
    **dict.fromkeys(("move", "relocate"), "move Task 1 under Done"),
}


def _scalar(text: str, quoted: bool) -> str | int | float | bool | None:
    if quoted:
        return text
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("null", "none", "nothing"):
        return None
    if re.fullmatch(r"-?\d{1,15}", text):
        return int(text)
    if re.fullmatch(r"-?\d{1,15}\.\d{1,15}", text):
        return float(text)
    return text


# ------------------------------------------------------------- the planner


class _Planner:
    def __init__(self, prompt: str, tree: Tree, new_id: Callable[[], str]) -> None:
        self.text = _Text(prompt)
        self.tree = tree
        self._new_id = new_id
        self._issued: set[str] = set()
        self._by_value: dict[str, list[str]] | None = None
        self._order: dict[str, int] = {}
        self.steps: list[str] = []

    def plan(self) -> Plan:
        try:
            return self._dispatch()
        except _Stop as stop:
            return Plan(self.steps + stop.steps, [], stop.reply)

    def _dispatch(self) -> Plan:
        masked = self.text.masked
        if _UNDO_RE.fullmatch(masked):
            steps = ["Parsing prompt: action 'undo'.", "Reverting the last change set."]
            return Plan(steps, [], "Undid the last change.", undo=True)
        if _CLEAR_RE.fullmatch(masked):
            return self._clear()
        if _SHOW_RE.fullmatch(masked):
            return self._show()
        greeting = _GREET_RE.fullmatch(masked)
        if greeting or _HELP_RE.fullmatch(masked) or not masked:
            intro = "Hello! " if greeting else ""
            return Plan(["Parsing prompt: a request for help."], [], intro + HELP_TEXT)
        verb, _, rest = masked.partition(" ")
        generate = _VERBS.get(verb.lower())
        cands = generate(rest) if generate and rest else []
        if not cands:
            return self._unsupported(verb.lower() if generate else "")
        return self._build(self._choose(cands))

    @staticmethod
    def _unsupported(verb: str) -> Plan:
        if verb:
            steps = [f"Parsing prompt: action '{verb}', but the rest of the command is incomplete."]
            reply = f"I understood '{verb}', but not the rest. Try: {_EXAMPLES.get(verb, _EXAMPLES['add'])}."
            return Plan(steps, [], reply)
        steps = ["Parsing prompt: no supported command recognised.", "Answering with what I can do."]
        return Plan(steps, [], "Sorry, I can't do that. " + HELP_TEXT)

    # ---------------------------------------------------------- resolution

    def _lookup(self, ref: str) -> list[str]:
        name, quoted = self.text.literal(ref)
        if not quoted and name.lower() in _ROOT_WORDS:
            return [ROOT_ID]
        names = [name]
        trimmed = _REF_TRIM.fullmatch(name)
        if not quoted and trimmed and trimmed.group(1) != name:
            names.append(trimmed.group(1))
        for candidate in names:
            ids = self._find(candidate)
            if ids:
                return ids
        return []

    def _find(self, name: str) -> list[str]:
        """`Tree.find` semantics over an index built once per plan, so trying many readings stays O(tree)."""
        if self._by_value is None:
            self._by_value = {}
            for position, node_id in enumerate(self.tree.iter_ids()):
                self._order[node_id] = position
                self._by_value.setdefault(self.tree.value(node_id).strip().casefold(), []).append(node_id)
        if not name.strip():
            return []
        ids = list(self._by_value.get(name.strip().casefold(), ()))
        ids += [n for n in dict.fromkeys((name, name.strip())) if n in self._order and n not in ids]
        return sorted(ids, key=self._order.__getitem__)

    def _choose(self, cands: list[_Cand]) -> _Cand:
        """The first reading whose references all exist, else the one with most found."""
        best, best_score = cands[0], -1
        for cand in cands[:MAX_READINGS]:
            score = sum(1 for ref in cand.refs if self._lookup(ref))
            if score == len(cand.refs):
                return cand
            if score > best_score:
                best, best_score = cand, score
        return best

    def _resolve(self, ref: str, hint: str = "") -> str:
        name = self.text.literal(ref)[0]
        ids = self._lookup(ref)
        if len(ids) == 1:
            self.steps.append(f"Resolved {_quote(name)} to {self.tree.path(ids[0])}.")
            return ids[0]
        if ids:
            raise self._ambiguous(name, ids)
        raise self._not_found(name, hint)

    def _ambiguous(self, name: str, ids: list[str]) -> _Stop:
        listed = [f"{self._shown_path(i)} (id {i})" for i in ids[:MAX_LISTED]]
        more = f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
        reply = (
            f"There are {len(ids)} nodes named {_quote(name)}: {'; '.join(listed)}{more}. "
            f"Which one do you mean? You can refer to a node by its id, e.g. {_quote(ids[0])}."
        )
        paths = ", ".join(self.tree.path(i) for i in ids[:MAX_LISTED])
        return _Stop(reply, f"{_quote(name)} matches {len(ids)} nodes: {paths}.", "Asking which one is meant.")

    def _not_found(self, name: str, hint: str) -> _Stop:
        values = {self.tree.value(i).lower(): self.tree.value(i) for i in self.tree.iter_ids()}
        close = difflib.get_close_matches(name.lower(), list(values), n=3, cutoff=0.6)
        reply = f"I couldn't find a node named {_quote(name)}."
        if close:
            reply += f" Did you mean {_join([_quote(values[c]) for c in close], 'or')}?"
        if hint:
            reply += (
                " If that was meant to be part of the new value, put the value in quotes, "
                f'e.g. add "{self.text.restore(hint)}".'
            )
        return _Stop(reply, f"Looking up {_quote(name)}: no node has that value or id.")

    def _shown_path(self, node_id: str) -> str:
        chain = [node_id]
        while (parent := self.tree.parent(chain[-1])) is not None:
            chain.append(parent)
        return " \u203a ".join(self.tree.value(i) for i in reversed(chain))

    def _shown(self, node_id: str) -> str:
        return "the root" if node_id == ROOT_ID else _quote(self.tree.value(node_id))

    def _is_inside(self, node_id: str, ancestor: str) -> bool:
        current: str | None = node_id
        while current is not None:
            if current == ancestor:
                return True
            current = self.tree.parent(current)
        return False

    def _descendants(self, node_id: str) -> int:
        stack, count = list(self.tree.children(node_id)), 0
        while stack:
            count += 1
            stack.extend(self.tree.children(stack.pop()))
        return count

    # ------------------------------------------------------------- building

    def _build(self, cand: _Cand) -> Plan:
        builders: dict[str, Callable[[_Cand], tuple[list[dict[str, Any]], str]]] = {
            "add": self._add,
            "rename": self._rename,
            "set": self._set,
            "unset": self._unset,
            "delete": self._delete,
            "delete_from": self._delete_from,
            "move": self._move,
        }
        deltas, reply = builders[cand.action](cand)
        if deltas:
            self.steps.append(f"Generating {_plural(len(deltas), 'tree delta')}.")
        return Plan(self.steps, deltas, reply)

    def _value(self, raw: str) -> str:
        text = self.text.literal(raw)[0].strip()
        if not 1 <= len(text) <= MAX_VALUE_LENGTH:
            raise _Stop(
                f"A node value must be 1 to {MAX_VALUE_LENGTH} characters long "
                f"(got {_plural(len(text), 'character')}).",
                "Rejecting a value of invalid length.",
            )
        return text

    def _fresh_id(self) -> str:
        node_id = self._new_id()
        for attempt in range(1, 1000):
            if node_id not in self._issued and node_id not in self.tree:
                break
            node_id = self._new_id() if attempt < 100 else f"{node_id}-{attempt}"
        self._issued.add(node_id)
        return node_id

    def _add(self, cand: _Cand) -> tuple[list[dict[str, Any]], str]:
        target = self.text.literal(cand.refs[0])[0] if cand.refs else "root (default)"
        self.steps.append(
            f"Parsing prompt: action 'add', {_plural(len(cand.values), 'value')}, target {_quote(target)}."
        )
        if len(cand.values) > MAX_NODES_PER_COMMAND:
            raise _Stop(f"I can add at most {MAX_NODES_PER_COMMAND} nodes in one command.")
        values = [self._value(v) for v in cand.values]
        parent = self._resolve(cand.refs[0], cand.hint) if cand.refs else ROOT_ID
        if not cand.refs:
            self.steps.append(f"No parent given: using the root ({self.tree.path(ROOT_ID)}).")
        deltas: list[dict[str, Any]] = []
        for position, value in enumerate(values):
            delta: dict[str, Any] = {
                "action": "add",
                "path": f"{self.tree.path(parent)}/children",
                "node": {"id": self._fresh_id(), "value": value, "children": []},
            }
            if cand.where == "top":
                delta["index"] = position
            deltas.append(delta)
        place = {"top": "at the top of", "bottom": "at the bottom of"}.get(cand.where, "under")
        return deltas, f"Added {_join([_quote(v) for v in values])} {place} {self._shown(parent)}."

    def _rename(self, cand: _Cand) -> tuple[list[dict[str, Any]], str]:
        name, new = (self.text.literal(part)[0] for part in (cand.refs[0], cand.values[0]))
        self.steps.append(f"Parsing prompt: action 'rename', target {_quote(name)}, new value {_quote(new)}.")
        value = self._value(cand.values[0])
        node = self._resolve(cand.refs[0])
        old = self.tree.value(node)
        delta = {"action": "update", "path": self.tree.path(node), "fields": {"value": value}}
        return [delta], f"Renamed {_quote(old)} to {_quote(value)}."

    def _key(self, raw: str) -> str:
        key = re.sub(r"[\s-]+", "_", self.text.literal(raw)[0].strip().lower())
        if not _KEY_OK.fullmatch(key):
            raise _Stop(
                f"{_quote(key)} is not a property name I can use: use letters, digits and underscores "
                "(up to 64 characters).",
                "Rejecting an invalid property name.",
            )
        return key

    def _set(self, cand: _Cand) -> tuple[list[dict[str, Any]], str]:
        key = self._key(cand.key)
        text, quoted = self.text.literal(cand.values[0])
        value = _scalar(text.strip(), quoted)
        if value is None:
            return self._unset(cand)
        if isinstance(value, str) and not 1 <= len(value) <= MAX_VALUE_LENGTH:
            raise _Stop(f"A property value must be 1 to {MAX_VALUE_LENGTH} characters long.")
        name = self.text.literal(cand.refs[0])[0]
        shown = _quote(value) if isinstance(value, str) else str(value).lower()
        self.steps.append(f"Parsing prompt: action 'set', property '{key}' = {shown}, target {_quote(name)}.")
        node = self._resolve(cand.refs[0])
        delta = {"action": "update", "path": self.tree.path(node), "fields": {"props": {key: value}}}
        return [delta], f"Set {key} of {self._shown(node)} to {shown}."

    def _unset(self, cand: _Cand) -> tuple[list[dict[str, Any]], str]:
        key = self._key(cand.key)
        name = self.text.literal(cand.refs[0])[0]
        self.steps.append(f"Parsing prompt: action 'unset', property '{key}', target {_quote(name)}.")
        node = self._resolve(cand.refs[0])
        if key not in self.tree.props(node) and cand.where == "from":
            raise _Stop(
                f"There is no node named {_quote(self.text.literal(cand.key)[0])} under {self._shown(node)}, "
                f"and it has no property '{key}' either."
            )
        if key not in self.tree.props(node):
            raise _Stop(f"{_cap(self._shown(node))} has no property '{key}', so there is nothing to remove.")
        delta = {"action": "update", "path": self.tree.path(node), "fields": {"props": {key: None}}}
        return [delta], f"Removed {key} from {self._shown(node)}."

    def _delete(self, cand: _Cand) -> tuple[list[dict[str, Any]], str]:
        names = [self.text.literal(ref)[0] for ref in cand.refs]
        self.steps.append(
            f"Parsing prompt: action 'delete', {_plural(len(names), 'target')}: {', '.join(_quote(n) for n in names)}."
        )
        return self._removal([self._resolve(ref) for ref in cand.refs])

    def _delete_from(self, cand: _Cand) -> tuple[list[dict[str, Any]], str]:
        child, parent_ref = cand.refs
        name = self.text.literal(child)[0]
        self.steps.append(
            f"Parsing prompt: action 'delete', target {_quote(name)} under {_quote(self.text.literal(parent_ref)[0])}."
        )
        parent = self._resolve(parent_ref)
        ids = [i for i in self._lookup(child) if i != parent and self._is_inside(i, parent)]
        if not ids:
            raise _Stop(f"There is no node named {_quote(name)} under {self._shown(parent)}.")
        if len(ids) > 1:
            raise self._ambiguous(name, ids)
        self.steps.append(f"Resolved {_quote(name)} to {self.tree.path(ids[0])}.")
        return self._removal(ids)

    def _removal(self, ids: list[str]) -> tuple[list[dict[str, Any]], str]:
        if ROOT_ID in ids:
            raise _Stop("The root can't be deleted. To remove everything under it, say 'clear the tree'.")
        unique = list(dict.fromkeys(ids))
        keep = [i for i in unique if not any(o != i and self._is_inside(i, o) for o in unique)]
        deltas = [{"action": "remove", "path": self.tree.path(i)} for i in keep]
        inner = sum(self._descendants(i) for i in keep)
        extra = f" (with {_plural(inner, 'node')} inside)" if inner else ""
        return deltas, f"Deleted {_join([self._shown(i) for i in keep])}{extra}."

    def _move(self, cand: _Cand) -> tuple[list[dict[str, Any]], str]:
        name, dest = (self.text.literal(ref)[0] for ref in cand.refs)
        where = f" ({cand.where})" if cand.where else ""
        self.steps.append(f"Parsing prompt: action 'move', node {_quote(name)}, destination {_quote(dest)}{where}.")
        node, target = self._resolve(cand.refs[0]), self._resolve(cand.refs[1])
        if node == ROOT_ID:
            raise _Stop("The root can't be moved.")
        if self._is_inside(target, node):
            raise _Stop(f"I can't move {self._shown(node)} into itself or one of its own descendants.")
        delta: dict[str, Any] = {
            "action": "move",
            "path": self.tree.path(node),
            "to": f"{self.tree.path(target)}/children",
        }
        if cand.where == "top":
            delta["index"] = 0
        place = {"top": "to the top of", "bottom": "to the bottom of"}.get(cand.where, "under")
        return [delta], f"Moved {self._shown(node)} {place} {self._shown(target)}."

    def _clear(self) -> Plan:
        top = list(self.tree.children(ROOT_ID))
        steps = ["Parsing prompt: action 'clear'.", f"Found {_plural(len(top), 'top-level node')} under /root."]
        if not top:
            return Plan(steps, [], "The tree is already empty.")
        deltas: list[dict[str, Any]] = [{"action": "remove", "path": self.tree.path(i)} for i in top]
        total = len(top) + sum(self._descendants(i) for i in top)
        steps.append(f"Generating {_plural(len(deltas), 'tree delta')}.")
        return Plan(steps, deltas, f"Cleared the tree: removed {_plural(total, 'node')}.")

    def _show(self) -> Plan:
        lines: list[str] = []
        stack = [(ROOT_ID, 0)]
        while stack and len(lines) < 40:
            node, depth = stack.pop()
            lines.append("  " * depth + "- " + self.tree.value(node))
            stack.extend((c, depth + 1) for c in reversed(self.tree.children(node)))
        more = "\n..." if stack else ""
        reply = f"The tree has {_plural(len(self.tree), 'node')}:\n" + "\n".join(lines) + more
        return Plan(["Parsing prompt: action 'show'.", "Reading the tree."], [], reply)


def plan(prompt: str, tree: Tree, new_id: Callable[[], str] | None = None) -> Plan:
    """Plan one turn for `prompt` against `tree`; pure and deterministic given `new_id`."""
    return _Planner(prompt, tree, new_id or tree.new_id).plan()


# ------------------------------------------------------------ streaming


def chunk_reply(reply: str, max_chunks: int = 8) -> list[str]:
    """Split a reply on word boundaries into a few chunks that concatenate to exactly `reply`."""
    words = re.findall(r"\s*\S+\s*", reply) or ([reply] if reply else [])
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
        the_plan = plan(ctx.prompt, ctx.tree)
        for step in the_plan.reasoning:
            await ctx.reasoning(step)
        reply = the_plan.reply
        if the_plan.undo:
            reply = await self._undo(ctx)
        failures: list[str] = []
        for delta in the_plan.deltas:
            try:
                await ctx.apply(delta)
            except DeltaError as exc:
                failures.append(exc.message)
        if failures:
            reply = self._partial(len(the_plan.deltas), failures)
        await ctx.debug({"provider": self.name, "deltas": len(the_plan.deltas), "failed": len(failures)})
        for i, chunk in enumerate(chunk_reply(reply)):
            if i:
                await asyncio.sleep(self.chunk_delay)
            await ctx.text(chunk)

    @staticmethod
    async def _undo(ctx: TurnContext) -> str:
        try:
            undone = await ctx.undo()
        except DeltaError as exc:
            return f"I couldn't undo the last change: {exc.message}"
        return "Undid the last change." if undone else "There is nothing to undo."

    @staticmethod
    def _partial(total: int, failures: list[str]) -> str:
        reasons = "; ".join(dict.fromkeys(failures)).rstrip(".") + "."
        if len(failures) == total:
            return f"I couldn't change the tree: {reasons}"
        return f"I applied {total - len(failures)} of {total} changes; the others failed: {reasons}"

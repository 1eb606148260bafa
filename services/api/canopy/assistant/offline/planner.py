"""The planner: readings checked against the tree, turned into deltas, a reply and reasoning steps.

`plan()` is pure and deterministic for a given `new_id`. Clauses are planned one after another on
the tree itself, so a later clause sees what an earlier one did ("add Research under Project and set
its priority to low"); every change is reverted before `plan()` returns. Planning never awaits, so
nothing else sees the trial changes, and a turn costs what it changes, not a copy of the tree
(at 100k nodes a copy took most of a second of the event loop). Any clause that is not understood, or
whose node is missing or ambiguous, stops the whole plan: nothing is changed and the reply says
which part was the problem.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from typing import Any, Final

from canopy.assistant.offline import actions, forms
from canopy.assistant.offline import grammar as g
from canopy.assistant.offline.grammar import Command
from canopy.assistant.offline.result import (
    HELP_TEXT,
    MAX_LISTED,
    MAX_SHOWN_LINES,
    MAX_UNDO_STEPS,
    MAX_VALUE_LENGTH,
    Plan,
    Stop,
)
from canopy.assistant.offline.text import PLACEHOLDER, Text, cap, join, plural, quote, scalar, split_list
from canopy.tree import ROOT_ID, Change, DeltaError, Tree

_ROOT_WORDS: Final = {"root", "the root", "root node", "the root node", "top level", "the top level", "the top"}
_REF_TRIM: Final = re.compile(
    r"(?:the |my )?(?:(?:node|item|entry|element|task|list|folder|section|group|project) )?(?:(?:called|named) )?(.+?)"
    r"(?: (?:nodes?|items?|entry|entries|elements?|list|tasks?))?",
    re.I,
)
# "the tasks Build and Launch": tried last, so that "the Tasks node" is still the node 'Tasks'.
_PLURAL_LEAD: Final = re.compile(r"(?:the |my )?(?:nodes|items|tasks|entries|elements) (.+)", re.I)
_GROUP: Final = re.compile(
    r"(?:all|every|each)(?: of)?(?: the)? (?:tasks?|children|child|items?|nodes?|subtasks?|entries|entry|things)? ?"
    r"(?:in|of|under|inside|below) (.+)|everything (?:in|under|inside) (.+)",
    re.I,
)
# "all done tasks", "the high priority items in Project": nodes picked by their status or priority.
_BY_STATE: Final = re.compile(
    rf"(?:all |every |each )?(?:(?:of )?the )?({g.STATUS_RE}|{g.LEVEL}[ -]priority) "
    r"(?:tasks?|items?|nodes?|children|entries|subtasks?|things|ones)(?: (?:in|under|of|inside) (.+))?",
    re.I,
)
# A prompt that stops mid-command ("set priority of Build to high and"): the rest is missing.
_DANGLING: Final = frozenset({"and", "or", "then", "&", "plus"})
# A priority or status is one value: "high and frobnicate" holds words we did not understand.
_JOINED: Final = re.compile(r"(?:\band|,|&) ", re.I)
# "add some tasks": how many, and called what?
_SOME: Final = re.compile(r"(?:some|several|many|multiple|a bunch of|lots of|a lot of|more) (?:new )?\S+s", re.I)
# A parent that would be created from a word that names no thing: "add QA to the list" asks which list.
_NOT_A_NAME: Final = re.compile(
    r"(?:list|node|item|task|entry|parent|tree|folder|group|section|category|page|one|"
    r"(?:very )?(?:end|top|bottom|start|beginning|front)(?: of .*)?)",
    re.I,
)
_LISTY: Final = re.compile(r" and |, |\b(?:it|its|them|their|this|that)\b", re.I)
_THANKS: Final = re.compile(r"thank", re.I)
_ARTICLE: Final = re.compile(r"(?:the|my|our) (.+)", re.I)
_THE_MY: Final = re.compile(r"(?:the|my) (.+)", re.I)
_THE_MY_START: Final = re.compile(r"(?:the|my) ", re.I)
_PATH_SEP: Final = re.compile(r"\s*(?:/|>|\u203a)\s*")
_PLACED_IN: Final = re.compile(r" (?:to|in|into|on|onto|inside|within) (.+)$", re.I)
_LEVEL_PRIORITY: Final = re.compile(r"(\w+)[ -]priority", re.I)
_CORE_VERBS: Final = frozenset(
    {
        "add",
        "create",
        "rename",
        "set",
        "delete",
        "remove",
        "move",
        "mark",
        "sort",
        "duplicate",
        "copy",
        "clear",
        "unset",
    }
)
_PRIORITY_RANK: Final = {
    "critical": 0,
    "urgent": 0,
    "highest": 0,
    "top": 0,
    "high": 1,
    "medium": 2,
    "normal": 2,
    "low": 3,
    "lowest": 4,
}


class Planner:
    """Plans one prompt. Builders read the tree through `tree`, never through a reference kept across an
    `emit`: the latest emitted change is tried on the tree only when something reads it (see `emit`)."""

    def __init__(self, prompt: str, tree: Tree, new_id: Callable[[], str], recent: Sequence[str] = ()) -> None:
        self.text = Text(prompt)
        self._tree = tree
        self._new_id = new_id
        self._issued: set[str] = set()
        self._index: dict[str, list[str]] | None = None
        self._close_cache: dict[tuple[str, int], list[str]] = {}
        self._lookups: dict[tuple[str, int], list[str]] = {}
        self.steps: list[str] = []
        self.deltas: list[dict[str, Any]] = []
        self._applied: list[Change] = []
        self._pending: tuple[dict[str, Any], int] | None = None  # the latest delta, not yet tried; len(steps) then
        self._clean_reading: Command | None = None
        self.replies: list[str] = []
        self.last: list[str] = [i for i in recent if i in tree and i != ROOT_ID]

    @property
    def tree(self) -> Tree:
        """The tree with every emitted change tried on it."""
        if self._pending is not None:
            self._try_pending()
        return self._tree

    # ------------------------------------------------------------------ entry

    def plan(self) -> Plan:
        try:
            return self._dispatch()
        except Stop as stop:
            return Plan(self.steps + stop.steps, [], stop.reply)
        finally:
            self._rollback()

    def _rollback(self) -> None:
        """Takes back the trial changes, latest first: the tree and its rev are as they were."""
        self._pending = None
        while self._applied:
            change = self._applied.pop()
            self._tree.revert(change)
            self._reindex(change.inverse, change.delta)

    def _dispatch(self) -> Plan:
        masked = self.text.masked
        if masked and not forms.ANY_FORM_RE.fullmatch(masked):  # most prompts: one scan instead of six
            asked = forms.question(masked)
            return self._answer(asked) if asked is not None else self._commands(masked)
        return self._form(masked)

    def _form(self, masked: str) -> Plan:
        if undo := forms.UNDO_RE.fullmatch(masked):
            return self._history("undo", forms.steps_of(undo))
        if redo := forms.REDO_RE.fullmatch(masked):
            return self._history("redo", forms.steps_of(redo))
        if forms.CLEAR_TREE_RE.fullmatch(masked):
            return self._clear_tree()
        if forms.SHOW_RE.fullmatch(masked):
            return self._show()
        greeting = forms.GREET_RE.fullmatch(masked)
        if greeting or forms.HELP_RE.fullmatch(masked) or not masked:
            if greeting and _THANKS.match(masked):
                return Plan(
                    ["Parsing prompt: thanks."], [], "You're welcome! Ask 'what can you do?' to see what I understand."
                )
            intro = "Hello! " if greeting else ""
            return Plan(["Parsing prompt: a request for help."], [], intro + HELP_TEXT)
        asked = forms.question(masked)
        if asked is not None:
            return self._answer(asked)
        return self._commands(masked)

    def _history(self, action: str, count: int) -> Plan:
        if not 1 <= count <= MAX_UNDO_STEPS:
            raise Stop(f"I can {action} 1 to {MAX_UNDO_STEPS} changes at a time.")
        steps = [f"Parsing prompt: action '{action}', {plural(count, 'change set')}."]
        if action == "undo":
            return Plan(steps, [], "", undo=count)
        return Plan(steps, [], "", redo=count)

    def _commands(self, masked: str) -> Plan:
        last = masked.rsplit(" ", 1)[-1]
        if last.lower() in _DANGLING:
            raise Stop(
                f"Your message ends with {quote(last)}, so I think something is missing after it. Nothing was changed.",
                f"Parsing prompt: it ends with {quote(last)}; refusing to guess the rest.",
            )
        parts = g.clauses(masked)
        try:
            self._run(parts)
        except Stop:
            if len(parts) == 1:
                raise
            self._reset()
            try:  # "add Buy milk and Order pizza under X": the "and <verb>" was part of a value
                self._run([masked])
            except Stop:
                self._reset()
                self._run(parts)  # raises again, with the message of the reading meant first
        if self.deltas:
            self.steps.append(f"Generating {plural(len(self.deltas), 'tree delta')}.")
        return Plan(self.steps, self.deltas, " ".join(self.replies), touched=list(self.last))

    def _reset(self) -> None:
        self._rollback()
        self._issued, self._close_cache, self._lookups = set(), {}, {}
        self.steps, self.deltas, self.replies = [], [], []

    def _run(self, parts: list[str]) -> None:
        first_last = list(self.last)
        self.last = first_last
        for number, part in enumerate(parts):
            verb, rest = g.clause_verb(part)
            if verb in ("undo", "redo"):
                raise Stop(
                    f"I can only {verb} as a message of its own, e.g. '{verb}' or '{verb} the last 2 changes'. "
                    "Nothing was changed."
                )
            generate = g.VERBS.get(verb)
            readings = generate(rest) if generate and rest else [] if generate else g.statement(part)
            if not readings:
                raise self._not_understood(part, verb if generate else "", number, len(parts))
            try:
                self._build(self._choose(readings), last=number == len(parts) - 1)
            except Stop as stop:
                if len(parts) > 1:
                    stop.reply = f"In {quote(self.text.restore(part))}: {stop.reply} Nothing was changed."
                raise

    def _not_understood(self, part: str, verb: str, number: int, total: int) -> Stop:
        shown = quote(self.text.restore(part))
        where = f" (part {number + 1} of {total})" if total > 1 else ""
        if verb:
            more = "" if total > 1 or verb in _CORE_VERBS else f"\n{HELP_TEXT}"
            return Stop(
                f"Sorry, I understood '{verb}' but not the rest of {shown}{where}. "
                f"Try: {g.EXAMPLES.get(verb, g.EXAMPLES['add'])}. Nothing was changed.{more}",
                f"Parsing prompt: action '{verb}', but the rest of the command is incomplete.",
            )
        first = part.split(" ")[0].lower()
        close = difflib.get_close_matches(first, list(g.VERBS), n=1, cutoff=0.75)
        tip = f" Did you mean '{close[0]}', e.g. {g.EXAMPLES[close[0]]}?" if close else ""
        if total > 1:
            return Stop(
                f"Sorry, I didn't understand {shown}{where}.{tip} Nothing was changed.",
                "Parsing prompt: one part of the command is not something I know.",
            )
        return Stop(
            f"Sorry, I didn't understand {shown}.{tip} {HELP_TEXT}",
            "Parsing prompt: no supported command recognised.",
            "Answering with what I can do.",
        )

    # ---------------------------------------------------------- resolution

    def _pronoun(self, ref: str) -> bool:
        name, quoted = self.text.literal(ref)
        return not quoted and name.lower() in g.PRONOUNS

    def lookup(self, ref: str) -> list[str]:
        name, quoted = self.text.literal(ref)
        if not quoted and (low := name.lower()) in g.PRONOUNS:  # as `_pronoun`
            return list(self.last)
        if not quoted and low in _ROOT_WORDS:
            return [ROOT_ID]
        key = (ref, len(self.deltas))  # readings and builders look the same names up again
        if (known := self._lookups.get(key)) is None:
            known = self._lookups[key] = self._lookup_name(name, quoted)
        return list(known)

    def _lookup_name(self, name: str, quoted: bool) -> list[str]:
        names = [name]
        if not quoted:
            article = _ARTICLE.fullmatch(name)
            trimmed = _REF_TRIM.fullmatch(name)
            plural = _PLURAL_LEAD.fullmatch(name)
            names += [m.group(1) for m in (article, trimmed, plural) if m and m.group(1) not in names]
            if "'" in name or '"' in name:  # the "X" task
                names += [n[1:-1] for n in names[1:] if len(n) > 2 and n[0] == n[-1] and n[0] in "'\""]
        for candidate in names:
            ids = self._find(candidate) or self._find_path(candidate)
            if ids:
                return ids
        return []

    def _ensure_index(self) -> dict[str, list[str]]:
        tree = self.tree  # first: a pending change is applied, and the index kept in step with it
        if self._index is None:
            self._index = tree.name_index()
        return self._index

    def _find(self, name: str) -> list[str]:
        """`Tree.find` semantics over an index built once per plan (and kept in step with its trial
        changes), so many readings stay O(tree)."""
        index = self._ensure_index()
        if not name.strip():
            return []
        ids = list(index.get(name.strip().casefold(), ()))
        ids += [n for n in dict.fromkeys((name, name.strip())) if n in self.tree and n not in ids]
        return sorted(ids, key=self.tree.order_key)

    def _find_path(self, name: str) -> list[str]:
        """'Project/Task 1' (or 'Project > Task 1'): the last part, under nodes named by the parts before."""
        parts = [p.strip() for p in _PATH_SEP.split(name.strip()) if p.strip()]
        if len(parts) < 2:
            return []
        if parts[0].casefold() == "root":
            parts = parts[1:]
        found = []
        for node in self._find(parts[-1]):
            chain, parent = list(parts[:-1]), self.tree.parent(node)
            while chain and parent is not None and self.tree.value(parent).strip().casefold() == chain[-1].casefold():
                chain.pop()
                parent = self.tree.parent(parent)
            if not chain:
                found.append(node)
        return found

    def _choose(self, readings: list[Command]) -> Command:
        """The first reading whose references all exist and whose new values are clean; then one whose
        missing parent may be created; else the reading that got furthest, to explain what is wrong."""
        best, best_score = readings[0], -1
        for reading in readings[: g.MAX_READINGS]:
            found = sum(1 for ref in reading.refs if self._exists(ref))
            clean = self._clean(reading)
            if found == len(reading.refs) and clean:
                self._clean_reading = reading
                return reading
            score = found * 2 + clean
            if score > best_score:
                best, best_score = reading, score
        for reading in readings[: g.MAX_READINGS]:
            if self._creatable(reading) and self._clean(reading):
                self._clean_reading = reading
                return reading
        return best

    def _exists(self, ref: str) -> bool:
        """The reference names a node, or is a list ("Eggs and Milk") whose every item does."""
        if self.lookup(ref) or self._state_shaped(ref):
            return True
        items = split_list(ref)
        return len(items) > 1 and all(self.lookup(item) for item in items)

    def _clean(self, reading: Command) -> bool:
        """New values hold no unquoted placement word ("after", "with", ...) we would be guessing about,
        and no "to <an existing node>" ("add Bread to Shopping list and Milk to Done")."""
        if reading.action == "set":  # "set priority of A to high and B to low" is two sets, never 'high and B to low'
            return not any(self._reserved(reading, v) for v in reading.values)
        if reading.action not in ("add", "rename"):
            return True
        for value in (*reading.values, *reading.kids):
            if self._reserved(reading, value) or self._pronoun(value) or self._pronoun_first(value):
                return False
            if (reading.count <= 0 and self._vague(value)) or self._names_a_node(value):
                return False
        return True

    @staticmethod
    def _reserved(cmd: Command, value: str) -> re.Match[str] | None:
        """The first placement word left in a new value, if any."""
        if cmd.action == "set":
            joined = _JOINED.search(value) if cmd.key.lower() in ("priority", "status") else None
            return joined or g.RENAME_RESERVED.search(value)
        return g.RESERVED.search(value) or (g.RENAME_RESERVED.search(value) if cmd.action == "rename" else None)

    @staticmethod
    def _pronoun_first(raw: str) -> bool:
        """'put it back', 'add them here': 'it'/'them' opens no name (a quoted value is a placeholder here)."""
        return raw.strip().split(" ", 1)[0].lower() in ("it", "them", "its", "their")

    def _vague(self, raw: str) -> bool:
        text, quoted = self.text.literal(raw)
        return not quoted and (text.strip().lower() in g.VAGUE or _SOME.fullmatch(text.strip()) is not None)

    def _names_a_node(self, value: str) -> str:
        """The part of an unquoted value from a placement word that is followed by an existing node's name."""
        for m in _PLACED_IN.finditer(value):
            words = m.group(1).split(" ")
            if any(self._find(" ".join(words[:i])) for i in range(len(words), 0, -1)):
                return value[m.start() :].strip()
        return ""

    def _leftover(self, cmd: Command) -> Stop:
        """A new value still holding a placement word: say which words were not understood."""
        for raw in [*cmd.values, *cmd.kids]:
            named = self._names_a_node(raw)
            if named:
                return Stop(
                    f"I didn't understand {quote(self.text.restore(named))} inside the new value "
                    f"{quote(self.text.restore(raw))}, so I changed nothing. Send one command per node "
                    f"(add Bread to Shopping list), or quote the value if it is meant literally.",
                    f"Leftover words {quote(named)}: refusing to guess.",
                )
            m = self._reserved(cmd, raw)
            if m is None and self._vague(raw) and cmd.count <= 0:
                return Stop(
                    f"What should the new node be called? {quote(self.text.literal(raw)[0])} is not a name "
                    "I can use on its own; quote it if you mean it. Nothing was changed."
                )
            if m is None and (self._pronoun(raw) or self._pronoun_first(raw)):
                return Stop(
                    f"I didn't understand what {quote(self.text.literal(raw)[0])} means here. "
                    f"Try: {g.EXAMPLES.get(cmd.action, g.EXAMPLES['add'])}. Nothing was changed."
                )
            if m is None:
                continue
            part = self.text.restore(raw[m.start() :]).strip(" ,")
            whole = self.text.restore(raw).strip()
            verb = {"rename": "rename X to", "set": f"set {cmd.key} of X to"}.get(cmd.action, "add")
            return Stop(
                f"I didn't understand {quote(part)}, so I changed nothing. If it is part of the text, put the "
                f'text in quotes: {verb} "{whole}". Or use a form I know, e.g. add Testing after Build, '
                "create a list called Groceries with eggs and milk.",
                f"Leftover words {quote(part)}: refusing to guess.",
            )
        return Stop("I didn't understand that command. Nothing was changed.")

    def _creatable(self, reading: Command) -> bool:
        """An add under a parent that does not exist: the parent is created under the root, unless its
        name looks like a typo of an existing one or the placement word could also belong to a value."""
        if reading.action != "add" or not reading.refs or reading.where in ("after", "before"):
            return False
        ref = reading.refs[0]
        name, quoted = self.text.literal(ref)
        if self.lookup(ref) or self._pronoun(ref) or "/" in name or not name.strip() or g.RESERVED.search(ref):
            return False
        if not quoted and (_LISTY.search(name) or len(name.split()) > 6):  # "Project and frobnicate it"
            return False
        # "add Go to school": 'to' may be part of the value; "add milk to the shopping list" names a list
        plain_in = (
            reading.where == "in"
            and not quoted
            and not name[:1].isupper()  # "add Go to school" stays a question; "add X to Inbox" creates Inbox
            and not reading.count
            and not _THE_MY_START.match(name)
            and not all(PLACEHOLDER.fullmatch(v) for v in reading.values)
        )
        new = self.new_name(ref)
        return not plain_in and not _NOT_A_NAME.fullmatch(new) and not self._close(new)

    def new_name(self, ref: str) -> str:
        """The value for a parent created from a reference: 'the shopping list' → 'Shopping list'."""
        name, quoted = self.text.literal(ref)
        article = None if quoted else _THE_MY.fullmatch(name.strip())
        return article.group(1)[:1].upper() + article.group(1)[1:] if article else name.strip()

    def resolve(self, ref: str, hint: str = "") -> str:
        ids = self.resolve_many(ref, hint)
        if len(ids) > 1:
            raise Stop(
                f"'{self.text.literal(ref)[0]}' means {plural(len(ids), 'node')} here "
                f"({join([self._shown(i) for i in ids])}); name one of them."
            )
        return ids[0]

    def resolve_many(self, ref: str, hint: str = "") -> list[str]:
        """One node, or every node a pronoun stands for."""
        name, quoted = self.text.literal(ref)
        ids = self.lookup(ref)
        if not quoted and name.lower() in g.PRONOUNS:  # as `_pronoun`
            if not ids:
                raise Stop(
                    f"I don't know what {quote(name)} refers to here: name the node instead.",
                    f"{quote(name)} refers to no earlier node.",
                )
            self.steps.append(f"{cap(quote(name))} refers to {join([self._shown(i) for i in ids])}.")
            return ids
        if len(ids) == 1:
            self.steps.append(f"Resolved {quote(name)} to {self.tree.path(ids[0])}.")
            return ids
        if ids:
            raise self._ambiguous(name, ids)
        group = _GROUP.fullmatch(name) if not quoted else None
        if group and (parents := self.lookup(group.group(1) or group.group(2))):  # "mark all tasks in Project as done"
            kids = [k for parent in parents[:1] for k in self.tree.children(parent)]
            if kids:
                self.steps.append(f"{quote(name)}: the {plural(len(kids), 'child')} of {self._shown(parents[0])}.")
                return kids
        if (picked := self._by_state(ref)) is not None:
            return picked
        items = split_list(ref)
        if len(items) > 1 and all(self.lookup(item) for item in items):  # "mark Eggs and Milk as done"
            return list(dict.fromkeys(n for item in items for n in self.resolve_many(item)))
        raise self._not_found(name, hint)

    def _state_shaped(self, ref: str) -> bool:
        name, quoted = self.text.literal(ref)
        return not quoted and _BY_STATE.fullmatch(name) is not None

    def _by_state(self, ref: str) -> list[str] | None:
        """'all done tasks (in Project)': the nodes with that status or priority (one walk, only for
        a reference of this shape that names no node)."""
        if not self._state_shaped(ref):
            return None
        name = self.text.literal(ref)[0]
        m = _BY_STATE.fullmatch(name)
        assert m is not None
        top = self.resolve(m.group(2)) if m.group(2) else ROOT_ID
        level = _LEVEL_PRIORITY.fullmatch(m.group(1))
        key, value = ("priority", level.group(1).lower()) if level else ("status", g.status_value(m.group(1)))
        hits = [
            i for i in self.tree.iter_ids(top) if i != top and str(self.tree.props(i).get(key, "")).lower() == value
        ]
        if not hits:
            raise Stop(f"No node has {key} {quote(value)}, so nothing was changed.")
        self.steps.append(f"{quote(name)}: {plural(len(hits), 'node')} with {key} {quote(value)}.")
        return hits

    def _ambiguous(self, name: str, ids: list[str]) -> Stop:
        listed = [self._slash_path(i) for i in ids[:MAX_LISTED]]
        more = f" and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
        reply = (
            f"There are {len(ids)} nodes named {quote(name)}: {'; '.join(listed)}{more}. "
            f"Which one do you mean? Name it by its path, e.g. {quote(listed[0])}."
        )
        paths = ", ".join(self.tree.path(i) for i in ids[:MAX_LISTED])
        return Stop(reply, f"{quote(name)} matches {len(ids)} nodes: {paths}.", "Asking which one is meant.")

    def _close(self, name: str) -> list[str]:
        """Up to 3 existing values a misspelt name may mean (cached: readings ask about the same names)."""
        key = (name.lower(), len(self.deltas))
        if key not in self._close_cache:
            values = {self.tree.value(i).lower(): self.tree.value(i) for i in self.tree.iter_ids() if i != ROOT_ID}
            close = difflib.get_close_matches(name.lower(), list(values), n=3, cutoff=0.75)
            self._close_cache[key] = [values[c] for c in close]
        return self._close_cache[key]

    def _not_found(self, name: str, hint: str) -> Stop:
        head, sep, tail = name.partition(" and ")
        if sep and self._find(head) and not self._find(tail):  # "... under Project and frobnicate it"
            return Stop(
                f"I didn't understand {quote('and ' + tail)} after {quote(head)}. Nothing was changed. "
                f"To join two commands, start the second with a verb I know: {g.EXAMPLES['add']} "
                "and mark it as done.",
                f"Leftover words {quote('and ' + tail)}: refusing to guess.",
            )
        words = name.split(" ")
        known = next((k for k in range(len(words) - 1, 0, -1) if self._find(" ".join(words[:k]))), 0)
        if known and not hint:  # "delete Launch maybe": say which words were not understood
            head, rest = " ".join(words[:known]), " ".join(words[known:])
            return Stop(
                f"No node {quote(name)}. I know {quote(head)}, but not what {quote(rest)} means here. "
                "Nothing was changed.",
                f"Leftover words {quote(rest)} after {quote(head)}: refusing to guess.",
            )
        close = self._close(name)
        reply = f"No node {quote(name)}"
        reply += f" \u2014 did you mean {join([quote(c) for c in close], 'or')}?" if close else " in the tree."
        if hint:
            reply += (
                " If that was meant to be part of the new value, put the value in quotes, "
                f'e.g. add "{self.text.restore(hint)}".'
            )
        return Stop(reply, f"Looking up {quote(name)}: no node has that value or id.")

    def _slash_path(self, node_id: str) -> str:
        """The path a user can type: 'Project/Task 1' (the root left out)."""
        chain = [node_id]
        while (parent := self.tree.parent(chain[-1])) not in (None, ROOT_ID):
            chain.append(parent)
        return "/".join(self.tree.value(i) for i in reversed(chain))

    def _shown(self, node_id: str) -> str:
        return "the root" if node_id == ROOT_ID else quote(self.tree.value(node_id))

    def _is_inside(self, node_id: str, ancestor: str) -> bool:
        current: str | None = node_id
        while current is not None:
            if current == ancestor:
                return True
            current = self.tree.parent(current)
        return False

    def _descendants(self, node_id: str) -> int:
        return sum(1 for _ in self.tree.iter_ids(node_id)) - 1

    # ------------------------------------------------------------- changing

    def emit(self, delta: dict[str, Any]) -> None:
        """Adds a delta to the plan; it is applied to the tree, for what reads the tree after it (see
        `plan`), when something does. The plan's last change is only validated (`_settle`): applying and
        reverting it cost twice that, for nothing to read it."""
        if self._pending is not None:
            self._try_pending()
        self._pending = (delta, len(self.steps))
        self.deltas.append(delta)

    def _try_pending(self, *, apply: bool = True) -> None:
        """Applies (or only validates) the pending delta; a delta that does not fit stops the plan as if
        it had failed when emitted: the steps noted since are dropped."""
        assert self._pending is not None
        delta, steps = self._pending
        self._pending = None
        try:
            if not apply:
                self._tree.validate(delta)
                return
            change = self._tree.apply(delta)
        except DeltaError as exc:
            del self.steps[steps:], self.deltas[-1]
            raise Stop(f"I couldn't change the tree: {exc.message}. Nothing was changed.") from None
        self._applied.append(change)
        self._reindex(change.delta, change.inverse)

    def _reindex(self, done: dict[str, Any], undone: dict[str, Any]) -> None:
        """Keeps the name index in step with a change (`done`, whose inverse is `undone`) instead of
        rebuilding it: a rebuild walks the whole tree (~25 ms at 100k nodes)."""
        if self._index is None:
            return
        action = done["action"]
        if action == "add":
            self._index_subtree(done["node"], add=True)
        elif action == "remove":
            self._index_subtree(undone["node"], add=False)
        elif action == "update" and "value" in done["fields"]:
            node_id = done["path"].rsplit("/", 1)[1]
            self._index_name(node_id, undone["fields"]["value"], add=False)
            self._index_name(node_id, done["fields"]["value"], add=True)

    def _index_subtree(self, node: dict[str, Any], *, add: bool) -> None:
        self._index_name(node["id"], node["value"], add=add)
        for child in node.get("children", ()):
            self._index_subtree(child, add=add)

    def _index_name(self, node_id: str, value: str, *, add: bool) -> None:
        assert self._index is not None
        key = value.strip().casefold()
        if add:
            self._index.setdefault(key, []).append(node_id)
            return
        ids = self._index.get(key, [])
        if node_id in ids:
            ids.remove(node_id)

    def value(self, raw: str) -> str:
        text = self.text.literal(raw)[0].strip()
        if not 1 <= len(text) <= MAX_VALUE_LENGTH:
            raise Stop(
                f"A node value must be 1 to {MAX_VALUE_LENGTH} characters long (got {plural(len(text), 'character')}).",
                "Rejecting a value of invalid length.",
            )
        return text

    def fresh_id(self) -> str:
        tree = self.tree  # first: a pending delta that does not fit stops the plan before an id is drawn
        node_id = self._new_id()
        for attempt in range(1, 1000):
            if node_id not in self._issued and node_id not in tree:
                break
            node_id = self._new_id() if attempt < 100 else f"{node_id}-{attempt}"
        self._issued.add(node_id)
        return node_id

    def add_node(self, parent: str, value: str, index: int | None = None) -> str:
        node_id = self.fresh_id()
        delta: dict[str, Any] = {
            "action": "add",
            "path": f"{self.tree.path(parent)}/children",
            "node": {"id": node_id, "value": value, "children": []},
        }
        if index is not None:
            delta["index"] = index
        self.emit(delta)
        return node_id

    def _build(self, cmd: Command, *, last: bool = False) -> None:
        """Runs the command's builder; after the last clause nothing reads the tree, so its final change
        is validated, not applied."""
        known_clean, self._clean_reading = cmd is self._clean_reading, None  # `_choose` just checked it
        if not known_clean and not self._clean(cmd):
            raise self._leftover(cmd)
        try:
            reply, touched = actions.BUILDERS[cmd.action](self, cmd)
        except Stop:
            if self._pending is not None:  # it came first: a failure to apply it is the reason to give
                self._try_pending(apply=False)
            raise
        if self._pending is not None:
            self._try_pending(apply=not last)
        self.replies.append(reply)
        if touched:
            self.last = touched

    # ------------------------------------------------------------ whole-tree

    def _clear_tree(self) -> Plan:
        top = list(self.tree.children(ROOT_ID))
        steps = ["Parsing prompt: action 'clear'.", f"Found {plural(len(top), 'top-level node')} under /root."]
        if not top:
            return Plan(steps, [], "The tree is already empty.")
        deltas: list[dict[str, Any]] = [{"action": "remove", "path": self.tree.path(i)} for i in top]
        total = len(top) + sum(self._descendants(i) for i in top)
        steps.append(f"Generating {plural(len(deltas), 'tree delta')}.")
        return Plan(steps, deltas, f"Cleared the tree: removed {plural(total, 'node')}.")

    def outline(self, top: str, limit: int = MAX_SHOWN_LINES) -> list[str]:
        lines: list[str] = []
        stack = [(top, 0)]
        while stack and len(lines) < limit:
            node, depth = stack.pop()
            props = self.tree.props(node)
            extra = f" ({', '.join(f'{k}: {v}' for k, v in props.items())})" if props else ""
            lines.append("  " * depth + "- " + self.tree.value(node) + extra)
            stack.extend((c, depth + 1) for c in reversed(self.tree.children(node)))
        if stack:
            lines.append("...")
        return lines

    def _show(self) -> Plan:
        reply = f"The tree has {plural(len(self.tree), 'node')}:\n" + "\n".join(self.outline(ROOT_ID))
        return Plan(["Parsing prompt: action 'show'.", "Reading the tree."], [], reply)

    def _answer(self, asked: forms.Question) -> Plan:
        self.steps.append(f"Parsing prompt: a question ({asked.kind}); nothing will change.")
        return Plan(self.steps, [], actions.answer(self, asked))

    # ------------------------------------------------------------------ sorting

    def sort_key(self, order: str, key: str) -> Callable[[str], tuple[Any, ...]]:
        if order in ("name", "-name"):
            return lambda n: (self.tree.value(n).casefold(),)
        if order == "priority":

            def rank(n: str) -> tuple[Any, ...]:
                v = self.tree.props(n).get("priority")
                if isinstance(v, (int, float)) and not isinstance(v, bool):
                    return (0, v)
                return (0, _PRIORITY_RANK[str(v).lower()]) if str(v).lower() in _PRIORITY_RANK else (1, 0)

            return rank

        def by_key(n: str) -> tuple[Any, ...]:
            v = self.tree.props(n).get(key)
            if v is None:
                return (2, "")
            return (0, v) if isinstance(v, (int, float)) and not isinstance(v, bool) else (1, str(v).casefold())

        return by_key

    def prop_value(self, raw: str) -> str | int | float | bool | None:
        text, quoted = self.text.literal(raw)
        value = scalar(text.strip(), quoted)
        if isinstance(value, str) and not 1 <= len(value) <= MAX_VALUE_LENGTH:
            raise Stop(f"A property value must be 1 to {MAX_VALUE_LENGTH} characters long.")
        return value


def plan(prompt: str, tree: Tree, new_id: Callable[[], str] | None = None, *, recent: Sequence[str] = ()) -> Plan:
    """Plan one turn for `prompt` against `tree`; pure and deterministic given `new_id`.

    ``recent`` are the nodes the session's previous change touched: what "it" means in the first clause.
    """
    return Planner(prompt, tree, new_id or tree.new_id, recent).plan()

"""Prompt text handling: quotes masked as placeholders, polite padding dropped, lists split, replies worded.

Quoted strings ('...', "...", curly quotes) become placeholders before anything else reads the
prompt, so words inside them are never taken for keywords. The placeholder marks are private-use
characters that are removed from the prompt first, so a user cannot forge one.
"""

from __future__ import annotations

import re
from typing import Final

_OPEN, _CLOSE = "\ue000", "\ue001"
PLACEHOLDER: Final = re.compile(f"{_OPEN}(\\d+){_CLOSE}")
_QUOTE_RE: Final = re.compile(r"""(?<!\w)'([^'\n]*)'(?!\w)|"([^"\n]*)\"""")
# Curly quotes read as straight ones; the placeholder marks can't come from the user.
_CURLY: Final = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', _OPEN: None, _CLOSE: None})
# Polite padding, and an interjection only with its punctuation ("oops, undo"; not "Great Britain").
_LEAD_RE: Final = re.compile(
    r"^(?:(?:please|pls|plz|kindly|hey|ok(?:ay)?|now|then|also|and|so|next|after that|afterwards|finally|"
    r"(?:can|could|would|will) you(?: please)?|i (?:want|need|would like) (?:you )?to|i'd like (?:you )?to|"
    r"let's|lets|go ahead and|just|quickly)"
    r"[\s,]+|"
    r"(?:oops|whoops|oh|ah|um+|uh+|hmm+|sorry|actually|wait|right|alright|great|cool|nice|perfect|good|no|"
    r"never ?mind|my bad|my mistake|hi|hello|hey there|hi there)"
    r"\s*[,!.]+\s*|(?:oops|whoops|never ?mind|my bad)\s+)+",
    re.I,
)
_TRAILER_ENDS: Final = frozenset(
    {"please", "pls", "plz", "me", "thanks", "thx", "ty", "you", "now", "again", "too", "well", "also", "instead"}
)
_TRAILER_RE: Final = re.compile(
    r"[ ,](?:please|pls|plz|for me|thanks|thx|ty|thank you|now|again|too|as well|also|instead)$",
    re.I,
)
# A smiley at the very end is no part of a name: "add Testing after Build :)".
_SMILEY_RE: Final = re.compile(r"\s+(?:[:;]-?[)(DPp]|[\U0001f44d\U0001f64f\U0001f60a\U0001f642\U0001f600\U0001f604]+)$")
# A pasted list: one item a line, maybe bulleted or numbered ("- eggs", "2) milk").
_BULLET_RE: Final = re.compile(r"^\s*(?:[-*\u2022\u2013]|\d{1,3}[.)])\s+")
_LEADS_IN_RE: Final = re.compile(r"(?::|\b(?:with|called|named|containing|including|are|is|under|to|into|in))$", re.I)
# "whats under X" reads as "what's under X" (only these two: "its" stays a possessive).
_CONTRACTION_RE: Final = re.compile(r"\b(what|where)s\b", re.I)


class Text:
    """The prompt with quoted strings masked as placeholders, padding dropped."""

    def __init__(self, prompt: str) -> None:
        self.quotes: list[tuple[str, str]] = []
        self._literals: dict[str, tuple[str, bool]] = {}
        # Each step only when the prompt holds what it looks for: most prompts are plain ASCII commands.
        masked = _lines(prompt if prompt.isascii() else prompt.translate(_CURLY))
        if "'" in masked or '"' in masked:
            masked = _QUOTE_RE.sub(self._mask, masked)
        if (low := folded(masked)) is None or "whats" in low or "wheres" in low:
            masked = _CONTRACTION_RE.sub(r"\1's", masked)
        masked = " ".join(masked.split()).lstrip("/")  # runs of whitespace as one space, none at the ends
        self.question = masked.endswith("?")
        self.masked = trim(masked)

    def _mask(self, match: re.Match[str]) -> str:
        inner = match.group(1) if match.group(1) is not None else match.group(2)
        self.quotes.append((match.group(0), inner))
        return f"{_OPEN}{len(self.quotes) - 1}{_CLOSE}"

    def restore(self, part: str) -> str:
        """The part as the user typed it, quotes included."""
        if _OPEN not in part:
            return part
        return PLACEHOLDER.sub(lambda m: self.quotes[int(m.group(1))][0], part)

    def literal(self, part: str) -> tuple[str, bool]:
        """The text a part stands for, and whether it was one quoted string (kept: a plan asks about the
        same parts many times)."""
        if (known := self._literals.get(part)) is None:
            known = self._literals[part] = self._literal(part)
        return known

    def _literal(self, part: str) -> tuple[str, bool]:
        part = part.strip()
        whole = PLACEHOLDER.fullmatch(part)
        if whole:
            return self.quotes[int(whole.group(1))][1], True
        text = self.restore(part).strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            text = text[1:-1]
        return text, False


def _lines(prompt: str) -> str:
    """Lines after the first read as a comma-separated list, so a pasted list ("add these to Groceries:"
    then "- eggs", "- milk" on lines of their own) is "add these to Groceries: eggs, milk", and a
    command a line is "add Alpha, add Beta"."""
    if "\n" not in prompt and "\r" not in prompt:
        return prompt
    lines = [line.strip() for line in prompt.splitlines() if line.strip()]
    if len(lines) < 2:
        return prompt
    head = lines[0].rstrip(" ,;")
    items = ", ".join(i for i in (_BULLET_RE.sub("", line).rstrip(" ,;") for line in lines[1:]) if i)
    return head + (" " if _LEADS_IN_RE.search(head) else ", ") + items


def trim(text: str) -> str:
    """Drops polite padding at either end ("please ...", "... for me") and end punctuation."""
    previous = None
    while previous != text:
        previous = text
        if lead := _LEAD_RE.match(text):
            text = text[lead.end() :]
        if ":" in text or ";" in text or not text.isascii():  # a smiley needs one of them
            text = _SMILEY_RE.sub("", text)
        text = text.rstrip(" .!?,;")
        last = text[max(text.rfind(" "), text.rfind(",")) + 1 :].lower()
        trailer = _TRAILER_RE.search(text) if last in _TRAILER_ENDS else None  # the regex only when it can match
        if trailer and text[: trailer.start()].strip(" ,"):
            text = text[: trailer.start()].rstrip(" ,")
    return text


def folded(text: str) -> str | None:
    """`text` lower-cased, to look for a pattern's words before running a case-insensitive pattern that
    needs one of them (a failed scan costs about as much as a match, and most clauses hold none of a
    special form's words); None beyond ASCII, where re.I matches more than lower() shows (the long s,
    U+017F, is an 's') and every pattern must run."""
    return text.lower() if text.isascii() else None


class Separators:
    """(pattern, tag) pairs for `splits`, each pattern matching between two spaces, scanned in one pass:
    at each space, a lookahead per separator notes whether (and how far) it matches there."""

    __slots__ = ("pairs", "scan", "tags")

    def __init__(self, *pairs: tuple[str, str]) -> None:
        self.pairs = pairs
        self.tags = tuple(tag for _, tag in pairs)
        # A space, then what follows it: the leading literal lets the scan jump from space to space.
        self.scan = re.compile(" " + "".join(rf"(?=((?:{pattern})(?= ))|)" for pattern, _ in pairs), re.I)

    def matches(self, text: str) -> list[tuple[int, int, str]]:
        """(start, end, tag) of every separator's matches, as one `finditer` per separator would find
        them: left to right, each match starting after that separator's previous one ends."""
        out: list[tuple[int, int, str]] = []
        free = [0] * len(self.tags)  # where each separator's next match may start
        for m in self.scan.finditer(text):
            if m.lastindex is None:  # no separator here
                continue
            for i, group in enumerate(m.groups()):
                if group is not None and m.start() >= free[i]:
                    end = m.end() + len(group)
                    out.append((m.start(), end, self.tags[i]))
                    free[i] = end
        return out


def splits(text: str, seps: Separators) -> list[tuple[str, str, str]]:
    """Every way to cut `text` at one separator: (left, tag, right), by position, longest first. A
    separator inside a longer one is no cut of its own ("next to", "to the top of": not at "to")."""
    found: list[tuple[int, int, str, str, str]] = []
    for start, end, tag in seps.matches(text):
        left, right = text[:start].strip(), text[end:].strip()
        if left and right:
            found.append((start, start - end, left, tag, right))
    if len(found) > 1:
        spans = [(start, start - negative) for start, negative, *_ in found]
        found = [
            f
            for f in found
            if not any(s <= f[0] and f[0] - f[1] <= e and (s, e) != (f[0], f[0] - f[1]) for s, e in spans)
        ]
    found.sort(key=lambda f: (f[0], f[1]))
    return [(left, tag, right) for _, _, left, tag, right in found]


_LIST_SEP: Final = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+|\s+as well as\s+|\s+&\s+|\s*;\s*", re.I)


def split_list(text: str) -> list[str]:
    """'A, B and C' → ['A', 'B', 'C'] (also '&', ';', 'as well as' and a comma before 'and')."""
    low = folded(text)  # most values are one item: skip the split's scan
    listed = low is None or "," in low or "&" in low or ";" in low or "and" in low or "as well as" in low
    if not listed:
        return [stripped] if (stripped := text.strip()) else []
    parts = _LIST_SEP.split(text)
    return [p for p in (part.strip() for part in parts) if p]


NUMBER_WORDS: Final = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "a couple of": 2,
    "a few": 3,
    "twice": 2,
    "once": 1,
}
NUMBER: Final = r"(?:\d{1,3}|" + "|".join(sorted(NUMBER_WORDS, key=len, reverse=True)) + ")"


# Patterns match number words with re.IGNORECASE, which also folds a few non-ASCII letters onto ASCII ones
# (dotted and dotless I onto 'i', long s onto 's', the Kelvin sign onto 'k') that str.lower() leaves as they are.
_NUMBER_WORD_RES: Final = [(re.compile(re.escape(w), re.IGNORECASE), n) for w, n in NUMBER_WORDS.items()]


def number(word: str) -> int:
    """The value of a word NUMBER matched: digits or one of NUMBER_WORDS, in any case."""
    word = word.strip()
    if word.isdigit():
        return int(word)
    value = NUMBER_WORDS.get(word.lower())
    if value is not None:
        return value
    return next(n for pattern, n in _NUMBER_WORD_RES if pattern.fullmatch(word))


def singular(noun: str) -> str:
    low = noun.lower()
    if low in ("children", "child"):
        return "Child"
    if low.endswith("ies") and len(low) > 4:
        return noun[:-3] + "y"
    if low.endswith(("sses", "shes", "ches", "xes")):
        return noun[:-2]
    if low.endswith("s") and not low.endswith("ss"):
        return noun[:-1]
    return noun


def quote(value: str, limit: int = 80) -> str:
    mark = '"' if "'" in value and '"' not in value else "'"
    return mark + (value if len(value) <= limit else value[: limit - 1] + "\u2026") + mark


def join(items: list[str], word: str = "and") -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + f" {word} " + items[-1]


def cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


_INT: Final = re.compile(r"-?\d{1,15}")
_FLOAT: Final = re.compile(r"-?\d{1,15}\.\d{1,15}")


def scalar(text: str, quoted: bool) -> str | int | float | bool | None:
    """A prop value as typed: numbers, true/false and none read as such unless quoted."""
    if quoted:
        return text
    low = text.lower()
    if low in ("true", "false", "yes", "no"):
        return low in ("true", "yes")
    if low in ("null", "none", "nothing"):
        return None
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text

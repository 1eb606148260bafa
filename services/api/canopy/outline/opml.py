"""OPML 2.0: `<outline text="value" key="prop"…>` elements nested in `<body>`.

Props are attributes. A key that is not an XML name (or is `text`) is encoded the way .NET's
XmlConvert does: each character that cannot stand there becomes `_xHHHH_` (its code point in hex;
`_` itself only when an `x` follows it). Attribute values are text, so a node whose props are not
all strings lists the others' types in `canopy:types="count:int done:bool ratio:float"`, in the
namespace `urn:canopy:opml`. The root's value and props are `<canopy:root text="…"/>` in `<head>`,
the session's title is `<title>`. On import, an outline without `text` takes its `title`
attribute; attributes in other namespaces are ignored; DTDs and entities are refused.
XML 1.0 cannot carry most control characters, so a tree holding one cannot be exported as OPML.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET  # only to build and write; parsing goes through defusedxml
from collections.abc import Mapping
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from canopy.outline.model import Budget, Document, Item, OutlineError
from canopy.tree import Scalar, TreeLimits

NS = "urn:canopy:opml"
ET.register_namespace("canopy", NS)
_TYPES = f"{{{NS}}}types"
_ROOT = f"{{{NS}}}root"
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
_DECODE = re.compile(r"_x([0-9A-F]{4,6})_")


class UnrepresentableError(ValueError):
    """The tree holds text XML 1.0 cannot carry."""


# --- names ---------------------------------------------------------------------------------


def _name_char_ok(ch: str, first: bool) -> bool:
    if not ch.isascii():
        return False
    if ch.isalpha() or ch == "_":
        return True
    return not first and (ch.isdigit() or ch in "-.")


def encode_name(key: str) -> str:
    out = []
    for i, ch in enumerate(key):
        keep = _name_char_ok(ch, i == 0) and not (ch == "_" and key[i + 1 : i + 2] == "x")
        out.append(ch if keep else f"_x{ord(ch):04X}_")
    name = "".join(out)
    return "_x0074_ext" if name == "text" else name


def decode_name(name: str) -> str:
    return _DECODE.sub(lambda m: chr(int(m.group(1), 16)), name)


# --- export --------------------------------------------------------------------------------


def _text(value: str, what: str) -> str:
    bad = _NOT_XML.search(value)
    if bad is not None:
        raise UnrepresentableError(
            f"{what} holds the control character U+{ord(bad.group()):04X}, which OPML (XML 1.0) cannot carry; "
            "export as JSON or Markdown instead"
        )
    return value


def _attributes(node: Mapping[str, Any]) -> dict[str, str]:
    where = f"node {node.get('id', '?')!r}"
    attrs = {"text": _text(node["value"], f"the value of {where}")}
    types: list[str] = []
    for key, value in (node.get("props") or {}).items():
        name = encode_name(key)
        if isinstance(value, bool):
            attrs[name], kind = ("true" if value else "false"), "bool"
        elif isinstance(value, int):
            attrs[name], kind = str(value), "int"
        elif isinstance(value, float):
            attrs[name], kind = repr(value), "float"
        else:
            attrs[name], kind = _text(value, f"prop {key!r} of {where}"), ""
        if kind:
            types.append(f"{name}:{kind}")
    if types:
        attrs[_TYPES] = " ".join(types)
    return attrs


def render(title: str, tree: Mapping[str, Any]) -> str:
    opml = ET.Element("opml", {"version": "2.0"})
    head = ET.SubElement(opml, "head")
    ET.SubElement(head, "title").text = _text(title, "the session's title")
    ET.SubElement(head, _ROOT, _attributes(tree))
    body = ET.SubElement(opml, "body")
    stack: list[tuple[ET.Element, Mapping[str, Any]]] = [(body, c) for c in reversed(tree["children"])]
    while stack:
        parent, node = stack.pop()
        element = ET.SubElement(parent, "outline", _attributes(node))
        stack.extend((element, c) for c in reversed(node["children"]))
    ET.indent(opml)
    # Attribute values come out with CR escaped, element text (the title) does not, and a parser reads
    # a raw CR as LF: every CR left in the output is the title's, written as a character reference.
    xml = ET.tostring(opml, encoding="unicode").replace("\r", "&#13;")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + xml + "\n"


# --- import --------------------------------------------------------------------------------


def _typed(text: str, kind: str, where: str, key: str) -> Scalar:
    try:
        if kind == "bool" and text in ("true", "false"):
            return text == "true"
        if kind == "int":
            return int(text)
        if kind == "float":
            number = float(text)
            if math.isfinite(number):
                return number
    except ValueError:
        pass
    raise OutlineError(f"attribute {key!r} is not a {kind}: {text!r}", element=where)


def _item(element: ET.Element, where: str) -> Item:
    types: dict[str, str] = {}
    for entry in element.get(_TYPES, "").split():
        name, _, kind = entry.partition(":")
        if kind not in ("bool", "int", "float"):
            raise OutlineError(f"canopy:types entry {entry!r} is not name:bool|int|float", element=where)
        types[name] = kind
    value = element.get("text", element.get("title"))
    if value is None:
        raise OutlineError("an outline needs a 'text' attribute", element=where)
    props: dict[str, Scalar] = {}
    for name, text in element.attrib.items():
        if name.startswith("{") or name == "text" or (name == "title" and "text" not in element.attrib):
            continue
        key = decode_name(name)
        props[key] = _typed(text, types[name], where, key) if name in types else text
    return Item(value, props)


def parse(content: str, limits: TreeLimits) -> Document:
    try:
        opml = SafeET.fromstring(content.removeprefix("\ufeff"))
    except ET.ParseError as exc:
        line, column = exc.position
        raise OutlineError(f"not well-formed XML (column {column + 1})", line=line) from None
    except DefusedXmlException:
        raise OutlineError("DTDs and entity declarations are not allowed", element="/") from None
    if opml.tag != "opml":
        raise OutlineError(f"the document element is <{opml.tag}>, not <opml>", element="/")
    budget = Budget(limits)
    head, body = opml.find("head"), opml.find("body")
    if body is None:
        raise OutlineError("<opml> has no <body>", element="/opml")
    title_el = head.find("title") if head is not None else None
    root_el = head.find(_ROOT) if head is not None else None
    root = _item(root_el, "/opml/head/canopy:root") if root_el is not None else Item("Root")
    budget.check(root, element="/opml/head/canopy:root")
    stack: list[tuple[ET.Element, Item, str, int]] = [(body, root, "/opml/body", 1)]
    while stack:
        parent_el, parent, where, depth = stack.pop()
        for i, child_el in enumerate(parent_el, start=1):
            child_where = f"{where}/outline[{i}]"
            if child_el.tag != "outline":
                raise OutlineError(f"<{child_el.tag}> where only <outline> may be", element=child_where)
            child = _item(child_el, child_where)
            budget.add(child, depth + 1, element=child_where)
            parent.children.append(child)
            stack.append((child_el, child, child_where, depth + 1))
    return Document(title_el.text if title_el is not None else None, root)

"""Import and export of a session's tree: JSON, Markdown and OPML (see each module for its format)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from canopy.outline import json_format, markdown, opml
from canopy.outline.model import IMPORT_MAX_BYTES, Document, Item, OutlineError, check_size, to_node
from canopy.outline.opml import UnrepresentableError
from canopy.tree import TreeLimits

Format = Literal["json", "markdown", "opml"]
MEDIA_TYPES: dict[str, str] = {
    "json": "application/json",
    "markdown": "text/markdown; charset=utf-8",
    "opml": "text/x-opml; charset=utf-8",
}
EXTENSIONS: dict[str, str] = {"json": "json", "markdown": "md", "opml": "opml"}

__all__ = [
    "EXTENSIONS",
    "IMPORT_MAX_BYTES",
    "MEDIA_TYPES",
    "Document",
    "Format",
    "Item",
    "OutlineError",
    "UnrepresentableError",
    "parse",
    "render",
    "to_node",
]


def parse(fmt: Format, content: str, limits: TreeLimits) -> Document:
    """The document in `content`; raises OutlineError (with the line or element) for bad input or one
    over the limits (bytes, nodes, depth), before anything is applied anywhere."""
    check_size(content)
    if fmt == "json":
        return json_format.parse(content, limits)
    if fmt == "markdown":
        return markdown.parse(content, limits)
    return opml.parse(content, limits)


def render(fmt: Format, title: str, rev: int, tree: Mapping[str, Any]) -> str:
    """The session's tree (wire format) as a file; OPML raises UnrepresentableError for control characters."""
    if fmt == "json":
        return json_format.render(title, rev, tree)
    if fmt == "markdown":
        return markdown.render(tree)
    return opml.render(title, tree)

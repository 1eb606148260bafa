"""Import/export formats: Hypothesis round trips and malformed files at every level (the 422 detail)."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from canopy import outline
from canopy.outline import Item, OutlineError, markdown, opml
from canopy.tree import Tree, TreeLimits

LIMITS = TreeLimits()
XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def tree_strategies(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Trees in the engine's limits: values, prop keys and string props drawn from `alphabet`."""
    text = st.text(alphabet, min_size=1, max_size=40)
    scalars = st.one_of(
        st.text(alphabet, max_size=40),
        st.integers(-(2**53) + 1, 2**53 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
        st.booleans(),
    )
    props = st.dictionaries(st.text(alphabet, min_size=1, max_size=20), scalars, max_size=4)
    return st.recursive(
        st.builds(_leaf, text, props),
        lambda kids: st.builds(
            lambda v, p, c: {"value": v, "props": p, "children": c}, text, props, st.lists(kids, max_size=4)
        ),
        max_leaves=25,
    )


def _leaf(value: str, p: dict[str, Any]) -> dict[str, Any]:
    return {"value": value, "props": p, "children": []}


ANY_CHAR = st.characters(exclude_categories=["Cs"])
# What XML 1.0 carries (control characters but tab, line feed and carriage return are refused).
XML_CHAR = st.one_of(st.characters(exclude_categories=["Cs", "Cc"]), st.sampled_from("\t\n\r"))
text = st.text(ANY_CHAR, min_size=1, max_size=40)
nodes = tree_strategies(ANY_CHAR)
xml_nodes = tree_strategies(XML_CHAR)


def with_ids(node: dict[str, Any], counter: itertools.count[int] | None = None, root: bool = True) -> dict[str, Any]:
    """The wire-format tree (ids, props only when non-empty) the session would export."""
    counter = counter or itertools.count()
    out: dict[str, Any] = {
        "id": "root" if root else f"n-{next(counter)}",
        "value": node["value"],
        "children": [with_ids(c, counter, False) for c in node["children"]],
    }
    if node["props"]:
        out["props"] = dict(node["props"])
    return out


def as_item(node: dict[str, Any]) -> Item:
    return Item(node["value"], dict(node.get("props") or {}), [as_item(c) for c in node["children"]])


def has_xml_invalid(node: dict[str, Any]) -> bool:
    strings = [node["value"], *(v for v in node["props"].values() if isinstance(v, str))]
    return any(XML_INVALID.search(s) for s in strings) or any(has_xml_invalid(c) for c in node["children"])


ROUND_TRIP = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@ROUND_TRIP
@given(nodes, text)
def test_json_round_trip(node: dict[str, Any], title: str) -> None:
    tree = with_ids(node)
    Tree.from_dict(tree, 0, LIMITS)  # what we export is a valid session tree
    doc = outline.parse("json", outline.render("json", title, 3, tree), LIMITS)
    assert doc.title == title and doc.root == as_item(tree)


@ROUND_TRIP
@given(nodes)
def test_markdown_round_trip(node: dict[str, Any]) -> None:
    tree = with_ids(node)
    doc = outline.parse("markdown", outline.render("markdown", "t", 0, tree), LIMITS)
    assert doc.root == as_item(tree)


@ROUND_TRIP
@given(xml_nodes, st.text(XML_CHAR, min_size=1, max_size=40))
@example({"value": "a\rb", "props": {"k\r": "\r\n"}, "children": []}, "title\r\n")
def test_opml_round_trip(node: dict[str, Any], title: str) -> None:
    tree = with_ids(node)
    doc = outline.parse("opml", outline.render("opml", title, 0, tree), LIMITS)
    assert doc.root == as_item(tree) and doc.title == title


@settings(max_examples=50, deadline=None)
@given(nodes)
def test_opml_refuses_what_xml_cannot_carry(node: dict[str, Any]) -> None:
    tree = with_ids(node)
    if not has_xml_invalid(node):
        doc = outline.parse("opml", outline.render("opml", "t", 0, tree), LIMITS)
        assert doc.root == as_item(tree)
        return
    with pytest.raises(outline.UnrepresentableError, match=r"U\+[0-9A-F]{4}.*OPML"):
        outline.render("opml", "t", 0, tree)


@given(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=30))
def test_opml_names_round_trip(key: str) -> None:
    name = opml.encode_name(key)
    assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name) and name != "text"
    assert opml.decode_name(name) == key


@given(st.text(st.characters(exclude_categories=["Cs"])))
def test_markdown_escape_round_trips(value: str) -> None:
    escaped = markdown.escape(value)
    assert "\n" not in escaped and "\r" not in escaped
    assert markdown.unescape(escaped) == value


def test_markdown_reads_hand_written_outlines() -> None:
    doc = outline.parse(
        "markdown",
        (
            "\ufeff# Project\r\n"
            'owner:: "ann"\n'
            "\n"
            "* Design\n"
            '    priority:: "high"\n'
            '    "due date":: "May"\n'
            "\t+ Wireframes\n"
            "- Build\n"
            "  - Back end\n"
            "      - API\n"
            "  - Front end\n"
            "- C:\\path \\\\ \\n\n"
        ),
        LIMITS,
    )
    assert doc.root == Item(
        "Project",
        {"owner": "ann"},
        [
            Item("Design", {"priority": "high", "due date": "May"}, [Item("Wireframes")]),
            Item("Build", {}, [Item("Back end", {}, [Item("API")]), Item("Front end")]),
            Item("C:\\path \\ \n"),
        ],
    )


def test_opml_reads_foreign_outlines() -> None:
    doc = outline.parse(
        "opml",
        (
            '<?xml version="1.0"?><opml version="1.0" xmlns:x="urn:other"><head><title>Feeds</title></head>'
            '<body><outline title="News" x:skip="1"><outline text="A" type="rss" xmlUrl="https://a/feed"/>'
            "</outline></body></opml>"
        ),
        LIMITS,
    )
    assert doc.title == "Feeds"
    assert doc.root == Item("Root", {}, [Item("News", {}, [Item("A", {"type": "rss", "xmlUrl": "https://a/feed"})])])


MALFORMED: list[tuple[str, str, dict[str, Any], str]] = [
    # format, content, where, reason (a fragment)
    ("json", '{"tree": {"value": "R", "children": [}', {"line": 1}, "not valid JSON"),
    ("json", '{\n"tree": {"value": "R",\n "children": 5}}', {"element": "$.tree.children"}, "must be a list"),
    (
        "json",
        '{"tree": {"value": "R", "children": [{"value": ""}]}}',
        {"element": "$.tree.children[0]"},
        "must not be empty",
    ),
    (
        "json",
        '{"tree": {"value": "R", "children": [{"value": "a", "children": [{"value": "b", "props": {"k": [1]}}]}]}}',
        {"element": "$.tree.children[0].children[0]"},
        "props.k",
    ),
    ("json", '{"title": 5, "tree": {"value": "R"}}', {"element": "$.title"}, "must be a string"),
    ("json", "[1, 2]", {"element": "$"}, "must be an object"),
    ("markdown", "- a\n  - b\nplain text\n", {"line": 3}, "expected a bullet"),
    ("markdown", "- a\n# late heading\n", {"line": 2}, "first line"),
    ("markdown", "- a\n  - b\n  k:: 1\n", {"line": 3}, "before the node's children"),
    ("markdown", "- a\n  k:: nope\n", {"line": 2}, "must be JSON"),
    ("markdown", "- a\n  k:: [1]\n", {"line": 2}, "a string, a number"),
    ("markdown", "- a\n  k:: 1\n  k:: 2\n", {"line": 3}, "given twice"),
    ("markdown", "- a\n-\n", {"line": 2}, "must not be empty"),
    ("markdown", "- a\n  k:: " + '"' + "x" * 501 + '"\n', {"line": 2}, "longer than 500"),
    ("opml", "<opml><body><outline text='a'></body></opml>", {"line": 1}, "not well-formed"),
    ("opml", "<outline text='a'/>", {"element": "/"}, "not <opml>"),
    ("opml", "<opml><head/></opml>", {"element": "/opml"}, "no <body>"),
    (
        "opml",
        "<opml><body><outline text='a'><p/></outline></body></opml>",
        {"element": "/opml/body/outline[1]/outline[1]"},
        "only <outline>",
    ),
    (
        "opml",
        "<opml><body><outline text='a'/><outline/></body></opml>",
        {"element": "/opml/body/outline[2]"},
        "needs a 'text'",
    ),
    (
        "opml",
        "<opml xmlns:canopy='urn:canopy:opml'><body><outline text='a' n='x' canopy:types='n:int'/></body></opml>",
        {"element": "/opml/body/outline[1]"},
        "not a int",
    ),
    (
        "opml",
        '<!DOCTYPE opml [<!ENTITY e "x">]><opml><body><outline text="&e;"/></body></opml>',
        {"element": "/"},
        "DTDs",
    ),
]


@pytest.mark.parametrize(("fmt", "content", "where", "reason"), MALFORMED)
def test_malformed_files_name_the_line_or_element(
    fmt: outline.Format, content: str, where: dict[str, Any], reason: str
) -> None:
    with pytest.raises(OutlineError) as caught:
        outline.parse(fmt, content, LIMITS)
    body = caught.value.body()
    for key, value in where.items():
        assert body[key] == value, body
    assert reason in body["reason"] and body["detail"].endswith(body["reason"])


@pytest.mark.parametrize("fmt", ["json", "markdown", "opml"])
def test_node_and_depth_limits_are_checked_while_parsing(fmt: outline.Format) -> None:
    small = TreeLimits(max_nodes=5, max_depth=3)
    wide = with_ids({"value": "R", "props": {}, "children": [_leaf(f"n{i}", {}) for i in range(5)]})
    with pytest.raises(OutlineError, match="more than the limit of 5 nodes"):
        outline.parse(fmt, outline.render(fmt, "t", 0, wide), small)
    deep = with_ids(
        {
            "value": "R",
            "props": {},
            "children": [
                {"value": "a", "props": {}, "children": [{"value": "b", "props": {}, "children": [_leaf("c", {})]}]}
            ],
        }
    )
    with pytest.raises(OutlineError, match="deeper than the limit of 3 levels"):
        outline.parse(fmt, outline.render(fmt, "t", 0, deep), small)


def test_content_over_the_byte_limit_is_refused_before_parsing() -> None:
    content = "- " + "é" * (outline.IMPORT_MAX_BYTES // 2)
    with pytest.raises(OutlineError, match="bytes; the limit is"):
        outline.parse("markdown", content, LIMITS)

"""Declared types: read from YAML declarations, and JSON values checked against them."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tier2.core.types import (
    ListOf,
    MapOf,
    Record,
    Scalar,
    TypeDeclarationError,
    conforms,
    declaration,
    parse_type,
)

ORDER = {
    "id": "string",
    "items": [{"item_id": "string", "price": "money", "options": "map<string>"}],
    "tags": "list<string>",
}


@pytest.mark.parametrize(
    ("declared", "parsed"),
    [
        ("money", Scalar("money")),
        ("list<string>", ListOf(Scalar("string"))),
        ("list< map<number> >", ListOf(MapOf(Scalar("number")))),
        (["timestamp"], ListOf(Scalar("timestamp"))),
        ({"a": {"b": "bool"}}, Record((("a", Record((("b", Scalar("bool")),))),))),
        ([{"price": "money"}], ListOf(Record((("price", Scalar("money")),)))),
    ],
)  # fmt: skip
def test_a_declaration_reads_as_a_type(declared: Any, parsed: Any) -> None:
    """Scalars, list<T>, map<T>, nested records and one-element lists [T] are types."""
    assert parse_type(declared, "facts.x") == parsed


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ("list", "facts.x: no type 'list'"),
        ("integer", "facts.x: no type 'integer'"),
        ("list<>", "facts.x: no type 'list<>'"),
        ("map<list<strin>>", "facts.x: no type 'map<list<strin>>'"),
        ("any", "facts.x: no type 'any'"),
        (["string", "number"], "facts.x: a list type is written [T], with one element (got 2)"),
        ([], "with one element (got 0)"),
        (None, "facts.x: no type None"),
        ({"items": [{"price": "moneys"}]}, "facts.x.items[0].price: no type 'moneys'"),
        ({True: "string"}, "facts.x: True is not a field name"),
    ],
)  # fmt: skip
def test_a_bad_declaration_names_the_field_and_the_type(declared: Any, message: str) -> None:
    """Any other name or shape is an error naming the field path and the bad type."""
    with pytest.raises(TypeDeclarationError, match=re.escape(message)):
        parse_type(declared, "facts.x")


def test_any_is_a_type_where_allowed() -> None:
    """`any` (definitions) is a type only when asked for."""
    assert parse_type("map<any>", "d", allow_any=True) == MapOf(Scalar("any"))


@pytest.mark.parametrize("declared", [ORDER, "list<map<number>>", {"a": "timestamp"}])
def test_a_type_writes_back_as_its_declaration(declared: Any) -> None:
    """`declaration` gives the YAML form (list<T> for [T] of a scalar)."""
    assert parse_type(declaration(parse_type(declared, "x")), "x") == parse_type(declared, "x")


@pytest.mark.parametrize(
    ("value", "declared", "wrong"),
    [
        ({"id": "O1", "items": [{"item_id": "A1", "price": 10.1, "options": {"c": "red"}}]}, ORDER, None),
        ({"id": "O1", "extra": 1}, ORDER, None),
        ({"items": [{"price": None}]}, ORDER, None),
        (None, ORDER, None),
        ("O1", ORDER, "expected a record, got a string"),
        ({"items": {"a": 1}}, ORDER, "items: expected a list, got a map"),
        ({"items": [{"price": 1}, {"price": "1"}]}, ORDER, "items[1].price: expected a number, got a string"),
        ({"items": [{"options": {"c": 1}}]}, ORDER, "items[0].options.c: expected a string, got a number"),
        ({"tags": ["a", None]}, ORDER, "tags[1]: null in a list"),
        (True, "number", "expected a number, got a bool"),
        (float("inf"), "money", "expected a finite number, got inf"),
        (1, "money", None),
        ("2026-03-01T10:00:00+01:00", "timestamp", None),
        ("yesterday", "timestamp", "expected a timestamp (ISO 8601), got 'yesterday'"),
        (1, "bool", "expected a bool, got a number"),
        ([[1.0], [2.0, "x"]], "list<list<number>>", "[1][1]: expected a number, got a string"),
        ({"a": [1]}, "map<string>", "a: expected a string, got a list"),
    ],
)  # fmt: skip
def test_a_value_conforms_or_says_what_is_wrong(
    value: Any, declared: Any, wrong: str | None
) -> None:
    """None when the value fits (null fields and undeclared fields too); else where and what."""
    assert conforms(value, parse_type(declared, "x")) == wrong

"""Definitions: named, typed expressions evaluated lazily, at most once per case."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import DELETE, ECOMMERCE_BASE, patched, run
from tier2.core.expressions import (
    ABSENT,
    FAILED,
    VALUE,
    ClauseFailed,
    EvaluationError,
    Memo,
    Outcome,
    Scope,
    compile_expression,
)
from tier2.core.library import Definition
from tier2.core.types import Type, parse_type
from tier2.library.loader import load_library, resolve_library_path


class Counted:
    """A definition that counts how often a scope settles its value (a fake)."""

    def __init__(self, name: str, kind: str, source: str) -> None:
        self.inner = Definition(name, _type(kind), "", compile_expression(source))
        self.settled = 0

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def expression(self) -> Any:
        return self.inner.expression

    def settle(self, outcome: Outcome) -> Outcome:
        self.settled += 1
        return self.inner.settle(outcome)


def scopes(view: dict[str, Any], *definitions: Any) -> list[Scope]:
    """The same case with and without a memo, with these definitions."""
    by_name = {d.name: d for d in definitions}
    return [
        Scope(dict(view), definitions=by_name),
        Scope(dict(view), Memo(), definitions=by_name),
    ]


def _type(kind: str) -> Type:
    return parse_type(kind, "type", allow_any=True)


def define(name: str, kind: str, source: str) -> Definition:
    return Definition(name, _type(kind), "", compile_expression(source))


@pytest.mark.parametrize("memo", [None, Memo()])
def test_a_definition_is_evaluated_once_per_case_however_often_it_is_read(
    memo: Memo | None,
) -> None:
    """Three expressions read one definition: it is evaluated once on the case."""
    total = Counted("total", "number", "facts.a + facts.b")
    scope = Scope({"facts": {"a": 2.0, "b": 3.0}}, memo, definitions={"total": total})
    assert scope.holds(compile_expression("total > 4"))
    assert not scope.holds(compile_expression("total > 6"))
    assert scope.value(compile_expression("total * 2.0")) == 10.0
    assert total.settled == 1


def test_a_definition_no_expression_reads_is_not_evaluated() -> None:
    """Lazily: a definition is evaluated only when an expression reading it runs."""
    unused = Counted("unused", "number", "1 / 0")
    scope = Scope({"facts": {"a": 1.0}}, Memo(), definitions={"unused": unused})
    assert scope.holds(compile_expression("facts.a == 1"))
    assert unused.settled == 0


def test_each_case_evaluates_the_definition_afresh() -> None:
    """The definition's value belongs to one case: a new case, a new value (memo shared)."""
    memo = Memo()
    twice = define("twice", "number", "facts.a * 2.0")
    clause = compile_expression("twice == 4")
    for a, expected in ((2.0, True), (3.0, False), (2.0, True)):
        scope = Scope({"facts": {"a": a}}, memo, definitions={"twice": twice})
        assert scope.holds(clause) is expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("total > 1", False),
        ("!(total > 1)", False),
        ("total > 1 || facts.a == 1", False),
        ("total == null", False),
    ],
)
def test_an_absent_definition_is_absent_for_every_expression_reading_it(
    source: str, expected: bool
) -> None:
    """A definition reading an absent field is absent: every clause reading it is false."""
    total = define("total", "number", "facts.a + facts.missing")
    for scope in scopes({"facts": {"a": 1.0}}, total):
        assert scope.holds(compile_expression(source)) is expected
        with pytest.raises(EvaluationError) as err:
            scope.value(compile_expression(source))
        assert err.value.absent


@pytest.mark.parametrize(
    ("kind", "source", "why"),
    [
        ("number", "facts.s + 1.0", "definition total: "),
        ("number", "facts.s", "definition total: expected a number, got a string"),
        ("number", "1.0 / 0.0", "definition total: expected a finite number, got inf"),
        (
            "money",
            "1e13",
            "definition total: its value 10000000000000.0 is beyond 1,000,000,000,000",
        ),
        ("bool", "facts.a", "definition total: expected a bool, got a number"),
        ("timestamp", "facts.s", "definition total: expected a timestamp (ISO 8601), got 'x'"),
        ("list<string>", '["a", 1]', "definition total: [1]: expected a string, got a number"),
        ("map<number>", "{1: 2}", "definition total: a map key is a number, not a string"),
        ("map<number>", '{"x": "y"}', "definition total: x: expected a number, got a string"),
    ],
)
def test_a_failed_definition_fails_every_clause_reading_it(
    kind: str, source: str, why: str
) -> None:
    """A definition that fails, or whose value is not of its type, fails closed every
    clause reading it, naming the definition; `||` does not hide it."""
    total = define("total", kind, source)
    for scope in scopes({"facts": {"a": 1.0, "s": "x"}}, total):
        for clause in ("total == total", "facts.a == 1 || total == total"):
            with pytest.raises(ClauseFailed) as err:
                scope.holds(compile_expression(clause))
            assert err.value.why.startswith(why)


def test_failed_wins_over_absent_when_an_expression_reads_both() -> None:
    """An expression reading an absent and a failed definition fails (fail closed)."""
    gone = define("gone", "number", "facts.missing")
    bad = define("bad", "number", "facts.s")
    for scope in scopes({"facts": {"s": "x"}}, gone, bad):
        status, why = scope.outcome(compile_expression("gone + bad > 0.0"))
        assert status == FAILED and why.startswith("definition bad: ")


@pytest.mark.parametrize(
    ("kind", "source", "value"),
    [
        ("money", "facts.a / 3.0", 33.33),
        ("money", "2.675", 2.68),  # half-up on the decimal written, not the binary float
        ("money", "0.125", 0.13),
        ("money", "-0.125", -0.13),
        ("list<money>", "[0.125, 1.0 / 3.0]", [0.13, 0.33]),
        ("map<money>", '{"x": 0.005}', {"x": 0.01}),
        ("number", "2", 2.0),
        ("any", '{"a": [1, "b"]}', {"a": [1, "b"]}),
        ("timestamp", 'timestamp("2026-01-02T03:04:05Z")', datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
    ],
)  # fmt: skip
def test_a_definition_value_takes_its_type(kind: str, source: str, value: Any) -> None:
    """A definition's value as its type holds it: money rounded half-up to cents, a
    number a double."""
    d = define("d", kind, source)
    for scope in scopes({"facts": {"a": 100.0}}, d):
        assert scope.defined(d) == (VALUE, value)
        assert scope.value(compile_expression("d")) == value


def test_money_rounding_is_what_other_expressions_read() -> None:
    """An expression reading a money definition reads the rounded value."""
    third = define("third", "money", "facts.a / 3.0")
    for scope in scopes({"facts": {"a": 100.0}}, third):
        assert scope.holds(compile_expression("third * 3.0 == 99.99"))


def test_a_null_value_is_absent() -> None:
    """A definition whose value is null is absent (as a null field is)."""
    d = define("d", "string", "facts.a > 5.0 ? 'big' : null")
    for scope in scopes({"facts": {"a": 1.0}}, d):
        assert scope.defined(d)[0] == ABSENT
        assert not scope.holds(compile_expression('d == "big"'))


def test_a_definition_reads_another_and_a_path_beyond_it() -> None:
    """A definition may read another, and an expression a field or index of one."""
    lines = define("lines", "map<any>", '{"A1": {"price": 10.5}, "B2": {"price": 4.25}}')
    total = define("total", "money", 'lines.A1.price + lines["B2"].price')
    ids = compile_expression("facts.ids.map(i, lines[i].price)")
    for scope in scopes({"facts": {"ids": ["B2", "A1"]}}, lines, total):
        assert scope.value(compile_expression("total")) == 14.75
        assert scope.value(ids) == [4.25, 10.5]


@pytest.mark.parametrize("a", [1.0, 2.0, -3.5, "x", None])
def test_the_memo_answers_as_a_direct_evaluation_does(a: Any) -> None:
    """With definitions, an expression's outcome with the memo is its outcome without."""
    memo = Memo()
    half = define("half", "number", "facts.a / 2.0")
    clause = compile_expression("half >= 1.0")
    facts = {} if a is None else {"a": a}
    for _ in range(2):
        remembered = Scope({"facts": facts}, memo, {"half": half}).outcome(clause)
        assert remembered == Scope({"facts": facts}, definitions={"half": half}).outcome(clause)


# --------------------------------------------------------------------------- in a library

DEFINITIONS = """definitions:
  asked:
    type: money
    doc: What the customer asks back, to the cent.
    expr: 'request.amount * 1.0005'
  delivered:
    type: timestamp
    doc: When the order was delivered.
    expr: 'timestamp(facts.order.delivered_at)'
  in_window:
    type: bool
    doc: Whether the request came within 30 days of delivery.
    expr: 'received_at >= delivered && received_at - delivered <= duration("720h")'
policies:
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The ecommerce library with definitions; the in-window refund reads them."""
    folder = Path(tmp_path_factory.mktemp("lib")) / "shop"
    shutil.copytree(resolve_library_path("ecommerce"), folder)
    policies = folder / "policies.yaml"
    text = policies.read_text().replace("policies:\n", DEFINITIONS, 1)
    text = text.replace(
        """      - 'received_at >= timestamp(facts.order.delivered_at)'
      - 'received_at - timestamp(facts.order.delivered_at) <= duration("720h")'""",
        "      - 'in_window'",
    )
    old = "'has(request.amount) && request.amount < facts.order.value ? request.amount : facts.order.value'"
    assert old in text
    policies.write_text(text.replace(old, "asked", 1))
    return load_library(str(folder))


def test_the_library_lists_definitions_each_after_those_it_reads(library: Any) -> None:
    """Definitions load in dependency order; the view holds the sections they read."""
    assert [d.name for d in library.definitions] == ["asked", "delivered", "in_window"]
    assert library.definitions[0].doc == "What the customer asks back, to the cent."
    assert {"request", "facts", "received_at"} <= library.view_names


def test_an_action_amount_reads_a_definition(library: Any) -> None:
    """An action's amount may be a definition: its value, rounded as money."""
    d = run(patched(ECOMMERCE_BASE, {"handoff.request.amount": 100.0}), library)
    assert d["policies"] == ["refund.in-window"]
    assert d["actions"] == [{"type": "refund", "amount": 100.05, "currency": "USD"}]


def test_an_amount_reading_an_absent_definition_does_not_price_the_policy(library: Any) -> None:
    """No request amount: the definition is absent, so the policy does not match."""
    d = run(patched(ECOMMERCE_BASE, {"handoff.request.amount": DELETE}), library)
    apply = next(s for s in d["stages"] if s["stage"] == "apply_policy")
    assert apply["found"]["not_priced"] == ["refund.in-window"]
    assert d["policies"] == []


def test_a_failing_definition_is_a_library_error_naming_policy_clause_and_definition(
    library: Any,
) -> None:
    """A definition that fails on the case sends it to a human, naming where and why (a time
    without seconds is ISO 8601, so the case is valid, but no RFC 3339 timestamp for CEL)."""
    d = run(
        patched(ECOMMERCE_BASE, {"facts.order.delivered_at": "2026-02-25T10:00-05:00"}), library
    )
    assert d["outcome"] == "escalate"
    first = d["reasons"][0]
    assert first["code"] == "library_error"
    assert (
        "policy refund.in-window when[2]: `in_window` could not be evaluated: " in first["detail"]
    )
    assert "definition in_window: definition delivered: " in first["detail"]


def test_a_definition_may_be_a_record_or_a_list_of_records() -> None:
    """A definition typed as a record (or [record]) holds it with its money rounded; a field
    of the wrong type fails, naming it."""
    line = Definition(
        "line",
        parse_type([{"sku": "string", "price": "money"}], "type"),
        "",
        compile_expression('[{"sku": "A1", "price": 2.675, "note": "kept"}]'),
    )
    for scope in scopes({}, line):
        assert scope.value(compile_expression("line")) == [
            {"sku": "A1", "price": 2.68, "note": "kept"}
        ]
    wrong = Definition(
        "wrong", parse_type({"price": "money"}, "type"), "", compile_expression('{"price": "x"}')
    )
    for scope in scopes({}, wrong):
        status, why = scope.outcome(compile_expression("wrong"))
        assert (
            status == FAILED and why == "definition wrong: price: expected a number, got a string"
        )

"""Expressions are compiled programs; outcomes remembered across cases equal CEL's own."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tier2.core.expressions import (
    ABSENT as ABSENT_OUTCOME,
)
from tier2.core.expressions import (
    FAILED,
    MAX_LIST,
    STANDARD_FUNCTIONS,
    VALUE,
    ClauseFailed,
    EvaluationError,
    Expression,
    ExpressionError,
    Memo,
    Scope,
    compile_expression,
    run,
)

ABSENT = object()  # the field is left out of the view

# (expression, values of its one field): every remembered outcome must equal CEL's own
CLAUSES = [
    ("customer.arr > 50000", [50000, 50000.0, 50000.01, 0, -1.5, 1e12, None, "60000", True, ABSENT]),
    ("customer.arr >= 50000.5", [50000.5, 50000.4, 7, None, ABSENT]),
    ("signals.follow_ups < 3", [0, 2, 3, 4, 2.999, None, False]),
    ("customer.seats == 20", [20, 20.0, 21, None, "20", True, 1, 1.0]),
    ("facts.incident.id != null", ["INC-1", "INC-2", "", None, 0, 1.5, True, False, [], ["x"],
                                   {}, {"a": 1}, ABSENT]),
    ("facts.incident.id == 1", [1, 1.0, True, "1", [1], {"id": 1}, ABSENT]),
    ("size(ticket.tags) > 1", [[], ["a"], ["a", "b"], "ab", None, ABSENT]),
    ("timestamp(ticket.at) < timestamp(\"2026-03-01T00:00:00Z\")",
     ["2026-02-01T00:00:00Z", "2026-04-01T00:00:00+02:00", "no date", ABSENT]),
]  # fmt: skip


def _view(path: str, value: Any) -> dict[str, Any]:
    *parents, leaf = path.split(".")
    view: dict[str, Any] = {}
    node = view
    for part in parents:
        node = node.setdefault(part, {})
    if value is not ABSENT:
        node[leaf] = value
    return view


def _plain_outcome(outcome: tuple[int, Any]) -> tuple[int, Any]:
    status, value = outcome
    return (status, value if status == VALUE else None)  # a message may name other fields


def test_an_expression_is_an_immutable_compiled_program() -> None:
    """Compiling gives the source, CEL's program and the paths it reads; nothing changes it."""
    expression = compile_expression("customer.arr > 50000 && ticket.severity in ['high']")
    assert expression.source.startswith("customer.arr")
    assert expression.paths == ("customer.arr", "ticket.severity")
    assert not expression.calls and compile_expression("math.ceil(x.y)").calls
    with pytest.raises(dataclasses.FrozenInstanceError):
        expression.source = "true"  # type: ignore[misc]
    assert not hasattr(expression, "__dict__")  # nowhere to keep results


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("", "non-empty"),
        ("   ", "non-empty"),
        ("customer.arr >", "Syntax error"),
        ("a ? b", "Syntax error"),
        ("nosuchfn(customer.id)", "unknown function(s): nosuchfn"),
        ("least(1.0, 2.0) < 3.0", "did you mean math.least"),
        ("'x'.lowerAscii() == 'x'", "unknown function(s): lowerAscii"),
        (" || ".join(["true"] * 20_000), "longer than 4000 characters"),
        ("(" * 30 + "true" + ")" * 30, "nested 30 deep"),
        ("l.all(a, l.all(b, l.all(c, true)))", "3 comprehensions"),
        ("l.all(a, l.exists(b, l.exists(c, true)))", "3 comprehensions"),
        ("l.exists(a, l.map(b, l).size() > 0)", "a map or filter may not hold"),
        ("size(l) > 0 && l.exists(a, a in [" + ",".join(["1"] * 101) + "])", "a list of 101"),
        ("l.map(a, a).map(b, b).map(c, c).size() > 0", "3 comprehensions"),
        ('true // "\n && customer.vip == true // "', "comments (//)"),
        ('r"x" == ticket.id', "raw and byte strings"),
        ('ticket.id == """x"""', "triple-quoted strings"),
        ("ticket.messages.exists(customer, true) && customer.vip", "named like a field"),
    ],
)
def test_an_expression_that_does_not_compile_or_exceeds_a_bound_is_refused(
    source: str, why: str
) -> None:
    """Bad syntax, an unknown function and expressions too long, too deep or looping too
    deep are refused when compiled (before CEL's parser sees an oversized one)."""
    with pytest.raises(ExpressionError, match=re.escape(why)):
        compile_expression(source)


def test_two_comprehensions_one_inside_the_other_and_chains_compile() -> None:
    """The bound is on nesting: a comprehension inside one, or several in a row, is fine."""
    assert compile_expression("l.all(a, l.exists(b, a == b))").loops
    assert compile_expression("ticket.category in [" + ",".join(['"x"'] * 300) + "]")
    assert compile_expression("l.filter(a, a > 1).map(b, b * 2.0).size() > 0").loops
    assert not compile_expression("size(l) > 1").loops


def test_every_allowed_standard_function_is_one_the_runtime_has() -> None:
    """The allowlist names only functions CEL evaluates (none fails as undefined)."""
    calls = {
        "size": "size('ab')", "contains": "'ab'.contains('a')", "startsWith": "'ab'.startsWith('a')",
        "endsWith": "'ab'.endsWith('b')", "matches": "'ab'.matches('a')", "type": "type(1)",
        "dyn": "dyn(1)", "int": "int(1.5)", "uint": "uint(1)", "double": "double(1)",
        "string": "string(1)", "bytes": "bytes('a')", "timestamp": "timestamp('2026-01-01T00:00:00Z')",
        "duration": "duration('1h')",
    }  # fmt: skip
    ts = "timestamp('2026-01-01T10:11:12Z')"
    for name in STANDARD_FUNCTIONS:
        if name.startswith("get"):
            calls[name] = f"{ts}.{name}()"
    for name, source in calls.items():
        status, value = run(compile_expression(source), {})
        assert status == VALUE, (name, value)


def test_evaluation_is_against_plain_data() -> None:
    """Integers are doubles to CEL; an absent field is absent, not a failure; the math
    extension works, in cel-go's list form too."""
    assert run(compile_expression("a.b == 240.0"), {"a": {"b": 240}}) == (VALUE, True)
    status, _ = run(compile_expression("a.c == 1"), {"a": {"b": 1}})
    assert status == ABSENT_OUTCOME
    least = compile_expression("math.least(a, 2.5)")
    assert run(least, {"a": 7}) == (VALUE, 2.5)
    assert run(compile_expression("math.greatest([1.0, a])"), {"a": 7}) == (VALUE, 7.0)


@pytest.mark.parametrize(
    ("source", "data", "why"),
    [
        ("a + 1.0 > 0.0", {"a": True}, "bool + float"),
        ("a.b > 1.0", {"a": 5}, ""),
        ("1 / int(a) > 0", {"a": 0}, "division by zero"),
        ("math.least(a, 'x') < 1.0", {"a": 1}, "math.least': arguments it cannot take"),
        ("math.ceil(a) > 1.0", {"a": "x"}, "math.ceil': arguments it cannot take"),
        ("a.exists(x, x > 1.0)", {"a": list(range(MAX_LIST + 1))}, "loops over 101 elements"),
        ("a.exists(x, x == 'k')", {"a": {f"k{i}": 1 for i in range(MAX_LIST + 1)}}, "101"),
        ("{'refund': true}[a] == true", {"a": "other"}, "no key 'other'"),
    ],
)
def test_what_cannot_be_evaluated_fails_and_writes_nothing(
    source: str, data: dict[str, Any], why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A type CEL cannot take, a division by zero, an extension given the wrong arguments and
    a loop over too long a list fail (not absent), and nothing is written to standard error."""
    status, message = run(compile_expression(source), data)
    assert status == FAILED and why in message
    assert capsys.readouterr().err == ""


def test_a_clause_that_fails_or_is_not_a_boolean_is_neither_true_nor_false() -> None:
    """holds() raises ClauseFailed naming the clause; an absent field is plainly false."""
    for scope in (Scope({"a": "x"}), Scope({"a": "x"}, Memo())):
        with pytest.raises(ClauseFailed) as failed:
            scope.holds(compile_expression("a > 1.0"))
        assert failed.value.expression.source == "a > 1.0"
        with pytest.raises(ClauseFailed, match="not a boolean"):
            scope.holds(compile_expression("a"))
        assert scope.holds(compile_expression("b.c > 1.0")) is False


@pytest.mark.parametrize(("source", "values"), CLAUSES)
def test_remembered_outcomes_equal_cels_own(source: str, values: list[Any]) -> None:
    """One memo across many cases: each case's outcome equals CEL's on that case alone, in
    either order of arrival."""
    path = next(p for p in compile_expression(source).paths)
    for ordered in (values, list(reversed(values))):
        expression, memo = compile_expression(source), Memo()
        for value in ordered:
            view = _view(path, value)
            remembered = Scope(view, memo).outcome(expression)
            direct = Scope(view).outcome(expression)
            assert _plain_outcome(remembered) == _plain_outcome(direct), (source, value)


def test_timestamps_are_told_apart_by_their_offset() -> None:
    """Equal instants at different offsets may format differently, so they are not one key."""
    expression, memo = compile_expression("string(at)"), Memo()
    utc = datetime(2026, 3, 1, 12, tzinfo=UTC)
    rome = utc.astimezone(timezone(timedelta(hours=1)))
    for at in (utc, rome):
        assert Scope({"at": at}, memo).outcome(expression) == Scope({"at": at}).outcome(expression)


def test_equal_values_are_evaluated_once() -> None:
    """Cases reading the same values share one evaluation; new values are evaluated."""
    expression, memo = compile_expression("customer.segment == 'smb'"), Memo()
    for segment in ("smb", "enterprise", "smb", "smb", "enterprise"):
        Scope({"customer": {"segment": segment, "arr": 1.0}}, memo).holds(expression)
    assert len(memo.outcomes(expression)) == 2


def test_the_memo_is_bounded() -> None:
    """An expression's outcomes start afresh when there are `limit` of them."""
    expression, memo = compile_expression("x > 5"), Memo(limit=3)
    for x in range(10):
        assert Scope({"x": x}, memo).holds(expression) is (x > 5)
    assert len(memo.outcomes(expression)) <= 3


def test_the_memo_lives_outside_the_expression() -> None:
    """Two memos do not share outcomes: the expression itself keeps none."""
    expression = compile_expression("x > 5")
    first, second = Memo(), Memo()
    Scope({"x": 7}, first).holds(expression)
    assert len(first.outcomes(expression)) == 1
    assert len(second.outcomes(expression)) == 0


def test_a_scope_answers_holds_value_all_and_any() -> None:
    """A scope's answers are CEL's, with or without a memo."""
    view = {"a": 2, "b": "x"}
    yes, no, bad = (compile_expression(s) for s in ("a > 1", "b == 'y'", "c.d > 1"))
    for scope in (Scope(view), Scope(view, Memo())):
        assert scope.holds(yes) and not scope.holds(no) and not scope.holds(bad)
        assert scope.value(compile_expression("a * 2.0")) == 4.0
        with pytest.raises(EvaluationError) as missing:
            scope.value(bad)
        assert missing.value.absent
        assert scope.all_hold([yes]) and not scope.all_hold([yes, bad])
        assert scope.any_holds([no, yes]) and not scope.any_holds([no, bad])


def test_expressions_are_compared_by_identity() -> None:
    """The loader interns them; two compilations of one text are two expressions."""
    a, b = compile_expression("x > 1"), compile_expression("x > 1")
    assert a != b and len({a, b, a}) == 2
    assert isinstance(a, Expression)


def test_deeply_nested_data_fails_instead_of_raising() -> None:
    """Data nested deeper than Python's recursion allows is a failure, with or without memo."""
    deep: Any = 1.0
    for _ in range(5000):
        deep = [deep]
    expression = compile_expression("size(a.b) > 0")
    for scope in (Scope({"a": {"b": deep}}), Scope({"a": {"b": deep}}, Memo())):
        assert scope.outcome(expression)[0] == FAILED


def test_negative_zero_is_remembered_apart_from_zero() -> None:
    """-0.0 == 0.0 in Python, but CEL's 1.0 / x tells them apart: they are two memo keys."""
    expression, memo = compile_expression("1.0 / a > 0.0"), Memo()
    assert Scope({"a": 0.0}, memo).holds(expression) is True
    assert Scope({"a": -0.0}, memo).holds(expression) is False


ITEMS = [{"item_id": "A1", "price": 10.10}, {"item_id": "A2", "price": 12.45}]


@pytest.mark.parametrize(
    ("source", "data", "value"),
    [
        ("lists.sum([10.10, 12.45]) == 22.55", {}, True),
        ("lists.sum(o.items.map(i, i.price)) == 22.55", {"o": {"items": ITEMS}}, True),
        ("lists.sum(xs)", {"xs": [0.1] * 10}, 1.0),
        ("lists.sum([])", {}, 0.0),
        ("lists.sum([1, 2])", {}, 3.0),
        ("lists.zip(a, b)", {"a": ["A1", "A2"], "b": [1, 2]}, [["A1", 1.0], ["A2", 2.0]]),
        ("lists.zip([], [])", {}, []),
        ('lists.index(o.items, "item_id")["A2"].price', {"o": {"items": ITEMS}}, 12.45),
        ('lists.index([], "item_id")', {}, {}),
        ('lists.distinct(["A1", "A2", "A1", "A3", "A2"])', {}, ["A1", "A2", "A3"]),
        ("lists.distinct([2.0, 1.0, 2, 1.0])", {}, [2.0, 1.0]),
        ('lists.distinct(["1", 1.0])', {}, ["1", 1.0]),
        ('r.ids.all(i, i in lists.index(o.items, "item_id"))', {"r": {"ids": ["A1"]}, "o": {"items": ITEMS}}, True),
        ("size(o.items.filter(i, i.price > 11.0)) == 1", {"o": {"items": ITEMS}}, True),
    ],
)  # fmt: skip
def test_the_list_functions(source: str, data: dict[str, Any], value: Any) -> None:
    """lists.sum adds exactly (10.10 + 12.45 is 22.55), lists.zip pairs, lists.index looks
    elements up by a key, lists.distinct drops repeats keeping the first."""
    assert run(compile_expression(source), data) == (VALUE, value)


@pytest.mark.parametrize(
    ("source", "data", "why"),
    [
        ("lists.sum(xs)", {"xs": ["1"]}, "lists.sum': arguments it cannot take (a list of numbers expected)"),
        ("lists.sum(xs)", {"xs": [True]}, "a list of numbers expected"),
        ("lists.sum(xs)", {"xs": {"a": 1}}, "lists.sum': arguments it cannot take (a list expected)"),
        ("lists.sum(xs)", {"xs": [1.0] * (MAX_LIST + 1)}, "lists.sum': a list of 101 elements; at most 100"),
        ("lists.sum(a, b)", {"a": [1.0], "b": [1.0]}, "a list expected"),
        ("lists.zip(a, b)", {"a": [1.0], "b": [1.0, 2.0]}, "lists.zip': lists of different length (1 and 2)"),
        ("lists.zip(a, b)", {"a": [1.0], "b": "x"}, "lists expected"),
        ("lists.zip(a, b)", {"a": [1.0] * (MAX_LIST + 1), "b": [1.0] * (MAX_LIST + 1)}, "a list of 101 elements"),
        ('lists.index(a, "id")', {"a": [{"id": "x"}, {"id": "x"}]}, "lists.index': two elements have id 'x'"),
        ('lists.index(a, "id")', {"a": [{"id": "x"}, {"no": "y"}]}, "lists.index': element 1 has no string 'id'"),
        ('lists.index(a, "id")', {"a": [{"id": 1}]}, "element 0 has no string 'id'"),
        ('lists.index(a, "id")', {"a": ["x"]}, "element 0 has no string 'id'"),
        ("lists.index(a, 1)", {"a": []}, "a list of maps and a key expected"),
        ("lists.distinct(a)", {"a": [["x"]]}, "a list of strings or numbers expected"),
        ("lists.distinct(a)", {"a": list(range(MAX_LIST + 1))}, "a list of 101 elements"),
    ],
)  # fmt: skip
def test_a_list_function_given_what_it_cannot_take_fails_closed(
    source: str, data: dict[str, Any], why: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wrong arguments, lists of different length, a missing or repeated key and a list
    longer than MAX_LIST fail, saying why, and nothing is written to standard error."""
    status, message = run(compile_expression(source), data)
    assert status == FAILED and why in message
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("source", "why"),
    [
        ("sum([1.0]) > 0.0", "unknown function: sum (did you mean lists.sum?)"),
        ("zip(a, b) == []", "did you mean lists.zip?"),
        ("a.distinct() == []", "unknown function: a.distinct (did you mean lists.distinct?)"),
        ("math.sum([1.0]) > 0.0", "unknown function: math.sum (did you mean lists.sum?)"),
        ("lists.least(1.0, 2.0) > 0.0", "unknown function: lists.least (did you mean math.least?)"),
        ("a.lists.sum([1.0]) > 0.0", "did you mean lists.sum?"),
    ],
)  # fmt: skip
def test_a_list_function_needs_its_namespace(source: str, why: str) -> None:
    """`sum` without `lists.` (or under another namespace) is refused, like `least` without `math.`."""
    with pytest.raises(ExpressionError, match=re.escape(why)):
        compile_expression(source)


def test_the_lists_namespace_is_no_field() -> None:
    """A call of a list function reads only its arguments' fields."""
    assert compile_expression('lists.index(o.items, "id")["A1"].price > 1.0').paths == ("o.items",)

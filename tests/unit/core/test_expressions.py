"""Clause results remembered per case and across cases give what CEL gives directly."""

from __future__ import annotations

from typing import Any

import pytest

from tier2.core.expressions import Scope, compile_expression

ABSENT = object()  # the field is left out of the view

# (expression, values of its one field): every value's remembered result must equal CEL's own
COMPARISONS = [
    ("customer.arr > 50000", [50000, 50000.0, 50000.01, 0, -1.5, 1e12, None, "60000", True, ABSENT]),
    ("customer.arr >= 50000.5", [50000.5, 50000.4, 7, None, ABSENT]),
    ("signals.follow_ups < 3", [0, 2, 3, 4, 2.999, None, False]),
    ("signals.follow_ups <= 3", [3, 3.0, 4, -3]),
    ("customer.seats == 20", [20, 20.0, 21, None, "20"]),
    ("customer.seats != 20", [20, 21, None, ABSENT]),
    ("facts.incident.id != null", ["INC-1", "INC-2", "", None, 0, 1.5, True, False, [], ["x"],
                                   {}, {"a": 1}, ABSENT]),
    ("facts.incident.id == null", ["INC-1", None, 0, [], {}, ABSENT]),
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


def _direct(source: str, view: dict[str, Any]) -> tuple[bool, Any]:
    ok, value = Scope(view, memoize=False)._result(compile_expression(source))
    return (ok, value if ok else None)


@pytest.mark.parametrize(("source", "values"), COMPARISONS)
def test_a_field_compared_with_a_literal_is_remembered_by_class(
    source: str, values: list[Any]
) -> None:
    """One field against a literal: results kept per class of values equal CEL's, each value,
    in either order of arrival."""
    path = source.split(maxsplit=1)[0]
    for ordered in (values, list(reversed(values))):
        expression = compile_expression(source)  # a fresh memo
        assert expression.partition is not None
        for value in ordered:
            view = _view(path, value)
            ok, got = Scope(view)._result(expression)
            assert (ok, got if ok else None) == _direct(source, view), (source, value)


@pytest.mark.parametrize(
    "source",
    ["customer.arr > customer.limit", "size(ticket.tags) > 2", "customer.arr + 1 > 5",
     "ticket.severity in [\"high\"]", "customer.arr > 5 && customer.vip", "true == null"],
)  # fmt: skip
def test_other_clauses_are_remembered_by_value(source: str) -> None:
    """Only a plain `field OP literal` is remembered by class; any other clause by its values."""
    assert compile_expression(source).partition is None


def test_a_comparison_is_remembered_once_per_side() -> None:
    """Many ARRs on the two sides of the bound keep two results, not one per value."""
    expression = compile_expression("customer.arr > 50000")
    for arr in range(0, 200_000, 1_000):
        Scope({"customer": {"arr": float(arr)}})._result(expression)
    assert len(expression.memo) == 2


def test_clauses_reading_the_same_fields_share_one_conversion() -> None:
    """Two clauses on the same fields in one case convert the fields into CEL once."""
    scope = Scope({"received_at": "2026-03-01T00:00:00Z", "facts": {"at": "2026-01-01T00:00:00Z"}})
    early = compile_expression("timestamp(received_at) >= timestamp(facts.at)")
    late = compile_expression('timestamp(received_at) - timestamp(facts.at) > duration("720h")')
    assert scope.holds(early) and scope.holds(late)
    assert len(scope._converted) == 1

"""Static reading of a library's CEL expressions: which fields they read, which values they test.

Used by `tier2 lint` (fields no case has) and by the case generator (values worth trying).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from tier2.core.expressions import MAX_LOOP_NESTING, field_paths, path_tree
from tier2.core.library import Library
from tier2.core.types import ListOf, Record, Type

__all__ = ["field_paths", "path_tree"]

_PATH = r"([A-Za-z_](?:[\w.]|\[\])*)"  # a path, `[]` standing for any element of a list
_EQ = re.compile(_PATH + r'\s*(?:==|!=)\s*"([^"]*)"')
_IN = re.compile(_PATH + r"\s+in\s+\[([^\]]*)\]")
_HAS = re.compile(r'"([^"]*)"\s+in\s+' + _PATH)  # "A1" in request.item_ids
_CMP = re.compile(_PATH + r"\s*(>=|<=|>|<|==|!=)\s*(-?\d+(?:\.\d+)?)")
_ELEMENT = re.compile(r"(?<=[\w\]])\[\s*\d+\s*\]")  # xs[0]: an element of xs
_OVER = re.compile(
    _PATH + r"\.(?:all|exists|exists_one|map|filter)\(\s*([A-Za-z_]\w*)\s*,"
)  # xs.all(x, ...): x is an element of xs
TICKET_FIELDS = ("id", "severity", "category", "channel", "created_at", "subject", "description",
                 "tags", "status")  # fmt: skip
SIGNAL_FIELDS = ("prior_tickets", "complaints", "same_category_escalations", "complaint_pattern",
                 "commercial_sensitivity", "churn_threat", "public_complaint",
                 "customer_messages_after_agent", "hours_before_tier2",
                 "earlier_decisions")  # fmt: skip


def tested_values(sources: Iterable[str]) -> Mapping[str, set[Any]]:
    """For each field path, the literal values the expressions compare it with. A path
    through a list names its elements `[]`: in `facts.order.items.all(i, i.price > 0)` and
    in `facts.order.items[0].price > 0`, the path is `facts.order.items[].price`."""
    values: dict[str, set[Any]] = defaultdict(set)
    for source in sources:
        text = _ELEMENT.sub("[]", source)
        elements = {var: f"{path}[]" for path, var in _OVER.findall(text)}
        for path, literal in _EQ.findall(text):
            values[_through(path, elements)].add(literal)
        for path, items in _IN.findall(text):
            for item in re.findall(r'"([^"]*)"', items):
                values[_through(path, elements)].add(item)
        for literal, path in _HAS.findall(text):
            values[_through(path, elements)].add(literal)
        for path, _op, number in _CMP.findall(text):
            n = float(number)
            values[_through(path, elements)].update({n - 1, n, n + 1})
    return values


def _through(path: str, elements: Mapping[str, str]) -> str:
    """A path with a comprehension variable at its head written as the list it ranges over."""
    for _ in range(MAX_LOOP_NESTING + 1):  # (a variable over a list another one ranges over)
        head, dot, rest = path.partition(".")
        if head not in elements or elements[head].startswith(head + "."):
            return path
        path = elements[head] + dot + rest
    return path


def expression_sources(library: Library) -> list[tuple[str, str]]:
    """(owner, source) of every expression: owner names the definition, policy, trigger or
    point."""
    out: list[tuple[str, str]] = [(f"definition {d.name}", d.expression.source)
                                  for d in library.definitions]  # fmt: skip
    for p in library.signals.complexity_points:
        out.append((f"complexity point {p.id}", p.when.source))
    for t in library.triggers:
        out.extend((f"management trigger {t.id}", c.source) for c in t.when)
    for pol in library.policies:
        out.extend((f"policy {pol.id}", c.source) for c in (*pol.when, *pol.unless))
        out.extend(
            (f"policy {pol.id}", a.amount.source) for a in pol.actions if a.amount is not None
        )
        out.extend((f"policy {pol.id}", e.source) for a in pol.actions for _, e in a.params)
    return out


def case_paths(library: Library, source: str) -> set[str]:
    """The fields of the case an expression reads, through the definitions it reads."""
    defined = library.defined or {}
    out: set[str] = set()
    todo, seen = [source], {source}
    while todo:
        for path in field_paths(todo.pop()):
            definition = defined.get(path.split(".")[0])
            if definition is None:
                out.add(path)
            elif definition.expression.source not in seen:
                seen.add(definition.expression.source)
                todo.append(definition.expression.source)
    return out


def case_schema(library: Library) -> dict[str, Any]:
    """The fields a case view has: nested dicts, with None for a leaf (any sub-field allowed)."""
    return schema_of(library.facts, library.plan, library.signals.mentions, library.request_fields)


def schema_of(
    facts: Mapping[str, Type],
    plan: Mapping[str, Type],
    mentions: Iterable[str],
    request_fields: Iterable[str] = (),
) -> dict[str, Any]:
    """The fields a case view has, for a library declaring these facts, plan fields, mention
    lists and request fields."""
    leaves = dict.fromkeys
    return {
        "case": leaves(["id"]),
        "received_at": None,
        "now": None,
        "ticket": leaves(TICKET_FIELDS),
        "handoff": leaves(
            ["from", "reason", "customer_expectation", "sentiment", "escalated_at", "steps"]
        ),
        "request": leaves(["type", "amount", "currency", *request_fields]),
        "customer": {
            **leaves(["id", "segment", "vip", "arr", "currency", "flags"]),
            "plan": {name: _schema(t) for name, t in plan.items()},
        },
        "facts": {name: _schema(t) for name, t in facts.items()},
        "signals": {**leaves(SIGNAL_FIELDS), "mentions": leaves(mentions)},
    }


def _schema(type_: Type) -> Any:
    """A declared type as a schema node: a record's fields; a list (read whole: no field
    below it); None for a scalar or a map (any key below it)."""
    if isinstance(type_, Record):
        return {name: _schema(t) for name, t in type_.fields}
    if isinstance(type_, ListOf):
        return LIST
    return None


class _List:
    """A list in a schema: a path may end at it, not go on below it (`items.price`)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "LIST"


LIST = _List()


def unknown_prefix(path: str, schema: Mapping[str, Any]) -> str | None:
    """The first part of a path the schema does not have, or None if the path is known."""
    node: Any = schema
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if node is None:  # a leaf: sub-fields are open (a map; a scalar, as ever)
            return None
        if not isinstance(node, Mapping) or part not in node:  # (a list has no fields)
            return ".".join(walked)
        node = node[part]
    return None

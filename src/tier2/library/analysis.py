"""Static reading of a library's CEL expressions: which fields they read, which values they test.

Used by `tier2 lint` (fields no case has) and by the case generator (values worth trying).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from tier2.core.expressions import field_paths, path_tree
from tier2.core.library import Library

__all__ = ["field_paths", "path_tree"]

_EQ = re.compile(r'([A-Za-z_][\w.]*)\s*(?:==|!=)\s*"([^"]*)"')
_IN = re.compile(r"([A-Za-z_][\w.]*)\s+in\s+\[([^\]]*)\]")
_CMP = re.compile(r"([A-Za-z_][\w.]*)\s*(>=|<=|>|<|==|!=)\s*(-?\d+(?:\.\d+)?)")
TICKET_FIELDS = ("id", "severity", "category", "channel", "created_at", "subject", "description",
                 "tags", "status")  # fmt: skip
SIGNAL_FIELDS = ("prior_tickets", "complaints", "same_category_escalations", "complaint_pattern",
                 "commercial_sensitivity", "churn_threat", "public_complaint",
                 "customer_messages_after_agent", "hours_before_tier2",
                 "earlier_decisions")  # fmt: skip


def tested_values(sources: Iterable[str]) -> Mapping[str, set[Any]]:
    """For each field path, the literal values the expressions compare it with."""
    values: dict[str, set[Any]] = defaultdict(set)
    for source in sources:
        for path, literal in _EQ.findall(source):
            values[path].add(literal)
        for path, items in _IN.findall(source):
            for item in re.findall(r'"([^"]*)"', items):
                values[path].add(item)
        for path, _op, number in _CMP.findall(source):
            n = float(number)
            values[path].update({n - 1, n, n + 1})
    return values


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
    return schema_of(library.facts, library.plan, library.signals.mentions)


def schema_of(
    facts: Mapping[str, Any], plan: Iterable[str], mentions: Iterable[str]
) -> dict[str, Any]:
    """The fields a case view has, for a library declaring these facts, plan fields and
    mention lists."""
    leaves = dict.fromkeys
    records: dict[str, Any] = {
        record: leaves(fields) if isinstance(fields, Mapping) else None
        for record, fields in facts.items()
    }
    return {
        "case": leaves(["id"]),
        "received_at": None,
        "now": None,
        "ticket": leaves(TICKET_FIELDS),
        "handoff": leaves(
            ["from", "reason", "customer_expectation", "sentiment", "escalated_at", "steps"]
        ),
        "request": leaves(["type", "amount", "currency"]),
        "customer": {
            **leaves(["id", "segment", "vip", "arr", "currency", "flags"]),
            "plan": leaves(plan),
        },
        "facts": records,
        "signals": {**leaves(SIGNAL_FIELDS), "mentions": leaves(mentions)},
    }


def unknown_prefix(path: str, schema: Mapping[str, Any]) -> str | None:
    """The first part of a path the schema does not have, or None if the path is known."""
    node: Any = schema
    walked: list[str] = []
    for part in path.split("."):
        walked.append(part)
        if node is None:  # a leaf: sub-fields are open (lists, maps)
            return None
        if not isinstance(node, Mapping) or part not in node:
            return ".".join(walked)
        node = node[part]
    return None

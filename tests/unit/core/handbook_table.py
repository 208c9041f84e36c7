"""One row of a table-driven handbook test: a patch to a base case and the decision expected."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Row:
    id: str
    patch: Mapping[str, Any]
    outcome: str
    escalate_to: str | None = None
    codes: tuple[str, ...] = ()
    policies: tuple[str, ...] | None = None
    actions: tuple[tuple[str, float | None], ...] | None = None
    guidance_has: str | None = None
    detail_has: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


def check(row: Row, decide: Callable[[Mapping[str, Any]], dict[str, Any]]) -> dict[str, Any]:
    d = decide(row.patch)
    got = {
        "outcome": d["outcome"],
        "escalate_to": d["escalate_to"],
        "codes": tuple(r["code"] for r in d["reasons"]),
    }
    want = {"outcome": row.outcome, "escalate_to": row.escalate_to, "codes": row.codes}
    assert got == want, d["reasons"]
    if row.policies is not None:
        assert tuple(d["policies"]) == row.policies
    if row.actions is not None:
        assert tuple((a["type"], a.get("amount")) for a in d["actions"]) == row.actions
    if row.guidance_has is not None:
        assert d["guidance"] is not None and row.guidance_has in d["guidance"]
    if row.detail_has is not None:
        assert row.detail_has in d["reasons"][0]["detail"], d["reasons"][0]["detail"]
    return d

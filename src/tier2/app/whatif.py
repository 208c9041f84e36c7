"""`tier2 whatif`: every stored case decided again under a draft library, with no effect.

Each case is decided as it was first decided: its stored input, at its original decision
time, through the pipeline's first four stages (no document is rendered: a replay compares
outcomes, targets, reasons, policies and actions). A case is *changed* when its outcome, its
target or its actions (type and amount) differ; a change of the actions' parameters alone
(destination, items, ...) is counted in `params_only`; a change of the reasons alone is counted
apart. The summary holds what a Head of Support needs to judge the draft: the counts, the
old -> new outcome matrix, the escalations each role or team would receive more or fewer,
the money carried out before and after by action type and currency, each changed case's
old and new deciding reason and policies, and, where seniors reviewed a case, how often the
draft agrees with them against how often the decision did.

`Tally` adds up replays; tallies of parts (one per process) merge into the whole.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from tier2.contract import CaseError, Vocabulary, parse_case
from tier2.core.library import Library
from tier2.core.pipeline import verdict

ActionKey = tuple[str, float | None, str | None]  # type, amount, currency


@dataclass(frozen=True)
class Side:
    """One decision as the comparison reads it."""

    outcome: str
    escalate_to: str | None
    reasons: tuple[str, ...]  # codes, the deciding one first
    policies: tuple[str, ...]
    actions: tuple[ActionKey, ...]
    # each action's parameters (destination, items, ...), in the order of `actions`
    params: tuple[Params, ...] = ()

    def shown(self) -> dict[str, Any]:
        params = self.params or ((),) * len(self.actions)
        return {
            "outcome": self.outcome,
            "escalate_to": self.escalate_to,
            "first_reason": self.reasons[0] if self.reasons else None,
            "policies": list(self.policies),
            "actions": [
                {"type": t, "amount": a, "currency": c, **{k: _json(v) for k, v in p}}
                for (t, a, c), p in zip(self.actions, params, strict=True)
            ],
        }

    def acted(self) -> tuple[ActionKey, ...]:
        """What the decision carried out: a resolution's actions (an escalation only
        recommends its own)."""
        return self.actions if self.outcome == "resolve" else ()


@dataclass(frozen=True)
class Past:
    """A stored case as it was decided, and what a senior said was right, if they did."""

    case_id: str
    payload: dict[str, Any]
    decided_at: datetime
    old: Side
    expected: tuple[str, str | None] | None = None  # (outcome, escalate_to) per the review


def side_of(body: Mapping[str, Any]) -> Side:
    """A stored decision (the contract's shape) as a Side."""
    return Side(
        outcome=str(body["outcome"]),
        escalate_to=body.get("escalate_to"),
        reasons=tuple(str(r["code"]) for r in body.get("reasons") or ()),
        policies=tuple(str(p) for p in body.get("policies") or ()),
        actions=tuple(
            (str(a["type"]), a.get("amount"), a.get("currency")) for a in body.get("actions") or ()
        ),
        params=tuple(
            tuple(sorted((k, _frozen(v)) for k, v in a.items() if k not in _ACTION_KEYS))
            for a in body.get("actions") or ()
        ),
    )


_ACTION_KEYS = frozenset({"type", "amount", "currency"})
Params = tuple[tuple[str, Any], ...]  # an action's parameters, by name (lists as tuples)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def replay(past: Past, library: Library) -> Side:
    """The case decided again under `library` at its original decision time."""
    parsed = parse_case(past.payload, past.case_id, Vocabulary.of(library))
    if isinstance(parsed, CaseError):
        raise ValueError("; ".join(parsed.lines()))
    found = verdict(parsed, library, past.decided_at)
    return Side(
        outcome=found.outcome.value,
        escalate_to=found.escalate_to,
        reasons=tuple(r.code.value for r in found.reasons),
        policies=found.policies,
        actions=tuple((a.type, a.amount, a.currency) for a in found.actions),
        params=tuple(a.params for a in found.actions),
    )


def _money(into: dict[str, dict[str, float]], actions: Iterable[ActionKey], sign: float) -> None:
    for kind, amount, currency in actions:
        if amount is None:
            continue
        by = into.setdefault(kind, {})
        by[currency or ""] = by.get(currency or "", 0.0) + sign * amount


def _merge_money(a: dict[str, dict[str, float]], b: Mapping[str, Mapping[str, float]]) -> None:
    for kind, by in b.items():
        for currency, amount in by.items():
            into = a.setdefault(kind, {})
            into[currency] = into.get(currency, 0.0) + amount


@dataclass
class Tally:
    cases: int = 0
    unchanged: int = 0
    changed: int = 0
    reasons_only: int = 0
    params_only: int = 0  # the same outcome, target and actions, other action parameters
    errored: int = 0
    matrix: Counter[tuple[str, str]] = field(default_factory=Counter)
    to_humans_before: Counter[str] = field(default_factory=Counter)
    to_humans_after: Counter[str] = field(default_factory=Counter)
    money_before: dict[str, dict[str, float]] = field(default_factory=dict)
    money_after: dict[str, dict[str, float]] = field(default_factory=dict)
    changes: list[dict[str, Any]] = field(default_factory=list)
    params_changes: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)
    reviewed: int = 0
    agreed_before: int = 0
    agreed_after: int = 0

    def add(self, past: Past, new: Side | str) -> None:
        """One replay: its new side, or why it could not be decided."""
        self.cases += 1
        old = past.old
        if old.outcome == "escalate" and old.escalate_to:
            self.to_humans_before[old.escalate_to] += 1
        _money(self.money_before, old.acted(), 1.0)
        if isinstance(new, str):
            self.errored += 1
            self.errors.append({"case_id": past.case_id, "error": new})
            return
        self.matrix[(old.outcome, new.outcome)] += 1
        if new.outcome == "escalate" and new.escalate_to:
            self.to_humans_after[new.escalate_to] += 1
        _money(self.money_after, new.acted(), 1.0)
        self._review(past, new)
        if (old.outcome, old.escalate_to, _keys(old)) != (new.outcome, new.escalate_to, _keys(new)):
            self.changed += 1
            self.changes.append({"case_id": past.case_id, "old": old.shown(), "new": new.shown()})
        elif _params(old) != _params(new):
            self.params_only += 1
            self.params_changes.append(
                {"case_id": past.case_id, "old": old.shown(), "new": new.shown()}
            )
        elif old.reasons != new.reasons:
            self.reasons_only += 1
        else:
            self.unchanged += 1

    def _review(self, past: Past, new: Side) -> None:
        if past.expected is None:
            return
        self.reviewed += 1
        self.agreed_before += (past.old.outcome, past.old.escalate_to) == past.expected
        self.agreed_after += (new.outcome, new.escalate_to) == past.expected

    def merge(self, other: Tally) -> None:
        for name in ("cases", "unchanged", "changed", "reasons_only", "params_only", "errored",
                     "reviewed", "agreed_before", "agreed_after"):  # fmt: skip
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.matrix.update(other.matrix)
        self.to_humans_before.update(other.to_humans_before)
        self.to_humans_after.update(other.to_humans_after)
        _merge_money(self.money_before, other.money_before)
        _merge_money(self.money_after, other.money_after)
        self.changes.extend(other.changes)
        self.params_changes.extend(other.params_changes)
        self.errors.extend(other.errors)


def _keys(side: Side) -> tuple[tuple[str, float | None], ...]:
    return tuple((t, a) for t, a, _ in side.actions)


def _params(side: Side) -> tuple[Params, ...]:
    """The actions' parameters; none given (a decision stored before actions had any) reads
    as none for each action."""
    return side.params or ((),) * len(side.actions)


def tally(pasts: Iterable[Past], library: Library, against: Library | None = None) -> Tally:
    """Replay each case under `library` and add it up (one process's part); with `against`,
    compared with the case decided again under that library rather than as it was."""
    out = Tally()
    for past in pasts:
        if against is not None:
            try:
                past = replace(past, old=replay(past, against))  # noqa: PLW2901
            except Exception as exc:  # counted and shown, not lost
                out.add(past, f"under the library compared against: {type(exc).__name__}: {exc}")
                continue
        try:
            new: Side | str = replay(past, library)
        except Exception as exc:  # the draft fails on this case: counted and shown, not lost
            new = f"{type(exc).__name__}: {exc}"
        out.add(past, new)
    return out


def _rounded(money: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    return {
        kind: {c: round(v, 2) for c, v in sorted(by.items()) if round(v, 2) != 0.0}
        for kind, by in sorted(money.items())
        if any(round(v, 2) != 0.0 for v in by.values())
    }


def _delta(
    after: Mapping[str, Mapping[str, float]], before: Mapping[str, Mapping[str, float]]
) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    _merge_money(out, after)
    _merge_money(out, {k: {c: -v for c, v in by.items()} for k, by in before.items()})
    return _rounded(out)


def summary(
    t: Tally,
    *,
    library: Library,
    lint: Mapping[str, Any] | None = None,
    limit: int | None = None,
    against: Library | None = None,
) -> dict[str, Any]:
    """The what-if report: the contract's keys (section 4) and what else judging needs."""
    matrix: dict[str, dict[str, int]] = {}
    for (old, new), n in sorted(t.matrix.items()):
        matrix.setdefault(old, {})[new] = n
    targets = sorted(set(t.to_humans_before) | set(t.to_humans_after))
    changes = sorted(t.changes, key=_change_weight, reverse=True)
    return {
        "library": _named(library),
        "against": None if against is None else _named(against),
        "lint": dict(lint) if lint is not None else None,
        "cases": t.cases,
        "unchanged": t.unchanged,
        "changed": t.changed,
        "reasons_only": t.reasons_only,
        "params_only": t.params_only,
        "errored": t.errored,
        "matrix": matrix,
        "money_before": _rounded(t.money_before),
        "money_after": _rounded(t.money_after),
        "money_delta": _delta(t.money_after, t.money_before),
        "to_humans_delta": {
            k: t.to_humans_after[k] - t.to_humans_before[k]
            for k in targets
            if t.to_humans_after[k] != t.to_humans_before[k]
        },
        "to_humans": {
            k: {"before": t.to_humans_before[k], "after": t.to_humans_after[k]} for k in targets
        },
        "review": {
            "reviewed": t.reviewed,
            "agreement_before": round(t.agreed_before / t.reviewed, 4) if t.reviewed else None,
            "agreement_after": round(t.agreed_after / t.reviewed, 4) if t.reviewed else None,
        },
        "changes": changes if limit is None else changes[:limit],
        "params_changes": t.params_changes if limit is None else t.params_changes[:limit],
        "errors": t.errors[:100],
    }


def _named(library: Library) -> dict[str, str]:
    return {"name": library.name, "version": library.version, "digest": library.digest}


def _change_weight(change: Mapping[str, Any]) -> tuple[float, str]:
    """The biggest changes first: by the money that moves, then by case id."""
    moved = sum(
        abs(a.get("amount") or 0.0) for side in ("old", "new") for a in change[side]["actions"]
    )
    return moved, change["case_id"]


def changed_rows(changes: Sequence[Mapping[str, Any]]) -> Iterator[list[Any]]:
    """The CSV's rows: one per changed case, old and new side by side."""
    yield ["case_id", "old_outcome", "new_outcome", "old_escalate_to", "new_escalate_to",
           "old_first_reason", "new_first_reason", "old_policies", "new_policies",
           "old_actions", "new_actions"]  # fmt: skip
    for c in changes:
        old, new = c["old"], c["new"]
        yield [
            c["case_id"], old["outcome"], new["outcome"], old["escalate_to"] or "",
            new["escalate_to"] or "", old["first_reason"] or "", new["first_reason"] or "",
            " ".join(old["policies"]), " ".join(new["policies"]),
            _actions_text(old["actions"]), _actions_text(new["actions"]),
        ]  # fmt: skip


def _actions_text(actions: Sequence[Mapping[str, Any]]) -> str:
    return "; ".join(
        f"{a['type']} {a['amount']} {a['currency'] or ''}".strip()
        if a.get("amount") is not None
        else a["type"]
        for a in actions
    )

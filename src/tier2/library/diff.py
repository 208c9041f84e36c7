"""What changed between two loaded policy libraries, policy by policy and setting by setting
(`tier2 library diff`).

Pure: it reads two `Library` objects (expressions by their source text) and, for the
templates and any other file besides the three YAML files, the libraries' files. A change to
a YAML file that changes nothing loaded (a comment, the layout) is not a difference.

Every setting is first laid out as nested plain data (dicts, lists, strings, numbers), then
the two layouts are compared: a dict key by key (each change named by its dotted path, such
as `ladder.tier2.limit`), a list whose order does not matter (`Members`: the clauses of a
policy, the teams) item by item, anything else as a whole.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from tier2.contract import printable
from tier2.core.library import Library, Policy
from tier2.core.types import declaration

YAML_FILES = ("library.yaml", "sla.yaml", "policies.yaml")  # compared by what they hold

SECTIONS = {  # section -> its heading, in the order they are shown
    "definitions": "Definitions",
    "library": "Library",
    "authority": "Authority ladder",
    "management_triggers": "Management triggers",
    "routing": "Routing and teams",
    "sla": "SLA",
    "currencies": "Currencies",
    "handoff_protocol": "Handoff protocol",
    "signals": "Signals",
    "records": "Records (facts, plan, request)",
    "files": "Templates and other files",
}

Kind = Literal["added", "removed", "changed"]


class Members(tuple[Any, ...]):
    """A list whose order does not matter: compared item by item."""


@dataclass(frozen=True, slots=True)
class Change:
    field: str  # a dotted path: `limit`, `ladder.tier2.limit`, `actions[0].amount`
    kind: Kind
    old: Any = None  # (not for an addition)
    new: Any = None  # (not for a removal)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"field": self.field, "change": self.kind}
        if self.kind != "added":
            out["old"] = _plain(self.old)
        if self.kind != "removed":
            out["new"] = _plain(self.new)
        return out


@dataclass(frozen=True, slots=True)
class PolicyChange:
    id: str
    title: str  # the new title
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class LibraryDiff:
    old: Mapping[str, str]  # name, version, digest
    new: Mapping[str, str]
    added: tuple[tuple[str, str], ...]  # (id, title) of each policy only the new one has
    removed: tuple[tuple[str, str], ...]
    changed: tuple[PolicyChange, ...]
    order: Change | None  # the policies both have, when their order changed
    sections: tuple[tuple[str, tuple[Change, ...]], ...]  # the sections that changed

    @property
    def identical(self) -> bool:
        return not (self.added or self.removed or self.changed or self.order or self.sections)

    def to_json(self) -> dict[str, Any]:
        return {
            "old": dict(self.old),
            "new": dict(self.new),
            "identical": self.identical,
            "policies": {
                "added": [{"id": i, "title": t} for i, t in self.added],
                "removed": [{"id": i, "title": t} for i, t in self.removed],
                "changed": [
                    {"id": p.id, "title": p.title, "changes": [c.to_json() for c in p.changes]}
                    for p in self.changed
                ],
                "order": None if self.order is None else self.order.to_json(),
            },
            **{name: [c.to_json() for c in changes] for name, changes in self.sections},
        }


def diff_libraries(
    old: Library,
    new: Library,
    old_files: Mapping[str, bytes] | None = None,
    new_files: Mapping[str, bytes] | None = None,
) -> LibraryDiff:
    """What changed from `old` to `new`; the files (relative path -> bytes) give the
    templates and other files (not compared when either is None)."""
    old_p, new_p = {p.id: p for p in old.policies}, {p.id: p for p in new.policies}
    changed = []
    for pid, policy in new_p.items():
        if pid in old_p:
            changes = compare(_policy(old_p[pid]), _policy(policy))
            if changes:
                changed.append(PolicyChange(pid, policy.title, changes))
    common_old = [p for p in old_p if p in new_p]
    common_new = [p for p in new_p if p in old_p]
    before, after = _layout(old), _layout(new)
    if old_files is not None and new_files is not None:
        before["files"], after["files"] = _files(old_files), _files(new_files)
    sections = tuple(
        (name, changes)
        for name in SECTIONS
        if (changes := compare(before.get(name, {}), after.get(name, {})))
    )
    return LibraryDiff(
        old=_ref(old),
        new=_ref(new),
        added=tuple((p.id, p.title) for p in new.policies if p.id not in old_p),
        removed=tuple((p.id, p.title) for p in old.policies if p.id not in new_p),
        changed=tuple(changed),
        order=None
        if common_old == common_new
        else Change("order", "changed", common_old, common_new),
        sections=sections,
    )


# --------------------------------------------------------------------------- comparing


def compare(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> tuple[Change, ...]:
    """The changes from one layout to the other, in the order of their keys (the old one's,
    then the keys only the new one has)."""
    return tuple(_changes(old, new, prefix))


def _changes(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str) -> Iterator[Change]:
    keys = [*old, *(k for k in new if k not in old)]
    for key in keys:
        field = f"{prefix}.{key}" if prefix and not key.startswith("[") else f"{prefix}{key}"
        a, b = old.get(key, _ABSENT), new.get(key, _ABSENT)
        if a == b and type(a) is type(b):
            continue
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            yield from _changes(a, b, field)
        elif isinstance(a, Members) or isinstance(b, Members):
            was = a if isinstance(a, Members) else Members(() if a is _ABSENT else (a,))
            now = b if isinstance(b, Members) else Members(() if b is _ABSENT else (b,))
            yield from (Change(field, "removed", old=x) for x in was if x not in now)
            yield from (Change(field, "added", new=x) for x in now if x not in was)
        elif a is _ABSENT:
            yield Change(field, "added", new=b)
        elif b is _ABSENT:
            yield Change(field, "removed", old=a)
        else:
            yield Change(field, "changed", a, b)


class _Absent:
    def __repr__(self) -> str:
        return "(absent)"


_ABSENT: Any = _Absent()


# --------------------------------------------------------------------------- layouts


def _ref(library: Library) -> dict[str, str]:
    return {"name": library.name, "version": library.version, "digest": library.digest}


def _num(value: float | None) -> float | int | None:
    """500.0 as 500 (YAML's numbers are read as floats)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _policy(p: Policy) -> dict[str, Any]:
    return {
        "title": p.title,
        "citation": p.citation,
        "precedence": p.precedence,
        "when": Members(e.source for e in p.when),
        "unless": Members(e.source for e in p.unless),
        "outcome": p.outcome.value,
        "escalate_to": p.escalate_to,
        "actions": {
            f"[{i}]": {
                "type": a.type,
                "amount": None if a.amount is None else a.amount.source,
                **{a.place(name): e.source for name, e in a.params},
            }
            for i, a in enumerate(p.actions)
        },
        "guidance": p.guidance,
    }


def _layout(lib: Library) -> dict[str, Any]:
    """Every setting besides the policies, by section."""
    ladder = lib.authority.ladder
    return {
        "definitions": {
            d.name: {"type": declaration(d.type), "doc": d.doc, "expr": d.expression.source}
            for d in lib.definitions
        },
        "library": {"name": lib.name, "version": lib.version, "title": lib.title},
        "authority": {
            "engine": lib.authority.engine,
            "order": [r.name for r in ladder],
            "ladder": {r.name: {"limit": _num(r.limit), "may": Members(r.may)} for r in ladder},
            "applies_to": None
            if lib.authority.applies_to is None
            else Members(lib.authority.applies_to),
        },
        "management_triggers": {
            t.id: {"title": t.title, "when": Members(e.source for e in t.when)}
            for t in lib.triggers
        },
        "routing": {**asdict(lib.routing), "teams": Members(lib.teams)},
        "sla": _sla(lib),
        "currencies": {
            "currency": lib.currency,
            "accepted": {code: _num(value) for code, value in lib.currencies.items()},
            "money": {"places": lib.money.places, "rounding": lib.money.rounding},
        },
        "handoff_protocol": _handoff(lib),
        "signals": _signals(lib),
        "records": {
            "facts": {name: declaration(t) for name, t in lib.facts.items()},
            "plan": {name: declaration(t) for name, t in lib.plan.items()},
            "request": {
                "types": Members(lib.request_types),
                "fields": {n: declaration(t) for n, t in lib.request_fields.items()},
            },
        },
    }


def _sla(lib: Library) -> dict[str, Any]:
    cal = lib.sla.calendar
    return {
        "targets": {
            name: {sev: {"hours": _num(t.hours), "clock": t.clock} for sev, t in by_sev.items()}
            for name, by_sev in lib.sla.targets.items()
        },
        "at_risk": _num(lib.sla.at_risk),
        "calendar": {
            "timezone": cal.timezone,
            "hours": {day: [list(w) for w in windows] for day, windows in cal.windows.items()},
            "holidays": {
                "country": cal.holidays_country,
                "subdivision": cal.holidays_subdivision,
                "observed": cal.holidays_observed,
            },
            "extra_holidays": Members(cal.extra_holidays),
        },
    }


def _handoff(lib: Library) -> dict[str, Any]:
    h = lib.handoff
    return {
        "enabled": h.enabled,
        "require": {
            "reason": h.require_reason,
            "steps_taken": h.require_steps,
            "customer_expectation": h.require_expectation,
            "customer.id": h.require_customer_id,
        },
        "amount_required_for": Members(h.amount_required_for),
        "required_steps": {cat: Members(steps) for cat, steps in h.required_steps.items()},
        "required_steps_by_request": {
            kind: Members(steps) for kind, steps in h.required_steps_by_request.items()
        },
    }


def _signals(lib: Library) -> dict[str, Any]:
    s = lib.signals
    return {
        "off": Members(s.off),
        "mentions": {name: Members(words) for name, words in s.mentions.items()},
        "complaint_pattern": {
            "complaints": asdict(s.complaints),
            "same_category_escalations": asdict(s.same_category_escalations),
        },
        "commercial_sensitivity_flags": Members(s.commercial_flag_types),
        "churn_threat": {"flags": Members(s.churn_flag_types), "mention": s.churn_mention},
        "public_complaint": {
            "channels": Members(s.public_channels),
            "flags": Members(s.public_flag_types),
        },
        "complexity": {
            "threshold": s.complexity_threshold,
            "points": {
                p.id: {"title": p.title, "when": p.when.source} for p in s.complexity_points
            },
        },
    }


def _files(files: Mapping[str, bytes]) -> dict[str, Any]:
    """The files besides the three YAML files, each by its size (the content is compared)."""
    return {name: _FileSize(data) for name, data in sorted(files.items()) if name not in YAML_FILES}


class _FileSize(str):
    """A file's size as shown (`12 lines`), compared by the file's bytes."""

    data: bytes

    def __new__(cls, data: bytes) -> _FileSize:
        try:
            lines = data.decode("utf-8").count("\n") + (not data.endswith(b"\n") and bool(data))
            shown = f"{lines} line{'s' * (lines != 1)}"
        except UnicodeDecodeError:
            shown = f"{len(data)} bytes"
        made = super().__new__(cls, shown)
        made.data = data
        return made

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _FileSize) and self.data == other.data

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.data)


def _plain(value: Any) -> Any:
    """JSON's kinds: dicts, lists, strings, numbers, booleans, null."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, _FileSize):
        return str.__str__(value)
    return value


# --------------------------------------------------------------------------- text


def render_text(diff: LibraryDiff) -> str:
    """The diff for a person: policies first, then each section that changed."""
    lines = [f"--- {_name(diff.old)}", f"+++ {_name(diff.new)}"]
    if diff.identical:
        same = diff.old["digest"] == diff.new["digest"]
        lines.append(
            "identical"
            if same
            else "no differences in policies, settings or templates "
            "(the YAML files differ only in comments or layout)"
        )
        return _joined(lines)
    if diff.added or diff.removed or diff.changed or diff.order:
        lines += ["", "Policies"]
        lines += [f"  + {pid}  {title}" for pid, title in diff.added]
        lines += [f"  - {pid}  {title}" for pid, title in diff.removed]
        for policy in diff.changed:
            lines.append(f"  ~ {policy.id}  {policy.title}")
            lines += [f"      {_line(c)}" for c in policy.changes]
        if diff.order is not None:
            lines.append(f"  {_line(diff.order)}")
    for name, changes in diff.sections:
        lines += ["", SECTIONS[name]]
        lines += [f"  {_line(c)}" for c in changes]
    lines += ["", _count(diff)]
    return _joined(lines)


def _joined(lines: list[str]) -> str:
    """The lines, control characters escaped (a stored library's text may hold any)."""
    return "".join(printable(line) + "\n" for line in lines)


def _name(ref: Mapping[str, str]) -> str:
    return f"{ref['name']} {ref['version']} ({ref['digest']})"


def _line(change: Change) -> str:
    if change.kind == "added":
        return f"+ {change.field}: {_shown(change.new)}"
    if change.kind == "removed":
        return f"- {change.field}: {_shown(change.old)}"
    return f"{change.field}: {_shown(change.old)} → {_shown(change.new)}"


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return str.__str__(value)
    return json.dumps(_plain(value), ensure_ascii=False, separators=(", ", ": "))


def _count(diff: LibraryDiff) -> str:
    policies = len(diff.added) + len(diff.removed) + len(diff.changed)
    settings = sum(len(changes) for _, changes in diff.sections)
    return (
        f"{policies} polic{'y' if policies == 1 else 'ies'} and "
        f"{settings} other change{'s' * (settings != 1)}"
    )

"""A policy library as the core sees it: settings and policies, expressions already compiled.

The on-disk format (a folder of YAML files) is read by `tier2.library.loader`; this module holds
only the loaded, validated, frozen result.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from tier2.core.expressions import ABSENT, FAILED, MAX_LIST, VALUE, Expression, Memo
from tier2.core.expressions import Outcome as Evaluated
from tier2.core.model import Outcome
from tier2.core.money import MAX_AMOUNT, MoneyRule, round_money
from tier2.core.types import Type

CENTS = MoneyRule()  # the default rule: cents, half-up

# The request types of the contract: what a library's cases may ask for unless it declares
# its own (library.yaml `request.types`).
REQUEST_TYPES = ("refund", "credit", "replacement", "reship", "access_restore",
                 "contract_change", "information", "other")  # fmt: skip


class Templates(Protocol):
    """Renders the documents (note, handoff, guidance, reply) from plain data."""

    # The paths of the case the templates read (None: the case whole), so only those are
    # built for them.
    case_reads: frozenset[tuple[str, ...]] | None

    def render(self, name: str, context: Mapping[str, Any]) -> str: ...


@dataclass(frozen=True, slots=True)
class Role:
    name: str
    limit: float | None  # None: no limit
    may: tuple[str, ...] = ()

    def covers(self, amount: float) -> bool:
        return self.limit is None or amount <= self.limit


@dataclass(frozen=True, slots=True)
class Authority:
    """The authority ladder, lowest role first, and which role the engine acts as."""

    ladder: tuple[Role, ...]
    engine: str = "tier2"
    # The action types the ladder limits by amount (None: every action with an amount).
    applies_to: tuple[str, ...] | None = None

    def limits(self, action_type: str) -> bool:
        """Whether the ladder limits an action of this type by its amount."""
        return self.applies_to is None or action_type in self.applies_to

    @property
    def engine_role(self) -> Role:
        return next(r for r in self.ladder if r.name == self.engine)

    def lowest_covering(self, amount: float) -> Role | None:
        """The lowest role above the engine whose limit covers the amount."""
        above = False
        for role in self.ladder:
            if role.name == self.engine:
                above = True
                continue
            if above and role.covers(amount):
                return role
        return None


@dataclass(frozen=True, slots=True)
class HandoffProtocol:
    """A2: what a tier-1 handoff must carry, and the tier-1 steps each category (and each
    request type) requires. Not `enabled`: no handoff is ambiguous, no step is missing."""

    enabled: bool = True
    require_reason: bool = True
    require_steps: bool = True
    require_expectation: bool = True
    require_customer_id: bool = True
    amount_required_for: tuple[str, ...] = ("refund", "credit")
    required_steps: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # by category
    required_steps_by_request: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def steps_required(self, category: str, request_type: str | None) -> tuple[str, ...]:
        """The steps a case requires: its category's, then its request type's (no repeats)."""
        by_request = self.required_steps_by_request.get(request_type or "", ())
        return tuple(dict.fromkeys((*self.required_steps.get(category, ()), *by_request)))


@dataclass(frozen=True, slots=True)
class Window:
    at_least: int
    within_days: int


@dataclass(frozen=True, slots=True)
class ComplexityPoint:
    id: str
    title: str
    when: Expression


# The signal rules a library can switch off (library.yaml `signals.<rule>: false`).
SWITCHABLE = ("complaint_pattern", "commercial_sensitivity", "churn_threat", "public_complaint",
              "complexity")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Signals:
    """A3: how the signals gathered from the history and the ticket are computed."""

    complaints: Window = Window(3, 180)
    same_category_escalations: Window = Window(2, 365)
    commercial_flag_types: tuple[str, ...] = ("commercial_sensitivity",)
    churn_flag_types: tuple[str, ...] = ("churn_risk",)
    churn_mention: str | None = "churn"
    public_channels: tuple[str, ...] = ("social", "review_site")
    public_flag_types: tuple[str, ...] = ("public_complaint",)
    mentions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    complexity_threshold: int = 2
    complexity_points: tuple[ComplexityPoint, ...] = ()
    # The rules switched off (of SWITCHABLE): their signal is false, they find nothing.
    off: tuple[str, ...] = ()
    # `mentions` as (name, ((term, term lowercased), ...)), derived once
    mention_terms: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = field(
        init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        terms = tuple(
            (name, tuple((t, t.lower()) for t in words)) for name, words in self.mentions.items()
        )
        object.__setattr__(self, "mention_terms", terms)


@dataclass(frozen=True, slots=True)
class Trigger:
    """A4.4: a management escalation trigger."""

    id: str
    title: str
    when: tuple[Expression, ...]


@dataclass(frozen=True, slots=True)
class Routing:
    """Who gets a case for each rule of A4 that does not name its own target."""

    handoff_ambiguity: str = "senior_support"
    commercial_sensitivity: str = "senior_support"
    complaint_pattern: str = "senior_support"
    management_trigger: str = "support_manager"
    policy_conflict: str = "senior_support"
    no_policy_match: str = "senior_support"
    complexity: str = "senior_support"
    sla_breach: str = "support_manager"
    library_error: str = "senior_support"
    currency_not_accepted: str = "senior_support"


@dataclass(frozen=True, slots=True)
class ActionSpec:
    type: str
    amount: Expression | None = None
    # The parameter expressions, sorted by name: "to", "items" and the library's own.
    params: tuple[tuple[str, Expression], ...] = ()

    def place(self, name: str) -> str:
        """Where a parameter is written in the action: `to`, `items` or `params.NAME`."""
        return name if name in ("to", "items") else f"params.{name}"


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    title: str
    citation: str
    precedence: int
    when: tuple[Expression, ...]
    unless: tuple[Expression, ...]
    outcome: Outcome
    escalate_to: str | None
    actions: tuple[ActionSpec, ...]
    guidance: str | None
    source: str = ""  # the file it came from, for errors and lint


# The value types a definition may declare: these scalars, `any`, and `list<T>`/`map<T>` of
# them (nested), as written in policies.yaml.
SCALAR_TYPES = ("string", "number", "money", "bool", "timestamp")


class _Misfit(ValueError):
    """A definition's value that is not of its type (why)."""


def _kind(value: Any) -> str:
    return {str: "a string", float: "a number", int: "a number", bool: "a boolean",
            list: "a list", dict: "a map", datetime: "a timestamp", timedelta: "a duration",
            bytes: "bytes", type(None): "null"}.get(type(value), type(value).__name__)  # fmt: skip


def _inner(kind: str) -> tuple[str, str] | None:
    """`list<T>` or `map<T>` as (list or map, T); None for any other type."""
    for outer in ("list", "map"):
        if kind.startswith(outer + "<") and kind.endswith(">"):
            return outer, kind[len(outer) + 1 : -1].strip()
    return None


def conform(kind: str, value: Any, rule: MoneyRule = CENTS) -> Any:
    """The value as a definition of type `kind` holds it (a number as a float, money
    rounded by the library's rule); _Misfit if it is not of that type."""
    if kind == "any":
        return _conform_any(value, 0)
    if kind in ("number", "money"):
        return _number(kind, value, rule)
    scalar = {"string": str, "bool": bool, "timestamp": datetime}.get(kind)
    if scalar is not None:
        if type(value) is not scalar:
            raise _Misfit(f"its value is {_kind(value)}, not {kind}")
        return _bounded(value)
    outer, item = _inner(kind) or ("", "")
    _bounded(value)
    if outer == "list" and type(value) is list:
        return [_element(item, v, f"[{i}]", rule) for i, v in enumerate(value)]
    if outer == "map" and type(value) is dict:
        return {_key(k): _element(item, v, f"[{k!r}]", rule) for k, v in value.items()}
    raise _Misfit(f"its value is {_kind(value)}, not {kind}")


def _number(kind: str, value: Any, rule: MoneyRule) -> float:
    """A number (or money: rounded, at most MAX_AMOUNT either side of 0) as a float."""
    if type(value) not in (int, float):
        raise _Misfit(f"its value is {_kind(value)}, not {kind}")
    if not math.isfinite(value):
        raise _Misfit("its value is not a finite number")
    if kind == "money":
        if abs(value) > MAX_AMOUNT:
            raise _Misfit(f"its value {value!r} is beyond {MAX_AMOUNT:,.0f}")
        return round_money(float(value), rule)
    return float(value)


def _element(kind: str, value: Any, where: str, rule: MoneyRule) -> Any:
    try:
        return conform(kind, value, rule)
    except _Misfit as exc:
        raise _Misfit(f"{where}: {exc}") from None


def _key(key: Any) -> str:
    if type(key) is not str:
        raise _Misfit(f"a map key is {_kind(key)}, not a string")
    return key


_ANY_SCALARS = (str, float, int, bool, datetime, timedelta, bytes, type(None))


MAX_TEXT = 10_000  # characters of a string a definition holds
MAX_ELEMENTS = MAX_LIST  # elements of a list (or keys of a map) a definition holds


def _bounded(value: Any) -> Any:
    """The value, if it is within what a definition may hold (a string of at most MAX_TEXT
    characters, a list or map of at most MAX_ELEMENTS): definitions reading definitions
    cannot grow a value without end."""
    if type(value) is str and len(value) > MAX_TEXT:
        raise _Misfit(f"its value is a string of {len(value):,} characters; at most {MAX_TEXT:,}")
    if type(value) in (list, dict) and len(value) > MAX_ELEMENTS:
        raise _Misfit(f"its value has {len(value):,} elements; at most {MAX_ELEMENTS}")
    return value


def _conform_any(value: Any, depth: int) -> Any:
    """Any plain data: scalars, lists, and maps with string keys (as the view holds)."""
    if depth > 32:
        raise _Misfit("its value is nested too deep")
    _bounded(value)
    kind = type(value)
    if kind is list:
        return [_conform_any(v, depth + 1) for v in value]
    if kind is dict:
        return {_key(k): _conform_any(v, depth + 1) for k, v in value.items()}
    if kind not in _ANY_SCALARS:
        raise _Misfit(f"its value is {_kind(value)}")
    return value


def type_known(kind: str) -> bool:
    """Whether `kind` is a definition type `conform` knows."""
    nested = _inner(kind)
    if nested is not None:
        return type_known(nested[1])
    return kind == "any" or kind in SCALAR_TYPES


@dataclass(frozen=True, slots=True)
class Definition:
    """A named, typed, documented expression (policies.yaml `definitions:`), read by its bare
    name in any expression of the library and evaluated at most once per case."""

    name: str
    type: str  # any, a scalar of SCALAR_TYPES, list<T> or map<T>
    doc: str
    expression: Expression
    money: MoneyRule = field(default_factory=MoneyRule)  # how its money value is rounded

    def settle(self, outcome: Evaluated) -> Evaluated:
        """Its value on a case from its expression's outcome: null is absent; a value not
        of its type fails."""
        status, value = outcome
        if status != VALUE:
            return outcome
        if value is None:
            return (ABSENT, "its value is null")
        try:
            return (VALUE, conform(self.type, value, self.money))
        except _Misfit as exc:
            return (FAILED, str(exc))


@dataclass(frozen=True, slots=True)
class SlaTarget:
    name: str  # "resolution", "first_response", ...
    severity: str
    hours: float
    clock: str  # "business" or "24x7" (around the clock)


@dataclass(frozen=True, slots=True)
class Calendar:
    timezone: str
    windows: Mapping[str, tuple[tuple[str, str], ...]]  # weekday name -> ((start, end), ...)
    holidays_country: str | None = None
    holidays_subdivision: str | None = None
    holidays_observed: bool = True
    extra_holidays: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Sla:
    targets: Mapping[str, Mapping[str, SlaTarget]]  # target name -> severity -> target
    calendar: Calendar
    at_risk: float = 0.75


@dataclass(frozen=True, slots=True)
class Library:
    name: str
    version: str
    digest: str
    title: str
    authority: Authority
    handoff: HandoffProtocol
    signals: Signals
    triggers: tuple[Trigger, ...]
    policies: tuple[Policy, ...]
    routing: Routing
    sla: Sla
    facts: Mapping[str, Type]  # declared facts: name -> type (a record, a list, a scalar...)
    plan: Mapping[str, Type]  # declared customer.plan fields -> type
    templates: Templates
    currency: str | None = None
    # The currencies the library accepts, each with the value of one unit in the unit its
    # authority limits are written in (the handbook: EUR, USD and GBP at face value).
    currencies: Mapping[str, float] = field(default_factory=dict)
    # How the money the library computes is rounded (action amounts; money definitions).
    money: MoneyRule = field(default_factory=MoneyRule)
    # The human teams a case can go to, besides the roles of the authority ladder.
    teams: tuple[str, ...] = ()
    # The request types its cases may have, and the request fields it declares (name -> type)
    request_types: tuple[str, ...] = REQUEST_TYPES
    request_fields: Mapping[str, Type] = field(default_factory=dict)
    # The top-level names the expressions read (set by the loader): the view has only these.
    view_names: frozenset[str] | None = None
    # Whether the outcomes of the expressions are remembered, across the cases this library
    # decides, by the values they read (in `memo`).
    memoize: bool = True
    memo: Memo = field(default_factory=Memo, compare=False, repr=False)
    # Example cases the library's folder holds (`examples.jsonl`, JSON as the contract's):
    # `tier2 lint` decides them besides the generated ones.
    examples: tuple[Mapping[str, Any], ...] = field(default=(), compare=False, repr=False)
    # The definitions, each after those it reads.
    definitions: tuple[Definition, ...] = ()
    # The same by name (None when there are none: a case then pays nothing for them).
    defined: Mapping[str, Definition] | None = field(
        init=False, repr=False, compare=False, default=None
    )

    def __post_init__(self) -> None:
        by_name = {d.name: d for d in self.definitions} or None
        object.__setattr__(self, "defined", by_name)

    @property
    def expressions(self) -> tuple[Expression, ...]:
        out: list[Expression] = [d.expression for d in self.definitions]
        out.extend(p.when for p in self.signals.complexity_points)
        for t in self.triggers:
            out.extend(t.when)
        for p in self.policies:
            out.extend(p.when)
            out.extend(p.unless)
            out.extend(a.amount for a in p.actions if a.amount is not None)
            out.extend(e for a in p.actions for _, e in a.params)
        return tuple(out)

"""A policy library as the core sees it: settings and policies, expressions already compiled.

The on-disk format (a folder of YAML files) is read by `tier2.library.loader`; this module holds
only the loaded, validated, frozen result.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from tier2.core.expressions import ABSENT, FAILED, MAX_LIST, VALUE, Expression, Memo
from tier2.core.expressions import Outcome as Evaluated
from tier2.core.model import Outcome
from tier2.core.money import MAX_AMOUNT, MoneyRule, round_money
from tier2.core.types import ListOf, MapOf, Scalar, Type, conforms, kind_of

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


# What a definition's value may be, besides its type: definitions reading one another cannot
# grow a value without end.
MAX_TEXT = 10_000  # characters of a string
MAX_ELEMENTS = MAX_LIST  # elements of a list, or keys of a map
MAX_VALUE_DEPTH = 32  # lists and maps inside one another


class _Misfit(ValueError):
    """A definition's value that is not of its type, or too large (why)."""


def _bounded(value: Any, depth: int = 0) -> None:
    """_Misfit if the value is larger than a definition may hold, nested too deep, or a map
    with a key that is not a string."""
    if depth > MAX_VALUE_DEPTH:
        raise _Misfit("its value is nested too deep")
    kind = type(value)
    if kind is str and len(value) > MAX_TEXT:
        raise _Misfit(f"its value is a string of {len(value):,} characters; at most {MAX_TEXT:,}")
    if kind is list or kind is dict:
        if len(value) > MAX_ELEMENTS:
            raise _Misfit(f"its value has {len(value):,} elements; at most {MAX_ELEMENTS}")
        if kind is dict:
            for key in value:
                if type(key) is not str:
                    raise _Misfit(f"a map key is {kind_of(key)}, not a string")
        for item in value.values() if kind is dict else value:
            _bounded(item, depth + 1)


def _held(value: Any, type_: Type, rule: MoneyRule) -> Any:
    """A value that fits its type as a definition holds it: numbers as floats, money rounded
    by the library's rule (and at most MAX_AMOUNT either side of 0), at any depth."""
    if value is None:
        return None
    if isinstance(type_, Scalar):
        if type_.name not in ("number", "money"):
            return value
        if type_.name == "money":
            if abs(value) > MAX_AMOUNT:
                raise _Misfit(f"its value {value!r} is beyond {MAX_AMOUNT:,.0f}")
            return round_money(float(value), rule)
        return float(value)
    if isinstance(type_, ListOf):
        return [_held(v, type_.item, rule) for v in value]
    if isinstance(type_, MapOf):
        return {k: _held(v, type_.value, rule) for k, v in value.items()}
    fields = type_.field_types()
    return {k: _held(v, fields[k], rule) if k in fields else v for k, v in value.items()}


@dataclass(frozen=True, slots=True)
class Definition:
    """A named, typed, documented expression (policies.yaml `definitions:`), read by its bare
    name in any expression of the library and evaluated at most once per case."""

    name: str
    type: Type  # as core.types reads it; Scalar("any") takes any value
    doc: str
    expression: Expression
    money: MoneyRule = field(default_factory=MoneyRule)  # how its money values are rounded

    def settle(self, outcome: Evaluated) -> Evaluated:
        """Its value on a case from its expression's outcome: null is absent; a value not
        of its type, or too large, fails."""
        status, value = outcome
        if status != VALUE:
            return outcome
        if value is None:
            return (ABSENT, "its value is null")
        try:
            _bounded(value)
            wrong = conforms(value, self.type)
            if wrong is not None:
                raise _Misfit(wrong)
            return (VALUE, _held(value, self.type, self.money))
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

"""Load a policy library from a folder of YAML files; compile every expression once.

A library folder holds:
  library.yaml   name, version, authority ladder, routing, handoff protocol, signals,
                 management triggers, the facts its policies read
  sla.yaml       the tier-2 SLA matrix and the business calendar
  policies.yaml  the policies
  templates/     optional Jinja2 overrides of the package's note/handoff/guidance/reply
A library that does not load raises LibraryError naming the file, the policy and the problem.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import math
import os
import re
import shutil
import tempfile
import traceback
from collections.abc import Mapping
from dataclasses import replace
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
import orjson
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tier2.contract import CaseError, Vocabulary, parse_case, printable
from tier2.core import decide
from tier2.core.expressions import Expression, ExpressionError, bound_names, compile_expression
from tier2.core.library import (
    REQUEST_TYPES,
    SWITCHABLE,
    ActionSpec,
    Authority,
    Calendar,
    ComplexityPoint,
    Definition,
    HandoffProtocol,
    Library,
    Policy,
    Role,
    Routing,
    Signals,
    Sla,
    SlaTarget,
    Trigger,
    Window,
)
from tier2.core.model import Outcome, ReasonCode
from tier2.core.money import ISO_4217, MoneyRule
from tier2.core.types import Record, Type, TypeDeclarationError, parse_record, parse_type
from tier2.library.analysis import schema_of, unknown_prefix
from tier2.library.render import JinjaTemplates, TemplateLoadError
from tier2.library.samples import CaseGenerator

BUILT_IN = ("saas", "ecommerce", "retail")
FILES = ("library.yaml", "sla.yaml", "policies.yaml")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class LibraryError(ValueError):
    """A library that does not load: the message names file, policy and problem."""


class _Y(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Clauses = list[str]


class RoleY(_Y):
    role: str
    limit: float | None
    may: list[str] = []


class AuthorityY(_Y):
    engine: str = "tier2"
    ladder: list[RoleY] = Field(min_length=1)
    # the action types the ladder limits (None: every action with an amount); at least one,
    # each an action type with an amount in some policy (so a typo cannot lift the limits)
    applies_to: list[str] | None = Field(None, min_length=1)


def _switch(value: Any) -> Any:
    """A section a library can switch off: `false` (YAML's `off`) is off, as None; null is
    no section at all, which is not a way to switch it off."""
    if value is None:
        raise ValueError("switch the section off with false (or off), not with null")
    return None if value is False else value


class StepsY(_Y):
    by_category: dict[str, list[str]] = {}
    by_request: dict[str, list[str]] = {}


class HandoffY(_Y):
    enabled: bool = True
    require: (
        list[Literal["reason", "steps_taken", "customer_expectation", "customer.id"]] | None
    ) = None
    amount_required_for: list[str] = ["refund", "credit"]
    required_steps: StepsY = StepsY()

    @field_validator("required_steps", mode="before")
    @classmethod
    def _flat(cls, v: Any) -> Any:
        """The flat form (category -> steps) is `by_category`."""
        if isinstance(v, dict) and not {"by_category", "by_request"} & set(v):
            return {"by_category": v}
        return v

    @model_validator(mode="after")
    def _require(self) -> HandoffY:
        if self.enabled and self.require is None:
            raise ValueError("require: required field is missing (or say enabled: false)")
        return self


class RequestY(_Y):
    types: list[str] = Field(default=list(REQUEST_TYPES), min_length=1)
    fields: dict[str, Any] = {}  # name -> type (see core.types)

    @field_validator("types")
    @classmethod
    def _types(cls, v: list[str]) -> list[str]:
        for t in v:
            if not t.strip() or not t.isprintable():
                raise ValueError(f"{t!r} is not a request type (a word)")
        if len(set(v)) < len(v):
            raise ValueError("a request type is listed twice")
        return v

    @field_validator("fields")
    @classmethod
    def _fields(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name, kind in v.items():
            if not name.isidentifier() or name in ("type", "amount", "currency"):
                raise ValueError(
                    f"{name!r}: a request field is an identifier other than type, amount and "
                    "currency"
                )
            parse_type(kind, f"fields.{name}")
        return v

    def field_types(self) -> dict[str, Type]:
        """The declared request fields: name -> type."""
        return {name: parse_type(kind, name) for name, kind in self.fields.items()}


class WindowY(_Y):
    at_least: int = Field(ge=1)
    within_days: int = Field(ge=1)


class PointY(_Y):
    id: str
    title: str
    when: str


class ComplexityY(_Y):
    threshold: int = Field(ge=1)
    points: list[PointY] = []


class ComplaintPatternY(_Y):
    complaints: WindowY
    same_category_escalations: WindowY


class ChurnY(_Y):
    flags: list[str] = []
    mention: str | None = None


class PublicY(_Y):
    channels: list[str] = []
    flags: list[str] = []


class SignalsY(_Y):
    # A rule given as false (or off) is switched off: None here.
    mentions: dict[str, list[str]] = {}
    complaint_pattern: ComplaintPatternY | None
    commercial_sensitivity: bool = True
    commercial_sensitivity_flags: list[str] = ["commercial_sensitivity"]
    churn_threat: ChurnY | None = ChurnY()
    public_complaint: PublicY | None = PublicY()
    complexity: ComplexityY | None

    _off = field_validator(
        "complaint_pattern", "churn_threat", "public_complaint", "complexity", mode="before"
    )(_switch)


class TriggerY(_Y):
    id: str
    title: str
    when: Clauses = Field(min_length=1)


class MoneyY(_Y):
    places: int = Field(default=2, ge=0, le=9)
    rounding: Literal["half_up", "half_even", "down", "up", "ceiling", "floor"] = "half_up"


class LibraryY(_Y):
    name: str
    version: str
    title: str
    currency: str | None = None
    currencies: dict[str, float] = {}
    money: MoneyY = MoneyY()
    authority: AuthorityY
    teams: list[str] = []
    routing: dict[str, str] = {}
    handoff_protocol: HandoffY
    signals: SignalsY
    management_triggers: list[TriggerY] = []
    # what the case's facts and the customer's plan hold: field -> type (see core.types)
    facts: dict[str, Any] = {}
    plan: dict[str, Any] = {}
    request: RequestY = RequestY()

    @field_validator("handoff_protocol", mode="before")
    @classmethod
    def _protocol_off(cls, v: Any) -> Any:
        return {"enabled": False} if v is False else v

    @model_validator(mode="after")
    def _steps_by_request(self) -> LibraryY:
        types = self.request.types
        unknown = sorted(set(self.handoff_protocol.required_steps.by_request) - set(types))
        if unknown:
            raise ValueError(
                f"handoff_protocol.required_steps.by_request: {', '.join(map(repr, unknown))}: "
                f"not a request type of the library (request.types: {', '.join(types)})"
            )
        return self

    @model_validator(mode="after")
    def _fact_types(self) -> LibraryY:
        self.types()
        return self

    def types(self) -> tuple[Record, Record]:
        """The declared facts and plan fields as records; ValueError naming the field and the
        bad type."""
        return parse_record(self.facts, "facts"), parse_record(self.plan, "plan")


class TargetY(_Y):
    hours: float = Field(gt=0)
    clock: Literal["business", "24x7"]


HHMM = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")


class HolidaysY(_Y):
    country: str | None = None
    subdivision: str | None = None
    observed: bool = True


class CalendarY(_Y):
    timezone: str
    hours: dict[str, list[tuple[str, str]]]
    holidays: HolidaysY = HolidaysY()
    extra_holidays: list[date] = []

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r} (use an IANA name such as Europe/Berlin)"
            ) from None
        return v

    @field_validator("hours")
    @classmethod
    def _weekdays(cls, v: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        bad = sorted(set(v) - set(WEEKDAYS))
        if bad:
            raise ValueError(f"unknown weekday(s) {bad}; use {', '.join(WEEKDAYS)}")
        for day, windows in v.items():
            for start, end in windows:
                if not (HHMM.match(start) and HHMM.match(end)):
                    raise ValueError(f"{day}: {start}-{end}: times are HH:MM, 00:00 to 24:00")
                if start >= end:
                    raise ValueError(f"{day}: {start}-{end}: a window must end after it starts")
            ordered = sorted(windows)
            for (_, end), (start, _) in itertools.pairwise(ordered):
                if start < end:
                    raise ValueError(f"{day}: windows overlap ({end} is after {start})")
        return v

    @field_validator("holidays")
    @classmethod
    def _country(cls, v: HolidaysY) -> HolidaysY:
        if v.country:
            try:
                holidays.country_holidays(v.country, subdiv=v.subdivision, years=2026)
            except NotImplementedError as exc:
                raise ValueError(f"the holidays package has no calendar: {exc}") from None
        return v


Severities = Literal["critical", "high", "medium", "low"]


class SlaY(_Y):
    at_risk: float = Field(0.75, gt=0, lt=1)
    targets: dict[Severities, TargetY]  # resolution (A5)
    more_targets: dict[str, dict[Severities, TargetY]] = {}  # first_response, ...
    calendar: CalendarY


# The keys of an action a named parameter cannot take.
ACTION_KEYS = ("type", "amount", "currency", "to", "items")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # (fullmatch)


class ActionY(_Y):
    type: str
    amount: str | None = None
    to: str | None = None  # the destination: a CEL expression
    items: str | None = None  # the items: a CEL expression giving a list of strings
    params: dict[str, str] = {}  # any other named parameter: name -> CEL expression

    @field_validator("params")
    @classmethod
    def _param_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name in v:
            if not _IDENTIFIER.fullmatch(name):
                raise ValueError(f"{name!r} is not a parameter name (letters, digits and _)")
            if name in ACTION_KEYS:
                raise ValueError(
                    f"{name!r} is not a parameter name: it is a key of the action "
                    f"({', '.join(ACTION_KEYS)})"
                )
        return v

    def parameters(self) -> list[tuple[str, str, str]]:
        """(name, where it is written, expression) of each parameter, sorted by name."""
        found = [("to", "to", self.to), ("items", "items", self.items)]
        found += [(name, f"params.{name}", e) for name, e in self.params.items()]
        return sorted((n, w, e) for n, w, e in found if e is not None)


class PolicyY(_Y):
    id: str
    title: str
    citation: str
    precedence: int = 1
    when: Clauses = Field(min_length=1)
    unless: Clauses = []
    outcome: Literal["resolve", "return_to_tier1", "escalate"]
    escalate_to: str | None = None
    actions: list[ActionY] = []
    guidance: str | None = None


class DefinitionY(_Y):
    type: Any  # a type as core.types reads it, or `any`
    doc: str
    expr: str


class PoliciesY(_Y):
    definitions: dict[str, DefinitionY] = {}
    policies: list[PolicyY] = Field(min_length=1)


# --------------------------------------------------------------------------- loading


def resolve_library_path(name_or_path: str) -> Path:
    """A built-in name (`saas`, `ecommerce`) or a folder."""
    if name_or_path in BUILT_IN:
        return Path(str(resources.files("tier2.library") / "builtin" / name_or_path))
    path = Path(name_or_path)
    if not path.is_dir():
        raise LibraryError(
            f"library {name_or_path!r}: not a built-in library ({', '.join(BUILT_IN)}) "
            "and not a folder"
        )
    return path


def _read_yaml(folder: Path, name: str) -> Any:
    path = folder / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LibraryError(
            f"{path}: file is missing (a library folder holds {', '.join(FILES)})"
        ) from None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise LibraryError(f"{path}: not valid YAML: {exc}") from None
    except ValueError as exc:  # a value YAML reads but cannot build, such as 2026-02-30
        raise LibraryError(f"{path}: not a valid value: {exc}") from None


def _sla(sla: SlaY) -> Sla:
    cal = sla.calendar
    calendar = Calendar(
        timezone=cal.timezone,
        windows={d: tuple((a, b) for a, b in cal.hours.get(d, [])) for d in WEEKDAYS},
        holidays_country=cal.holidays.country,
        holidays_subdivision=cal.holidays.subdivision,
        holidays_observed=cal.holidays.observed,
        extra_holidays=tuple(d.isoformat() for d in cal.extra_holidays),
    )
    return Sla(
        targets={
            name: {k: SlaTarget(name, k, v.hours, v.clock) for k, v in targets.items()}
            for name, targets in {"resolution": sla.targets, **sla.more_targets}.items()
        },
        calendar=calendar,
        at_risk=sla.at_risk,
    )


def load_sla(path: str | Path) -> Sla:
    """An SLA matrix and calendar on its own: a file in the format of a library's sla.yaml."""
    file = Path(path)
    return _sla(_validate(SlaY, _read_yaml(file.parent, file.name), file))


def _validate(model: type[_Y], data: Any, path: Path, label: Any = None) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        e = exc.errors(include_url=False)[0]
        loc = list(e["loc"])
        where = ""
        if label is not None and len(loc) >= 2 and isinstance(loc[1], int):
            where = f" {label(data, loc)}"
        field = ".".join(str(x) if not isinstance(x, int) else f"[{x}]" for x in loc).replace(
            ".[", "["
        )
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        message = str(e["msg"]).removeprefix("Value error, ")  # (a check of the whole file)
        raise LibraryError(
            f"{path}:{where} {field + ': ' if field else ''}{message}{more}"
        ) from None


def _policy_label(data: Any, loc: list[Any]) -> str:
    try:
        return f"policy {data[loc[0]][loc[1]]['id']}:"
    except (KeyError, IndexError, TypeError):
        return f"policy #{loc[1] + 1}:"


class _Compiler:
    """Compiles a library's expressions once each (the same text anywhere in the library is
    the same Expression), refusing any that reads a field no case has."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self.interned: dict[str, Expression] = {}
        self.defined: frozenset[str] = frozenset()  # the library's definitions

    def define(self, names: frozenset[str]) -> None:
        """Make these definition names known: each read whole, so any path beyond one is
        allowed (`order_items.A1`)."""
        self.defined = names
        self.schema = {**self.schema, **dict.fromkeys(names)}

    def __call__(self, source: str, path: Path, where: str) -> Expression:
        found = self.interned.get(source)
        if found is None:
            try:
                found = compile_expression(source)
            except ExpressionError as exc:
                raise LibraryError(
                    f"{path}: {where}: CEL does not compile: {exc} (in: {_shown(source)})"
                ) from None
            for field_path in found.paths:
                bad = unknown_prefix(field_path, self.schema)
                if bad is not None:
                    raise LibraryError(
                        f"{path}: {where}: reads {field_path}, which no case has ({bad} is not "
                        "a known field; declare open records under `facts:` or `plan:` in "
                        f"library.yaml) (in: {_shown(source)})"
                    )
            shadowing = sorted(bound_names(source) & self.defined)
            if shadowing:
                raise LibraryError(
                    f"{path}: {where}: a comprehension variable is named like a definition: "
                    f"{shadowing[0]} (in: {_shown(source)})"
                )
            self.interned[source] = found
        return found


def _shown(source: str) -> str:
    """An expression for an error line: on one line, control characters escaped, shortened."""
    return printable(source if len(source) <= 200 else source[:197] + "...")


def _currencies(lib: LibraryY, lib_path: Path) -> dict[str, float]:
    """The currencies the library accepts and their value; by default only its own, at 1."""
    currencies = dict(lib.currencies) or ({lib.currency: 1.0} if lib.currency else {})
    for code, value in currencies.items():
        if code not in ISO_4217:
            raise LibraryError(f"{lib_path}: currencies: {code!r} is not an ISO 4217 code")
        if not (math.isfinite(value) and value > 0):
            raise LibraryError(f"{lib_path}: currencies.{code}: the value must be above 0")
    if lib.currency is not None and lib.currency not in currencies:
        raise LibraryError(
            f"{lib_path}: currency: {lib.currency!r} is not one of the accepted currencies"
        )
    return currencies


def _digest(folder: Path) -> str:
    return files_digest(library_files(folder))


def library_files(folder: Path) -> dict[str, bytes]:
    """Every file of a library folder its digest covers: relative path (with /) -> bytes."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def files_digest(files: Mapping[str, bytes]) -> str:
    """The digest of a library's files (in the order of their paths' parts, as a folder's)."""
    h = hashlib.sha256()
    for name in sorted(files, key=lambda n: tuple(n.split("/"))):
        h.update(name.encode() + b"\0" + files[name] + b"\0")
    return "sha256:" + h.hexdigest()[:16]


_materialized: list[Path] = []  # the folders load_library_files wrote, removed at exit


def _remove_materialized(pid: int) -> None:
    if os.getpid() == pid:  # not in a forked child: the folders are its parent's
        for folder in _materialized:
            shutil.rmtree(folder, ignore_errors=True)


def load_library_files(files: Mapping[str, bytes], name_hint: str) -> Library:
    """A library from its files (relative path -> bytes, as `library_files` gives them),
    loaded as the folder they came from: the same digest, the same decisions. The files are
    written to a private temporary folder, kept while this process runs (a template may
    include a file when it renders); errors name `name_hint` rather than that folder."""
    for name in files:
        parts = name.split("/")
        if name.startswith("/") or "\\" in name or any(p in ("", ".", "..") for p in parts):
            raise LibraryError(f"{name_hint}: {name!r} is not a relative path in a library")
    if not _materialized:
        atexit.register(_remove_materialized, os.getpid())
    folder = Path(tempfile.mkdtemp(prefix="tier2-library-"))
    _materialized.append(folder)
    for name, data in files.items():
        path = folder.joinpath(*name.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    try:
        return load_library(str(folder))
    except LibraryError as exc:
        raise LibraryError(str(exc).replace(str(folder), name_hint)) from None


def load_library(name_or_path: str) -> Library:
    """A library folder (or a built-in library by name) read, validated and compiled."""
    folder = resolve_library_path(name_or_path)
    lib_path, sla_path, pol_path = (folder / f for f in FILES)
    lib: LibraryY = _validate(LibraryY, _read_yaml(folder, "library.yaml"), lib_path)
    sla: SlaY = _validate(SlaY, _read_yaml(folder, "sla.yaml"), sla_path)
    pols: PoliciesY = _validate(
        PoliciesY, _read_yaml(folder, "policies.yaml"), pol_path, _policy_label
    )
    facts, plan = lib.types()
    facts_types, plan_types = facts.field_types(), plan.field_types()
    compile_ = _Compiler(
        schema_of(facts_types, plan_types, dict(lib.signals.mentions), list(lib.request.fields))
    )
    money_rule = MoneyRule(lib.money.places, lib.money.rounding)
    definitions = _definitions(pols, pol_path, set(lib.facts), compile_, money_rule)
    ladder = tuple(Role(r.role, r.limit, tuple(r.may)) for r in lib.authority.ladder)
    routing = _routing(lib, lib_path, ladder)
    targets = {r.name for r in ladder} | set(lib.teams)
    try:
        templates = JinjaTemplates(folder / "templates")
    except TemplateLoadError as exc:
        raise LibraryError(f"{folder / 'templates'}: {exc}") from None
    library = Library(
        name=lib.name,
        version=lib.version,
        digest=_digest(folder),
        title=lib.title,
        authority=Authority(
            ladder=ladder,
            engine=lib.authority.engine,
            applies_to=_applies_to(lib.authority),
        ),
        handoff=_handoff_protocol(lib),
        signals=_signals(lib, lib_path, compile_),
        triggers=tuple(
            Trigger(
                t.id,
                t.title,
                tuple(
                    compile_(c, lib_path, f"management trigger {t.id}: when[{i}]")
                    for i, c in enumerate(t.when)
                ),
            )
            for t in lib.management_triggers
        ),
        policies=_policies(pols, pol_path, targets, lib.teams, compile_),
        routing=routing,
        sla=_sla(sla),
        facts=facts_types,
        plan=plan_types,
        templates=templates,
        currency=lib.currency,
        teams=tuple(lib.teams),
        currencies=_currencies(lib, lib_path),
        request_types=tuple(lib.request.types),
        request_fields=lib.request.field_types(),
        money=money_rule,
        definitions=definitions,
    )
    library = replace(
        library, view_names=frozenset(p.split(".")[0] for e in library.expressions for p in e.paths)
    )
    _check_applies_to(library, lib_path)
    library = replace(library, examples=_examples(folder / "examples.jsonl", library))
    if (folder / "templates").is_dir():
        _smoke_render(library, folder / "templates")
    return library


def _check_applies_to(library: Library, lib_path: Path) -> None:
    """Refuse an action type under authority.applies_to that no policy gives an amount: a
    typo there would leave the action it meant without any limit."""
    limited = library.authority.applies_to
    if limited is None:
        return
    priced = {a.type for p in library.policies for a in p.actions if a.amount is not None}
    unknown = [t for t in limited if t not in priced]
    if unknown:
        raise LibraryError(
            f"{lib_path}: authority.applies_to: {', '.join(map(repr, unknown))} is no action "
            f"type with an amount in the policies ({', '.join(sorted(priced)) or 'none'})"
        )


def _applies_to(authority: AuthorityY) -> tuple[str, ...] | None:
    return None if authority.applies_to is None else tuple(authority.applies_to)


def _routing(lib: LibraryY, lib_path: Path, ladder: tuple[Role, ...]) -> Routing:
    """The routing rules, each to a role on the ladder or a team; the engine on the ladder."""
    names = [r.name for r in ladder]
    if lib.authority.engine not in names:
        raise LibraryError(
            f"{lib_path}: authority.engine: {lib.authority.engine!r} is not on the ladder"
        )
    known_routing = set(Routing.__dataclass_fields__)
    unknown = sorted(set(lib.routing) - known_routing)
    if unknown:
        raise LibraryError(
            f"{lib_path}: routing: unknown rule(s) {unknown}; known: {sorted(known_routing)}"
        )
    targets = set(names) | set(lib.teams)
    routing = Routing(**lib.routing)
    for rule in Routing.__dataclass_fields__:
        if getattr(routing, rule) not in targets:
            raise LibraryError(
                f"{lib_path}: routing.{rule}: {getattr(routing, rule)!r} "
                "is neither a role nor a team"
            )
    return routing


def _handoff_protocol(lib: LibraryY) -> HandoffProtocol:
    h = lib.handoff_protocol
    required = h.require or []
    return HandoffProtocol(
        enabled=h.enabled,
        require_reason="reason" in required,
        require_steps="steps_taken" in required,
        require_expectation="customer_expectation" in required,
        require_customer_id="customer.id" in required,
        amount_required_for=tuple(h.amount_required_for),
        required_steps={k: tuple(v) for k, v in h.required_steps.by_category.items()},
        required_steps_by_request={k: tuple(v) for k, v in h.required_steps.by_request.items()},
    )


def _signals(lib: LibraryY, lib_path: Path, compile_: _Compiler) -> Signals:
    """The handbook's signals: complaint pattern, commercial and churn flags, complexity."""
    s = lib.signals
    pattern, complexity = s.complaint_pattern, s.complexity
    commercial = s.commercial_sensitivity_flags if s.commercial_sensitivity else []
    churn, public = s.churn_threat or ChurnY(), s.public_complaint or PublicY()
    off = {
        "complaint_pattern": pattern is None,
        "commercial_sensitivity": not commercial,
        "churn_threat": s.churn_threat is None,
        "public_complaint": s.public_complaint is None,
        "complexity": complexity is None,
    }
    settings: dict[str, Any] = {}  # (a rule switched off keeps the core's defaults)
    if pattern is not None:
        settings["complaints"] = Window(pattern.complaints.at_least, pattern.complaints.within_days)
        settings["same_category_escalations"] = Window(
            pattern.same_category_escalations.at_least,
            pattern.same_category_escalations.within_days,
        )
    if complexity is not None:
        settings["complexity_threshold"] = complexity.threshold
        settings["complexity_points"] = tuple(
            ComplexityPoint(p.id, p.title, compile_(p.when, lib_path, f"complexity point {p.id}"))
            for p in complexity.points
        )
    signals = Signals(
        **settings,
        commercial_flag_types=tuple(commercial),
        churn_flag_types=tuple(churn.flags),
        churn_mention=churn.mention,
        public_channels=tuple(public.channels),
        public_flag_types=tuple(public.flags),
        mentions={k: tuple(v) for k, v in s.mentions.items()},
        off=tuple(rule for rule in SWITCHABLE if off[rule]),
    )
    if signals.churn_mention is not None and signals.churn_mention not in signals.mentions:
        raise LibraryError(
            f"{lib_path}: signals.churn_threat.mention: {signals.churn_mention!r} "
            "is not a list under signals.mentions"
        )
    return signals


# Names a definition may not take: CEL's keywords, reserved words, type and function names
# (as a bare name they would not read the definition), and tier2's function namespaces.
_NOT_DEFINITION_NAMES = frozenset(
    """true false null in has int uint double string bool bytes list map type dyn null_type
    math lists timestamp duration size as break const continue else for function if import
    let loop package namespace return var void while""".split()  # noqa: SIM905 (readable)
)
MAX_DEFINITION_DEPTH = 32  # definitions reading definitions, this many deep at most


def _definitions(
    pols: PoliciesY, pol_path: Path, records: set[str], compile_: _Compiler, rule: MoneyRule
) -> tuple[Definition, ...]:
    """The definitions checked (name, type, expression, no cycle) and compiled, each after
    those it reads; their names made known to the compiler."""
    if not pols.definitions:
        return ()
    duplicate = _duplicate_definition(pol_path)
    if duplicate is not None:
        raise LibraryError(f"{pol_path}: definition {duplicate}: defined twice")
    views = set(compile_.schema)
    types: dict[str, Type] = {}
    for name, d in pols.definitions.items():
        where = f"{pol_path}: definition {name}"
        if not _IDENTIFIER.fullmatch(name):
            raise LibraryError(f"{where}: a name is an identifier (letters, digits, _)")
        for taken, what in ((views, "a field of the case"), (_NOT_DEFINITION_NAMES, "a CEL word"),
                            (records, "a fact record (facts.{0})")):  # fmt: skip
            if name in taken:
                raise LibraryError(f"{where}: the name is {what.format(name)}; choose another")
        types[name] = _definition_type(d.type, pol_path, name)
    compile_.define(frozenset(pols.definitions))
    compiled = {
        name: Definition(
            name, types[name], d.doc, compile_(d.expr, pol_path, f"definition {name}"), rule
        )
        for name, d in pols.definitions.items()
    }
    return _dependency_order(compiled, pol_path)


def _definition_type(kind: Any, pol_path: Path, name: str) -> Type:
    """The type a definition declares: any type of a fact, or `any`."""
    try:
        return parse_type(kind, f"definition {name}", allow_any=True)
    except TypeDeclarationError as exc:
        raise LibraryError(f"{pol_path}: {exc}") from None


def _duplicate_definition(pol_path: Path) -> str | None:
    """A name given twice under `definitions:` (YAML keeps the last silently)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    root = yaml.compose(pol_path.read_text(encoding="utf-8"), Loader=loader)
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if key.value == "definitions" and isinstance(value, yaml.MappingNode):
            names = [k.value for k, _ in value.value]
            return next((n for i, n in enumerate(names) if n in names[:i]), None)
    return None


def _dependency_order(compiled: Mapping[str, Definition], pol_path: Path) -> tuple[Definition, ...]:
    """The definitions, each after the definitions it reads; a cycle, or a chain deeper
    than MAX_DEFINITION_DEPTH, is a load error naming it."""
    ordered: list[Definition] = []
    depth: dict[str, int] = {}

    def visit(name: str, chain: list[str]) -> int:
        if name in depth:
            return depth[name]
        if name in chain:
            cycle = " -> ".join([*chain[chain.index(name) :], name])
            raise LibraryError(
                f"{pol_path}: definition {name}: definitions read each other: {cycle}"
            )
        if len(chain) >= MAX_DEFINITION_DEPTH:
            raise LibraryError(
                f"{pol_path}: definition {chain[0]}: definitions read definitions more than "
                f"{MAX_DEFINITION_DEPTH} deep"
            )
        reads = [r for r in compiled[name].expression.roots if r in compiled]
        depth[name] = 1 + max((visit(r, [*chain, name]) for r in reads), default=0)
        ordered.append(compiled[name])
        return depth[name]

    for name in compiled:
        visit(name, [])
    return tuple(ordered)


def _policies(
    pols: PoliciesY, pol_path: Path, targets: set[str], teams: list[str], compile_: _Compiler
) -> tuple[Policy, ...]:  # fmt: skip
    """Every policy checked (unique id, a target for an escalation, guidance for a return)
    and compiled, in the file's order."""
    policies: list[Policy] = []
    seen: set[str] = set()
    for p in pols.policies:
        where = f"policy {p.id}"
        if p.id in seen:
            raise LibraryError(f"{pol_path}: {where}: id is used twice")
        seen.add(p.id)
        outcome = Outcome(p.outcome)
        _check_outcome(p, outcome, f"{pol_path}: {where}", targets, teams)
        policies.append(_policy(p, outcome, pol_path, where, compile_))
    return tuple(policies)


def _check_outcome(
    p: PolicyY, outcome: Outcome, where: str, targets: set[str], teams: list[str]
) -> None:
    if outcome is Outcome.ESCALATE and not p.escalate_to:
        raise LibraryError(f"{where}: an escalating policy needs escalate_to")
    if p.escalate_to and p.escalate_to not in targets:
        raise LibraryError(
            f"{where}: escalate_to {p.escalate_to!r} is neither a role nor a team "
            f"(teams: {', '.join(teams)})"
        )
    if outcome is not Outcome.ESCALATE and p.escalate_to:
        raise LibraryError(f"{where}: escalate_to is only for outcome escalate")
    if outcome is Outcome.RETURN_TO_TIER1 and not p.guidance:
        raise LibraryError(f"{where}: a policy that returns to tier-1 needs guidance")


def _policy(
    p: PolicyY, outcome: Outcome, pol_path: Path, where: str, compile_: _Compiler
) -> Policy:
    return Policy(
        id=p.id,
        title=p.title,
        citation=p.citation,
        precedence=p.precedence,
        when=tuple(compile_(c, pol_path, f"{where}: when[{i}]") for i, c in enumerate(p.when)),
        unless=tuple(
            compile_(c, pol_path, f"{where}: unless[{i}]") for i, c in enumerate(p.unless)
        ),
        outcome=outcome,
        escalate_to=p.escalate_to,
        actions=tuple(
            ActionSpec(
                a.type,
                None
                if a.amount is None
                else compile_(a.amount, pol_path, f"{where}: actions[{i}].amount"),
                tuple(
                    (name, compile_(e, pol_path, f"{where}: actions[{i}].{place}"))
                    for name, place, e in a.parameters()
                ),
            )
            for i, a in enumerate(p.actions)
        ),
        guidance=p.guidance,
        source=pol_path.name,
    )


MAX_EXAMPLES = 1000  # example cases a library folder may hold
MAX_EXAMPLES_BYTES = 4_000_000


def _examples(path: Path, library: Library) -> tuple[dict[str, Any], ...]:
    """The example cases of a library folder (`examples.jsonl`, one case per line), each a
    valid case for the library; none if there is no such file."""
    if not path.is_file():
        return ()
    if path.stat().st_size > MAX_EXAMPLES_BYTES:
        raise LibraryError(f"{path}: larger than {MAX_EXAMPLES_BYTES:,} bytes")
    vocabulary = Vocabulary.of(library)
    out: list[dict[str, Any]] = []
    for n, line in enumerate(path.read_bytes().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            raw = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            raise LibraryError(f"{path}: line {n}: not valid JSON: {exc}") from None
        case = parse_case(raw, f"line {n}", vocabulary)
        if isinstance(case, CaseError):
            raise LibraryError(f"{path}: {case.lines()[0]}")
        out.append(raw)
        if len(out) > MAX_EXAMPLES:
            raise LibraryError(f"{path}: more than {MAX_EXAMPLES} example cases")
    return tuple(out)


def _smoke_render(library: Library, templates: Path) -> None:
    """Decide generated cases of every outcome once, so a template that cannot render fails
    here, naming the template, rather than in the middle of a batch."""
    generator = CaseGenerator(library, seed=0, exhaustive=True)
    vocabulary = Vocabulary.of(library)
    seen: set[str] = set()
    for i in range(400):
        case = parse_case(generator.case(i), "smoke", vocabulary)
        if isinstance(case, CaseError):
            continue
        try:
            decision = decide(case, library)
        except Exception as exc:  # a template error: name the template and the problem
            raise LibraryError(
                f"{templates}: a template does not render: {_template_error(exc)}"
            ) from None
        first = decision.reasons[0]
        if first.code is ReasonCode.LIBRARY_ERROR and first.rule == "templates":
            problem = first.detail.removeprefix("the documents could not be written: ")
            raise LibraryError(f"{templates}: a template does not render: {problem}")
        seen.add(decision.outcome.value)
        if len(seen) == 3:
            return


def _template_error(exc: Exception) -> str:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    where = f"{Path(frames[-1].filename).name} line {frames[-1].lineno}: " if frames else ""
    return f"{where}{type(exc).__name__}: {exc}"

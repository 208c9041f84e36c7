"""The external contract at the edge: JSON case in (validated by pydantic), JSON decision out.

Everything here only moves data between the contract's JSON and the core's frozen model.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
)
from pydantic_core import SchemaValidator
from pydantic_core import core_schema as cs

from tier2.core import model as m

_SEVERITY_ALIASES = {"P1": "critical", "P2": "high", "P3": "medium", "P4": "low"}
_SEVERITIES = {s.value: s for s in m.Severity}


def _severity(value: Any) -> Any:
    return _SEVERITY_ALIASES.get(value, value) if isinstance(value, str) else value


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Severity = Annotated[Literal["critical", "high", "medium", "low"], BeforeValidator(_severity)]
Category = Literal[
    "billing", "refund", "access", "technical", "account", "contract", "order",
    "shipping", "product", "legal", "security", "compliance", "other",
]  # fmt: skip
Channel = Literal["email", "chat", "phone", "web", "social", "review_site", "other"]
RequestType = Literal[
    "refund", "credit", "replacement", "reship", "access_restore", "contract_change",
    "information", "other",
]  # fmt: skip
Sentiment = Literal["calm", "neutral", "frustrated", "angry"]
Segment = Literal["enterprise", "mid_market", "smb", "consumer"]
Money = Annotated[float, BeforeValidator(_finite), Field(ge=0)]
Text = str | None


class _In(BaseModel):
    # Unknown extra fields are kept and ignored (contract section 2: a request's extra fields
    # reach the store and RT); numbers given for ids become strings.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, frozen=True)


class MessageIn(_In):
    sender: Text = Field(None, alias="from")
    at: AwareDatetime | None = None
    body: Text = None


class TicketIn(_In):
    id: str
    created_at: AwareDatetime
    severity: Severity
    category: Category
    subject: Text = None
    description: Text = None
    channel: Channel | None = None
    messages: list[MessageIn] | None = None
    tags: list[str] | None = None
    status: Text = None


class StepIn(_In):
    step: str
    result: Text = None
    at: AwareDatetime | None = None


class RequestIn(_In):
    type: RequestType | None = None
    amount: Money | None = None
    currency: Text = None


class HandoffIn(_In):
    sender: Text = Field(None, alias="from")
    escalated_at: AwareDatetime | None = None
    reason: Text = None
    steps_taken: list[StepIn] | None = None
    customer_expectation: Text = None
    request: RequestIn | None = None
    sentiment: Sentiment | None = None


class FlagIn(_In):
    type: str
    note: Text = None
    resolved: bool | None = None


class CustomerIn(_In):
    id: Text = None
    name: Text = None
    company: Text = None
    segment: Segment | None = None
    vip: bool | None = None
    arr: Money | None = None
    currency: Text = None
    plan: dict[str, Any] | None = None
    flags: list[FlagIn] | None = None


class HistoryIn(_In):
    ticket_id: Text = None
    at: AwareDatetime | None = None
    category: Text = None
    complaint: bool | None = None
    escalated: bool | None = None
    outcome: Text = None


class CaseIn(_In):
    case_id: str = Field(min_length=1)
    received_at: AwareDatetime
    ticket: TicketIn
    handoff: HandoffIn
    customer: CustomerIn
    history: list[HistoryIn] | None = None
    facts: dict[str, Any] | None = None


# --------------------------------------------------------------------------- to the core
# A valid case goes from JSON straight into the core's frozen dataclasses: the contract
# models' own field validators, rebuilt by pydantic-core as dataclass schemas of the core
# classes (one Rust pass, no model objects in between). Only how a field *becomes* the core's
# value is said here; what is valid is said once, by the models above.


def _as_tuple(value: Any) -> Any:
    return () if value is None else tuple(value)


def _is_true(value: Any) -> bool:
    return value is True


def _text(value: Any) -> str:
    return value or ""


def _facts(value: Any) -> Any:
    return value or {}


_CORE_CLASSES: dict[type[BaseModel], type[Any]] = {
    CaseIn: m.Case,
    TicketIn: m.Ticket,
    MessageIn: m.Message,
    StepIn: m.Step,
    RequestIn: m.Request,
    HandoffIn: m.Handoff,
    FlagIn: m.Flag,
    CustomerIn: m.Customer,
    HistoryIn: m.HistoryEntry,
}
_TO_CORE: dict[tuple[type[BaseModel], str], Callable[[Any], Any]] = {
    (TicketIn, "severity"): _SEVERITIES.__getitem__,
    (TicketIn, "messages"): _as_tuple,
    (TicketIn, "tags"): _as_tuple,
    (MessageIn, "body"): _text,
    (HandoffIn, "steps_taken"): _as_tuple,
    (CustomerIn, "flags"): _as_tuple,
    (FlagIn, "resolved"): _is_true,
    (HistoryIn, "complaint"): _is_true,
    (HistoryIn, "escalated"): _is_true,
    (CaseIn, "history"): _as_tuple,
    (CaseIn, "facts"): _facts,
}


def _converted(schema: Any, convert: Callable[[Any], Any]) -> Any:
    """A field's schema whose value, given or defaulted, is converted for the core."""
    if schema.get("type") != "default":
        return cs.no_info_after_validator_function(convert, schema)
    default = convert(schema["default"])  # the field may be absent: convert its default too
    inner = cs.no_info_after_validator_function(convert, schema["schema"])
    if isinstance(default, dict):  # a fresh one for each case
        return cs.with_default_schema(inner, default_factory=dict)
    return cs.with_default_schema(inner, default=default)


def _core_schema(node: Any) -> Any:
    """The contract models' schema with each model turned into its core dataclass."""
    if isinstance(node, list):
        return [_core_schema(v) for v in node]
    if not isinstance(node, dict):
        return node
    model = node.get("cls") if node.get("type") == "model" else None
    if model not in _CORE_CLASSES:
        return {k: _core_schema(v) for k, v in node.items()}
    target = _CORE_CLASSES[model]
    fields = []
    for name, spec in node["schema"]["fields"].items():
        schema = _core_schema(spec["schema"])
        convert = _TO_CORE.get((model, name))
        if convert is not None:
            schema = _converted(schema, convert)
        fields.append(
            cs.dataclass_field(name, schema, validation_alias=spec.get("validation_alias"))
        )
    if {f["name"] for f in fields} != {f.name for f in dataclasses.fields(target)}:
        raise TypeError(f"{model.__name__} and {target.__name__} do not have the same fields")
    return cs.dataclass_schema(
        target,
        cs.dataclass_args_schema(target.__name__, fields),
        [f["name"] for f in fields],
        slots=True,
        frozen=True,
        ref=node.get("ref"),
        config=cs.CoreConfig(coerce_numbers_to_str=True, extra_fields_behavior="ignore"),
    )


if any(name not in model.model_fields for model, name in _TO_CORE):
    raise TypeError("a conversion to the core names a field the contract does not have")
_TO_CASE = SchemaValidator(_core_schema(CaseIn.__pydantic_core_schema__))


# --------------------------------------------------------------------------- input


@dataclass(frozen=True, slots=True)
class CaseError:
    """Unusable input: which case, which field, what was wrong."""

    case: str  # the case id if it could be read, else its position
    problems: tuple[tuple[str, str], ...]  # (field path, what was wrong)

    def lines(self) -> list[str]:
        return [f"case {self.case}: {path}: {problem}" for path, problem in self.problems]


def _path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + ("from" if part == "sender" else str(part))
    return out or "(case)"


def _problem(err: Any) -> str:
    kind = err["type"]
    if kind == "missing":
        return "required field is missing"
    msg = str(err["msg"])
    if kind.startswith("value_error"):
        msg = msg.removeprefix("Value error, ")
    if "input" in err and kind not in ("model_type", "dict_type"):
        shown = repr(err["input"])
        msg += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return msg


def _label(raw: Any, position: str) -> str:
    if isinstance(raw, dict):
        cid = raw.get("case_id")
        if isinstance(cid, str | int) and not isinstance(cid, bool) and str(cid).strip():
            return f"{cid} ({position})"
    return position


def _case_error(raw: Any, position: str, exc: ValidationError) -> CaseError:
    problems = tuple((_path(tuple(e["loc"])), _problem(e)) for e in exc.errors(include_url=False))
    return CaseError(_label(raw, position), problems)


def _not_an_object(raw: Any, position: str) -> CaseError:
    return CaseError(position, (("(case)", f"must be a JSON object, got {type(raw).__name__}"),))


def parse_model(raw: Any, position: str) -> CaseIn | CaseError:
    """Validate one decoded JSON value as a case; never raises on bad input."""
    if not isinstance(raw, dict):
        return _not_an_object(raw, position)
    try:
        return CaseIn.model_validate(raw)
    except ValidationError as exc:
        return _case_error(raw, position, exc)


def parse_case(raw: Any, position: str) -> m.Case | CaseError:
    """Validate one decoded JSON value as a case for the core; never raises on bad input.
    What was wrong is told as `parse_model` tells it, so the store and `tier2 decide` name a
    bad case's problems in the same words."""
    if isinstance(raw, dict):
        try:
            case: m.Case = _TO_CASE.validate_python(raw)
        except ValidationError as exc:
            failed = parse_model(raw, position)
            return failed if isinstance(failed, CaseError) else _case_error(raw, position, exc)
        return case
    return _not_an_object(raw, position)


def read_cases(text: str | bytes, jsonl: bool = False) -> Iterator[m.Case | CaseError]:
    """Cases from one object, a JSON array, or JSON Lines; each good or a CaseError, in order."""
    for unit in read_units(text, jsonl):
        yield unit if isinstance(unit, CaseError) else parse_unit_case(unit)


def read_models(text: str | bytes, jsonl: bool = False) -> Iterator[CaseIn | CaseError]:
    """As read_cases, but the validated contract models (what the store files)."""
    for unit in read_units(text, jsonl):
        yield unit if isinstance(unit, CaseError) else parse_unit(unit)


Unit = tuple[str, Any]  # a case's position in the input, and its JSON (decoded, or a line's bytes)


def _decoded(unit: Unit) -> Any:
    position, raw = unit
    if isinstance(raw, bytes):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return CaseError(position, (("(line)", f"not valid JSON: {exc}"),))
    return raw


def parse_unit(unit: Unit) -> CaseIn | CaseError:
    """Validate one unit of input (decoding it first if it is a line of JSON Lines)."""
    raw = _decoded(unit)
    return raw if isinstance(raw, CaseError) else parse_model(raw, unit[0])


def parse_unit_case(unit: Unit) -> m.Case | CaseError:
    """As parse_unit, but the case for the core."""
    raw = _decoded(unit)
    return raw if isinstance(raw, CaseError) else parse_case(raw, unit[0])


def read_units(text: str | bytes, jsonl: bool = False) -> Iterator[Unit | CaseError]:
    """The cases of an input in order, not yet validated: a JSON Lines line stays bytes (so
    the work of decoding it can go to another process); a fault of the whole input is a
    CaseError."""
    data = text.encode() if isinstance(text, str) else text
    if not jsonl:
        stripped = data.strip()
        if not stripped:
            yield CaseError("(input)", (("(input)", "no case: the input is empty"),))
            return
        try:
            whole = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            if stripped[:1] != b"{":
                yield CaseError("(input)", (("(input)", f"not valid JSON: {exc}"),))
                return
            whole = None  # perhaps JSON Lines of objects
        else:
            if isinstance(whole, list):
                for i, raw in enumerate(whole):
                    yield (f"item {i + 1}", raw)
                return
            yield ("item 1", whole)
            return
    for n, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            yield (f"line {n}", line)


# --------------------------------------------------------------------------- output


def _action(a: m.Action) -> dict[str, Any]:
    out: dict[str, Any] = {"type": a.type}
    if a.amount is not None:
        out["amount"] = a.amount
        out["currency"] = a.currency
    return out


def decision_to_dict(d: m.Decision) -> dict[str, Any]:
    """The decision in the contract's shape (section 3), extended by `escalation_handoff`."""
    return {
        "case_id": d.case_id,
        "outcome": d.outcome._value_,
        "escalate_to": d.escalate_to,
        "reasons": [
            {"code": r.code._value_, "detail": r.detail, "rule": r.rule} for r in d.reasons
        ],
        "policies": list(d.policies),
        "actions": [_action(a) for a in d.actions],
        "guidance": d.guidance,
        "stages": [
            {"stage": s.stage, "read": list(s.read), "found": s.found, "decided": s.decided}
            for s in d.stages
        ],
        "note": d.note,
        "customer_reply": d.customer_reply,
        "library": {
            "name": d.library_name,
            "version": d.library_version,
            "digest": d.library_digest,
        },
        "escalation_handoff": d.escalation_handoff,
    }


def decision_json(d: m.Decision) -> bytes:
    """One line of JSON, byte for byte the same for the same decision."""
    return orjson.dumps(decision_to_dict(d))


def decision_text(d: m.Decision) -> str:
    """The decision for a person: outcome, reasons, actions, guidance, the note."""
    lines = [
        f"Case {d.case_id}: {d.outcome.value}" + (f" -> {d.escalate_to}" if d.escalate_to else "")
    ]
    lines.append("Reasons (the first decides):")
    lines.extend(f"  {i}. {r.code.value}: {r.detail}" for i, r in enumerate(d.reasons, 1))
    lines.append("Policies matched: " + (", ".join(d.policies) or "none"))
    verb = "Actions" if d.outcome is m.Outcome.RESOLVE else "Recommended actions"
    acts = [
        a.type if a.amount is None else f"{a.type} {a.amount:,.2f} {a.currency or ''}".rstrip()
        for a in d.actions
    ]
    lines.append(f"{verb}: " + (", ".join(acts) or "none"))
    if d.guidance:
        lines.append("Guidance for tier-1:")
        lines.extend("  " + g for g in d.guidance.splitlines())
    lines.append("Note:")
    lines.extend("  " + n if n else "" for n in d.note.rstrip("\n").splitlines())
    if d.customer_reply:
        lines.append("Draft reply to the customer:")
        lines.extend("  " + n if n else "" for n in d.customer_reply.splitlines())
    return "\n".join(lines) + "\n"

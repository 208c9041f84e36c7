"""The external contract at the edge: JSON case in (validated by pydantic), JSON decision out.

Everything here only moves data between the contract's JSON and the core's frozen model.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

from tier2.core import model as m
from tier2.core.library import REQUEST_TYPES, Library
from tier2.core.money import ISO_4217, MAX_AMOUNT
from tier2.core.types import ListOf, MapOf, Record, Scalar, Type, conforms, declaration

_SEVERITY_ALIASES = {"P1": "critical", "P2": "high", "P3": "medium", "P4": "low"}


def _severity(value: Any) -> Any:
    return _SEVERITY_ALIASES.get(value, value) if isinstance(value, str) else value


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


def _only_true(value: Any) -> Any:
    """A flag is true only when it is JSON `true`: any other value is judged false, not
    refused (the safe reading of handbook A3)."""
    return value if value is None or isinstance(value, bool) else False


def _currency(value: str) -> str:
    code = value.upper() if value.isascii() and value.isalpha() else value
    if code not in ISO_4217:
        raise ValueError("not an ISO 4217 currency code")
    return code


def _identifier(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    if not value.isprintable():
        raise ValueError("must not contain control characters or line breaks")
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
Money = Annotated[float, BeforeValidator(_finite), Field(ge=0, le=MAX_AMOUNT)]
Text = str | None
Flag = Annotated[bool | None, BeforeValidator(_only_true)]
Currency = Annotated[str, AfterValidator(_currency)]
Identifier = Annotated[str, AfterValidator(_identifier)]


class _In(BaseModel):
    # Unknown extra fields are kept and ignored (contract section 2: a request's extra fields
    # reach the store and RT); numbers given for ids become strings.
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True, frozen=True)


class MessageIn(_In):
    sender: Text = Field(None, alias="from")
    at: AwareDatetime | None = None
    body: Text = None


class TicketIn(_In):
    id: Identifier
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
    step: Text = None
    result: Text = None
    at: AwareDatetime | None = None


class RequestIn(_In):
    type: RequestType | None = None
    amount: Money | None = None
    currency: Currency | None = None

    @field_validator("type", mode="plain")
    @classmethod
    def _type(cls, value: Any, info: ValidationInfo) -> str | None:
        """One of the request types of the vocabulary the case is read with (the context's;
        without one, the contract's), told as pydantic tells a value not of a Literal."""
        context = info.context
        vocabulary = context.get("vocabulary") if isinstance(context, dict) else None
        allowed = CONTRACT.request_types if vocabulary is None else vocabulary.request_types
        if value is None:
            return None
        if allowed is None:  # any word (filing)
            if isinstance(value, str) and value.strip():
                return value
            raise PydanticCustomError("string_type", "Input should be a non-blank string")
        if isinstance(value, str) and value in allowed:
            return value
        raise PydanticCustomError(
            "literal_error", "Input should be {expected}", {"expected": _one_of(allowed)}
        )


class HandoffIn(_In):
    sender: Text = Field(None, alias="from")
    escalated_at: AwareDatetime | None = None
    reason: Text = None
    steps_taken: list[StepIn] | None = None
    customer_expectation: Text = None
    request: RequestIn | None = None
    sentiment: Sentiment | None = None


def _one_of(values: tuple[str, ...]) -> str:
    """`'a', 'b' or 'c'`, as pydantic lists a Literal's values."""
    shown = [repr(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


class FlagIn(_In):
    type: Text = None
    note: Text = None
    resolved: Flag = None


class CustomerIn(_In):
    id: Text = None
    name: Text = None
    company: Text = None
    segment: Segment | None = None
    vip: Flag = None
    arr: Money | None = None
    currency: Currency | None = None
    plan: dict[str, Any] | None = None
    flags: list[FlagIn] | None = None


class HistoryIn(_In):
    ticket_id: Text = None
    at: AwareDatetime | None = None
    category: Text = None
    complaint: Flag = None
    escalated: Flag = None
    outcome: Text = None


class CaseIn(_In):
    case_id: Identifier
    received_at: AwareDatetime
    ticket: TicketIn
    handoff: HandoffIn
    customer: CustomerIn
    history: list[HistoryIn] | None = None
    facts: dict[str, Any] | None = None


# --------------------------------------------------------------------------- vocabulary


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What a case's request may say for the library that decides it: its request types
    (None: any non-blank word, as filing takes a case before a library reads it) and the
    request fields it declares (name -> type, see `core.types`), checked by type and carried
    to the core; other extra request fields stay ignored."""

    request_types: tuple[str, ...] | None = REQUEST_TYPES
    request_fields: Mapping[str, Type] = field(default_factory=dict)
    facts: Mapping[str, Type] = field(default_factory=dict)  # the facts it declares, by type

    @classmethod
    def of(cls, library: Library) -> Vocabulary:
        """The vocabulary of a library."""
        return cls(library.request_types, library.request_fields, library.facts)


CONTRACT = Vocabulary()  # the contract's request types, no declared fields
FILING = Vocabulary(request_types=None)  # any request type: the library decides later


def field_problem(value: Any, kind: Type) -> str | None:
    """What is wrong with a declared field's value (None: nothing): not of its type, or an
    amount of money, at any depth, below 0 or above the largest tier2 reads."""
    return conforms(value, kind) or _money_problem(value, kind, "")


def _money_problem(value: Any, kind: Type, where: str) -> str | None:
    """Where (`[2].price: ...`) a value that fits its type holds money out of range."""
    if value is None:
        return None
    if isinstance(kind, Scalar):
        if kind.name == "money" and not 0 <= value <= MAX_AMOUNT:
            got = f"expected an amount between 0 and {MAX_AMOUNT:,.0f}, got {value!r}"
            return f"{where.removeprefix('.')}: {got}" if where else got
        return None
    if isinstance(kind, ListOf):
        items: list[tuple[str, Any, Type]] = [
            (f"{where}[{i}]", v, kind.item) for i, v in enumerate(value)
        ]
    elif isinstance(kind, MapOf):
        items = [(f"{where}.{k}", v, kind.value) for k, v in value.items()]
    else:
        items = [(f"{where}.{k}", value.get(k), t) for k, t in kind.fields]
    return next(
        (found for at, v, t in items if (found := _money_problem(v, t, at)) is not None), None
    )


def _misfits(given: Any, declared: Mapping[str, Type]) -> Iterator[tuple[str, Type, Any, str]]:
    """(name, type, value, what is wrong) of each declared field a section of the case gives
    with a value that does not fit (see `field_problem`)."""
    if not declared or not isinstance(given, dict):
        return
    for name, kind in declared.items():
        value = given.get(name)
        wrong = None if value is None else field_problem(value, kind)
        if wrong is not None:
            yield name, kind, value, wrong


def _inside(wrong: str) -> tuple[str, str]:
    """What is wrong split into where inside the value (`[2].price`, or "") and what."""
    inside, _, what = wrong.partition(": ") if ": " in wrong else ("", "", wrong)
    return inside, what


def _fact_problems(raw: dict[str, Any], facts: Mapping[str, Type]) -> list[tuple[str, str]]:
    """The declared facts the case gives with a value not of their type (or money out of
    range): an input error, as for any field of the contract, at the path inside the fact."""
    out: list[tuple[str, str]] = []
    for name, kind, _, wrong in _misfits(raw.get("facts"), facts):
        inside, what = _inside(wrong)
        if not inside:
            out.append((f"facts.{name}", f"Input should be of type {_shown_type(kind)} ({what})"))
        else:
            out.append((f"facts.{name}{'' if inside.startswith('[') else '.'}{inside}", what))
    return out


def _shown_type(kind: Type) -> str:
    shown = declaration(kind)
    return shown if isinstance(shown, str) else "a record" if isinstance(kind, Record) else "a list"


def _field_problems(raw: dict[str, Any], fields: Mapping[str, Type]) -> list[tuple[str, str]]:
    """The declared request fields the case gives with a value not of their type."""
    handoff = raw.get("handoff")
    request = handoff.get("request") if isinstance(handoff, dict) else None
    out: list[tuple[str, str]] = []
    for name, kind, value, wrong in _misfits(request, fields):
        inside, what = _inside(wrong)
        got = f"{inside}: {what}" if inside else f"got {_shown(value)}"
        out.append(
            (f"handoff.request.{name}", f"Input should be of type {declaration(kind)} ({got})")
        )
    return out


# --------------------------------------------------------------------------- to the core
# A valid case's contract models become the core's frozen dataclasses. What is valid is said
# once, by the models above; here only how a field becomes the core's value.


def _message(x: MessageIn) -> m.Message:
    return m.Message(x.sender, x.at, x.body or "")


def _ticket(t: TicketIn) -> m.Ticket:
    return m.Ticket(
        id=t.id,
        created_at=t.created_at,
        severity=m.Severity(t.severity),
        category=t.category,
        subject=t.subject,
        description=t.description,
        channel=t.channel,
        messages=tuple(_message(x) for x in t.messages or ()),
        tags=tuple(t.tags or ()),
        status=t.status,
    )


def _request(r: RequestIn | None, fields: Mapping[str, Type]) -> m.Request | None:
    if r is None:
        return None
    if not fields:
        return m.Request(type=r.type, amount=r.amount, currency=r.currency)
    extra = r.model_extra or {}
    given = {name: extra[name] for name in fields if extra.get(name) is not None}
    return m.Request(type=r.type, amount=r.amount, currency=r.currency, fields=given)


def _handoff(h: HandoffIn, fields: Mapping[str, Type]) -> m.Handoff:
    return m.Handoff(
        sender=h.sender,
        escalated_at=h.escalated_at,
        reason=h.reason,
        steps_taken=tuple(m.Step(s.step, s.result, s.at) for s in h.steps_taken or ()),
        customer_expectation=h.customer_expectation,
        request=_request(h.request, fields),
        sentiment=h.sentiment,
    )


def _customer(c: CustomerIn) -> m.Customer:
    return m.Customer(
        id=c.id,
        name=c.name,
        company=c.company,
        segment=c.segment,
        vip=c.vip,
        arr=c.arr,
        currency=c.currency,
        plan=c.plan,
        flags=tuple(m.Flag(f.type, f.note, f.resolved is True) for f in c.flags or ()),
    )


def _history(e: HistoryIn) -> m.HistoryEntry:
    return m.HistoryEntry(
        e.ticket_id, e.at, e.category, e.complaint is True, e.escalated is True, e.outcome
    )


def _to_core(c: CaseIn, fields: Mapping[str, Type]) -> m.Case:
    """The core's case for a valid contract case (absent lists empty, absent flags false),
    its request carrying the declared request `fields` it gives."""
    return m.Case(
        case_id=c.case_id,
        received_at=c.received_at,
        ticket=_ticket(c.ticket),
        handoff=_handoff(c.handoff, fields),
        customer=_customer(c.customer),
        history=tuple(_history(e) for e in c.history or ()),
        facts=c.facts or {},
    )


# --------------------------------------------------------------------------- input


@dataclass(frozen=True, slots=True)
class CaseError:
    """Unusable input: which case, which field, what was wrong."""

    case: str  # the case id if it could be read, else its position
    problems: tuple[tuple[str, str], ...]  # (field path, what was wrong)

    def lines(self) -> list[str]:
        """One line per problem, control characters shown escaped (an id or a value from the
        input cannot start a line of its own or move the terminal's cursor)."""
        return [
            printable(f"case {self.case}: {path}: {problem}") for path, problem in self.problems
        ]


def printable(text: str) -> str:
    """The text with every control or format character written as its escape (`\\n`,
    `\\x1b`, `\\u202e`)."""
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


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
        msg += f" (got {_shown(err['input'])})"
    return msg


def _shown(value: Any) -> str:
    shown = repr(value)
    return shown if len(shown) <= 60 else shown[:57] + "..."


def _label(raw: Any, position: str) -> str:
    if isinstance(raw, dict):
        cid = raw.get("case_id")
        if isinstance(cid, str | int) and not isinstance(cid, bool) and str(cid).strip():
            return f"{cid} ({position})"
    return position


def _case_error(
    raw: Any, position: str, exc: ValidationError, more: list[tuple[str, str]]
) -> CaseError:
    problems = tuple((_path(tuple(e["loc"])), _problem(e)) for e in exc.errors(include_url=False))
    return CaseError(_label(raw, position), problems + tuple(more))


def _not_an_object(raw: Any, position: str) -> CaseError:
    return CaseError(position, (("(case)", f"must be a JSON object, got {type(raw).__name__}"),))


def parse_model(
    raw: Any, position: str, vocabulary: Vocabulary | None = None
) -> CaseIn | CaseError:
    """Validate one decoded JSON value as a case, its request by the vocabulary (None: the
    contract's); never raises on bad input."""
    if not isinstance(raw, dict):
        return _not_an_object(raw, position)
    more = (
        []
        if vocabulary is None
        else _field_problems(raw, vocabulary.request_fields) + _fact_problems(raw, vocabulary.facts)
    )
    try:
        model = CaseIn.model_validate(
            raw, context=None if vocabulary is None else {"vocabulary": vocabulary}
        )
    except ValidationError as exc:
        return _case_error(raw, position, exc, more)
    return CaseError(_label(raw, position), tuple(more)) if more else model


def parse_case(raw: Any, position: str, vocabulary: Vocabulary | None = None) -> m.Case | CaseError:
    """Validate one decoded JSON value as a case for the core, its request by the vocabulary
    of the library that decides it (None: the contract's); never raises on bad input. What
    was wrong is told as `parse_model` tells it."""
    model = parse_model(raw, position, vocabulary)
    if isinstance(model, CaseError):
        return model
    return _to_core(model, {} if vocabulary is None else vocabulary.request_fields)


def read_cases(
    text: str | bytes, jsonl: bool = False, vocabulary: Vocabulary | None = None
) -> Iterator[m.Case | CaseError]:
    """Cases from one object, a JSON array, or JSON Lines; each good or a CaseError, in order."""
    for unit in read_units(text, jsonl):
        yield unit if isinstance(unit, CaseError) else parse_unit_case(unit, vocabulary)


def read_models(
    text: str | bytes, jsonl: bool = False, vocabulary: Vocabulary | None = None
) -> Iterator[CaseIn | CaseError]:
    """As read_cases, but the validated contract models (what the store files: with the
    FILING vocabulary, any request type)."""
    for unit in read_units(text, jsonl):
        yield unit if isinstance(unit, CaseError) else parse_unit(unit, vocabulary)


Unit = tuple[str, Any]  # a case's position in the input, and its JSON (decoded, or a line's bytes)


def _decoded(unit: Unit) -> Any:
    position, raw = unit
    if isinstance(raw, bytes):
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return CaseError(position, (("(line)", f"not valid JSON: {exc}"),))
    return raw


def parse_unit(unit: Unit, vocabulary: Vocabulary | None = None) -> CaseIn | CaseError:
    """Validate one unit of input (decoding it first if it is a line of JSON Lines)."""
    raw = _decoded(unit)
    return raw if isinstance(raw, CaseError) else parse_model(raw, unit[0], vocabulary)


def parse_unit_case(unit: Unit, vocabulary: Vocabulary | None = None) -> m.Case | CaseError:
    """As parse_unit, but the case for the core."""
    raw = _decoded(unit)
    return raw if isinstance(raw, CaseError) else parse_case(raw, unit[0], vocabulary)


def read_units(text: str | bytes, jsonl: bool = False) -> Iterator[Unit | CaseError]:
    """The cases of an input in order, not yet validated: one JSON value (a case or an array
    of cases) or JSON Lines, each line a case of its own (a line stays bytes, so the work of
    decoding it can go to another process); a fault of the whole input is a CaseError.

    Input that is not one JSON value is read as JSON Lines when any of its lines is a JSON
    object on its own, so one bad line of a batch on standard input fails alone."""
    data = text.encode() if isinstance(text, str) else text
    if not data or data.isspace():  # (not `data.strip()`: a copy of all of it)
        yield CaseError("(input)", (("(input)", "no case: the input is empty"),))
        return
    if not jsonl:
        stripped = data.strip()
        try:
            whole = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            if not _has_object_line(stripped):
                yield CaseError("(input)", (("(input)", f"not valid JSON: {exc}"),))
                return
        else:
            yield from _items(whole)
            return
    for n, line in enumerate(data.splitlines(), start=1):
        if line.strip():
            yield (f"line {n}", line)


def _items(whole: Any) -> Iterator[Unit | CaseError]:
    if not isinstance(whole, list):
        yield ("item 1", whole)
    elif not whole:
        yield CaseError("(input)", (("(input)", "no case: the array is empty"),))
    else:
        yield from ((f"item {i + 1}", raw) for i, raw in enumerate(whole))


def _has_object_line(data: bytes) -> bool:
    for line in data.splitlines():
        if line.lstrip()[:1] == b"{":
            try:
                if isinstance(orjson.loads(line), dict):
                    return True
            except orjson.JSONDecodeError:
                continue
    return False


# --------------------------------------------------------------------------- output


def _action(a: m.Action) -> dict[str, Any]:
    """An action as the contract gives it: its parameters as keys after the currency, only
    when it has them (`to`, `items`, then the library's own, by name)."""
    out: dict[str, Any] = {"type": a.type}
    if a.amount is not None:
        out["amount"] = a.amount
        out["currency"] = a.currency
    if a.params:
        params = dict(a.params)
        for name in ("to", "items"):
            if name in params:
                out[name] = params.pop(name)
        out.update(params)
        if "items" in out:
            out["items"] = list(out["items"])
    return out


def decision_to_dict(d: m.Decision) -> dict[str, Any]:
    """The decision in the contract's shape (section 3), extended by `escalation_handoff`."""
    return {
        "case_id": d.case_id,
        "outcome": d.outcome.value,
        "escalate_to": d.escalate_to,
        "reasons": [{"code": r.code.value, "detail": r.detail, "rule": r.rule} for r in d.reasons],
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
        m.action_head(a.type, a.amount, a.currency).rstrip() + m.describe_params(a.params)
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

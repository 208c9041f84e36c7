"""The document stage: the internal note, the annotated handoff, tier-1 guidance, a draft reply.

The wording lives in Jinja2 templates (package defaults, overridable per library); this
module only assembles the plain data they render from, and neutralises the case's text for
the document it lands in, once, here, so no template has to:

- the note, the handoff and the guidance are Markdown that a help desk may show as Markdown
  or as HTML: a value from the case has `&`, `<` and `>` as HTML entities, Markdown's
  punctuation backslash-escaped where it would take effect, and cannot start a line with a
  heading, list, quote, rule or tier2's `tier2-key:` mark (`md_line`, `md_block`);
- the draft reply is plain text: a value from the case cannot make HTML, a link or an image
  there (`plain_line`, `plain_block`).

A single-line field (ids, names, subjects, reasons, currencies, ...) has its line breaks and
other control characters replaced by a space and is trimmed; a multi-line field (the
description, message bodies) keeps its lines, each neutralised and indented, so that none
starts a line of the document. Text the library wrote (policy titles, citations, guidance) is
trusted Markdown and passes as it is. A value that needs none of this is left as it was:
ordinary cases render byte for byte as before.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import datetime
from functools import lru_cache
from operator import attrgetter
from typing import Any, NamedTuple

from tier2.core.library import Library
from tier2.core.model import (
    Action,
    Case,
    Customer,
    Handoff,
    Outcome,
    StageRecord,
    Ticket,
    action_head,
    describe_params,
)
from tier2.core.stages import (
    Applied,
    Gathered,
    PolicyMatch,
    Received,
    Resolution,
    earlier_decisions,
)


class DocumentError(Exception):
    """A document could not be written: a template failed on this case. It is the library's
    fault, never the case's, and the case must not go out without its documents: whoever
    decides hands it to a person (`fallback_documents` writes its documents without any
    template)."""


# --------------------------------------------------------------------------- escaping

# Line breaks, other C0 and C1 control characters, the Unicode line and paragraph separators,
# and the bidirectional embeddings, overrides and isolates (they can make text read in
# another order than it is written).
_ASCII_CONTROLS = r"\x00-\x09\x0b-\x1f\x7f"
_UNICODE_CONTROLS = r"\x80-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069"
_OTHER_CONTROLS = _ASCII_CONTROLS + _UNICODE_CONTROLS
# (a run of them, with the spaces around them: one space in a single-line value)
_CONTROL_RUN = re.compile(
    r"[\s" + _OTHER_CONTROLS + "]*[\n" + _OTHER_CONTROLS + r"][\s" + _OTHER_CONTROLS + "]*"
)
# Markdown's inline punctuation, and HTML's specials: escaped wherever they are. An underscore
# between two letters or digits (`verify_invoice`) cannot emphasise anything and is left.
_MD_CHARS = r"&<>*\[\]`~|\\"
_MD_UNDERSCORE = r"(?<![^\W_])_|_(?![^\W_])"
_MD_CHAR = re.compile("[" + _MD_CHARS + "]|" + _MD_UNDERSCORE)
_MD_ENTITY = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
# What would take effect at the start of a line: a heading (any `#`: some renderers need no
# space after it), a list item, a setext underline or thematic break, an ordered list item,
# and tier2's own key line.
_MD_STARTS = r"(#)|([-+])(?=[ \t]|$)|([-=])[-=]*$|(\d{1,9})[.)](?=[ \t]|$)|(?i:tier2-key)"
_MD_START = re.compile(_MD_STARTS)
# What the escapes below would change, in strings joined by "\n" (then a separator, with one
# before the first and after the last). Each search starts with a character class or with
# literals, so it runs at about the speed of a scan.
_ASCII_CHANGED = re.compile("[" + _ASCII_CONTROLS + _MD_CHARS + "]")
_UNICODE_CHANGED = re.compile("[" + _UNICODE_CONTROLS + "]")
# (the ASCII characters escaping leaves as they are but the line break, to delete them fast)
_NOT_CHANGED = bytes(b for b in range(128) if b != 10 and not _ASCII_CHANGED.match(chr(b)))
# A value that starts or ends with a space or starts with a line-start mark (_MD_STARTS), or
# an underscore at a word's edge: each search begins with a literal, so it stops only at line
# breaks or at underscores.
_EDGE_CHANGED = re.compile(
    r"\n(?:(?<=[^\S\n]\n)|[^\S\n]|#|(?=[-+=\dTt])"
    r"(?:[-+][ \t\n]|[-=]+\n|\d{1,9}[.)][ \t\n]|(?i:tier2-key)))"
)
_UNDERSCORE_CHANGED = re.compile(r"_(?:(?<![^\W_]_)|(?![^\W_]))")


def _changed(strings: list[str]) -> bool:
    """Whether escaping would change any of these strings: a line break in one, a character
    escaped, or a start, an end or an underscore that takes effect."""
    if not strings:
        return False
    joined = "\n" + "\n".join(strings) + "\n"
    if joined.isascii():  # (what is left is the line breaks, and what escaping changes)
        if len(joined.encode().translate(None, _NOT_CHANGED)) != len(strings) + 1:
            return True
    elif (
        joined.count("\n") != len(strings) + 1
        or _ASCII_CHANGED.search(joined)
        or _UNICODE_CHANGED.search(joined)
    ):
        return True
    return bool(
        _EDGE_CHANGED.search(joined) or ("_" in joined and _UNDERSCORE_CHANGED.search(joined))
    )


# Plain text: no HTML tag or autolink (`<` and `>` become ‹ and ›), no Markdown link or
# image (a space between `]` and the `(` or `[` after it), and no heading or key line.
_PLAIN_CHAR = re.compile(r"[<>]|\](?=[(\[])")
_PLAIN_SUB = {"<": "\u2039", ">": "\u203a", "]": "] "}
_PLAIN_START = re.compile(r"#+(?=\s|$)|(?i:tier2-key)|\[[^\]]*\]:")


def _one_line(text: str) -> str:
    return _CONTROL_RUN.sub(" ", text).strip()


def _md_char(m: re.Match[str]) -> str:
    c = m.group()
    return _MD_ENTITY.get(c) or "\\" + c


def _md_start(m: re.Match[str]) -> str:
    heading, bullet, rule, number = m.group(1, 2, 3, 4)
    if number is not None:
        return number + "\\" + m.group()[len(number) :]
    if heading is not None or bullet is not None or rule is not None:
        return "\\" + m.group()
    return m.group()[:5] + "\\" + m.group()[5:]  # tier2\-key: read as tier2-key, not a key line


def md_line(text: str) -> str:
    """A single-line value from the case, inert in Markdown and in HTML."""
    if not _changed([text]):
        return text
    text = _MD_CHAR.sub(_md_char, _one_line(text))
    start = _MD_START.match(text)
    return text if start is None else _md_start(start) + text[start.end() :]


def md_block(text: str) -> str:
    """A multi-line value from the case, inert in Markdown and in HTML: each line escaped as
    `md_line`, the lines after the first indented by two spaces (a blank line stays blank)."""
    if not _changed([text]):
        return text
    return _indented([md_line(line) for line in text.strip().splitlines()])


def _plain_char(m: re.Match[str]) -> str:
    return _PLAIN_SUB[m.group()]


def plain_line(text: str) -> str:
    """A single-line value from the case, for plain text: one line, trimmed, no HTML tag, no
    Markdown link or image, no heading or key line."""
    if not _changed([text]):
        return text
    text = _PLAIN_CHAR.sub(_plain_char, _one_line(text))
    return "\\" + text if _PLAIN_START.match(text) else text


def plain_block(text: str) -> str:
    """A multi-line value from the case, for plain text: each line as `plain_line`, the lines
    after the first indented by two spaces."""
    if not _changed([text]):
        return text
    return _indented([plain_line(line) for line in text.strip().splitlines()])


def _indented(lines: list[str]) -> str:
    return "\n".join(lines[:1] + [f"  {line}" if line else "" for line in lines[1:]])


# Fields that hold several lines of the customer's or tier-1's words.
_BLOCK_FIELDS = frozenset({"description", "body", "last_customer_message"})
_Escape = Callable[[str], str]


def _escaped(value: Any, line: _Escape, block: _Escape, field: Any = None) -> Any:
    """Plain data, every string in it (keys too) neutralised: by `block` in a multi-line
    field, by `line` elsewhere."""
    if isinstance(value, str):
        return block(value) if field in _BLOCK_FIELDS else line(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {
            (line(k) if isinstance(k, str) else k): _escaped(v, line, block, k)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_escaped(v, line, block, field) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return line(str(value))


class Documents(NamedTuple):
    note: str
    guidance: str | None
    customer_reply: str | None
    escalation_handoff: Mapping[str, Any] | None
    record: StageRecord


_ACTION_KEYS = frozenset({"type", "amount", "currency"})


def _action(a: Action) -> dict[str, Any]:
    """An action for the templates and the handoff form: its parameters (the case's values)
    as keys after the currency, only when it has them (`to`, `items`, then the others)."""
    out: dict[str, Any] = {"type": a.type, "amount": a.amount, "currency": a.currency}
    if a.params:
        params = dict(a.params)
        for name in ("to", "items"):
            if name in params:
                out[name] = _plain_param(params.pop(name))
        out.update((name, _plain_param(value)) for name, value in params.items())
    return out


def _plain_param(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _param_texts(action: Mapping[str, Any]) -> list[Any]:
    """The strings of an action's parameters (the case's text)."""
    texts: list[Any] = []
    for name, value in action.items():
        if name not in _ACTION_KEYS:
            texts += value if isinstance(value, list) else [value]
    return [t for t in texts if isinstance(t, str)]


def _escaped_action(action: Mapping[str, Any], line: _Escape, block: _Escape) -> dict[str, Any]:
    return {
        name: value if name in ("type", "amount") else _escaped(value, line, block)
        for name, value in action.items()
    }


def _prescription(m: PolicyMatch) -> str:
    p = m.policy
    head = {
        Outcome.RESOLVE: "resolve",
        Outcome.RETURN_TO_TIER1: "return to tier-1",
        Outcome.ESCALATE: f"escalate to {p.escalate_to}",
    }[p.outcome]
    acts = ", ".join(
        action_head(a.type, a.amount, a.currency).rstrip() + describe_params(a.params)
        for a in m.actions
    )
    return head + (f": {acts}" if acts else "")


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _ticket_information(case: Case) -> dict[str, Any]:
    """The ticket, its timeline and the customer, for the escalation handoff."""
    t, h, c = case.ticket, case.handoff, case.customer
    return {
        "case_id": case.case_id,
        "ticket_id": t.id,
        "subject": t.subject,
        "channel": t.channel,
        "severity": t.severity.value,
        "category": t.category,
        "created_at": _iso(t.created_at),
        "escalated_by_tier1_at": _iso(h.escalated_at),
        "received_by_tier2_at": _iso(case.received_at),
        "customer": {
            "id": c.id,
            "name": c.name,
            "company": c.company,
            "segment": c.segment,
            "vip": c.vip,
            "arr": c.arr,
        },
    }


def _issue_summary(case: Case) -> dict[str, Any]:
    """The issue as the ticket and tier-1 describe it, and what the customer asks for."""
    t, h = case.ticket, case.handoff
    return {
        "description": t.description,
        "tier1_reason": h.reason,
        "customer_expectation": h.customer_expectation,
        "request": None
        if h.request is None
        else {
            "type": h.request.type,
            "amount": h.request.amount,
            "currency": h.request.currency,
        },
    }


def _steps_taken(case: Case, applied: Applied) -> list[dict[str, Any]]:
    """The steps tier-1 took, then tier2's policy check."""
    return [
        {"by": "tier1", "step": s.step, "result": s.result, "at": _iso(s.at)}
        for s in case.handoff.steps_taken
    ] + [
        {
            "by": "tier2",
            "step": "apply_policy",
            "result": "matched: " + (", ".join(m.policy.id for m in applied.matched) or "none"),
            "at": None,
        }
    ]


def _current_status(resolution: Resolution, applied: Applied, gathered: Gathered) -> dict[str, Any]:
    """Where the case goes, why, what else was found and the risk signals."""
    first = applied.findings[0].reason
    return {
        "escalated_to": resolution.escalate_to,
        "because": {"code": first.code.value, "detail": first.detail},
        "also_found": [
            {"code": f.reason.code.value, "detail": f.reason.detail} for f in applied.findings[1:]
        ],
        "signals": {
            k: gathered.signals[k]
            for k in (
                "complaint_pattern",
                "commercial_sensitivity",
                "churn_threat",
                "public_complaint",
            )
        },
    }


def _recommendation(resolution: Resolution, applied: Applied) -> dict[str, Any]:
    """The recommended actions, the policy behind them and any conflicting policies."""
    return {
        "actions": [_action(a) for a in resolution.actions],
        "policy": None if applied.winner is None else applied.winner.policy.id,
        "conflicting_policies": [
            {"id": m.policy.id, "prescription": _prescription(m)} for m in applied.conflict
        ],
    }


def _customer_communication(case: Case) -> dict[str, Any]:
    """The customer's mood, channel and last message."""
    t = case.ticket
    last_customer = next((m.body for m in reversed(t.messages) if m.sender == "customer"), None)
    return {
        "sentiment": case.handoff.sentiment,
        "channel": t.channel,
        "last_customer_message": last_customer,
    }


def _escalation_handoff(
    case: Case, resolution: Resolution, applied: Applied, gathered: Gathered
) -> dict[str, Any]:
    """The fields of a proper escalation handoff form, so the new owner does not start cold."""
    return {
        "ticket_information": _ticket_information(case),
        "issue_summary": _issue_summary(case),
        "steps_taken": _steps_taken(case, applied),
        "current_status": _current_status(resolution, applied, gathered),
        "recommendation": _recommendation(resolution, applied),
        "customer_communication": _customer_communication(case),
    }


def _form_texts(form: Mapping[str, Any]) -> list[Any]:
    """The strings of an escalation handoff form (as `_escalation_handoff` makes it) that hold
    the case's text, read field by field (quicker than walking the form). The others are the
    library's and tier2's words: ids, codes, the contract's enumerations, times."""
    ti, summary, status = form["ticket_information"], form["issue_summary"], form["current_status"]
    customer, request = ti["customer"], summary["request"]
    texts = [
        ti["case_id"],
        ti["ticket_id"],
        ti["subject"],
        customer["id"],
        customer["name"],
        customer["company"],
        summary["description"],
        summary["tier1_reason"],
        summary["customer_expectation"],
        None if request is None else request["currency"],
        status["because"]["detail"],
        form["customer_communication"]["last_customer_message"],
    ]
    for s in form["steps_taken"]:
        texts += (s["step"], s["result"])
    for f in status["also_found"]:
        texts.append(f["detail"])
    for a in form["recommendation"]["actions"]:
        texts.append(a["currency"])
        texts += _param_texts(a)
    for c in form["recommendation"]["conflicting_policies"]:
        texts.append(c["prescription"])
    return texts


# The case as plain data (dicts, lists, strings, numbers, booleans, None; times as ISO 8601
# text), field by field: `plan` and `facts` are the case's own JSON (checked by `_texts`).
_TICKET: dict[str, Callable[[Ticket], Any]] = {
    "id": attrgetter("id"),
    "created_at": lambda t: t.created_at.isoformat(),
    "severity": lambda t: str(t.severity),  # (the word: a StrEnum's str is its value)
    "category": attrgetter("category"),
    "subject": attrgetter("subject"),
    "description": attrgetter("description"),
    "channel": attrgetter("channel"),
    "messages": lambda t: [
        {"sender": m.sender, "at": _iso(m.at), "body": m.body} for m in t.messages
    ],
    "tags": lambda t: list(t.tags),
    "status": attrgetter("status"),
}
_HANDOFF: dict[str, Callable[[Handoff], Any]] = {
    "sender": attrgetter("sender"),
    "escalated_at": lambda h: _iso(h.escalated_at),
    "reason": attrgetter("reason"),
    "steps_taken": lambda h: [
        {"step": s.step, "result": s.result, "at": _iso(s.at)} for s in h.steps_taken
    ],
    "customer_expectation": attrgetter("customer_expectation"),
    "request": lambda h: (
        None
        if h.request is None
        else {"type": h.request.type, "amount": h.request.amount, "currency": h.request.currency}
    ),
    "sentiment": attrgetter("sentiment"),
}
_CUSTOMER: dict[str, Callable[[Customer], Any]] = {
    "id": attrgetter("id"),
    "name": attrgetter("name"),
    "company": attrgetter("company"),
    "segment": attrgetter("segment"),
    "vip": attrgetter("vip"),
    "arr": attrgetter("arr"),
    "currency": attrgetter("currency"),
    "plan": attrgetter("plan"),
    "flags": lambda c: [{"type": f.type, "note": f.note, "resolved": f.resolved} for f in c.flags],
}
_PARTS: dict[str, tuple[dict[str, Callable[[Any], Any]], Callable[[Case], Any]]] = {
    "ticket": (_TICKET, lambda case: case.ticket),
    "handoff": (_HANDOFF, lambda case: case.handoff),
    "customer": (_CUSTOMER, lambda case: case.customer),
}


def _whole(key: str) -> Callable[[Case], Any]:
    """All the fields of the case's ticket, handoff or customer."""
    fields, part = _PARTS[key]

    def build(case: Case) -> dict[str, Any]:
        of = part(case)
        return {name: field(of) for name, field in fields.items()}

    return build


_CASE: dict[str, Callable[[Case], Any]] = {
    "case_id": attrgetter("case_id"),
    "received_at": lambda case: case.received_at.isoformat(),
    **{key: _whole(key) for key in _PARTS},
    "history": lambda case: [
        {
            "ticket_id": e.ticket_id,
            "at": _iso(e.at),
            "category": e.category,
            "complaint": e.complaint,
            "escalated": e.escalated,
            "outcome": e.outcome,
        }
        for e in case.history
    ],
    "facts": attrgetter("facts"),
}
# For each key of the view: how to build it whole, or which fields of which part to take.
_Fields = tuple[tuple[str, Callable[[Any], Any]], ...]
_Plan = tuple[tuple[str, Callable[[Case], Any], _Fields | None], ...]


@lru_cache(maxsize=64)
def _view_plan(reads: frozenset[tuple[str, ...]] | None) -> _Plan | None:
    """How to build the view for templates that read only these paths of `case` (None: the
    templates read all of it, or read it in a way no path says): each key of the case read,
    with the fields of `ticket`, `handoff` or `customer` read, or all of the key."""
    if reads is None:
        return None
    wanted: dict[str, set[str] | None] = {}
    for path in reads:
        key = path[0]
        if key not in _CASE:  # a dict's method, or no such field: the whole view, as before
            return None
        if len(path) == 1 or key not in _PARTS or path[1] not in _PARTS[key][0]:
            wanted[key] = None
        else:
            fields = wanted.setdefault(key, set())
            if fields is not None:
                fields.add(path[1])
    plan: list[tuple[str, Callable[[Case], Any], _Fields | None]] = []
    for key, names in sorted(wanted.items()):
        if names is None:
            plan.append((key, _CASE[key], None))
        else:
            table, part = _PARTS[key]
            plan.append((key, part, tuple((name, table[name]) for name in sorted(names))))
    return tuple(plan)


def _case_view(case: Case, reads: frozenset[tuple[str, ...]] | None) -> dict[str, Any]:
    """The case as plain data: the fields the templates read (`reads`, see `_view_plan`), or
    all of them. Building all, each time as text, costs more than rendering a template."""
    plan = _view_plan(reads)
    if plan is None:
        return {key: build(case) for key, build in _CASE.items()}
    view: dict[str, Any] = {}
    for key, build, fields in plan:
        if fields is None:
            view[key] = build(case)
        else:
            of, part = build(case), {}
            for name, field in fields:
                part[name] = field(of)
            view[key] = part
    return view


_SCALARS = frozenset({str, int, float, bool, type(None)})
_CASE_JSON = frozenset({"facts", "plan"})  # the case's own JSON in the view: its keys are text


def _json_texts(value: Any, texts: list[Any], keys: bool = True) -> bool:
    """Add the strings of plain data to `texts` (its keys too if `keys`, and always under
    `facts` and `plan`); False if it is not plain data."""
    kind = type(value)
    if kind is dict:
        if keys:
            texts += value
        for k, v in value.items():
            if type(v) is str:
                texts.append(v)
            elif not _json_texts(v, texts, keys or k in _CASE_JSON):
                return False
        return True
    if kind is list:
        for v in value:
            if type(v) is str:
                texts.append(v)
            elif not _json_texts(v, texts, keys):
                return False
        return True
    return kind in _SCALARS


def _stage(record: StageRecord) -> dict[str, Any]:
    return {"stage": record.stage, "read": list(record.read), "decided": record.decided}


def _context(
    case: Case,
    library: Library,
    now: datetime,
    handoff_form: Mapping[str, Any] | None,
    *,
    received: Received,
    gathered: Gathered,
    applied: Applied,
    resolution: Resolution,
) -> dict[str, Any]:
    """The data the templates render from, before any document is written: plain data, the
    case's text as it came."""
    titles = {m.policy.id: m.policy.title for m in applied.matched} if applied.overridden else {}
    return {
        "case": _case_view(case, getattr(library.templates, "case_reads", None)),
        "now": now.isoformat(),
        "library": {"name": library.name, "version": library.version, "title": library.title},
        "outcome": str(resolution.outcome),
        "escalate_to": resolution.escalate_to,
        "reasons": [
            {"code": str(f.reason.code), "detail": f.reason.detail, "rule": f.reason.rule}
            for f in applied.findings
        ],
        "matched": [
            {"id": m.policy.id, "title": m.policy.title, "citation": m.policy.citation}
            for m in applied.matched
        ],
        "winner": None
        if applied.winner is None
        else {
            "id": applied.winner.policy.id,
            "title": applied.winner.policy.title,
            "citation": applied.winner.policy.citation,
        },
        "conflict": [
            {"id": m.policy.id, "citation": m.policy.citation, "prescription": _prescription(m)}
            for m in applied.conflict
        ],
        "overridden": [{"policy": p, "by": b, "title": titles[p]} for p, b in applied.overridden],
        "actions": [_action(a) for a in resolution.actions],
        "signals": gathered.signals,
        "complexity_points": list(gathered.complexity_points),
        "missing": list(received.missing),
        "missing_steps": list(received.missing_steps),
        "stages": [
            _stage(received.record),
            _stage(gathered.record),
            _stage(applied.record),
            _stage(resolution.record),
        ],
        "handoff_form": handoff_form,
        "base_guidance": resolution.guidance,
        "guidances": list(resolution.guidances),  # several (library order), or none
        "earlier": earlier_decisions(case),
    }


def _escaped_context(raw: Mapping[str, Any], line: _Escape, block: _Escape) -> dict[str, Any]:
    """The template data with every value that may hold the case's text neutralised."""
    return {
        **raw,
        "case": _escaped(raw["case"], line, block),
        "reasons": [{**r, "detail": line(r["detail"])} for r in raw["reasons"]],
        "conflict": [{**c, "prescription": line(c["prescription"])} for c in raw["conflict"]],
        "actions": [_escaped_action(a, line, block) for a in raw["actions"]],
        "stages": [{**s, "decided": line(s["decided"])} for s in raw["stages"]],
        "handoff_form": _escaped(raw["handoff_form"], line, block),
        "earlier": _escaped(raw["earlier"], line, block),
    }


def _template_contexts(
    case: Case,
    library: Library,
    now: datetime,
    handoff_form: Mapping[str, Any] | None,
    *,
    received: Received,
    gathered: Gathered,
    applied: Applied,
    resolution: Resolution,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The data for the Markdown documents and for the plain-text reply. When no text of the
    case needs escaping (most cases) they are one and the same dict, the case's text as it
    came: then every escape below would leave every value as it is."""
    raw = _context(
        case,
        library,
        now,
        handoff_form,
        received=received,
        gathered=gathered,
        applied=applied,
        resolution=resolution,
    )
    texts: list[Any] = []
    if (
        _json_texts(raw["case"], texts, keys=False)  # (all of the view is the case's)
        and _json_texts(raw["earlier"], texts)
    ):
        for stage in raw["stages"]:
            texts.append(stage["decided"])
        if handoff_form is not None:  # (it has the reasons, the conflict and the actions)
            texts += _form_texts(handoff_form)
        else:
            for f in applied.findings:
                texts.append(f.reason.detail)
            for c in raw["conflict"]:
                texts.append(c["prescription"])
            for a in raw["actions"]:
                texts.append(a["currency"])
                texts += _param_texts(a)
        if not _changed(list(filter(None, texts))):
            return raw, raw
    return (
        _escaped_context(raw, md_line, md_block),
        _escaped_context(raw, plain_line, plain_block),
    )


def _document_record(
    handoff_form: Mapping[str, Any] | None, guidance: str | None, reply: str | None
) -> StageRecord:
    """The record of the document stage: which documents were written."""
    return StageRecord(
        stage="document",
        read=("templates",),
        found={
            "note": "annotated escalation handoff" if handoff_form else "internal note",
            "guidance": guidance is not None,
            "customer_reply": reply is not None,
        },
        decided="documents written: note"
        + (", escalation handoff" if handoff_form else "")
        + (", tier-1 guidance" if guidance else "")
        + (", draft customer reply" if reply else ""),
    )


def document(
    case: Case,
    library: Library,
    now: datetime,
    *,
    received: Received,
    gathered: Gathered,
    applied: Applied,
    resolution: Resolution,
) -> Documents:
    """Write the note for the ticket and the documents the outcome calls for. Raises
    DocumentError when a template fails on the case."""
    outcome = resolution.outcome
    handoff_form = (
        _escalation_handoff(case, resolution, applied, gathered)
        if outcome is Outcome.ESCALATE
        else None
    )
    markdown, plain = _template_contexts(
        case,
        library,
        now,
        handoff_form,
        received=received,
        gathered=gathered,
        applied=applied,
        resolution=resolution,
    )
    templates = library.templates
    # Each template sees the documents rendered before it, so the order matters.
    guidance = (
        templates.render("guidance.md", markdown).strip()
        if outcome is Outcome.RETURN_TO_TIER1
        else None
    )
    markdown["guidance"] = guidance
    markdown["handoff"] = (  # the annotated handoff, rendered once for the note
        templates.render("handoff.md", markdown) if handoff_form else None
    )
    if plain is not markdown:
        plain["guidance"], plain["handoff"] = guidance, markdown["handoff"]
    reply = (
        None if outcome is Outcome.RETURN_TO_TIER1 else templates.render("reply.md", plain).strip()
    )
    markdown["customer_reply"] = reply
    note = templates.render("note.md", markdown).strip() + "\n"
    return Documents(
        note, guidance, reply, handoff_form, _document_record(handoff_form, guidance, reply)
    )


_HOLDING_REPLY = (
    "Hello,\n\nThank you for your patience. Your request needs a specialist's review, so we "
    "have passed it, with everything you have already told us, to the right team. We will "
    "come back to you as soon as they have reviewed it.\n\nKind regards,\nSupport team"
)


def fallback_documents(
    case: Case,
    library: Library,
    now: datetime,
    problem: str,
    *,
    applied: Applied,
    gathered: Gathered,
    resolution: Resolution,
) -> Documents:
    """The documents of a case whose templates failed on it (a DocumentError), written without
    any template: a note that says so, with the decision and every reason; the escalation
    handoff form; a holding reply that repeats nothing of the case; the guidance as the
    library wrote it. For the pipeline, once it has sent the case to a person."""
    outcome, target = resolution.outcome, resolution.escalate_to
    lines = [
        f"## tier2 decision: {outcome.value}" + (f" → {target}" if target else ""),
        "",
        f"Case {md_line(case.case_id)} · ticket {md_line(case.ticket.id)} · library "
        f"{library.name} {library.version} · decided at {now.isoformat()}",
        "",
        f"**The documents could not be written** ({md_line(problem)}), so this note is "
        "tier2's own, without the library's templates.",
        "",
        "**Why** (every rule that fired, in order of precedence; the first decides):",
        "",
        *(
            f"{i}. `{f.reason.code.value}` ({f.reason.rule}): {md_line(f.reason.detail)}"
            for i, f in enumerate(applied.findings, 1)
        ),
    ]
    actions = ", ".join(
        md_line(action_head(a.type, a.amount, a.currency) + describe_params(a.params))
        for a in resolution.actions
    )
    lines += ["", f"**Actions** (not carried out): {actions or 'none'}"]
    returned = outcome is Outcome.RETURN_TO_TIER1
    written = (
        "\n".join(f"- {g.strip()}" for g in resolution.guidances)
        if resolution.guidances
        else (resolution.guidance or "")
    )
    guidance = (written.strip() or None) if returned else None
    reply = None if returned else _HOLDING_REPLY
    form = (
        _escalation_handoff(case, resolution, applied, gathered)
        if outcome is Outcome.ESCALATE
        else None
    )
    record = StageRecord(
        stage="document",
        read=(),
        found={
            "templates": problem,
            "guidance": guidance is not None,
            "customer_reply": reply is not None,
        },
        decided="templates failed: note written without them"
        + (", escalation handoff" if form else "")
        + (", tier-1 guidance" if guidance else "")
        + (", holding reply" if reply else ""),
    )
    return Documents("\n".join(lines) + "\n", guidance, reply, form, record)

"""The case's text is neutralised for the document it lands in: Markdown and HTML in the note,
the handoff and the guidance, plain text in the reply; no value of the case can start a line
with a heading or tier2's key mark; ordinary text is left byte for byte as it was."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import SAAS_BASE, patched
from tier2.contract import CaseError, parse_case
from tier2.core import decide
from tier2.core import documents as docs
from tier2.core.documents import md_block, md_line, plain_block, plain_line
from tier2.core.model import Case, Decision
from tier2.library.loader import load_library

SAAS = load_library("saas")
# An unresolved commercial-sensitivity flag: the case is escalated, so the note has the handoff.
ESCALATED = patched(SAAS_BASE, {"customer.flags": [{"type": "commercial_sensitivity"}]})
FORGED = "X\n## tier2 decision: resolve\ntier2-key: ZD-1:1:note\n- refund 9,999.00 EUR"
MARKUP = "<script>alert(1)</script> [click](javascript:alert(1)) ![x](http://evil.example/x.png)"


def base_case(raw: Mapping[str, Any] = ESCALATED) -> Case:
    case = parse_case(dict(raw), "test")
    assert not isinstance(case, CaseError)
    return case


def with_field(case: Case, path: str, value: Any) -> Case:
    """The case with one field of the core's model replaced (past the contract's checks, as a
    help desk's or a test's case could be)."""
    part, _, name = path.partition(".")
    if part == "message":  # the customer's last message
        ticket = case.ticket
        last = dataclasses.replace(ticket.messages[0], body=value)
        return dataclasses.replace(
            case, ticket=dataclasses.replace(ticket, messages=(*ticket.messages, last))
        )
    if not name:
        return dataclasses.replace(case, **{part: value})
    if part == "request":
        request = dataclasses.replace(case.handoff.request, **{name: value})  # type: ignore[type-var]
        return dataclasses.replace(case, handoff=dataclasses.replace(case.handoff, request=request))
    inner = dataclasses.replace(getattr(case, part), **{name: value})
    return dataclasses.replace(case, **{part: inner})


# --------------------------------------------------------------------------- the escapes

MARKDOWN = [
    # (value, in the note, in the reply)
    ("Charged twice for March", "Charged twice for March", "Charged twice for March"),
    ("Tom & Jerry's *urgent* invoice", "Tom &amp; Jerry's \\*urgent\\* invoice", "Tom & Jerry's *urgent* invoice"),
    ("verify_invoice", "verify_invoice", "verify_invoice"),
    ("_emphasis_ and __strong__", "\\_emphasis\\_ and \\_\\_strong\\_\\_", "_emphasis_ and __strong__"),
    ("<script>alert(1)</script>", "&lt;script&gt;alert(1)&lt;/script&gt;", "\u2039script\u203aalert(1)\u2039/script\u203a"),
    ("[click](javascript:alert(1))", "\\[click\\](javascript:alert(1))", "[click] (javascript:alert(1))"),
    ("![x](http://evil.example/x.png)", "!\\[x\\](http://evil.example/x.png)", "![x] (http://evil.example/x.png)"),
    ("[x][ref]", "\\[x\\]\\[ref\\]", "[x] [ref]"),
    ("[ref]: javascript:alert(1)", "\\[ref\\]: javascript:alert(1)", "\\[ref]: javascript:alert(1)"),
    ("<https://evil.example>", "&lt;https://evil.example&gt;", "\u2039https://evil.example\u203a"),
    ("`code` ~~gone~~ a|b C:\\temp", "\\`code\\` \\~\\~gone\\~\\~ a\\|b C:\\\\temp", "`code` ~~gone~~ a|b C:\\temp"),
    ("&lt;b&gt; &#60;", "&amp;lt;b&amp;gt; &amp;#60;", "&lt;b&gt; &#60;"),
    ("# Heading", "\\# Heading", "\\# Heading"),
    ("###### six", "\\###### six", "\\###### six"),
    ("#12345", "\\#12345", "#12345"),
    ("- item", "\\- item", "- item"),
    ("+ item", "\\+ item", "+ item"),
    ("---", "\\---", "---"),
    ("===", "\\===", "==="),
    ("1. first", "1\\. first", "1. first"),
    ("2026) item", "2026\\) item", "2026) item"),
    ("2026-03-03", "2026-03-03", "2026-03-03"),
    ("> quoted", "&gt; quoted", "\u203a quoted"),
    ("tier2-key: ZD-1:1:note", "tier2\\-key: ZD-1:1:note", "\\tier2-key: ZD-1:1:note"),
    ("TIER2-KEY: x", "TIER2\\-KEY: x", "\\TIER2-KEY: x"),
    ("a - b + c = d", "a - b + c = d", "a - b + c = d"),
    ("  padded  ", "padded", "padded"),
    ("\u00a0nbsp\u3000", "nbsp", "nbsp"),
    ("two\nlines\r\nthree", "two lines three", "two lines three"),
    ("tab\there", "tab here", "tab here"),
    ("bell\x07 esc\x1b[31m nel\x85 ls\u2028 ps\u2029", "bell esc \\[31m nel ls ps", "bell esc [31m nel ls ps"),
    ("\u202eevil\u202c \u2066iso\u2069", "evil iso", "evil iso"),
    ("Zoë Müller-Łukasiewicz, 日本", "Zoë Müller-Łukasiewicz, 日本", "Zoë Müller-Łukasiewicz, 日本"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "markdown", "plain"), MARKDOWN)
def test_a_single_line_value_is_escaped_for_each_document(
    value: str, markdown: str, plain: str
) -> None:
    """md_line: HTML entities, Markdown's punctuation escaped where it would act, one line,
    no heading, list, rule or key line at its start; plain_line: one line, no HTML, no link
    or image, no heading or key line; a value that needs nothing stays as it is."""
    assert md_line(value) == markdown
    assert plain_line(value) == plain


BLOCKS = [
    # (value, in the note, in the reply)
    ("one line", "one line", "one line"),
    ("first\n# second\ntier2-key: X\n- item", "first\n  \\# second\n  tier2\\-key: X\n  \\- item", "first\n  \\# second\n  \\tier2-key: X\n  - item"),
    ("\n\nhello\n\n\nworld\n\n", "hello\n\n\n  world", "hello\n\n\n  world"),
    ("a <b>\r\n    indented code", "a &lt;b&gt;\n  indented code", "a \u2039b\u203a\n  indented code"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "markdown", "plain"), BLOCKS)
def test_a_multi_line_value_keeps_its_lines_each_inert(
    value: str, markdown: str, plain: str
) -> None:
    """md_block and plain_block: each line escaped as a single line, the lines after the
    first indented, so no line of the value starts a line of the document."""
    assert md_block(value) == markdown
    assert plain_block(value) == plain


ESCAPES: list[Callable[[str], str]] = [md_line, md_block, plain_line, plain_block]


@given(st.text())
def test_the_quick_check_says_exactly_when_an_escape_changes_a_value(value: str) -> None:
    """`_changed`, which lets ordinary cases through untouched, is True exactly when escaping
    for Markdown would change the value, and never False when any escape would."""
    changed = docs._changed([value])
    assert changed == (md_line(value) != value)
    if not changed:
        assert all(escape(value) == value for escape in ESCAPES)


@given(st.lists(st.text(), max_size=6))
def test_the_quick_check_of_many_values_is_the_check_of_each(values: list[str]) -> None:
    """Values joined for one search are judged as each would be alone."""
    assert docs._changed(values) == any(docs._changed([v]) for v in values)


@given(st.text(st.sampled_from("#tier2-key: \n\r\x0b\u2028 ab")) | st.text())
def test_an_escaped_value_never_starts_a_line_with_a_heading_or_a_key(value: str) -> None:
    """Whatever the value, no line of its escaped form starts with `tier2-key`, or with `#`
    in Markdown (a heading, `# ` or `#` alone, in plain text)."""
    for escape in ESCAPES:
        for line in escape(value).split("\n"):
            assert not line.lower().startswith("tier2-key")
            if escape in (md_line, md_block):
                assert not line.lstrip(" ").startswith("#")
            else:
                assert not re.match(r" *#+(\s|$)", line)


@given(st.text())
def test_a_markdown_escaped_value_has_no_raw_html_or_link(value: str) -> None:
    """No `<` or `>`, no `&` but an entity's, no `[` or `]` unescaped, in the Markdown escape."""
    for escape in (md_line, md_block):
        text = escape(value)
        assert "<" not in text and ">" not in text
        assert all(
            text.startswith(("&amp;", "&lt;", "&gt;"), i) for i, c in enumerate(text) if c == "&"
        )
        assert all(text[i - 1] == "\\" for i, c in enumerate(text) if c in "[]")


# --------------------------------------------------------------------------- the documents


def documents_of(case: Case) -> Decision:
    return decide(case, SAAS)


TEMPLATE_HEADINGS = {
    "## tier2 decision: escalate → senior_support",
    "### Escalation handoff → senior_support",
}


@pytest.mark.parametrize(
    "field",
    [
        "case_id",
        "ticket.id",
        "ticket.subject",
        "ticket.description",
        "message",
        "handoff.reason",
        "handoff.customer_expectation",
        "request.currency",
        "customer.id",
        "customer.name",
        "customer.company",
    ],
)
def test_a_forged_line_in_the_case_forges_nothing(field: str) -> None:
    """Line breaks, a fake decision heading, a `tier2-key:` line and a refund line in any text
    of the case start no line of the note, the handoff or the reply."""
    decision = documents_of(with_field(base_case(), field, FORGED))
    assert decision.outcome.value == "escalate"
    for document in (decision.note, decision.customer_reply or ""):
        lines = document.splitlines()
        assert not [line for line in lines if line.lower().startswith("tier2-key")]
        assert {line for line in lines if line.startswith("#")} <= TEMPLATE_HEADINGS
        assert "- refund 9,999.00 EUR" not in lines
        assert "tier2-key: ZD-1:1:note" not in document.replace("\\-", "-").splitlines()
    assert "## tier2 decision: resolve" not in decision.note.splitlines()


@pytest.mark.parametrize("field", ["message", "ticket.description", "ticket.subject"])
def test_markup_in_the_case_does_not_take_effect(field: str) -> None:
    """`<script>`, a `javascript:` link and a remote image in a message, the description or
    the subject reach the note escaped and the reply as plain text: no tag, link or image."""
    decision = documents_of(with_field(base_case(), field, MARKUP))
    note, reply = decision.note, decision.customer_reply or ""
    for document in (note, reply):
        assert "<script" not in document
        assert not re.search(r"(?<!\\)\]\(", document)  # no `](` but an escaped `\](`
    if field == "ticket.subject":
        assert "&lt;script&gt;alert(1)&lt;/script&gt; \\[click\\](javascript:alert(1))" in note
        assert "\u2039script\u203a" in reply and "[click] (javascript:" in reply
    else:
        assert "&lt;script&gt;" in note


def test_a_multi_line_message_is_quoted_inside_the_handoff() -> None:
    """The customer's last message keeps its lines, each indented under the handoff's item."""
    message = "It is still broken.\n# Fixed\n- refund 9,999.00 EUR\n\nThanks"
    note = documents_of(with_field(base_case(), "message", message)).note
    assert (
        '- Last from the customer: "It is still broken.\n'
        "  \\# Fixed\n"
        "  \\- refund 9,999.00 EUR\n"
        "\n"
        '  Thanks"'
    ) in note


def test_ordinary_cases_are_written_as_before() -> None:
    """A case whose text needs no escaping gets one data dict for every template: the case's
    own strings, untouched."""
    case = base_case()
    seen: list[Mapping[str, Any]] = []
    templates = Recording(seen)
    decide(case, dataclasses.replace(SAAS, templates=templates))
    assert seen[0] is seen[-1]
    assert seen[0]["case"]["ticket"]["subject"] is case.ticket.subject


def test_a_value_to_escape_is_escaped_in_the_markdown_and_plain_in_the_reply() -> None:
    """An `&` and `*` in the subject: `&amp;` and `\\*` in the handoff, as typed in the reply."""
    case = with_field(base_case(), "ticket.subject", "Tom & Jerry's *urgent*")
    decision = documents_of(case)
    assert ': "Tom &amp; Jerry\'s \\*urgent\\*"' in decision.note
    assert '("Tom & Jerry\'s *urgent*")' in (decision.customer_reply or "")


# --------------------------------------------------------------------------- plain data


class Recording:
    """A fake Templates: keeps the data each document is rendered from."""

    def __init__(self, seen: list[Mapping[str, Any]], case_reads: Any = None) -> None:
        self.seen = seen
        self.case_reads = case_reads

    def render(self, name: str, context: Mapping[str, Any]) -> str:
        self.seen.append(context)
        return ""


PLAIN = (dict, list, str, int, float, bool, type(None))


def plain_only(value: Any, where: str = "") -> list[str]:
    """Where in `value` something is not plain data."""
    if type(value) not in PLAIN:
        return [f"{where}: {type(value).__name__}"]
    if type(value) is dict:
        return [bad for k, v in value.items() for bad in plain_only(v, f"{where}.{k}")]
    if type(value) is list:
        return [bad for i, v in enumerate(value) for bad in plain_only(v, f"{where}[{i}]")]
    return []


@pytest.mark.parametrize("reads", [None, SAAS.templates.case_reads])
@pytest.mark.parametrize(
    "raw",
    [
        ESCALATED,
        patched(ESCALATED, {"ticket.subject": "A & B"}),
        patched(SAAS_BASE, {"handoff.steps_taken": []}),
        patched(
            SAAS_BASE,
            {"facts.earlier_decisions": [{"seq": 1, "decided_at": "2026-03-01T10:00:00+01:00", "outcome": "escalate", "escalate_to": "senior_support", "reasons": ["complaint_pattern"]}]},
        ),
    ],
)  # fmt: skip
def test_the_templates_get_plain_data_only(raw: Mapping[str, Any], reads: Any) -> None:
    """Dicts, lists, strings, numbers, booleans and None: no dataclass, enum or time."""
    seen: list[Mapping[str, Any]] = []
    decide(base_case(raw), dataclasses.replace(SAAS, templates=Recording(seen, reads)))
    assert seen
    for context in seen:
        assert plain_only(dict(context)) == []


def test_the_view_has_what_the_templates_read() -> None:
    """With the package's templates, the case's view holds the ids, category, severity,
    subject and name; with templates that read all of it, all of it."""
    case = base_case()
    view = docs._case_view(case, SAAS.templates.case_reads)
    assert view == {
        "case_id": "NW-1",
        "customer": {"name": "Ada Brandt"},
        "ticket": {"category": "billing", "id": "20417", "severity": "medium", "subject": "Charged twice for March"},
    }  # fmt: skip
    whole = docs._case_view(case, None)
    assert set(whole) == {
        "case_id",
        "received_at",
        "ticket",
        "handoff",
        "customer",
        "history",
        "facts",
    }
    assert whole["ticket"]["messages"][0] == {"sender": "customer", "at": "2026-03-03T08:05:00+01:00", "body": "We were billed twice."}  # fmt: skip
    assert docs._case_view(case, frozenset({("ticket", "items")}))["ticket"] == whole["ticket"]
    assert docs._case_view(case, frozenset({("items",)})) == whole


def test_the_quick_check_reads_every_text_of_the_handoff_form() -> None:
    """Every string of the handoff form that comes from the case is among `_form_texts`, so a
    case whose handoff needs escaping is never let through untouched."""
    marked = patched(
        ESCALATED,
        {
            "case_id": "M-case", "ticket.id": "M-ticket", "ticket.subject": "M-subject",
            "ticket.description": "M-description", "handoff.reason": "M-reason",
            "handoff.customer_expectation": "M-expectation", "customer.id": "M-customer",
            "customer.name": "M-name", "customer.company": "M-company",
            "handoff.steps_taken": [{"step": "M-step", "result": "M-result"}],
            "ticket.messages": [{"from": "customer", "body": "M-message"}],
            "customer.flags": [{"type": "commercial_sensitivity", "note": "M-note"}],
        },
    )  # fmt: skip
    seen: list[Mapping[str, Any]] = []
    decide(base_case(marked), dataclasses.replace(SAAS, templates=Recording(seen)))
    form = seen[0]["handoff_form"]
    strings: list[Any] = []
    docs._json_texts(form, strings, keys=False)
    quoting = {s for s in strings if "M-" in s}
    assert len(quoting) >= 13
    assert quoting <= set(docs._form_texts(form))


# --------------------------------------------------------------------------- failures


def test_documents_without_templates_escape_the_case_and_name_the_problem() -> None:
    """fallback_documents (for a case whose templates failed): a note naming the problem, every
    reason and the actions, the case's text escaped; a holding reply quoting nothing of it."""
    case = with_field(base_case(), "ticket.id", FORGED)
    decided = decide(case, SAAS)
    from tier2.core.stages import apply_policy, gather_context, receive, resolve_or_escalate

    received = receive(case, SAAS)
    gathered = gather_context(case, SAAS, case.received_at)
    applied = apply_policy(case, SAAS, received, gathered)
    resolution = resolve_or_escalate(SAAS, applied)
    out = docs.fallback_documents(
        case,
        SAAS,
        case.received_at,
        "reply.md.j2 line 3: SecurityError: <unsafe>",
        applied=applied,
        gathered=gathered,
        resolution=resolution,
    )
    assert out.note.startswith("## tier2 decision: escalate → senior_support\n")
    assert "reply.md.j2 line 3: SecurityError: &lt;unsafe&gt;" in out.note
    assert not [line for line in out.note.splitlines() if line.startswith("tier2-key")]
    assert "1. `commercial_sensitivity` (A4.2)" in out.note
    assert out.customer_reply is not None and "X" not in out.customer_reply
    assert out.escalation_handoff == decided.escalation_handoff
    assert out.record.decided.startswith("templates failed")

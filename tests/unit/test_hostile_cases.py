"""Hostile cases (hypothesis): any JSON in any field gets a decision or a named input error,
never an exception, a library fault or a write to standard error."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import ECOMMERCE_BASE, SAAS_BASE
from tier2.app.deciding import BAD_INPUT, DECIDED, decide_units
from tier2.contract import read_units
from tier2.library.loader import load_library

LIBRARIES = {"saas": load_library("saas"), "ecommerce": load_library("ecommerce")}
BASES = {"saas": SAAS_BASE, "ecommerce": ECOMMERCE_BASE}

hostile_text = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "\n## tier2 decision: resolve\ntier2-key: ZD-1:1:note",
            "\x1b[2J\x1b[31m",
            "\u202e\u200b",
            "<script>alert(1)</script>",
            "[x](javascript:alert(1)) ![i](http://evil/x.png)",
            "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
            " " * 5,
            "EUR",
            "XAU",
            "P1",
        ]
    ),
)
hostile_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e27, -1.0, 1e308, 0.0, 5e-324]),
    hostile_text,
)
hostile = st.recursive(
    hostile_leaf,
    lambda kids: st.one_of(
        st.lists(kids, max_size=3), st.dictionaries(st.text(max_size=6), kids, max_size=3)
    ),
    max_leaves=6,
)
PATHS = [
    "case_id", "received_at", "ticket", "ticket.id", "ticket.severity", "ticket.category",
    "ticket.channel", "ticket.subject", "ticket.messages", "ticket.messages.0",
    "ticket.messages.0.body", "ticket.messages.0.at", "ticket.tags", "handoff", "handoff.reason",
    "handoff.steps_taken", "handoff.request", "handoff.request.amount",
    "handoff.request.currency", "handoff.request.type", "handoff.sentiment", "customer",
    "customer.id", "customer.vip", "customer.arr", "customer.currency", "customer.plan",
    "customer.plan.monthly_fee", "customer.plan.renewed_at", "customer.flags",
    "customer.flags.0.resolved", "history", "history.0.complaint", "facts", "facts.invoice",
    "facts.invoice.amount", "facts.order", "facts.order.value", "facts.order.delivered_at",
    "facts.incident.downtime_minutes", "facts.earlier_decisions",
]  # fmt: skip


def set_at(node: Any, parts: list[str], value: Any) -> Any:
    """A copy of node with the value at the path (a number is a list position); whatever
    stands in the way of the path is replaced by what the path needs."""
    if not parts:
        return value
    head, rest = parts[0], parts[1:]
    if head.isdigit():
        items = list(node) if isinstance(node, list) and node else [{}]
        items[0] = set_at(items[0], rest, value)
        return items
    out = dict(node) if isinstance(node, dict) else {}
    out[head] = set_at(out.get(head), rest, value)
    return out


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(sorted(LIBRARIES)),
    changes=st.lists(st.tuples(st.sampled_from(PATHS), hostile), min_size=1, max_size=4),
)
def test_any_json_anywhere_is_decided_or_named(
    name: str, changes: list[tuple[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    """Decided, or an input error naming the case and a field; never a library fault."""
    case = BASES[name]
    for path, value in changes:
        case = set_at(case, path.split("."), value)
    line = orjson.dumps(case, option=orjson.OPT_NON_STR_KEYS)
    units = list(read_units(line, jsonl=True))
    verdicts = decide_units(LIBRARIES[name], units, None)
    assert len(verdicts) == 1
    status, written = verdicts[0]
    assert status in (DECIDED, BAD_INPUT), written
    if status == BAD_INPUT:
        for error in written.decode().splitlines():
            assert error.startswith("case ") and error.isprintable(), error
    assert capsys.readouterr().err == ""

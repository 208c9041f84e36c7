"""Actions with parameters: `to`, `items` and named `params`, each a CEL expression, loaded,
evaluated, shown in the decision (JSON, text, note, handoff, reply) and escaped as case text."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAAS_BASE, patched, run
from tier2.contract import CaseError, decision_text, parse_case
from tier2.core import decide
from tier2.core.library import Library
from tier2.core.model import Action, Decision
from tier2.library.loader import LibraryError, load_library, resolve_library_path

DUPLICATE = "      - {type: refund, amount: 'has(facts.invoice.amount) ? facts.invoice.amount : request.amount'}"
AMOUNT = "        amount: 'has(facts.invoice.amount) ? facts.invoice.amount : request.amount'\n"
WITH_PARAMS = (
    "      - type: refund\n"
    + AMOUNT
    + '        to: \'facts.invoice.duplicate ? "gift_card" : "card"\'\n'
    "        items: '[facts.invoice.id, ticket.subject]'\n"
    "        params: {urgent: 'true', lines: '2'}"
)
ESCALATED = {"customer.flags": [{"type": "commercial_sensitivity"}]}
FORGED = "A2\n## tier2 decision: resolve\ntier2-key: NW-1:1:note\n- <script>alert(1)</script> *x*"


def library_with(folder: Path, action: str, extra: str = "") -> Path:
    """A copy of saas whose duplicate-charge policy has `action` as its action (and `extra`
    policies appended)."""
    shutil.copytree(resolve_library_path("saas"), folder)
    path = folder / "policies.yaml"
    text = path.read_text()
    assert DUPLICATE in text
    path.write_text(text.replace(DUPLICATE, action, 1) + extra)
    return folder


@pytest.fixture(scope="module")
def params_lib(tmp_path_factory: pytest.TempPathFactory) -> Library:
    return load_library(str(library_with(tmp_path_factory.mktemp("p") / "lib", WITH_PARAMS)))


def decided(library: Library, patch: Mapping[str, Any] | None = None) -> Decision:
    case = parse_case(patched(SAAS_BASE, patch or {}), "test")
    assert not isinstance(case, CaseError)
    return decide(case, library)


# --------------------------------------------------------------------------- loading


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("      - {type: refund, to: 'request.amount +'}", "policy billing.duplicate-charge: actions[0].to: CEL does not compile"),
        ("      - {type: refund, items: 'facts.nothing.ids'}", "policy billing.duplicate-charge: actions[0].items: reads facts.nothing.ids, which no case has"),
        ("      - {type: refund, params: {direction: '\"out\" +'}}", "policy billing.duplicate-charge: actions[0].params.direction: CEL does not compile"),
        ("      - {type: refund, params: {'bad name': '1'}}", "policy billing.duplicate-charge: policies[0].actions[0].params: 'bad name' is not a parameter name"),
        ("      - {type: refund, params: {amount: '1'}}", "policies[0].actions[0].params: 'amount' is not a parameter name: it is a key of the action"),
        ("      - {type: refund, params: {to: '1'}}", "'to' is not a parameter name: it is a key of the action"),
        ("      - {type: refund, params: {direction: 5}}", "policies[0].actions[0].params.direction: Input should be a valid string"),
        ("      - {type: refund, destination: '\"x\"'}", "policies[0].actions[0].destination: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_bad_action_parameters_are_load_errors(tmp_path: Path, action: str, message: str) -> None:
    """A parameter that does not compile, reads no field, or has a bad name names the file,
    the policy and the parameter."""
    folder = library_with(tmp_path / "lib", action)
    with pytest.raises(LibraryError) as err:
        load_library(str(folder))
    assert message in str(err.value)
    assert "policies.yaml" in str(err.value)


def test_parameters_are_expressions_of_the_library(params_lib: Library) -> None:
    """The parameter expressions are among the library's expressions (view names, lint)."""
    sources = {e.source for e in params_lib.expressions}
    assert {"[facts.invoice.id, ticket.subject]", "true", "2"} <= sources
    assert params_lib.view_names is not None and "ticket" in params_lib.view_names


# --------------------------------------------------------------------------- the decision


def test_the_contract_json_has_parameters_after_the_currency(params_lib: Library) -> None:
    """`to`, `items` then the named parameters (by name) follow the currency, as JSON values."""
    action = run(SAAS_BASE, params_lib)["actions"][0]
    assert list(action) == ["type", "amount", "currency", "to", "items", "lines", "urgent"]
    assert action["to"] == "gift_card" and action["items"] == [
        "INV-3321",
        "Charged twice for March",
    ]
    assert action["urgent"] is True and action["lines"] == 2


def test_an_action_without_parameters_keeps_its_json(saas: Library) -> None:
    """A built-in action has exactly the keys it had: no parameter key appears."""
    assert run(SAAS_BASE, saas)["actions"] == [
        {"type": "refund", "amount": 240.0, "currency": "EUR"}
    ]


def test_the_core_action_holds_sorted_parameters(params_lib: Library) -> None:
    """The core's Action holds the parameters sorted by name, `items` as a tuple."""
    (action,) = decided(params_lib).actions
    assert action.params == (
        ("items", ("INV-3321", "Charged twice for March")),
        ("lines", 2),
        ("to", "gift_card"),
        ("urgent", True),
    )


WORDS = (
    "refund 240.00 EUR to gift_card, items INV-3321, Charged twice for March, lines 2, urgent true"
)


def test_the_text_note_and_reply_show_the_parameters(params_lib: Library) -> None:
    """The text output, the note and the stage record say where the refund goes and for what;
    the reply tells the customer the destination and the items."""
    d = decided(params_lib)
    assert f"Actions: {WORDS}\n" in decision_text(d)
    assert f"**Actions** (carried out by tier2): {WORDS}\n" in d.note
    assert d.stages[3].decided == f"resolve in place: {WORDS}"
    assert d.customer_reply is not None
    assert (
        "- we have refunded 240.00 EUR for INV-3321, Charged twice for March to your gift card."
        in d.customer_reply
    )


def test_the_escalation_handoff_recommends_the_parameters(params_lib: Library) -> None:
    """An escalated case's handoff form and its rendering carry the parameters."""
    d = decided(params_lib, ESCALATED)
    assert d.escalation_handoff is not None
    (action,) = d.escalation_handoff["recommendation"]["actions"]
    assert action["to"] == "gift_card" and action["items"] == [
        "INV-3321",
        "Charged twice for March",
    ]
    assert f"- {WORDS} (per billing.duplicate-charge)\n" in d.note
    assert f"Recommended actions: {WORDS}\n" in decision_text(d)


def test_a_hostile_item_is_escaped_in_the_documents(params_lib: Library) -> None:
    """A case's text in the items cannot start a line, make HTML or forge a key in the note,
    the handoff or the reply; it stays one line in the text output."""
    for patch in ({"ticket.subject": FORGED}, {**ESCALATED, "ticket.subject": FORGED}):
        d = decided(params_lib, patch)
        assert d.actions[0].param("items") == ("INV-3321", FORGED)
        starts = [line.lstrip() for line in d.note.splitlines()]
        assert [s for s in starts if s.startswith("## tier2 decision")] == [starts[0]]
        assert not [s for s in starts if re.match(r"tier2-key|- (<|&lt;)", s)]
        assert (
            "<script>" not in d.note and "&lt;script&gt;alert(1)&lt;/script&gt; \\*x\\*" in d.note
        )
        assert d.customer_reply is not None and "<script>" not in d.customer_reply
        actions_line = next(x for x in decision_text(d).splitlines() if "ctions: refund" in x)
        assert "tier2-key: NW-1:1:note - <script>" in actions_line


# --------------------------------------------------------------------------- absent, failed, conflict


def test_an_absent_parameter_means_the_policy_does_not_match(tmp_path: Path) -> None:
    """A parameter reading an absent field leaves the policy unpriced, as an absent amount."""
    action = "      - {type: refund, amount: 'request.amount', to: 'facts.incident.id'}"
    lib = load_library(str(library_with(tmp_path / "lib", action)))
    d = decided(lib)
    assert "billing.duplicate-charge" in d.stages[2].found["not_priced"]
    assert "billing.duplicate-charge" not in d.policies


@pytest.mark.parametrize(
    ("param", "where", "why"),
    [
        ("to: '[\"a\"]'", "actions[0].to", "not a string, a number or a bool"),
        ("to: '{\"a\": 1}'", "actions[0].to", "not a string, a number or a bool"),
        ("items: 'ticket.subject'", "actions[0].items", "not a list of strings"),
        ("items: '[1, 2]'", "actions[0].items", "not a list of strings"),
        ("items: '[" + ", ".join(f'\"i{i}\"' for i in range(101)) + "]'", "actions[0].items", "it names 101 items; at most 100"),
        ("params: {ratio: '1 / 0'}", "actions[0].params.ratio", "could not be evaluated"),
        ("params: {ratio: 'ticket.subject + 1'}", "actions[0].params.ratio", "could not be evaluated"),
    ],
)  # fmt: skip
def test_a_failed_parameter_is_a_library_error(
    tmp_path: Path, param: str, where: str, why: str
) -> None:
    """A parameter that fails or gives the wrong kind of value escalates as library_error,
    naming the policy and the parameter."""
    action = "      - {type: refund, amount: 'request.amount', " + param + "}"
    lib = load_library(str(library_with(tmp_path / "lib", action)))
    d = decided(lib)
    assert d.outcome.value == "escalate" and d.reasons[0].code.value == "library_error"
    assert f"policy billing.duplicate-charge {where}: `" in d.reasons[0].detail
    assert why in d.reasons[0].detail


SAME_BUT_CARD = """
  - id: billing.duplicate-to-card
    title: Duplicate charge back to the card
    citation: handbook B1a
    precedence: 2
    when:
      - 'request.type == "refund"'
      - 'facts.invoice.duplicate == true'
    outcome: resolve
    actions:
      - {type: refund, amount: 'request.amount', to: '"card"'}
"""


@pytest.mark.parametrize(
    ("first_to", "conflict"), [("'\"gift_card\"'", True), ("'\"card\"'", False)]
)
def test_matches_that_differ_only_in_destination_conflict(
    tmp_path: Path, first_to: str, conflict: bool
) -> None:
    """Two policies of one precedence prescribing the same refund to different destinations
    conflict; to the same destination they agree."""
    action = "      - {type: refund, amount: 'request.amount', to: " + first_to + "}"
    lib = load_library(str(library_with(tmp_path / "lib", action, SAME_BUT_CARD)))
    d = decided(lib)
    assert (d.reasons[0].code.value == "policy_conflict") is conflict
    if conflict:
        assert "refund 240.00 EUR to gift_card" in d.note and "refund 240.00 EUR to card" in d.note


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ((), ""),
        ((("to", "gift_card"),), " to gift_card"),
        ((("items", ("A1", "A2")), ("to", "gift_card")), " to gift_card, items A1, A2"),
        ((("items", ()),), " items none"),
        (
            (("direction", "out"), ("n", 2.0), ("urgent", False)),
            " direction out, n 2, urgent false",
        ),
        ((("to", "a\nb"),), " to a b"),
    ],
)
def test_parameters_in_words(params: tuple[tuple[str, Any], ...], words: str) -> None:
    """The words after an action's type and amount: destination, items, then the others."""
    from tier2.core.model import describe_params

    assert describe_params(params) == words
    assert Action("x", params=params).key() == ("x", None, params)

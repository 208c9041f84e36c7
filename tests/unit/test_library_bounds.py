"""A library is untrusted: what it builds, loops over and declares stays bounded, and a typo
cannot lift the authority limits."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import patched, run
from tests.unit.core.test_handbook_retail import BASE
from tier2.contract import CaseError, Vocabulary, parse_case
from tier2.core.expressions import FAILED, ExpressionError, compile_expression
from tier2.core.expressions import run as run_expression
from tier2.core.model import describe_params
from tier2.core.types import TypeDeclarationError, parse_type
from tier2.library.loader import LibraryError, load_library, resolve_library_path

ITEMS = "facts.order.items"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (f"({ITEMS} + {ITEMS}).all(a, a.price > 0.0)", "may only loop over"),
        ("(facts.tags).exists(t, t == 'x')", "may only loop over"),
        (f"{ITEMS}.all(x, {ITEMS}.all(y, lists.index({ITEMS}, 'item_id')[y.item_id].price > 0.0))", "inside a comprehension inside another"),
        (f"{ITEMS}.all(x, {ITEMS}.exists(y, size(lists.zip({ITEMS}, {ITEMS})) > 0))", "inside a comprehension inside another"),
    ],
)  # fmt: skip
def test_comprehensions_cannot_multiply_their_work(source: str, message: str) -> None:
    """A comprehension over a list the expression builds, or a lists function inside two
    comprehensions, is refused when the expression compiles."""
    with pytest.raises(ExpressionError, match=message):
        compile_expression(source)


@pytest.mark.parametrize(
    "source",
    [
        f"lists.zip({ITEMS}, {ITEMS}).all(p, p[0] == p[1])",
        f"{ITEMS}.filter(i, i.price > 1.0).exists(i, i.final_sale)",
        f"{ITEMS}.all(x, lists.index({ITEMS}, 'item_id')[x.item_id].price > 0.0)",
        "[1.0, 2.0].all(x, x > 0.0)",
        f"{ITEMS}[0].tags.all(t, t != '')",
    ],
)
def test_comprehensions_over_bounded_lists_compile(source: str) -> None:
    """Comprehensions over fields, written-out lists, lists functions, filters and maps compile."""
    compile_expression(source)


def test_a_sum_beyond_the_largest_number_fails() -> None:
    """lists.sum of numbers whose sum is not finite fails instead of giving infinity."""
    status, why = run_expression(
        compile_expression("lists.sum(facts.x) > 0.0"), {"facts": {"x": [1e308, 1e308]}}
    )
    assert status == FAILED and "beyond the largest number" in why


@pytest.mark.parametrize(
    ("declaration", "message"),
    [
        (yaml.safe_load("loop: &loop {x: string, y: *loop}")["loop"], "nested more than 16 deep"),
        ("list<" * 40 + "string" + ">" * 40, "nested more than 16 deep"),
        (yaml.safe_load("l0: &l0 {a: string}\n" + "\n".join(f"l{i}: &l{i} {{a: *l{i - 1}, b: *l{i - 1}}}" for i in range(1, 15)))["l14"], "more than 2000 fields"),
    ],
)  # fmt: skip
def test_type_declarations_are_bounded(declaration: object, message: str) -> None:
    """A type nested too deep, recursive through a YAML alias, or multiplied by aliases is a
    declaration error, not a crash or a hang."""
    with pytest.raises(TypeDeclarationError, match=message):
        parse_type(declaration, "facts.x")


@pytest.fixture
def retail_folder(tmp_path: Path) -> Path:
    target = tmp_path / "retail"
    shutil.copytree(resolve_library_path("retail"), target)
    return target


@pytest.mark.parametrize(
    ("applies_to", "message"),
    [
        ("[]", "at least 1 item"),
        ("[refunds, charge_difference]", "'refunds' is no action type with an amount"),
    ],
)
def test_the_authority_ladder_cannot_be_lifted_by_a_typo(
    retail_folder: Path, applies_to: str, message: str
) -> None:
    """authority.applies_to must name at least one action type, each one a policy prices."""
    path = retail_folder / "library.yaml"
    path.write_text(
        path.read_text().replace(
            "applies_to: [refund, charge_difference]", f"applies_to: {applies_to}"
        )
    )
    with pytest.raises(LibraryError, match=message):
        load_library(str(retail_folder))


def test_definitions_cannot_grow_without_end(retail_folder: Path) -> None:
    """Definitions that double one another fail closed once a value is too large."""
    chain = "\n".join(
        f"  s{i}: {{type: string, doc: d, expr: 's{i - 1} + s{i - 1}'}}" for i in range(1, 29)
    )
    path = retail_folder / "policies.yaml"
    text = path.read_text().replace(
        "definitions:\n",
        "definitions:\n  s0: {type: string, doc: d, expr: '\"xxxxxxxxxxxxxxxx\"'}\n" + chain + "\n",
        1,
    )
    path.write_text(
        text.replace(
            "when: ['request.type == \"other\"']",
            "when: ['request.type == \"other\"', 'size(s28) > 0']",
        )
    )
    decision = run(
        patched(BASE, {"handoff.request": {"type": "other"}}), load_library(str(retail_folder))
    )
    assert decision["reasons"][0]["code"] == "library_error"
    assert "at most 10,000" in decision["reasons"][0]["detail"]


def test_bidirectional_overrides_leave_an_actions_words() -> None:
    """An action's parameter from the case cannot reorder the words shown for it."""
    words = describe_params((("items", ("A\u202eRTL\u202c",)), ("to", "gift_card\u2066")))
    assert not any(c in words for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


@pytest.mark.parametrize(
    ("patch", "line"),
    [
        ({"facts.catalogue": [{"item_id": "I-8", "product_id": "boots", "price": -800.0}]}, "facts.catalogue[0].price: expected an amount between 0 and 1,000,000,000,000, got -800.0"),
        ({"facts.catalogue": [{"item_id": "I-8", "product_id": "boots", "price": "129.99"}]}, "facts.catalogue[0].price: expected a number, got a string"),
        ({"facts.gift_card_balance": -1}, "facts.gift_card_balance: Input should be of type money (expected an amount between 0 and 1,000,000,000,000, got -1)"),
        ({"facts.order.items": "I-1"}, "facts.order.items: expected a list, got a string"),
    ],
)  # fmt: skip
def test_declared_facts_are_checked_by_type(patch: dict[str, object], line: str) -> None:
    """A fact that does not fit the library's declaration (a negative price, a price written
    as text) is an input error naming the case and the field, never a payment."""
    retail = load_library("retail")
    error = parse_case(patched(BASE, patch), "item 1", Vocabulary.of(retail))
    assert isinstance(error, CaseError)
    assert error.lines() == [f"case FO-1001 (item 1): {line}"]

"""`tier2 lint`: conflicts, unknown fields and unreachable policies, before any case is seen."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tier2.library.analysis import field_paths, path_tree
from tier2.library.lint import lint_library, report_text
from tier2.library.loader import LibraryError, load_library, resolve_library_path


@pytest.fixture(scope="module")
def saas_report():  # type: ignore[no-untyped-def]
    return lint_library(load_library("saas"), samples=6000, seed=7)


@pytest.fixture(scope="module")
def ecommerce_report():  # type: ignore[no-untyped-def]
    return lint_library(load_library("ecommerce"), samples=6000, seed=7)


def conflicts(report) -> set[tuple[str, ...]]:  # type: ignore[no-untyped-def]
    return {f.subject for f in report.of("conflict")}


def test_finds_the_handbook_conflicts_in_saas(saas_report) -> None:  # type: ignore[no-untyped-def]
    """B2/B5 (named by the handbook) is found, with an example case."""
    assert ("billing.annual-refund-window", "billing.large-account") in conflicts(saas_report)
    found = next(f for f in saas_report.of("conflict") if f.subject[1] == "billing.large-account")
    assert found.count > 0 and found.example["request.type"] == "refund"


def test_finds_the_handbook_conflicts_in_ecommerce(ecommerce_report) -> None:  # type: ignore[no-untyped-def]
    """C1/C3 and C3/C4 (named by the handbook) are found."""
    found = conflicts(ecommerce_report)
    assert ("refund.in-window", "refund.final-sale") in found
    assert ("refund.final-sale", "damage.replacement") in found


def test_higher_precedence_is_not_a_conflict(saas_report, ecommerce_report) -> None:  # type: ignore[no-untyped-def]
    """B1 and C6 override by precedence, so they are never reported as conflicts."""
    for report, policy in (
        (saas_report, "billing.duplicate-charge"),
        (ecommerce_report, "payments.chargeback-open"),
    ):
        assert not any(policy in f.subject for f in report.of("conflict"))


def test_built_ins_have_no_unknown_fields_or_unreachable_policies(
    saas_report, ecommerce_report
) -> None:  # type: ignore[no-untyped-def]
    """Every policy of the built-in libraries is reachable and reads only known fields."""
    for report in (saas_report, ecommerce_report):
        assert report.of("unknown_field") == [] and report.of("unreachable") == []
        assert all(n > 0 for n in report.matches.values())


def test_an_unknown_field_is_a_load_error_naming_file_policy_and_clause(tmp_path: Path) -> None:
    """A typo in a field stops the library from loading, naming where it is."""
    folder = tmp_path / "lib"
    shutil.copytree(resolve_library_path("ecommerce"), folder)
    policies = folder / "policies.yaml"
    policies.write_text(
        policies.read_text().replace(
            "'facts.order.chargeback_open == true'", "'facts.order.chargeback_opened == true'"
        )
    )
    with pytest.raises(LibraryError) as error:
        load_library(str(folder))
    message = str(error.value)
    assert "policies.yaml: policy payments.chargeback-open: when[0]" in message
    assert "facts.order.chargeback_opened" in message


def test_unreachable_policy(tmp_path: Path) -> None:
    """A policy whose conditions contradict each other is reported."""
    folder = tmp_path / "lib"
    shutil.copytree(resolve_library_path("ecommerce"), folder)
    policies = folder / "policies.yaml"
    text = policies.read_text().replace(
        '      - \'request.type == "information"\'\n      - \'ticket.category in ["order", "shipping"]\'',
        "      - 'request.type == \"information\"'\n      - 'request.type == \"refund\"'",
    )
    policies.write_text(text)
    report = lint_library(load_library(str(folder)), samples=3000, seed=1)
    assert {f.subject[0] for f in report.of("unreachable")} == {"order.status"}
    assert "Unreachable policies: 1" in report_text(report)


def test_a_clause_that_can_fail_is_reported(tmp_path: Path) -> None:
    """A clause that cannot be evaluated on some generated case is a finding, with how often."""
    folder = tmp_path / "lib"
    shutil.copytree(resolve_library_path("ecommerce"), folder)
    policies = folder / "policies.yaml"
    policies.write_text(
        policies.read_text().replace(
            "'facts.order.chargeback_open == true'", "'facts.order.chargeback_open + 1.0 > 0.0'"
        )
    )
    report = lint_library(load_library(str(folder)), samples=500, seed=1)
    failing = report.of("can_fail")
    assert [f.subject[0] for f in failing] == ["policy payments.chargeback-open"]
    assert failing[0].count > 0 and "library_error" in failing[0].detail
    assert "Clauses that can fail" in report_text(report)


@pytest.mark.parametrize(
    ("source", "paths"),
    [
        ('request.type == "refund"', {"request.type"}),
        ('has(facts.invoice.amount) ? facts.invoice.amount : request.amount', {"facts.invoice.amount", "request.amount"}),
        ('math.least(request.amount, customer.plan.monthly_fee)', {"request.amount", "customer.plan.monthly_fee"}),
        ('received_at - timestamp(customer.plan.renewed_at) > duration("720h")', {"received_at", "customer.plan.renewed_at"}),
        ('customer.flags.exists(f, f.type == "vip")', {"customer.flags"}),
        ('facts["order"].value > 1', {"facts"}),
        ('"facts.order.value" == ticket.subject', {"ticket.subject"}),
    ],
)  # fmt: skip
def test_field_paths(source: str, paths: set[str]) -> None:
    """The fields an expression reads are found, strings and function names left out."""
    assert field_paths(source) == paths


def test_path_tree_keeps_whole_subtrees() -> None:
    """A path read whole keeps its subtree whole, whichever order the paths come in."""
    assert path_tree(["facts.order.value", "facts.order"]) == {"facts": {"order": None}}
    assert path_tree(["facts.order", "facts.order.value"]) == {"facts": {"order": None}}


ITEMS_FACTS = """facts:
  order:
    id: string
    status: string
    discount: money
    returned: list<string>
    items:
      - {item_id: string, price: money, final_sale: bool, options: map<string>}
  third_party: bool
plan: {}
"""
ITEMS_POLICIES = """policies:
  - id: order.refund-items
    title: Refund the items of a delivered order, less the discount
    citation: test 1
    when:
      - 'request.type == "refund"'
      - 'size(facts.order.items) > 0'
      - 'facts.order.items.all(i, i.final_sale != true)'
    outcome: resolve
    actions:
      - {type: refund, amount: 'lists.sum(facts.order.items.map(i, i.price)) - facts.order.discount'}
  - id: order.final-sale
    title: A final-sale item is not refunded
    citation: test 2
    when:
      - 'request.type == "refund"'
      - 'facts.order.items.exists(i, i.final_sale == true)'
    outcome: return_to_tier1
    guidance: Final-sale items are not refunded.
  - id: order.returned-items
    title: Every returned item is a line of the order
    citation: test 3
    when:
      - 'size(facts.order.returned) > 0'
      - 'facts.order.returned.all(r, r in lists.index(facts.order.items, "item_id"))'
      - 'size(lists.distinct(facts.order.returned)) == size(facts.order.returned)'
    outcome: resolve
    actions:
      - {type: return}
  - id: order.large
    title: A large order goes to a manager
    citation: test 4
    precedence: 2
    when:
      - 'lists.sum(facts.order.items.map(i, i.price)) > 2000'
      - 'facts.order.items.exists(i, i.options.color == "red")'
    outcome: escalate
    escalate_to: support_manager
"""


def test_lint_reaches_policies_over_lists_and_counts_failing_amounts(tmp_path: Path) -> None:
    """A library reading a list of order items (sums, all/exists, an index by id, a map per
    item) has no unreachable policy, and an amount that comes out negative on some generated
    cases is reported with its count."""
    folder = tmp_path / "items"
    shutil.copytree(resolve_library_path("ecommerce"), folder)
    library_yaml = (folder / "library.yaml").read_text()
    (folder / "library.yaml").write_text(library_yaml[: library_yaml.index("facts:")] + ITEMS_FACTS)
    (folder / "policies.yaml").write_text(ITEMS_POLICIES)
    report = lint_library(load_library(str(folder)), samples=3000, seed=7)
    assert report.of("unreachable") == []
    assert all(n > 0 for n in report.matches.values())
    failing = {f.subject: f for f in report.of("can_fail")}
    amount = (
        "policy order.refund-items",
        "lists.sum(facts.order.items.map(i, i.price)) - facts.order.discount",
    )
    assert amount in failing and 0 < failing[amount].count < report.samples
    assert "not an amount between 0" in failing[amount].detail


def test_a_definition_that_can_fail_is_reported_once_at_its_root(tmp_path: Path) -> None:
    """A definition failing on generated cases is a finding, with the case fields behind it;
    a definition or a clause that fails only because it reads it is not reported again."""
    folder = tmp_path / "lib"
    shutil.copytree(resolve_library_path("ecommerce"), folder)
    policies = folder / "policies.yaml"
    definitions = """definitions:
  status_money: {type: money, doc: Not money at all., expr: 'facts.order.carrier_status'}
  twice: {type: money, doc: Twice that., expr: 'status_money * 2.0'}
policies:
"""
    text = policies.read_text().replace("policies:\n", definitions, 1)
    policies.write_text(
        text.replace(
            "{type: replacement, amount: 'facts.order.value'}",
            "{type: replacement, amount: 'twice'}",
        )
    )
    report = lint_library(load_library(str(folder)), samples=500, seed=1)
    failing = {f.subject[0]: f for f in report.of("can_fail")}
    assert set(failing) == {"definition status_money"}
    root = failing["definition status_money"]
    assert "expected a number, got a string" in root.detail
    assert set(root.example) == {"case_id", "facts.order.carrier_status"}

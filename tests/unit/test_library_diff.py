"""`tier2 library diff`'s comparison: one change made to a copy of a built-in library, and the
diff names it (and nothing else); the same library, or one whose YAML differs only in
comments, is identical."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tier2.core.library import Library
from tier2.library.diff import LibraryDiff, diff_libraries, render_text
from tier2.library.loader import library_files, load_library, resolve_library_path

DEFAULT_TEMPLATES = resolve_library_path("saas").parent.parent / "templates"

Edit = Callable[[Path], None]
Row = tuple[str, str, str, Any, Any]  # (where, field, kind, old, new)


def replace(file: str, old: str, new: str) -> Edit:
    def edit(folder: Path) -> None:
        text = (folder / file).read_text()
        assert old in text, old
        (folder / file).write_text(text.replace(old, new, 1))

    return edit


def policies(change: Callable[[list[dict[str, Any]]], None]) -> Edit:
    """An edit of the policies as data (the file written back without its comments)."""

    def edit(folder: Path) -> None:
        data = yaml.safe_load((folder / "policies.yaml").read_text())
        change(data["policies"])
        (folder / "policies.yaml").write_text(yaml.safe_dump(data, sort_keys=False))

    return edit


def template(name: str, extra: str) -> Edit:
    """The library's own copy of a default template, with a line more."""

    def edit(folder: Path) -> None:
        (folder / "templates").mkdir(exist_ok=True)
        text = (DEFAULT_TEMPLATES / name).read_text()
        (folder / "templates" / name).write_text(text + extra)

    return edit


NEW_POLICY = {
    "id": "billing.tax-question",
    "title": "Tax questions go to finance",
    "citation": "handbook B99",
    "when": ['ticket.category == "billing"', 'request.type == "other"'],
    "outcome": "escalate",
    "escalate_to": "finance",
}

CASES: list[tuple[str, Edit, set[Row]]] = [
    (
        "the tier-2 cap",
        replace("library.yaml", "{role: tier2, limit: 500,", "{role: tier2, limit: 1000,"),
        {("authority", "ladder.tier2.limit", "changed", 500, 1000)},
    ),
    (
        "a policy's amount",
        replace(
            "policies.yaml",
            "{type: refund, amount: 'request.amount'}",
            "{type: refund, amount: 'math.least(request.amount, 400.0)'}",
        ),
        {
            (
                "policy billing.annual-refund-window",
                "actions[0].amount",
                "changed",
                "request.amount",
                "math.least(request.amount, 400.0)",
            )
        },
    ),
    (
        "a policy added",
        policies(lambda ps: ps.append(NEW_POLICY)),
        {("policies", "billing.tax-question", "added", None, "Tax questions go to finance")},
    ),
    (
        "a policy removed",
        policies(lambda ps: ps.remove(next(p for p in ps if p["id"] == "billing.large-account"))),
        {
            (
                "policies",
                "billing.large-account",
                "removed",
                "Refunds for accounts above 20 seats go to account management",
                None,
            )
        },
    ),
    (
        "a policy's target and clauses",
        replace(
            "policies.yaml",
            "      - 'customer.plan.seats > 20'\n    outcome: escalate\n    escalate_to: account_management",
            "      - 'customer.plan.seats > 50'\n    outcome: escalate\n    escalate_to: finance",
        ),
        {
            ("policy billing.large-account", "when", "removed", "customer.plan.seats > 20", None),
            ("policy billing.large-account", "when", "added", None, "customer.plan.seats > 50"),
            (
                "policy billing.large-account",
                "escalate_to",
                "changed",
                "account_management",
                "finance",
            ),
        },
    ),
    (
        "a template added",
        template("reply.md.j2", "\nWith kind regards from the tier-2 team.\n"),
        {("files", "templates/reply.md.j2", "added", None, "<file>")},
    ),
    (
        "routing",
        replace("library.yaml", "sla_breach: support_manager", "sla_breach: vp_support"),
        {("routing", "sla_breach", "changed", "support_manager", "vp_support")},
    ),
    (
        "an SLA target",
        replace("sla.yaml", "medium: {hours: 18,", "medium: {hours: 16,"),
        {("sla", "targets.resolution.medium.hours", "changed", 18, 16)},
    ),
    (
        "a currency",
        replace(
            "library.yaml",
            "currencies: {EUR: 1.0, USD: 1.0, GBP: 1.0}",
            "currencies: {EUR: 1.0, USD: 0.9}",
        ),
        {
            ("currencies", "accepted.USD", "changed", 1, 0.9),
            ("currencies", "accepted.GBP", "removed", 1, None),
        },
    ),
    (
        "a rule switched off, the ladder for refunds only, steps by request type",
        lambda folder: (
            replace(
                "library.yaml",
                "churn_threat: {flags: [churn_risk], mention: churn}",
                "churn_threat: off",
            )(folder),
            replace(
                "library.yaml", "  engine: tier2\n", "  engine: tier2\n  applies_to: [refund]\n"
            )(folder),
            replace(
                "library.yaml",
                "    billing: [verify_invoice]\n    refund: [verify_invoice]\n    access: [verify_identity]\n    shipping: [check_tracking]\n",
                "    by_category: {billing: [verify_invoice], refund: [verify_invoice], access: [verify_identity], shipping: [check_tracking]}\n    by_request: {credit: [check_plan]}\n",
            )(folder),
        ),
        {
            ("signals", "off", "added", None, "churn_threat"),
            ("signals", "churn_threat.flags", "removed", "churn_risk", None),
            ("signals", "churn_threat.mention", "changed", "churn", None),
            ("authority", "applies_to", "removed", None, None),
            ("authority", "applies_to", "added", None, "refund"),
            ("handoff_protocol", "required_steps_by_request.credit", "added", None, "check_plan"),
        },
    ),
    (
        "the money rule",
        replace(
            "library.yaml", "currencies: {EUR", "money: {rounding: half_even}\ncurrencies: {EUR"
        ),
        {("currencies", "money.rounding", "changed", "half_up", "half_even")},
    ),
    (
        "a fact's type",
        replace("library.yaml", "duplicate: bool}", "duplicate: bool, tags: [string]}"),
        {("records", "facts.invoice.tags", "added", None, "list<string>")},
    ),
    (
        "a management trigger",
        replace("library.yaml", "'customer.arr > 50000'", "'customer.arr > 80000'"),
        {
            (
                "management_triggers",
                "churn_threat_high_arr.when",
                "removed",
                "customer.arr > 50000",
                None,
            ),
            (
                "management_triggers",
                "churn_threat_high_arr.when",
                "added",
                None,
                "customer.arr > 80000",
            ),
        },
    ),
]


@pytest.fixture(scope="module")
def saas() -> tuple[Library, dict[str, bytes]]:
    return load_library("saas"), library_files(resolve_library_path("saas"))


def copy(tmp_path: Path) -> Path:
    target = tmp_path / "lib"
    shutil.copytree(resolve_library_path("saas"), target)
    return target


def rows(diff: LibraryDiff) -> set[Row]:
    """Every change of the diff as (where, field, kind, old, new); a file's size as <file>."""
    out: set[Row] = set()
    out |= {("policies", pid, "added", None, title) for pid, title in diff.added}
    out |= {("policies", pid, "removed", title, None) for pid, title in diff.removed}
    for policy in diff.changed:
        out |= {(f"policy {policy.id}", c.field, c.kind, c.old, c.new) for c in policy.changes}
    for section, changes in diff.sections:
        for c in changes:
            old, new = (c.old, c.new) if section != "files" else (
                None if c.kind == "added" else "<file>", None if c.kind == "removed" else "<file>"
            )  # fmt: skip
            out.add((section, c.field, c.kind, old, new))
    return out


@pytest.mark.parametrize(("edit", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_one_change_is_named(
    tmp_path: Path, saas: tuple[Library, dict[str, bytes]], edit: Edit, expected: set[Row]
) -> None:
    """Each change made to a copy is what the diff reports, and the whole of it."""
    folder = copy(tmp_path)
    edit(folder)
    changed = load_library(str(folder))
    diff = diff_libraries(saas[0], changed, saas[1], library_files(folder))
    assert rows(diff) == expected
    assert not diff.identical
    json.dumps(diff.to_json())  # plain data throughout
    text = render_text(diff)
    assert all(row[1] in text for row in expected)


def test_the_tier2_cap_reads_old_to_new(tmp_path: Path, saas: tuple[Library, Any]) -> None:
    """The text names the field with its old and new value; the JSON has them as numbers."""
    folder = copy(tmp_path)
    CASES[0][1](folder)
    diff = diff_libraries(saas[0], load_library(str(folder)), saas[1], library_files(folder))
    assert "Authority ladder\n  ladder.tier2.limit: 500 → 1000\n" in render_text(diff)
    assert diff.to_json()["authority"] == [
        {"field": "ladder.tier2.limit", "change": "changed", "old": 500, "new": 1000}
    ]


def test_a_changed_template_is_named(tmp_path: Path) -> None:
    """A template both libraries override, changed; the policies and settings untouched."""
    first, second = tmp_path / "a", tmp_path / "b"
    for folder, line in ((first, "Kind regards\n"), (second, "Best wishes\n")):
        shutil.copytree(resolve_library_path("saas"), folder)
        template("reply.md.j2", line)(folder)
    diff = diff_libraries(
        load_library(str(first)), load_library(str(second)),
        library_files(first), library_files(second),
    )  # fmt: skip
    assert rows(diff) == {("files", "templates/reply.md.j2", "changed", "<file>", "<file>")}


def test_the_same_library_is_identical(saas: tuple[Library, dict[str, bytes]]) -> None:
    diff = diff_libraries(saas[0], load_library("saas"), saas[1], saas[1])
    assert diff.identical and rows(diff) == set()
    assert render_text(diff).endswith("identical\n")


def test_comments_and_layout_are_no_difference(
    tmp_path: Path, saas: tuple[Library, dict[str, bytes]]
) -> None:
    """The files differ (another digest), what they say does not."""
    folder = copy(tmp_path)
    replace("library.yaml", "name: saas", "# the Northwind library\nname:   saas")(folder)
    policies(lambda ps: None)(folder)  # written back without its comments
    changed = load_library(str(folder))
    assert changed.digest != saas[0].digest
    diff = diff_libraries(saas[0], changed, saas[1], library_files(folder))
    assert diff.identical
    assert "differ only in comments or layout" in render_text(diff)


def test_clause_order_is_no_difference_but_policy_order_is(
    tmp_path: Path, saas: tuple[Library, dict[str, bytes]]
) -> None:
    """`when` clauses all have to hold, in any order; the policies' order names the winner
    among agreeing policies, so a move is shown."""

    def edit(ps: list[dict[str, Any]]) -> None:
        ps[0]["when"].reverse()
        ps.insert(3, ps.pop(1))

    folder = copy(tmp_path)
    policies(edit)(folder)
    diff = diff_libraries(saas[0], load_library(str(folder)), saas[1], library_files(folder))
    assert not diff.changed and diff.order is not None
    assert diff.order.old[:4] == [p.id for p in saas[0].policies][:4]


def test_hostile_text_is_escaped(tmp_path: Path, saas: tuple[Library, dict[str, bytes]]) -> None:
    """A title with a terminal escape is shown escaped."""
    folder = copy(tmp_path)
    replace(
        "policies.yaml",
        "title: Confirmed duplicate charge is refunded",
        'title: "Confirmed\\e[2J duplicate"',
    )(folder)
    diff = diff_libraries(saas[0], load_library(str(folder)), saas[1], library_files(folder))
    text = render_text(diff)
    assert "\x1b" not in text and "\\x1b[2J" in text


def test_changed_added_and_removed_definitions_are_named(tmp_path: Path) -> None:
    """A definition whose expression changed, one only the old library has, one only the new."""
    folders = []
    for name, entries in (
        ("old", ["seats_fee: {type: money, doc: Fee per seat., expr: 'customer.plan.monthly_fee / customer.plan.seats'}",
                 "gone: {type: bool, doc: Not kept., expr: 'true'}"]),
        ("new", ["seats_fee: {type: money, doc: Fee per seat., expr: 'customer.plan.monthly_fee / 10.0'}",
                 "fresh: {type: list<string>, doc: New., expr: '[\"a\"]'}"]),
    ):  # fmt: skip
        folder = tmp_path / name
        shutil.copytree(resolve_library_path("saas"), folder)
        block = "definitions:\n" + "".join(f"  {e}\n" for e in entries)
        replace("policies.yaml", "policies:\n", block + "policies:\n")(folder)
        folders.append(load_library(str(folder)))
    diff = diff_libraries(folders[0], folders[1])
    assert not (diff.added or diff.removed or diff.changed)
    assert [(name, [(c.field, c.kind, c.old, c.new) for c in cs]) for name, cs in diff.sections] == [
        ("definitions", [
            ("seats_fee.expr", "changed",
             "customer.plan.monthly_fee / customer.plan.seats", "customer.plan.monthly_fee / 10.0"),
            ("gone", "removed", {"type": "bool", "doc": "Not kept.", "expr": "true"}, None),
            ("fresh", "added", None, {"type": "list<string>", "doc": "New.", "expr": '["a"]'}),
        ]),
    ]  # fmt: skip
    text = render_text(diff)
    assert (
        "\nDefinitions\n  seats_fee.expr: customer.plan.monthly_fee / customer.plan.seats → "
        "customer.plan.monthly_fee / 10.0\n  - gone: {" in text
    )
    assert diff.to_json()["definitions"][2] == {
        "field": "fresh",
        "change": "added",
        "new": {"type": "list<string>", "doc": "New.", "expr": '["a"]'},
    }

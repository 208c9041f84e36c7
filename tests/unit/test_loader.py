"""Loading policy libraries: built-ins, folders, and clear errors for libraries that do not load."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import orjson
import pytest

from tier2.contract import CaseError, parse_case
from tier2.core import decide
from tier2.core.money import MoneyRule
from tier2.core.types import declaration
from tier2.library.loader import LibraryError, load_library, resolve_library_path
from tier2.library.samples import CaseGenerator

SAAS_EXAMPLE = (
    (Path(__file__).parents[2] / "examples" / "saas" / "cases.jsonl").read_bytes().splitlines()[0]
)


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A writable copy of the built-in saas library."""
    target = tmp_path / "lib"
    shutil.copytree(resolve_library_path("saas"), target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_built_ins_load() -> None:
    """Both reference libraries load with every expression compiled."""
    for name, count in (("saas", 12), ("ecommerce", 9)):
        lib = load_library(name)
        assert lib.name == name and len(lib.policies) == count
        assert lib.digest.startswith("sha256:")


def test_a_folder_loads_like_the_built_in(folder: Path) -> None:
    """A folder copy of a library loads, with the same digest as the built-in."""
    assert load_library(str(folder)).digest == load_library("saas").digest


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("policies.yaml", "'facts.invoice.duplicate == true'\n    outcome: resolve", "'facts.invoice.duplicate == = true'\n    outcome: resolve", "policies.yaml: policy billing.duplicate-charge: when[2]: CEL does not compile"),
        ("policies.yaml", "escalate_to: engineering", "escalate_to: engineers", "policy technical.data-loss: escalate_to 'engineers' is neither a role nor a team"),
        ("policies.yaml", "id: billing.annual-refund-late", "id: billing.annual-refund-window", "policy billing.annual-refund-window: id is used twice"),
        ("policies.yaml", "outcome: return_to_tier1\n    guidance: Walk", "outcome: send_back\n    guidance: Walk", "policies.yaml: policy access.self-service: policies[7].outcome: Input should be"),
        ("policies.yaml", "amount: 'request.amount'}", "amount: 'request.amount +'}", "policy billing.annual-refund-window: actions[0].amount: CEL does not compile"),
        ("library.yaml", "management_trigger: support_manager", "management_trigger: the_boss", "routing.management_trigger: 'the_boss' is neither a role nor a team"),
        ("library.yaml", "    - 'customer.arr > 50000'", "    - 'customer.arr >'", "management trigger churn_threat_high_arr: when[1]: CEL does not compile"),
        ("library.yaml", "engine: tier2", "engine: robot", "authority.engine: 'robot' is not on the ladder"),
        ("sla.yaml", "  low: {hours: 27", "  low: {hrs: 27", "sla.yaml: targets.low.hours: Field required"),
        ("sla.yaml", "    friday:", "    fryday:", "unknown weekday"),
        ("sla.yaml", "timezone: Europe/Berlin", "timezone: Europe/Atlantis", "unknown time zone 'Europe/Atlantis'"),
        ("sla.yaml", 'monday: [["09:00", "18:00"]]', 'monday: [["09:00", "12:30"], ["12:00", "18:00"]]', "monday: windows overlap"),
        ("sla.yaml", 'tuesday: [["09:00", "18:00"]]', 'tuesday: [["18:00", "09:00"]]', "tuesday: 18:00-09:00: a window must end after it starts"),
        ("sla.yaml", 'wednesday: [["09:00", "18:00"]]', 'wednesday: [["9am", "18:00"]]', "times are HH:MM"),
        ("sla.yaml", "country: DE", "country: XX", "the holidays package has no calendar"),
        ("sla.yaml", "extra_holidays: []", "extra_holidays: [2026-02-30]", "not a valid value: day is out of range for month"),
        ("library.yaml", "duplicate: bool}", "duplicate: bool, lines: list}", "library.yaml: facts.invoice.lines: no type 'list' (a type is string, number, money, bool, timestamp, list<T>, map<T>, a mapping of fields or [T])"),
        ("library.yaml", "duplicate: bool}", "duplicate: bool, lines: [{price: moneys}]}", "facts.invoice.lines[0].price: no type 'moneys'"),
        ("library.yaml", "duplicate: bool}", "duplicate: bool, lines: [string, number]}", "facts.invoice.lines: a list type is written [T], with one element (got 2)"),
        ("library.yaml", "duplicate: bool}", "duplicate: bool, tags: list<strin>}", "facts.invoice.tags: no type 'list<strin>'"),
        ("library.yaml", "duplicate: bool}", "duplicate: bool, meta: {a: {b: map<>}}}", "facts.invoice.meta.a.b: no type 'map<>'"),
        ("library.yaml", "  third_party: bool", "  third_party: boolean", "facts.third_party: no type 'boolean'"),
        ("library.yaml", "seats: number", "seats: integer", "plan.seats: no type 'integer'"),
    ],
)  # fmt: skip
def test_bad_library_names_file_policy_and_problem(
    folder: Path, file: str, old: str, new: str, message: str
) -> None:
    """A library that does not load says which file, which policy and what is wrong."""
    edit(folder / file, old, new)
    with pytest.raises(LibraryError) as err:
        load_library(str(folder))
    assert message in str(err.value)
    assert file in str(err.value)


LINES = "duplicate: bool, lines: [{price: money, tags: list<string>, options: map<string>}], meta: {a: {b: number}}}"


@pytest.mark.parametrize(
    ("clause", "error"),
    [
        ("facts.invoice.lines.all(l, l.price > 0.0)", None),
        ("facts.invoice.lines[0].price > 0.0", None),
        ("size(facts.invoice.lines) == 2", None),
        ('lists.sum(facts.invoice.lines.map(l, l.price)) > 10.0', None),
        ('facts.invoice.lines.exists(l, "gift" in l.tags && l.options.color == "red")', None),
        ("facts.invoice.meta.a.b > 2.0", None),
        ("facts.invoice.linez.all(l, l.price > 0.0)", "reads facts.invoice.linez, which no case has"),
        ("facts.invoice.lines.price > 0.0", "reads facts.invoice.lines.price, which no case has"),
        ("facts.invoice.meta.c == 1.0", "reads facts.invoice.meta.c, which no case has"),
    ],
)  # fmt: skip
def test_lists_maps_and_nested_records_are_known_fields(
    folder: Path, clause: str, error: str | None
) -> None:
    """A clause may read a declared list (whole, indexed or in a comprehension), a map's keys
    and nested records; a field below a list, or one not declared, is a load error."""
    edit(folder / "library.yaml", "duplicate: bool}", LINES)
    edit(folder / "policies.yaml", "'facts.invoice.duplicate == true'", f"'{clause}'")
    if error is None:
        load_library(str(folder))
        return
    with pytest.raises(LibraryError, match=r"policies\.yaml") as err:
        load_library(str(folder))
    assert error in str(err.value)


def test_the_money_rule_is_read_with_defaults(folder: Path) -> None:
    """`money:` in library.yaml sets places and rounding; without it, cents half-up."""
    assert load_library(str(folder)).money == MoneyRule(2, "half_up")
    edit(folder / "library.yaml", "title:", "money: {places: 0, rounding: floor}\ntitle:")
    assert load_library(str(folder)).money == MoneyRule(0, "floor")


def test_action_amounts_are_rounded_by_the_money_rule(folder: Path) -> None:
    """A library rounding to whole units, down, gives whole amounts: the same decisions'
    amounts as the cents library's, floored."""
    cents = load_library(str(folder))
    edit(folder / "library.yaml", "title:", "money: {places: 0, rounding: floor}\ntitle:")
    whole = load_library(str(folder))
    generator = CaseGenerator(cents, seed=3)
    amounts = []
    for i in range(300):
        case = parse_case(generator.case(i), "c")
        assert not isinstance(case, CaseError)
        a, b = decide(case, cents), decide(case, whole)
        for x, y in zip(a.actions, b.actions, strict=True):
            if x.amount is not None:
                amounts.append((x.amount, y.amount))
    assert amounts and all(y == math.floor(x) for x, y in amounts)
    assert any(x != y for x, y in amounts)


@pytest.mark.parametrize(
    ("money", "message"),
    [
        ("{places: 2, rounding: bankers}", "money.rounding: Input should be 'half_up'"),
        ("{places: -1}", "money.places: Input should be greater than or equal to 0"),
        ("{cents: 2}", "money.cents: Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_a_bad_money_rule_is_a_load_error(folder: Path, money: str, message: str) -> None:
    """A money rule with an unknown rounding, negative places or another key does not load."""
    edit(folder / "library.yaml", "title:", f"money: {money}\ntitle:")
    with pytest.raises(LibraryError, match=r"library\.yaml") as err:
        load_library(str(folder))
    assert message in str(err.value)


def test_missing_file_is_named(folder: Path) -> None:
    """A library folder without policies.yaml says so."""
    (folder / "policies.yaml").unlink()
    with pytest.raises(LibraryError, match=r"policies\.yaml: file is missing"):
        load_library(str(folder))


def test_unknown_library_name() -> None:
    """A name that is neither built in nor a folder is a clear error."""
    with pytest.raises(LibraryError, match="not a built-in library"):
        load_library("banking")


def test_invalid_yaml_is_named(folder: Path) -> None:
    """YAML that does not parse names the file."""
    (folder / "library.yaml").write_text("name: [unclosed\n")
    with pytest.raises(LibraryError, match=r"library\.yaml: not valid YAML"):
        load_library(str(folder))


def _definitions(*entries: str) -> str:
    """A `definitions:` section of these entries (`name: {type: ..., doc: ..., expr: ...}`)."""
    return "definitions:\n" + "".join(f"  {e}\n" for e in entries)


NUMBER = "{type: number, doc: A number., expr: '%s'}"
CHAIN = [f"d{i}: {NUMBER % (f'd{i + 1} + 1.0' if i < 33 else '1.0')}" for i in range(34)]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["order-total: " + NUMBER % "1.0"], "definition order-total: a name is an identifier"),
        (["ticket: " + NUMBER % "1.0"], "definition ticket: the name is a field of the case"),
        (["received_at: " + NUMBER % "1.0"], "definition received_at: the name is a field of the case"),
        (["int: " + NUMBER % "1.0"], "definition int: the name is a CEL word"),
        (["lists: " + NUMBER % "1.0"], "definition lists: the name is a CEL word"),
        (["size: " + NUMBER % "1.0"], "definition size: the name is a CEL word"),
        (["invoice: " + NUMBER % "1.0"], "definition invoice: the name is a fact record (facts.invoice)"),
        (["x: " + NUMBER % "1.0", "y: " + NUMBER % "2.0", "x: " + NUMBER % "3.0"], "definition x: defined twice"),
        (["x: " + NUMBER % "1.0 +"], "policies.yaml: definition x: CEL does not compile"),
        (["x: " + NUMBER % "facts.nope"], "definition x: reads facts.nope, which no case has"),
        (["x: {type: integer, doc: A number., expr: '1'}"], "definition x: no type 'integer'"),
        (["x: {type: list<decimal>, doc: A list., expr: '[1]'}"], "definition x: no type 'list<decimal>'"),
        (["x: {type: map, doc: A map., expr: '{}'}"], "definition x: no type 'map'"),
        (["x: {type: number, expr: '1'}"], "policies.yaml: definitions.x.doc: Field required"),
        (["x: " + NUMBER % "y + 1.0", "y: " + NUMBER % "x * 2.0"], "definition x: definitions read each other: x -> y -> x"),
        (["a: " + NUMBER % "b", "b: " + NUMBER % "c", "c: " + NUMBER % "b"], "definition b: definitions read each other: b -> c -> b"),
        (["x: " + NUMBER % "x + 1.0"], "definition x: definitions read each other: x -> x"),
        (["x: " + NUMBER % "1.0", "y: {type: bool, doc: A test., expr: 'facts.invoice.id.exists(x, x > 0)'}"], "definition y: a comprehension variable is named like a definition: x"),
        (CHAIN, "definition d0: definitions read definitions more than 32 deep"),
    ],
)  # fmt: skip
def test_bad_definitions_name_file_definition_and_problem(
    folder: Path, entries: list[str], message: str
) -> None:
    """A definition that cannot be used says which file, which definition and what is wrong."""
    edit(folder / "policies.yaml", "policies:\n", _definitions(*entries) + "policies:\n")
    with pytest.raises(LibraryError) as err:
        load_library(str(folder))
    assert message in str(err.value)
    assert "policies.yaml" in str(err.value)


def test_a_policy_reading_an_unknown_name_is_refused(folder: Path) -> None:
    """A bare name that is neither a field of the case nor a definition does not load."""
    edit(folder / "policies.yaml", "'request.type == \"refund\"'", "'refund_total > 0.0'")
    with pytest.raises(LibraryError, match="reads refund_total, which no case has"):
        load_library(str(folder))


def test_definitions_load_each_after_those_it_reads(folder: Path) -> None:
    """Definitions read whole (a field or index beyond one is allowed); one no expression
    uses is fine; they come in dependency order, typed and documented."""
    entries = [
        "total: {type: money, doc: The lines summed., expr: 'lines.A1 + lines[\"B2\"]'}",
        "lines: {type: map<number>, doc: Prices by line., expr: '{\"A1\": 1.5, \"B2\": facts.invoice.amount}'}",
        "unused: {type: list<map<string>>, doc: Not read by any policy., expr: '[{\"a\": \"b\"}]'}",
        "big: {type: bool, doc: A large total., expr: 'total > 100.0'}",
    ]  # fmt: skip
    edit(folder / "policies.yaml", "policies:\n", _definitions(*entries) + "policies:\n")
    edit(
        folder / "policies.yaml",
        "'request.type == \"refund\"'",
        "'request.type == \"refund\" || big'",
    )
    library = load_library(str(folder))
    assert [d.name for d in library.definitions] == ["lines", "total", "unused", "big"]
    assert [(declaration(d.type), d.doc) for d in library.definitions][2] == (
        "list<map<string>>",
        "Not read by any policy.",
    )
    assert library.definitions[1].expression.source == 'lines.A1 + lines["B2"]'


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (b"{not json\n", r"examples\.jsonl: line 1: not valid JSON"),
        (b'{"case_id": "X-1"}\n', r"examples\.jsonl: case X-1 \(line 1\): received_at: required"),
        (b"\n" + SAAS_EXAMPLE.replace(b'"refund"', b'"teleport"') + b"\n", r"line 2\): handoff\.request\.type"),
    ],
)  # fmt: skip
def test_bad_example_cases_are_load_errors(folder: Path, lines: bytes, message: str) -> None:
    """An example case that is not JSON or not a valid case for the library names the file,
    the line and the problem."""
    (folder / "examples.jsonl").write_bytes(lines)
    with pytest.raises(LibraryError, match=message):
        load_library(str(folder))


def test_example_cases_load_with_the_library(folder: Path) -> None:
    """A library folder's examples.jsonl is read with it, one case per line, blank lines
    skipped; a folder without one has none."""
    assert load_library(str(folder)).examples == ()
    (folder / "examples.jsonl").write_bytes(SAAS_EXAMPLE + b"\n\n" + SAAS_EXAMPLE + b"\n")
    assert [e["case_id"] for e in load_library(str(folder)).examples] == ["NW-20417"] * 2


def test_the_documents_show_amounts_as_rounded(folder: Path) -> None:
    """With a money rule of three places, the note and the text show the amount carried out."""
    edit(folder / "library.yaml", "title:", "money: {places: 3}\ntitle:")
    library = load_library(str(folder))
    raw = orjson.loads(SAAS_EXAMPLE)
    raw["handoff"]["request"]["amount"] = 240.1235
    raw["facts"]["invoice"]["amount"] = 240.1235
    case = parse_case(raw, "c")
    assert not isinstance(case, CaseError)
    decision = decide(case, library)
    assert [a.amount for a in decision.actions] == [240.124]
    assert "240.124" in decision.note and "240.12 " not in decision.note

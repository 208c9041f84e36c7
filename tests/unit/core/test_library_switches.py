"""Handbook rules a company can switch off in library.yaml (design section 7): each fires as
before when its key is absent, and finds nothing when the library switches it off."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import DELETE, SAAS_BASE, patched
from tier2.contract import CaseError, Vocabulary, decision_to_dict, parse_case
from tier2.core import decide
from tier2.core.library import Library
from tier2.library.loader import load_library, resolve_library_path

D = "2026-02-01T09:00:00+01:00"
COMPLAINTS = [
    {"ticket_id": f"H{i}", "at": D, "category": "other", "complaint": True} for i in range(3)
]
FOLLOW_UPS = [
    {"from": "agent", "at": "2026-03-03T08:40:00+01:00", "body": "Checking."},
    *({"from": "customer", "at": f"2026-03-03T09:0{i}:00+01:00", "body": "?"} for i in range(3)),
]


OFF = "__off__"  # written as YAML's bare `off` (false under YAML 1.1, as PyYAML reads it)


@dataclass(frozen=True)
class Switch:
    id: str
    settings: dict[str, Any]  # dotted path in library.yaml -> value (DELETE: removed)
    patch: dict[str, Any]  # a case the rule fires on with the built-in saas library
    code: str  # the reason code it gives when on
    off: str | None = None  # the rule the gather_context record names as off


SWITCHES = [
    Switch("handoff_protocol enabled: false", {"handoff_protocol.enabled": False}, {"handoff.reason": DELETE}, "handoff_ambiguity"),
    Switch("handoff_protocol enabled: false (missing steps)", {"handoff_protocol.enabled": False}, {"handoff.steps_taken": [{"step": "other"}]}, "missing_prerequisite"),
    Switch("handoff_protocol: off", {"handoff_protocol": OFF}, {"customer.id": DELETE}, "handoff_ambiguity"),
    Switch("complaint_pattern: off", {"signals.complaint_pattern": OFF}, {"history": COMPLAINTS}, "complaint_pattern", "complaint_pattern"),
    Switch("commercial_sensitivity_flags: []", {"signals.commercial_sensitivity_flags": []}, {"customer.flags": [{"type": "commercial_sensitivity"}]}, "commercial_sensitivity", "commercial_sensitivity"),
    Switch("commercial_sensitivity: false", {"signals.commercial_sensitivity": False}, {"customer.flags": [{"type": "commercial_sensitivity"}]}, "commercial_sensitivity", "commercial_sensitivity"),
    Switch("churn_threat: off", {"signals.churn_threat": OFF}, {"customer.arr": 90000, "customer.flags": [{"type": "churn_risk"}]}, "management_trigger", "churn_threat"),
    Switch("public_complaint: false", {"signals.public_complaint": False}, {"ticket.channel": "social"}, "management_trigger", "public_complaint"),
    Switch("complexity: off", {"signals.complexity": OFF}, {"facts.third_party": True, "ticket.messages": FOLLOW_UPS}, "complexity", "complexity"),
    Switch("authority applies_to: [credit]", {"authority.applies_to": ["credit"]}, {"facts.invoice.amount": 600}, "authority_exceeded"),
]  # fmt: skip


def _library(tmp_path: Path, settings: dict[str, Any]) -> Library:
    """A copy of the saas library with these settings of library.yaml changed."""
    folder = tmp_path / "lib"
    shutil.copytree(resolve_library_path("saas"), folder)
    path = folder / "library.yaml"
    data = patched(yaml.safe_load(path.read_text()), settings)
    path.write_text(yaml.safe_dump(data, sort_keys=False).replace(f": {OFF}", ": off"))
    return load_library(str(folder))


def _decide(library: Library, patch: dict[str, Any]) -> dict[str, Any]:
    case = parse_case(patched(SAAS_BASE, patch), "test", Vocabulary.of(library))
    assert not isinstance(case, CaseError), case.lines()
    return decision_to_dict(decide(case, library))


@pytest.mark.parametrize("switch", SWITCHES, ids=lambda s: s.id)
def test_a_rule_switched_off_finds_nothing(switch: Switch, tmp_path: Path) -> None:
    """The case the rule fires on with the built-in library gets no finding of it once the
    library switches it off, and the gather_context record names the rule as off."""
    on = _decide(load_library("saas"), switch.patch)
    assert switch.code in [r["code"] for r in on["reasons"]]
    library = _library(tmp_path, switch.settings)
    off = _decide(library, switch.patch)
    assert switch.code not in [r["code"] for r in off["reasons"]], off["reasons"]
    gathered = next(s for s in off["stages"] if s["stage"] == "gather_context")
    assert gathered["found"].get("off", []) == ([switch.off] if switch.off else [])
    received = next(s for s in off["stages"] if s["stage"] == "receive")
    protocol_off = any(k.startswith("handoff_protocol") for k in switch.settings)
    assert (received["found"].get("handoff_protocol") == "off") is protocol_off
    if switch.off in (
        "complaint_pattern",
        "commercial_sensitivity",
        "churn_threat",
        "public_complaint",
    ):
        assert gathered["found"][switch.off] is False


def test_the_built_ins_name_no_rule_off() -> None:
    """A library that switches nothing off keeps its records as they were (no `off` key)."""
    for name in ("saas", "ecommerce"):
        d = _decide(load_library(name), {})
        assert all("off" not in s["found"] for s in d["stages"])

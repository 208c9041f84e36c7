"""The embedded local help desk: escalations filed into the store read back as the same case."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from tier2.contract import CaseIn, decision_json, parse_case
from tier2.core import decide
from tier2.helpdesk.local import LocalHelpDesk
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator
from tier2.store.db import make_engine, upgrade


def in_utc(raw: dict[str, Any]) -> dict[str, Any]:
    """The same case with its modelled times written in UTC, as the store gives them back."""
    out = copy.deepcopy(raw)

    def utc(value: str | None) -> str | None:
        return None if value is None else datetime.fromisoformat(value).astimezone(UTC).isoformat()

    out["received_at"] = utc(out["received_at"])
    out["ticket"]["created_at"] = utc(out["ticket"]["created_at"])
    for message in out["ticket"].get("messages") or []:
        message["at"] = utc(message.get("at"))
    out["handoff"]["escalated_at"] = utc(out["handoff"].get("escalated_at"))
    for entry in out.get("history") or []:
        entry["at"] = utc(entry.get("at"))
    return out


def decided(raw: dict[str, Any], library: Any) -> bytes:
    case = parse_case(raw, "x")
    assert not isinstance(case, Exception) and not hasattr(case, "problems")
    return decision_json(decide(case, library))  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["saas", "ecommerce"])
def test_a_filed_case_reads_back_as_the_same_case(database_url: str, name: str) -> None:
    """Deciding a case read back from the store gives the decision the original gives."""
    library = load_library(name)
    realistic, exhaustive = CaseGenerator(library, 3), CaseGenerator(library, 4, exhaustive=True)
    raws = [realistic.case(i) for i in range(40)] + [exhaustive.case(i) for i in range(40, 80)]
    upgrade(database_url)
    engine = make_engine(database_url)
    desk = LocalHelpDesk(engine)
    assert desk.import_cases(CaseIn.model_validate(r) for r in raws) == len(raws)
    assert sorted(desk.escalations()) == sorted(r["ticket"]["id"] for r in raws)
    for raw in raws:
        back = desk.read_case(raw["ticket"]["id"])
        assert decided(back, library) == decided(in_utc(raw), library), raw["case_id"]
    engine.dispose()


def test_a_ticket_that_bounces_keeps_every_handoff(database_url: str) -> None:
    """Escalating the same ticket again adds to the handoff log; the latest handoff is read."""
    library = load_library("saas")
    first = CaseGenerator(library, 5).case(0)
    second = copy.deepcopy(first)
    second["case_id"] += "-2"
    second["handoff"]["reason"] = "Customer wrote again"
    upgrade(database_url)
    engine = make_engine(database_url)
    desk = LocalHelpDesk(engine)
    desk.import_cases([CaseIn.model_validate(first), CaseIn.model_validate(second)])
    back = desk.read_case(first["ticket"]["id"])
    assert back["case_id"] == second["case_id"]
    assert back["handoff"]["reason"] == "Customer wrote again"
    engine.dispose()


def test_reading_an_unknown_ticket_is_a_key_error(database_url: str) -> None:
    """A ticket the help desk does not have is not invented."""
    upgrade(database_url)
    engine = make_engine(database_url)
    with pytest.raises(KeyError):
        LocalHelpDesk(engine).read_case("nope")
    engine.dispose()

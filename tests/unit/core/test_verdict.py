"""The what-if's decision without documents gives what `decide` gives, on generated cases."""

from __future__ import annotations

import pytest

from tier2.contract import CaseError, parse_case
from tier2.core import decide
from tier2.core.pipeline import verdict
from tier2.library.loader import load_library
from tier2.library.samples import CaseGenerator


@pytest.mark.parametrize("name", ["saas", "ecommerce"])
def test_verdict_equals_the_decision(name: str) -> None:
    """Outcome, target, reasons, policies and actions are the decision's, case by case."""
    library = load_library(name)
    for raw in CaseGenerator(library, 13, exhaustive=True).cases(400):
        case = parse_case(raw, raw["case_id"])
        assert not isinstance(case, CaseError)
        d, v = decide(case, library), verdict(case, library)
        assert (v.outcome, v.escalate_to, v.reasons, v.policies, v.actions) == (
            d.outcome, d.escalate_to, d.reasons, d.policies, d.actions,
        )  # fmt: skip

"""What-if tallies: changed, reasons-only and unchanged cases, the matrix, money and the
people's workload, merged across parts."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tier2.app.whatif import Past, Side, Tally, summary
from tier2.library.loader import load_library

AT = datetime(2026, 3, 2, tzinfo=UTC)
ESCALATE = Side(
    "escalate", "support_manager", ("authority_exceeded",), ("p",), (("refund", 900.0, "EUR"),)
)
RESOLVE = Side("resolve", None, ("policy_resolution",), ("p",), (("refund", 900.0, "EUR"),))
RESOLVE_MORE = Side(
    "resolve", None, ("policy_resolution", "complexity"), ("p",), (("refund", 900.0, "EUR"),)
)
RESOLVE_LESS = Side("resolve", None, ("policy_resolution",), ("p",), (("refund", 400.0, "EUR"),))
TO_CARD = Side(
    "resolve",
    None,
    ("policy_resolution",),
    ("p",),
    (("refund", 400.0, "EUR"),),
    ((("to", "gift_card"),),),
)


def _past(old: Side, expected: tuple[str, str | None] | None = None) -> Past:
    return Past("C-1", {}, AT, old, expected)


@pytest.mark.parametrize(
    ("old", "new", "kind"),
    [
        (ESCALATE, RESOLVE, "changed"),  # outcome
        (RESOLVE, RESOLVE_LESS, "changed"),  # an action's amount
        (RESOLVE, RESOLVE_MORE, "reasons_only"),  # a non-deciding reason
        (RESOLVE, RESOLVE, "unchanged"),
        (RESOLVE_LESS, TO_CARD, "params_only"),  # the refund's destination alone
        (ESCALATE, "ValueError: bad", "errored"),
    ],
)
def test_each_replay_is_counted_once(old: Side, new: Side | str, kind: str) -> None:
    """A replay counts as changed, parameters-only, reasons-only, unchanged or errored, never
    two of them."""
    t = Tally()
    t.add(_past(old), new)
    kinds = ("changed", "params_only", "reasons_only", "unchanged", "errored")
    counts = {k: getattr(t, k) for k in kinds}
    assert counts == {k: int(k == kind) for k in counts}


def test_money_and_workload_move_with_the_outcome() -> None:
    """An escalation now resolved: its actions are carried out, the target gets one fewer."""
    t = Tally()
    t.add(_past(ESCALATE), RESOLVE)
    got = summary(t, library=load_library("ecommerce"))
    assert got["money_delta"] == {"refund": {"EUR": 900.0}}
    assert got["to_humans_delta"] == {"support_manager": -1}
    assert got["matrix"] == {"escalate": {"resolve": 1}}


def test_agreement_with_reviews_before_and_after() -> None:
    """A senior who said the case should have been resolved: the draft that resolves it
    agrees with them, the decision did not."""
    t = Tally()
    t.add(_past(ESCALATE, expected=("resolve", None)), RESOLVE)
    review = summary(t, library=load_library("ecommerce"))["review"]
    assert review == {"reviewed": 1, "agreement_before": 0.0, "agreement_after": 1.0}


def test_parts_merge_into_the_whole() -> None:
    """Tallies of parts (one per process) merge into the tally of all the replays."""
    whole, a, b = Tally(), Tally(), Tally()
    for part, (old, new) in (
        (a, (ESCALATE, RESOLVE)),
        (b, (RESOLVE, RESOLVE)),
        (b, (RESOLVE, RESOLVE_LESS)),
    ):
        part.add(_past(old), new)
        whole.add(_past(old), new)
    merged = Tally()
    merged.merge(a)
    merged.merge(b)
    lib = load_library("ecommerce")
    assert summary(merged, library=lib) == summary(whole, library=lib)


def test_a_change_of_destination_alone_is_listed_with_its_parameters() -> None:
    """A replay that sends the same refund elsewhere is listed apart, each side's action
    showing its destination; the contract's `changes` stay the changed cases."""
    t = Tally()
    t.add(_past(RESOLVE_LESS), TO_CARD)
    out = summary(t, library=load_library("retail"))
    assert out["params_only"] == 1 and out["changes"] == []
    [change] = out["params_changes"]
    assert change["old"]["actions"] == [{"type": "refund", "amount": 400.0, "currency": "EUR"}]
    assert change["new"]["actions"][0]["to"] == "gift_card"

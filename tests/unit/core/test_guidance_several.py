"""Several refusals' guidance: when the winning precedence group holds several agreeing
return_to_tier1 policies, tier-1 gets every distinct guidance, in library order, as a list."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SAAS_BASE, patched, run
from tier2.core.library import Library
from tier2.library.loader import load_library, resolve_library_path

SELF_SERVICE = "Walk the customer through self-service password and SSO reset (KB-ACCESS-12)."
ACCESS_INFORMATION = {
    "ticket.category": "access",
    "handoff.request": {"type": "information"},
    "handoff.steps_taken": [{"step": "verify_identity"}],
}


def returning(guidance: str, precedence: int = 1) -> str:
    return f"""
  - id: access.read-the-guide
    title: Point to the sign-in guide
    citation: handbook B8a
    precedence: {precedence}
    when:
      - 'ticket.category == "access"'
      - 'request.type == "information"'
    outcome: return_to_tier1
    guidance: {guidance}
"""


def library(folder: Path, extra: str) -> Library:
    shutil.copytree(resolve_library_path("saas"), folder)
    path = folder / "policies.yaml"
    path.write_text(path.read_text() + extra)
    return load_library(str(folder))


def test_one_guidance_renders_as_before(saas: Library) -> None:
    """A single returning policy's guidance is the guidance's first line, as it always was."""
    guidance = run(patched(SAAS_BASE, ACCESS_INFORMATION), saas)["guidance"]
    assert guidance == (
        f"{SELF_SERVICE}\nReturned by tier2 (policy_return): access.self-service matched."
    )


def test_two_agreeing_returns_give_both_guidances_as_a_list(tmp_path: Path) -> None:
    """Two return policies of the winning precedence: both guidances, in library order, as a
    Markdown list (a multi-line guidance indented under its item)."""
    lib = library(
        tmp_path / "lib", returning("|\n      Send the sign-in guide.\n      Then close.")
    )
    decision = run(patched(SAAS_BASE, ACCESS_INFORMATION), lib)
    assert decision["outcome"] == "return_to_tier1"
    assert decision["policies"] == ["access.self-service", "access.read-the-guide"]
    assert decision["guidance"] == (
        f"- {SELF_SERVICE}\n- Send the sign-in guide.\n  Then close.\n\n"
        "Returned by tier2 (policy_return): access.self-service matched."
    )
    assert f"### Guidance for tier-1\n\n- {SELF_SERVICE}\n- Send" in decision["note"]


@pytest.mark.parametrize(
    ("extra", "guidance"),
    [
        (returning(SELF_SERVICE), SELF_SERVICE),  # the same guidance twice: once
        (returning("Send the sign-in guide.", precedence=0), SELF_SERVICE),  # overridden
        (returning("Send the sign-in guide.", precedence=2), "Send the sign-in guide."),
    ],
)
def test_only_distinct_guidance_of_the_winning_group(
    tmp_path: Path, extra: str, guidance: str
) -> None:
    """A repeated guidance is given once; a lower precedence's guidance is not given."""
    decision = run(patched(SAAS_BASE, ACCESS_INFORMATION), library(tmp_path / "lib", extra))
    assert decision["guidance"].split("\n")[0] == guidance

"""`tier2 decide` with a company's library folder that names its expressions (definitions)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import orjson

from tier2.library.loader import resolve_library_path

EXAMPLES = Path(__file__).parents[2] / "examples" / "ecommerce" / "cases.jsonl"

DEFINITIONS = """definitions:
  delivered:
    type: timestamp
    doc: When the order was delivered.
    expr: 'timestamp(facts.order.delivered_at)'
  since_delivery:
    type: any
    doc: How long ago the order was delivered, when the case was received.
    expr: 'received_at - delivered'
  refund_due:
    type: money
    doc: What the customer asks back, at most the order's value.
    expr: 'has(request.amount) && request.amount < facts.order.value ? request.amount : facts.order.value'
policies:
"""


def _decide(library: str | Path, cases: Path) -> list[dict[str, object]]:
    """`tier2 decide` on the cases with this library: the decisions, library digest left out."""
    done = subprocess.run(
        [sys.executable, "-m", "tier2", "decide", "--library", str(library), str(cases)],
        capture_output=True, timeout=300, check=True,
    )  # fmt: skip
    decisions = [orjson.loads(line) for line in done.stdout.splitlines()]
    for decision in decisions:
        decision["library"].pop("digest")
    return decisions


def test_a_library_rewritten_with_definitions_decides_as_before(tmp_path: Path) -> None:
    """The ecommerce library with its dates and refund amount written as definitions decides
    the example cases exactly as the built-in does."""
    folder = tmp_path / "shop"
    shutil.copytree(resolve_library_path("ecommerce"), folder)
    policies = folder / "policies.yaml"
    text = policies.read_text().replace("policies:\n", DEFINITIONS, 1)
    for old, new in (
        ("'received_at >= timestamp(facts.order.delivered_at)'", "'received_at >= delivered'"),
        ("'received_at - timestamp(facts.order.delivered_at) <= duration(\"720h\")'",
         "'since_delivery <= duration(\"720h\")'"),
        ("amount: 'has(request.amount) && request.amount < facts.order.value ? request.amount "
         ": facts.order.value'", "amount: refund_due"),
    ):  # fmt: skip
        assert old in text, old
        text = text.replace(old, new, 1)
    policies.write_text(text)
    rewritten = _decide(folder, EXAMPLES)
    assert rewritten == _decide("ecommerce", EXAMPLES)
    refunds = [d for d in rewritten if d["policies"] == ["refund.in-window"]]
    assert refunds and all(d["actions"][0]["type"] == "refund" for d in refunds)  # type: ignore[index]

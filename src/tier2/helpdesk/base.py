"""The port every help-desk connector implements (the local store now; RT and Zendesk next).

It only moves data: escalated cases out in the contract's shape. The write side (notes,
status, actions, each with an idempotency key) comes with `tier2 run`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class HelpDesk(Protocol):
    def escalations(self) -> Sequence[str]:
        """Ids of tickets tier-1 has escalated and tier-2 has not yet taken."""
        ...

    def read_case(self, ticket_id: str) -> dict[str, Any]:
        """The ticket, its latest handoff, the customer and their history: a contract case."""
        ...

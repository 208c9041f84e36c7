"""An in-memory help desk: the HelpDesk port (tier2.app.ports) over dicts.

Tickets hold contract cases. An action and a note are carried out once per key (a second
order under the same key changes nothing, as on a real help desk that reads its keys back);
`effects` counts what really happened, so a test can assert each happened once. `fail_once`
makes the named method raise the next time it is called, `down` every time while it is
listed: a help desk gone in the middle of a step.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from tier2.app.ports import (
    ActionOrder,
    EscalateTo,
    NoteOrder,
    Resolve,
    ReturnToTier1,
    TicketMove,
    Timeline,
)
from tier2.core.sla import StatusChange


class HelpDeskDown(RuntimeError):
    """The fake help desk failed on purpose."""


class MemoryHelpDesk:
    in_store = False

    def __init__(self) -> None:
        self.cases: dict[str, dict[str, Any]] = {}  # ticket id -> the case as tier-1 left it
        self.escalated_now: set[str] = set()
        self.taken: set[str] = set()
        self.where: dict[str, TicketMove] = {}
        self.tags: dict[str, list[str]] = {}
        self.actions: dict[str, dict[str, Any]] = {}
        self.notes: dict[str, NoteOrder] = {}
        self.effects: Counter[str] = Counter()
        self.fail_once: set[str] = set()
        self.down: set[str] = set()
        self.history: dict[str, list[StatusChange]] = {}  # what people did to each ticket

    def escalate(self, ticket_id: str, case: dict[str, Any]) -> None:
        """Tier-1 escalates the ticket (again) with this case."""
        self.cases[ticket_id] = copy.deepcopy(case)
        self.escalated_now.add(ticket_id)
        self.taken.discard(ticket_id)

    def _maybe_fail(self, name: str) -> None:
        if name in self.down:
            raise HelpDeskDown(f"{name}: the help desk is down")
        if name in self.fail_once:
            self.fail_once.discard(name)
            raise HelpDeskDown(f"{name}: the help desk is down")

    # the port
    def reader(self) -> None:
        return None

    def escalations(self) -> list[str]:
        return sorted(t for t in self.escalated_now if t not in self.taken)

    def read_cases(self, ticket_ids: Sequence[str]) -> list[dict[str, Any]]:
        self._maybe_fail("read_cases")
        return [copy.deepcopy(self.cases[t]) for t in ticket_ids if t in self.cases]

    def escalated(self, _handle: Any, ticket_ids: Sequence[str]) -> set[str]:
        return {t for t in ticket_ids if t in self.escalated_now}

    def take(self, _handle: Any, ticket_ids: Sequence[str], _at: datetime) -> None:
        self.taken.update(ticket_ids)

    def carry_out(
        self, _handle: Any, orders: Sequence[ActionOrder], at: datetime
    ) -> list[dict[str, Any]]:
        self._maybe_fail("carry_out")
        results = []
        for order in orders:
            if order.key not in self.actions:
                self.effects[order.key] += 1
                self.actions[order.key] = {"ref": f"A-{len(self.actions) + 1}"}
            results.append(self.actions[order.key])
        return results

    def write_notes(self, _handle: Any, orders: Sequence[NoteOrder], _at: datetime) -> None:
        self._maybe_fail("write_notes")
        for order in orders:
            if order.key not in self.notes:
                self.effects[order.key] += 1
                self.notes[order.key] = order

    def move(self, _handle: Any, moves: Sequence[TicketMove], _at: datetime) -> None:
        self._maybe_fail("move")
        for mv in moves:
            self.where[mv.ticket_id] = mv
            self.tags.setdefault(mv.ticket_id, []).extend(mv.tags)
            if isinstance(mv, Resolve | ReturnToTier1 | EscalateTo):
                self.escalated_now.discard(mv.ticket_id)
                self.taken.discard(mv.ticket_id)

    def timelines(self, ticket_ids: Sequence[str]) -> dict[str, Timeline]:
        return {t: Timeline(tuple(self.history.get(t, ())), None) for t in ticket_ids}

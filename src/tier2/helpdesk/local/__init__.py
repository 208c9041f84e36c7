"""The local help desk: tickets, handoffs and the CRM in the case store's own tables."""

from tier2.helpdesk.local._desk import (
    ESCALATED,
    NOT_OWNERS,
    TAKEN,
    LocalHelpDesk,
)

__all__ = [
    "ESCALATED",
    "NOT_OWNERS",
    "TAKEN",
    "LocalHelpDesk",
]

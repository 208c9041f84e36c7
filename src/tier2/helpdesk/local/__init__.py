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

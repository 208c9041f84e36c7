"""A case's states in `tier2 run`, from arrival to its final outcome.

received -> decided -> acted -> documented -> closed | returned | escalated
a final case whose ticket is escalated again: reopened -> decided -> ...
"""

from enum import StrEnum


class CaseState(StrEnum):
    RECEIVED = "received"
    DECIDED = "decided"
    ACTED = "acted"
    DOCUMENTED = "documented"
    RETURNED = "returned"
    ESCALATED = "escalated"
    CLOSED = "closed"
    REOPENED = "reopened"


FINAL_STATES = frozenset({CaseState.CLOSED, CaseState.RETURNED, CaseState.ESCALATED})
DECIDABLE = frozenset({CaseState.RECEIVED, CaseState.REOPENED})  # not decided yet
FINAL_OF = {  # a decision's outcome -> the case's final state
    "resolve": CaseState.CLOSED,
    "return_to_tier1": CaseState.RETURNED,
    "escalate": CaseState.ESCALATED,
}

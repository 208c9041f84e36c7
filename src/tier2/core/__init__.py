"""The functional core: frozen data in, a Decision out. No I/O here (enforced by import-linter)."""

from tier2.core.model import Case, Decision, Outcome, ReasonCode
from tier2.core.pipeline import decide

__all__ = ["Case", "Decision", "Outcome", "ReasonCode", "decide"]

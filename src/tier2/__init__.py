"""tier2: end-to-end ownership of the support cases a tier-1 agent escalates."""

__version__ = "0.1.0"

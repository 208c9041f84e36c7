"""Use cases (tier2 run, the SLA monitor, deciding) and the ports they need."""

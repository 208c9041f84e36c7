"""The case store: tickets, handoff log and CRM (the embedded local help desk), and what tier2
writes (cases, decisions, actions, notes, audit log). SQLite by default, any SQLAlchemy URL."""

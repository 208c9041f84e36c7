"""Help-desk adapters of the HelpDesk port (tier2.app.ports): local, Request Tracker, Zendesk."""

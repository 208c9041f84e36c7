"""Help-desk connectors: the port (base) and its adapters (local store; RT and Zendesk next)."""

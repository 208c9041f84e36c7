"""The `tier2` command: one module per command group, all wired by `tier2.entrypoints.bootstrap`."""

from tier2.entrypoints.cli._app import app, main

__all__ = ["app", "main"]

"""`tier2 serve`: the HTTP API (FastAPI): POST /decide, GET /cases/{id}, the webhooks; the
limits each client is held to, and the uvicorn server that serves it with them."""

from tier2.entrypoints.http._app import (
    EXAMPLE_CASE,
    WebhookSecrets,
    create_app,
    zendesk_signature,
)
from tier2.entrypoints.http._limits import HttpLimits
from tier2.entrypoints.http._serve import server

__all__ = [
    "EXAMPLE_CASE",
    "HttpLimits",
    "WebhookSecrets",
    "create_app",
    "server",
    "zendesk_signature",
]

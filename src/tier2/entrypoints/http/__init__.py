"""`tier2 serve`: the HTTP API (FastAPI): POST /decide, GET /cases/{id}, the webhooks."""

from tier2.entrypoints.http._app import (
    EXAMPLE_CASE,
    WebhookSecrets,
    create_app,
    zendesk_signature,
)

__all__ = [
    "EXAMPLE_CASE",
    "WebhookSecrets",
    "create_app",
    "zendesk_signature",
]

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

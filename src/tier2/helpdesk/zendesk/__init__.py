"""Zendesk Support over its REST API: the HelpDesk port."""

from tier2.helpdesk.zendesk._desk import (
    CHANNEL_OF_VIA,
    DEFAULT_USER_FIELDS,
    ESCALATED_TAG,
    SEVERITY_OF_PRIORITY,
    ZendeskClient,
    ZendeskError,
    ZendeskHelpDesk,
    ZendeskSettings,
    tier2_keys,
    tier2s_comment,
    zendesk_case,
)

__all__ = [
    "CHANNEL_OF_VIA",
    "DEFAULT_USER_FIELDS",
    "ESCALATED_TAG",
    "SEVERITY_OF_PRIORITY",
    "ZendeskClient",
    "ZendeskError",
    "ZendeskHelpDesk",
    "ZendeskSettings",
    "tier2_keys",
    "tier2s_comment",
    "zendesk_case",
]

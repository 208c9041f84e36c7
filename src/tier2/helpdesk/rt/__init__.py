"""Request Tracker 5 over its REST2 API: the HelpDesk port, and RT's SLA configuration."""

from tier2.helpdesk.rt._desk import (
    DEFAULT_FIELDS,
    MULTIPLE,
    TEXT,
    RtClient,
    RtError,
    RtHelpDesk,
    RtSettings,
    case_fields,
    custom_field_types,
    file_case,
    requestor_of,
    rt_case,
    tier2_keys,
)
from tier2.helpdesk.rt._sla import rt_site_config

__all__ = [
    "DEFAULT_FIELDS",
    "MULTIPLE",
    "TEXT",
    "RtClient",
    "RtError",
    "RtHelpDesk",
    "RtSettings",
    "case_fields",
    "custom_field_types",
    "file_case",
    "requestor_of",
    "rt_case",
    "rt_site_config",
    "tier2_keys",
]

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
)

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
]

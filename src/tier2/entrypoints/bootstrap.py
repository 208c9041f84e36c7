"""The help desk a deployment runs on, made from its configuration (the shell's only
place that knows every connector)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import httpx
from sqlalchemy import Engine

from tier2.app.ports import HelpDesk
from tier2.entrypoints.config import Config, ConfigError, RtConfig, ZendeskConfig, secret
from tier2.helpdesk.local import LocalHelpDesk
from tier2.helpdesk.rt import DEFAULT_FIELDS, RtClient, RtHelpDesk, RtSettings
from tier2.helpdesk.zendesk import (
    DEFAULT_USER_FIELDS,
    ZendeskClient,
    ZendeskHelpDesk,
    ZendeskSettings,
)

KINDS = ("local", "rt", "zendesk")


def rt_settings(rt: RtConfig) -> RtSettings:
    return RtSettings(
        queue=rt.queue,
        custom_field=rt.custom_field,
        custom_field_value=rt.custom_field_value,
        return_queue=rt.return_queue,
        queues=dict(rt.queues),
        reply_to_customer=rt.reply_to_customer,
        case_prefix=rt.case_prefix,
        fields={**DEFAULT_FIELDS, **rt.fields},
        history=rt.history,
    )


def zendesk_settings(zd: ZendeskConfig) -> ZendeskSettings:
    return ZendeskSettings(
        view_id=zd.view_id,
        tag=zd.tag,
        custom_field_id=zd.custom_field_id,
        custom_field_value=zd.custom_field_value,
        groups=dict(zd.groups),
        return_group_id=zd.return_group_id,
        fields=dict(zd.fields),
        user_fields={**DEFAULT_USER_FIELDS, **zd.user_fields},
        complaint_tag=zd.complaint_tag,
        actions_field_id=zd.actions_field_id,
        outcome_field_id=zd.outcome_field_id,
        reply_to_customer=zd.reply_to_customer,
        case_prefix=zd.case_prefix,
    )


def rt_client(
    rt: RtConfig,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> RtClient:
    if rt.token_env:
        return RtClient(rt.url, user=rt.user, token=secret(rt.token_env, "RT token", environ),
                        transport=transport)  # fmt: skip
    password = secret(rt.password_env, "RT password", environ)
    return RtClient(rt.url, user=rt.user, password=password, transport=transport)


def open_desk(
    config: Config,
    engine: Engine,
    kind: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
    since: datetime | None = None,
) -> HelpDesk:
    """The configured help desk (or the kind asked for, which must be configured); `since`:
    a Zendesk backfill, finding escalations in the incremental export from then on."""
    kind = kind or config.connector.kind
    if kind == "local":
        return LocalHelpDesk(engine)
    if kind == "rt":
        if config.connector.rt is None:
            raise ConfigError(f"{config.source}: --connector rt needs a [connector.rt] section")
        rt = config.connector.rt
        return RtHelpDesk(rt_client(rt, environ, transport), rt_settings(rt))
    if kind == "zendesk":
        if config.connector.zendesk is None:
            raise ConfigError(
                f"{config.source}: --connector zendesk needs a [connector.zendesk] section"
            )
        zd = config.connector.zendesk
        client = ZendeskClient(
            zd.subdomain, zd.email, secret(zd.token_env, "Zendesk API token", environ),
            base_url=zd.base_url, transport=transport,
        )  # fmt: skip
        return ZendeskHelpDesk(client, zendesk_settings(zd), since=since)
    raise ConfigError(f"no connector {kind!r} (known: {', '.join(KINDS)})")

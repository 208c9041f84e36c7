"""The composition root: every command and the service build what they run here.

From a deployment's configuration (tier2.toml, the command's options over it) this module
makes the store's engine, the policy library, the help desk (the only place that knows every
connector), the decider and the use cases on top of them: `Runner` (`tier2 run`, and the
worker inside `tier2 serve`) and `SlaMonitor` (`tier2 sla scan`). Whatever cannot be built
raises `StartError` with one line for the user; nothing here prints or exits.

Heavy modules (SQLAlchemy, httpx, the help desks) are imported where they are first needed,
so `tier2 decide` starts without them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tier2.entrypoints.config import (
    Config,
    ConfigError,
    RtConfig,
    ZendeskConfig,
    api_tokens,
    load_config,
    secret,
)
from tier2.library.loader import LibraryError, load_library, resolve_library_path

if TYPE_CHECKING:
    import httpx
    from sqlalchemy import Engine

    from tier2.app.deciding import Decider
    from tier2.app.ports import HelpDesk
    from tier2.app.runner import Runner
    from tier2.app.sla_monitor import SlaMonitor
    from tier2.core.library import Library
    from tier2.entrypoints.http import HttpLimits, WebhookSecrets
    from tier2.helpdesk.rt import RtClient, RtSettings
    from tier2.helpdesk.zendesk import ZendeskSettings
    from tier2.store.unit_of_work import SqlUnitOfWork

KINDS = ("local", "rt", "zendesk")


class StartError(RuntimeError):
    """What tier2 could not build from the configuration and options: one line for the user."""


def settings(path: Path | None = None) -> Config:
    """The deployment's configuration (./tier2.toml when present, else the defaults)."""
    try:
        return load_config(path)
    except ConfigError as exc:
        raise StartError(str(exc)) from None


def library(spec: str) -> Library:
    """A built-in library by name, or a library folder."""
    try:
        return load_library(spec)
    except LibraryError as exc:
        raise StartError(str(exc)) from None


def store(db: str | None) -> Engine:
    """The case store at this URL or SQLite path (TIER2_DB, else ./tier2.db), brought to the
    newest schema."""
    from sqlalchemy.engine import make_url  # noqa: PLC0415 (not for tier2 decide)

    from tier2.store.db import database_url, make_engine, upgrade  # noqa: PLC0415

    url = database_url(db)
    try:
        upgrade(url)
    except Exception as exc:  # connection refused, permission denied: one clear line
        reason = " ".join(str(getattr(exc, "orig", None) or exc).split())
        where = make_url(url).render_as_string()
        raise StartError(f"cannot open {where}: {reason}") from None
    return make_engine(url)


AUDIT_KEY_ENV = "TIER2_AUDIT_KEY"


def audit_key(environ: Mapping[str, str] | None = None, name: str = AUDIT_KEY_ENV) -> bytes | None:
    """The audit log's key, which signs its anchor (the UTF-8 bytes of TIER2_AUDIT_KEY, or of
    the variable named); None when the variable is not set."""
    from tier2.store.audit import MIN_KEY_BYTES  # noqa: PLC0415

    value = (os.environ if environ is None else environ).get(name)
    if value is None:
        return None
    if len(value.encode()) < MIN_KEY_BYTES:
        raise StartError(
            f"{name}: a key of at least {MIN_KEY_BYTES} bytes "
            "(e.g. the output of: openssl rand -hex 32)"
        )
    return value.encode()


def unit_of_work(engine: Engine, **options: Any) -> SqlUnitOfWork:
    """The store's transactions, signing the audit log's anchor with the audit key when one
    is set; refused (one line) when the log does not end where its anchor says."""
    from tier2.store.audit import AuditAnchorError  # noqa: PLC0415
    from tier2.store.unit_of_work import SqlUnitOfWork  # noqa: PLC0415

    made = SqlUnitOfWork(engine, audit_key=audit_key(), **options)
    try:
        made.check_audit_anchor()
    except AuditAnchorError as exc:
        raise StartError(f"{exc} (tier2 audit verify names what disagrees)") from None
    return made


def decider(lib: Library, spec: str, workers: int) -> Decider:
    """Deciding in `workers` processes beside this one (each loads the library from `spec`),
    or in this process when 0."""
    from tier2.app.deciding import InProcess, WorkerPool  # noqa: PLC0415

    return WorkerPool(lib, spec, workers) if workers >= 1 else InProcess(lib)


@dataclass
class Deployment:
    """What a long-running command works with: settings, library, store, help desk."""

    settings: Config
    library_spec: str
    library: Library
    engine: Engine
    desk: HelpDesk
    _closing: list[Any] = field(default_factory=list)

    def runner(
        self, *, workers: int, batch: int, lease_seconds: float, options: dict[str, Any]
    ) -> Runner:
        """`tier2 run`'s use case over this deployment, deciding in `workers` processes."""
        from tier2.app.runner import Runner  # noqa: PLC0415
        from tier2.store.library_versions import remember_library  # noqa: PLC0415

        try:  # the version that decides is kept, so every decision's library can be read again
            remember_library(self.engine, self.library, resolve_library_path(self.library_spec))
        except LibraryError as exc:
            raise StartError(str(exc)) from None
        store = unit_of_work(
            self.engine, lease_seconds=lease_seconds,
            options={"batch": batch, "workers": workers, **options},
        )  # fmt: skip
        deciding = decider(self.library, self.library_spec, workers)
        self._closing.append(deciding)
        made = Runner(
            store, self.library, self.desk, clock=partial(datetime.now, UTC), batch=batch,
            decider=deciding,
        )  # fmt: skip
        self._closing.insert(0, made)  # the runner lets go of its claims before the rest
        return made

    def monitor(self) -> SlaMonitor:
        """The SLA monitor over this deployment's help desk."""
        from tier2.app.sla_monitor import SlaMonitor  # noqa: PLC0415

        return SlaMonitor(
            unit_of_work(self.engine), self.library, self.desk, clock=partial(datetime.now, UTC)
        )

    def close(self) -> None:
        for part in (*self._closing, self.desk):
            close = getattr(part, "close", None)
            if close is not None:
                close()
        self.engine.dispose()


@contextmanager
def deployment(
    config: Config,
    *,
    library_spec: str | None = None,
    db: str | None = None,
    connector: str | None = None,
    since: datetime | None = None,
) -> Iterator[Deployment]:
    """The deployment as configured, with the command's options over tier2.toml; closed
    (runner retired, workers stopped, help desk and store released) on the way out."""
    spec = library_spec or config.library
    lib = library(spec)
    engine = store(config.store(db))
    try:
        if since is not None and (connector or config.connector.kind) != "zendesk":
            raise StartError("--backfill-since works on the Zendesk connector")
        desk = open_desk(config, engine, connector, since=since)
    except (ConfigError, StartError) as exc:
        engine.dispose()
        raise StartError(str(exc)) from None
    made = Deployment(config, spec, lib, engine, desk)
    try:
        yield made
    finally:
        made.close()


def api_secrets(
    config: Config, environ: Mapping[str, str] | None = None
) -> tuple[list[str], WebhookSecrets]:
    """`tier2 serve`'s bearer tokens (each at least MIN_TOKEN_LENGTH characters) and webhook
    secrets, from the variables tier2.toml names; what is missing or too weak is one line."""
    from tier2.entrypoints.http import WebhookSecrets  # noqa: PLC0415

    hooks = config.webhooks
    try:
        tokens = api_tokens(config.api.tokens_env, environ)
        secrets = WebhookSecrets(
            zendesk=secret(hooks.zendesk_secret_env, "Zendesk webhook secret", environ)
            if hooks.zendesk_secret_env
            else None,
            rt=secret(hooks.rt_secret_env, "RT webhook secret", environ)
            if hooks.rt_secret_env
            else None,
            tolerance_seconds=hooks.tolerance_seconds,
        )
    except ConfigError as exc:
        raise StartError(str(exc)) from None
    return tokens, secrets


def http_limits(config: Config) -> HttpLimits:
    """What `tier2 serve` holds each client to: tier2.toml's [api] limits."""
    from tier2.entrypoints.http import HttpLimits  # noqa: PLC0415

    api = config.api
    return HttpLimits(
        max_body_bytes=api.max_body_bytes,
        body_timeout_seconds=api.body_timeout_seconds,
        header_timeout_seconds=api.header_timeout_seconds,
        keep_alive_seconds=api.keep_alive_seconds,
        max_connections=api.max_connections,
        max_header_bytes=api.max_header_bytes,
    )


# ---------------------------------------------------------------------- help desks


def rt_settings(rt: RtConfig) -> RtSettings:
    from tier2.helpdesk.rt import DEFAULT_FIELDS, RtSettings  # noqa: PLC0415

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
    from tier2.helpdesk.zendesk import DEFAULT_USER_FIELDS, ZendeskSettings  # noqa: PLC0415

    return ZendeskSettings(
        view_id=zd.view_id,
        tag=zd.tag,
        custom_field_id=zd.custom_field_id,
        custom_field_value=zd.custom_field_value,
        group_id=zd.group_id,
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
    from tier2.helpdesk.rt import RtClient  # noqa: PLC0415

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
    from tier2.helpdesk.local import LocalHelpDesk  # noqa: PLC0415
    from tier2.helpdesk.rt import RtHelpDesk  # noqa: PLC0415
    from tier2.helpdesk.zendesk import ZendeskClient, ZendeskHelpDesk  # noqa: PLC0415

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

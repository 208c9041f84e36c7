"""`tier2 check`: is the configuration usable, and does each connection answer?

Each check gives one line that says plainly what is wrong and what to do. The HTTP checks
take an httpx transport, so tests run them against fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from tier2.entrypoints.config import (
    Config,
    ConfigError,
    RtConfig,
    ZendeskConfig,
    api_tokens,
    secret,
)
from tier2.helpdesk.rt import custom_field_types
from tier2.library.loader import LibraryError, load_library
from tier2.store.db import DEFAULT_DB, current_revision, database_url, head_revision, make_engine


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _http_problem(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc})"
    if isinstance(exc, httpx.TimeoutException):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def _status_problem(response: httpx.Response, who: str) -> str:
    code = response.status_code
    if code == 401:
        return f"HTTP 401: {who} refused the credentials (wrong user, password or token)"
    if code == 403:
        return f"HTTP 403: the account may not do this in {who}"
    if code == 404:
        return f"HTTP 404 for {response.request.url}: wrong URL?"
    return f"HTTP {code} from {who}"


def check_database(config: Config, environ: Mapping[str, str] | None = None) -> Check:
    url = database_url(config.store(environ=environ) or DEFAULT_DB)
    parsed = make_url(url)
    shown = parsed.render_as_string()
    if (
        parsed.drivername.startswith("sqlite")
        and parsed.database
        and not Path(parsed.database).exists()
    ):
        return Check("database", False, f"{shown}: no such file: run tier2 db upgrade to create it")
    try:
        engine = make_engine(url)
        try:
            current = current_revision(engine)
        finally:
            engine.dispose()
    except SQLAlchemyError as exc:
        return Check("database", False, f"{shown}: cannot open: {exc.__class__.__name__}: {exc}")
    head = head_revision(url)
    if current is None:
        return Check("database", False, f"{shown}: no tier2 schema yet: run tier2 db upgrade")
    if current != head:
        return Check(
            "database", False, f"{shown}: schema {current}, newest {head}: run tier2 db upgrade"
        )
    return Check("database", True, f"{shown}: schema {current} (newest)")


def check_rt(
    rt: RtConfig,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Check:
    try:
        if rt.token_env:
            headers = {"Authorization": f"token {secret(rt.token_env, 'RT token', environ)}"}
            auth = None
        else:
            headers, auth = {}, (rt.user, secret(rt.password_env, "RT password", environ))
    except ConfigError as exc:
        return Check("connector rt", False, str(exc))
    base = rt.url if rt.url.endswith("/") else rt.url + "/"
    try:
        with httpx.Client(
            base_url=base, headers=headers, auth=auth, transport=transport, timeout=10
        ) as client:
            response = client.get(f"queue/{rt.queue}")
            if response.status_code == 404:
                return Check(
                    "connector rt", False, f"{base}: RT answers, but there is no queue {rt.queue!r}"
                )
            if response.status_code != 200:
                return Check("connector rt", False, f"{base}: {_status_problem(response, 'RT')}")
            missing_queues = [
                q for q in [rt.return_queue, *rt.queues.values()]
                if client.get(f"queue/{q}").status_code == 404
            ]  # fmt: skip
            names = _rt_custom_fields(client)
    except httpx.HTTPError as exc:
        return Check("connector rt", False, f"{base}: {_http_problem(exc)}")
    if missing_queues:
        return Check("connector rt", False, f"{base}: no queue {missing_queues[0]!r} in RT")
    wanted = [name for name, _ in custom_field_types(rt.fields)]
    missing = [n for n in wanted if n not in names]
    if missing:
        return Check(
            "connector rt", False,
            f"{base}: RT has no ticket custom field {missing[0]!r}"
            + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
            + ": tier2 rt custom-fields lists what to create",
        )  # fmt: skip
    return Check(
        "connector rt",
        True,
        f"{base}: queue {rt.queue!r}, {len(rt.queues) + 1} more queues and "
        f"{len(wanted)} custom fields found as {rt.user if not rt.token_env else 'token'}",
    )


def _rt_custom_fields(client: httpx.Client) -> set[str]:
    names: set[str] = set()
    page = 1
    while True:
        data = client.get("customfields", params={"fields": "Name", "per_page": 100, "page": page})
        data.raise_for_status()
        body = data.json()
        names.update(str(c.get("Name")) for c in body.get("items") or [])
        if page >= int(body.get("pages") or 1):
            return names
        page += 1


def check_zendesk(
    zd: ZendeskConfig,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> Check:
    try:
        token = secret(zd.token_env, "Zendesk API token", environ)
    except ConfigError as exc:
        return Check("connector zendesk", False, str(exc))
    base = zd.base_url or f"https://{zd.subdomain}.zendesk.com/api/v2/"
    try:
        with httpx.Client(
            base_url=base, auth=(f"{zd.email}/token", token), transport=transport, timeout=10
        ) as client:
            response = client.get("users/me.json")
            if response.status_code != 200:
                return Check(
                    "connector zendesk", False, f"{base}: {_status_problem(response, 'Zendesk')}"
                )
            user = response.json().get("user", {})
            if not user.get("id"):
                return Check(
                    "connector zendesk", False,
                    f"{base}: the token is not a signed-in user (anonymous)",
                )  # fmt: skip
            problem = _zendesk_ids(client, zd)
    except httpx.HTTPError as exc:
        return Check("connector zendesk", False, f"{base}: {_http_problem(exc)}")
    if problem:
        return Check("connector zendesk", False, f"{base}: {problem}")
    return Check(
        "connector zendesk", True, f"{base}: signed in as {user.get('email')} ({user.get('role')})"
    )


def _zendesk_ids(client: httpx.Client, zd: ZendeskConfig) -> str | None:
    """The first configured group or ticket field id Zendesk does not have, said plainly."""
    groups = {**zd.groups, **({"tier1": zd.return_group_id} if zd.return_group_id else {})}
    fields = {**zd.fields}
    for name, value in (("actions_field_id", zd.actions_field_id),
                        ("outcome_field_id", zd.outcome_field_id),
                        ("custom_field_id", zd.custom_field_id)):  # fmt: skip
        if value is not None:
            fields[name] = value
    for what, path, key, wanted in (
        ("group", "groups.json", "groups", groups),
        ("ticket field", "ticket_fields.json", "ticket_fields", fields),
    ):
        if not wanted:
            continue
        have: set[int] = set()
        url: str | None = path
        params: dict[str, int] | None = {"page[size]": 100}
        while url:
            response = client.get(url, params=params)
            response.raise_for_status()
            data = response.json()
            have.update(int(x["id"]) for x in data.get(key) or [])
            more = (data.get("meta") or {}).get("has_more")
            url, params = ((data.get("links") or {}).get("next") if more else None), None
        for name, ident in wanted.items():
            if int(ident) not in have:
                return f"no {what} {ident} in Zendesk (configured for {name})"
    return None


def run_checks(
    config: Config,
    environ: Mapping[str, str] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> list[Check]:
    out = [Check("configuration", True, config.source)]
    try:
        library = load_library(config.library)
        out.append(
            Check(
                "library",
                True,
                f"{library.name} {library.version} ({len(library.policies)} policies)",
            )
        )
    except LibraryError as exc:
        out.append(Check("library", False, str(exc)))
    out.append(check_database(config, environ))
    connector = config.connector
    if connector.kind == "local":
        out.append(Check("connector local", True, "the local help desk in the case store"))
    elif connector.kind == "rt" and connector.rt is not None:
        out.append(check_rt(connector.rt, environ, transport))
    elif connector.zendesk is not None:
        out.append(check_zendesk(connector.zendesk, environ, transport))
    for name, variable in (
        ("webhook secret zendesk", config.webhooks.zendesk_secret_env),
        ("webhook secret rt", config.webhooks.rt_secret_env),
    ):
        if variable:
            try:
                secret(variable, name, environ)
                out.append(Check(name, True, f"from {variable}"))
            except ConfigError as exc:
                out.append(Check(name, False, str(exc)))
    if config.api.tokens_env:
        try:
            found = api_tokens(config.api.tokens_env, environ)
            out.append(Check("API tokens", True, f"{len(found)} from {config.api.tokens_env}"))
        except ConfigError as exc:
            out.append(Check("API tokens", False, str(exc)))
    return out

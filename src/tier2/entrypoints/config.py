"""`tier2.toml`: one file for a deployment, secrets by environment-variable name.

    library = "saas"                      # a built-in library or a folder
    database = "sqlite:///tier2.db"       # any SQLAlchemy URL or an SQLite path (TIER2_DB wins)

    [run]
    poll_seconds = 5
    workers = 1                           # deciding processes beside the store's (0: none)
    batch = 1000
    sla_scan = true

    [connector]
    kind = "local"                        # local | rt | zendesk

    [connector.rt]
    url = "https://rt.example.com/REST/2.0/"
    user = "tier2"
    password_env = "TIER2_RT_PASSWORD"    # the secret itself stays in the environment
    queue = "Tier2"
    reply_to_customer = false
    queues = { senior_support = "Tier2 Seniors", support_manager = "Support Managers" }
    return_queue = "General"              # tier-1's queue, where a return goes
    # fields = { "ticket.severity" = "Priority Level" }   # over the default custom fields

    [connector.zendesk]
    subdomain = "acme"
    email = "tier2@acme.example"
    token_env = "TIER2_ZENDESK_TOKEN"
    tag = "tier2"                         # or view_id = 360001, or custom_field_id + _value
    groups = { senior_support = 360002, support_manager = 360003 }
    return_group_id = 360004
    fields = { "ticket.category" = 360005, "handoff.reason" = 360006 }   # ticket field ids

    [webhooks]
    zendesk_secret_env = "TIER2_ZENDESK_WEBHOOK_SECRET"
    rt_secret_env = "TIER2_RT_WEBHOOK_SECRET"

    [api]
    tokens_env = "TIER2_API_TOKENS"       # comma-separated bearer tokens, each 20+ characters
    docs = true                           # /docs and /openapi.json (false: not served)
    max_body_bytes = 1048576              # a larger request body is refused (413)
    body_timeout_seconds = 30             # a body not in by then is refused (408)
    header_timeout_seconds = 10           # a request's headers not in by then: closed
    keep_alive_seconds = 5                # an idle connection is closed after this
    max_connections = 100                 # beyond this, requests are answered 503
    max_header_bytes = 16384              # a larger request head is refused (400)

    [console]
    session_secret_env = "TIER2_SESSION_SECRET"   # 32+ bytes that sign the console's sessions
    secure_cookies = false                # true behind HTTPS: the session cookie is Secure
    session_hours = 12                    # a session ends this long after sign-in
    max_failed_logins = 5                 # failures in a row that lock an account ...
    lockout_minutes = 15                  # ... for this long
    address_failures = 20                 # failed sign-ins one client address may make ...
    address_window_minutes = 15           # ... in this long
    drafts_dir = "drafts"                 # draft libraries (sub-folders) the what-if offers

`load_config` validates the file and says which key is wrong, and refuses a secret written
in it (a password in `database` or in a URL, a `password` or `token` key) saying which
environment variable holds it instead; `secret` reads a secret from the environment and says
which variable is missing; `api_tokens` reads `tier2 serve`'s bearer tokens.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import parse_qs, urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

from tier2.app.ports import CASE_FIELDS

DEFAULT_FILE = "tier2.toml"


class ConfigError(ValueError):
    """A configuration that cannot be used: which file, which key, what is wrong."""


MIN_TOKEN_LENGTH = 20  # characters of each API bearer token
DEFAULT_TOKENS_ENV = "TIER2_API_TOKENS"

_SECRET_KEY = re.compile(r"password|passwd|secret|token|api_key|apikey", re.IGNORECASE)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _env_name(value: str) -> str:
    if not _ENV_NAME.fullmatch(value):
        raise ValueError(
            "must be the name of an environment variable (letters, digits and _), "
            "not the secret itself"
        )
    return value


EnvName = Annotated[str, AfterValidator(_env_name)]


def _password_in(url: str) -> bool:
    """Whether a URL carries a password (user:password@host, or ?password=)."""
    if "://" not in url:
        return False
    try:
        parts = urlsplit(url)
        given = parts.password
    except ValueError:  # a port that is not a number, say: the store says what is wrong
        return False
    query = {k.lower() for k in parse_qs(parts.query, keep_blank_values=True)}
    return bool(given) or bool(query & {"password", "passwd"})


def _no_password_in_url(value: str | None) -> str | None:
    if value is not None and _password_in(value):
        raise ValueError(
            "holds a password; a secret is not kept in tier2.toml: give the URL without it "
            "and name the variable that holds the password (password_env or token_env)"
        )
    return value


class _C(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _no_secrets(cls, data: Any) -> Any:
        """A key that is not one of the section's and names a secret (`password`, `token`,
        `secret`...) is refused with the variable-name key to use instead."""
        if isinstance(data, dict):
            for key in data:
                if key in cls.model_fields or not _SECRET_KEY.search(str(key)):
                    continue
                named = f"{key}_env"
                hint = (
                    f"put it in an environment variable and give that variable's name as {named}"
                    if named in cls.model_fields
                    else "put it in an environment variable"
                )
                raise ValueError(f"{key}: a secret is not kept in tier2.toml; {hint}")
        return data


class RunConfig(_C):
    poll_seconds: Annotated[float, Field(gt=0)] = 5.0
    # processes deciding beside the store's own (0: it decides too); the store's process
    # keeps a core to itself (docs/benchmarks.md)
    workers: Annotated[int, Field(ge=0)] = max(1, min(4, (os.cpu_count() or 1) - 1))
    # cases per transaction (docs/benchmarks.md compares sizes)
    batch: Annotated[int, Field(ge=1)] = 1000
    sla_scan: bool = True
    # a runner renews its lease every third of this; one silent for longer is taken for dead
    # and its cases are taken up by the others
    lease_seconds: Annotated[float, Field(ge=1)] = 30.0


class RtConfig(_C):
    url: Annotated[str, AfterValidator(_no_password_in_url)]
    user: str = "root"
    password_env: EnvName | None = None
    token_env: EnvName | None = None
    queue: str = "Tier2"
    custom_field: str | None = None  # escalated when this custom field has `custom_field_value`
    custom_field_value: str | None = None
    reply_to_customer: bool = False
    queues: dict[str, str] = {}  # escalation target -> RT queue
    return_queue: str = "General"  # tier-1's queue: where a return goes
    case_prefix: str = "RT-"
    history: bool = True  # the requestor's other tickets as the customer's history
    fields: dict[str, str] = {}  # case field -> RT custom field, over the defaults

    @model_validator(mode="after")
    def _credentials(self) -> RtConfig:
        if not (self.password_env or self.token_env):
            raise ValueError("give password_env or token_env (the name of a variable)")
        if bool(self.custom_field) != bool(self.custom_field_value):
            raise ValueError("custom_field and custom_field_value go together")
        unknown = sorted(set(self.fields) - set(CASE_FIELDS))
        if unknown:
            raise ValueError(
                f"fields: no case field {unknown[0]!r} (known: {', '.join(CASE_FIELDS)})"
            )
        if self.return_queue == self.queue and not self.custom_field:
            raise ValueError("return_queue must differ from queue (a return would come back)")
        return self


class ZendeskConfig(_C):
    subdomain: str
    email: str
    token_env: EnvName
    # default https://{subdomain}.zendesk.com/api/v2/
    base_url: Annotated[str | None, AfterValidator(_no_password_in_url)] = None
    view_id: int | None = None
    tag: str | None = None
    custom_field_id: int | None = None
    custom_field_value: str | None = None
    group_id: int | None = None  # tier-2's group: what the baseline reads escalations by
    groups: dict[str, int] = {}  # escalation target -> group id
    return_group_id: int | None = None  # tier-1's group, where a return goes
    fields: dict[str, int] = {}  # case field -> ticket field id
    user_fields: dict[str, str] = {}  # customer field -> user/organization field key
    complaint_tag: str = "complaint"
    actions_field_id: int | None = None  # a text field tier2 lists its actions in
    outcome_field_id: int | None = None  # a field tier2 sets to its outcome
    reply_to_customer: bool = False
    case_prefix: str = "ZD-"

    @model_validator(mode="after")
    def _finder(self) -> ZendeskConfig:
        if not (self.view_id or self.tag or self.custom_field_id):
            raise ValueError("say how escalations are found: view_id, tag or custom_field_id")
        if self.custom_field_id and self.custom_field_value is None:
            raise ValueError("custom_field_id needs custom_field_value")
        unknown = sorted(set(self.fields) - set(CASE_FIELDS))
        if unknown:
            raise ValueError(f"fields: no case field {unknown[0]!r}")
        return self


class ConnectorConfig(_C):
    kind: Literal["local", "rt", "zendesk"] = "local"
    rt: RtConfig | None = None
    zendesk: ZendeskConfig | None = None

    @model_validator(mode="after")
    def _section(self) -> ConnectorConfig:
        if self.kind == "rt" and self.rt is None:
            raise ValueError("kind is rt but there is no [connector.rt] section")
        if self.kind == "zendesk" and self.zendesk is None:
            raise ValueError("kind is zendesk but there is no [connector.zendesk] section")
        return self


class WebhookConfig(_C):
    zendesk_secret_env: EnvName | None = None
    rt_secret_env: EnvName | None = None
    tolerance_seconds: Annotated[int, Field(gt=0)] = 300  # how old a signed request may be


class ApiConfig(_C):
    """`tier2 serve`: its tokens, whether it serves its OpenAPI docs, and the limits a client
    is held to (docs/operations.md#limits-on-clients)."""

    tokens_env: EnvName | None = None  # default TIER2_API_TOKENS
    docs: bool = True  # /docs, /redoc and /openapi.json
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_048_576
    body_timeout_seconds: Annotated[float, Field(gt=0)] = 30.0
    header_timeout_seconds: Annotated[float, Field(gt=0)] = 10.0
    keep_alive_seconds: Annotated[int, Field(ge=1)] = 5
    max_connections: Annotated[int, Field(ge=2)] = 100
    max_header_bytes: Annotated[int, Field(ge=1024)] = 16_384


class ConsoleConfig(_C):
    """The web console `tier2 serve` serves at / (docs/console.md): its sessions and the
    limits on signing in. `enabled`: true refuses to serve without the session secret,
    false serves the API alone; unset, the console is served when the secret is set."""

    enabled: bool | None = None
    session_secret_env: EnvName = "TIER2_SESSION_SECRET"
    secure_cookies: bool = False
    session_hours: Annotated[float, Field(gt=0, le=24 * 30)] = 12.0
    max_failed_logins: Annotated[int, Field(ge=1, le=100)] = 5
    lockout_minutes: Annotated[float, Field(gt=0)] = 15.0
    address_failures: Annotated[int, Field(ge=1)] = 20
    address_window_minutes: Annotated[float, Field(gt=0)] = 15.0
    drafts_dir: str | None = None  # the Library page's what-if offers its sub-folders


def _no_password_in_database(value: str | None) -> str | None:
    if value is not None and _password_in(value):
        raise ValueError(
            "holds a password; a secret is not kept in tier2.toml: set the whole URL in the "
            "environment variable TIER2_DB instead (or leave the password out of the URL and "
            "give it to PostgreSQL in PGPASSWORD)"
        )
    return value


class Config(_C):
    library: str = "saas"
    database: Annotated[str | None, AfterValidator(_no_password_in_database)] = None
    run: RunConfig = RunConfig()
    connector: ConnectorConfig = ConnectorConfig()
    webhooks: WebhookConfig = WebhookConfig()
    api: ApiConfig = ApiConfig()
    console: ConsoleConfig = ConsoleConfig()
    source: str = "(defaults)"

    def store(
        self, given: str | None = None, environ: Mapping[str, str] | None = None
    ) -> str | None:
        """Which store: the one given on the command line, else TIER2_DB, else the file's."""
        env = os.environ if environ is None else environ
        return given if given is not None else env.get("TIER2_DB") or self.database


def load_config(path: str | Path | None = None) -> Config:
    """The file given, else ./tier2.toml if there is one, else the defaults."""
    file = Path(path) if path is not None else Path(DEFAULT_FILE)
    if path is None and not file.exists():
        return Config()
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    try:
        return Config.model_validate({**data, "source": str(file)})
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top level)"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{file}: {where}: {first['msg']}{more}") from None


def secret(name: str | None, what: str, environ: Mapping[str, str] | None = None) -> str:
    """The value of the environment variable a secret is kept in."""
    env = os.environ if environ is None else environ
    if not name:
        raise ConfigError(f"{what}: no variable named for it in the configuration")
    value = env.get(name)
    if not value:
        raise ConfigError(f"{what}: environment variable {name} is not set")
    return value


_MAKE_ONE = "(make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))')"


def token_problem(tokens: Sequence[str]) -> str | None:
    """What is wrong with a list of API bearer tokens (None: nothing); never shows a token."""
    if not tokens:
        return "no token"
    for n, token in enumerate(tokens, start=1):
        if not token:
            return f"token {n} is empty (tokens are separated by single commas)"
        if len(token) < MIN_TOKEN_LENGTH:
            return f"token {n} is shorter than {MIN_TOKEN_LENGTH} characters {_MAKE_ONE}"
        if not token.isascii() or not token.isprintable() or " " in token:
            return f"token {n} has a space or a character that cannot go in a header {_MAKE_ONE}"
    return None


def api_tokens(name: str | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The bearer tokens `tier2 serve` accepts: comma-separated in the variable named (default
    TIER2_API_TOKENS), each at least MIN_TOKEN_LENGTH characters; one clear line if not."""
    variable = name or DEFAULT_TOKENS_ENV
    tokens = [t.strip() for t in secret(variable, "API tokens", environ).split(",")]
    problem = token_problem(tokens)
    if problem is not None:
        raise ConfigError(f"API tokens: {variable}: {problem}")
    return tokens

"""tier2.toml: validated with the key that is wrong; secrets only by environment-variable name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tier2.entrypoints.bootstrap import StartError, api_secrets, http_limits
from tier2.entrypoints.config import Config, ConfigError, api_tokens, load_config, secret
from tier2.entrypoints.http import HttpLimits

FULL = """
library = "ecommerce"
database = "sqlite:///x.db"
[run]
workers = 1
[connector]
kind = "rt"
[connector.rt]
url = "http://127.0.0.1:8089/REST/2.0/"
password_env = "RT_PW"
queues = { senior_support = "Seniors" }
[webhooks]
rt_secret_env = "RT_HOOK"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tier2.toml"
    path.write_text(text)
    return path


def test_a_full_file_loads(tmp_path: Path) -> None:
    """Every section is read; what is not given takes its default."""
    config = load_config(write(tmp_path, FULL))
    assert config.library == "ecommerce" and config.run.workers == 1 and config.run.batch == 1000
    assert config.connector.rt is not None and config.connector.rt.queues == {
        "senior_support": "Seniors"
    }


def test_no_file_gives_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without ./tier2.toml tier2 runs on the local help desk with the saas library."""
    monkeypatch.chdir(tmp_path)
    config = load_config()
    assert (config.library, config.connector.kind) == ("saas", "local")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[connector]\nkind = "rt"\n', "connector: Value error, kind is rt but there is no [connector.rt] section"),
        ('[connector]\nkind = "freshdesk"\n', "connector.kind: Input should be 'local', 'rt' or 'zendesk'"),
        ('[connector.rt]\nurl = "http://x/"\n', "connector.rt: Value error, give password_env or token_env"),
        ('[connector.zendesk]\nsubdomain = "a"\nemail = "e"\ntoken_env = "T"\n', "say how escalations are found"),
        ('[connector.rt]\nurl = "u"\npassword_env = "P"\nfields = { "ticket.colour" = "C" }\n', "fields: no case field 'ticket.colour'"),
        ('[connector.rt]\nurl = "u"\npassword_env = "P"\nqueue = "A"\nreturn_queue = "A"\n', "return_queue must differ from queue"),
        ('[connector.rt]\nurl = "u"\npassword_env = "P"\ncustom_field = "Tier"\n', "custom_field and custom_field_value go together"),
        ("[run]\nworkers = -1\n", "run.workers: Input should be greater than or equal to 0"),
        ("[run]\nbatch_size = 5\n", "run.batch_size: Extra inputs are not permitted"),
        ("library = \n", "not valid TOML"),
    ],
)  # fmt: skip
def test_bad_files_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    """A configuration that cannot be used names the file, the key and the problem."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_a_missing_file_given_by_name_is_an_error(tmp_path: Path) -> None:
    """--config naming a file that is not there is an error, not the defaults."""
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_secrets_come_from_the_environment() -> None:
    """A secret is read from the variable named; a missing one says which variable."""
    assert secret("RT_PW", "RT password", {"RT_PW": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match="RT password: environment variable RT_PW is not set"):
        secret("RT_PW", "RT password", {})


TOKEN = "a-long-enough-token-0123456789"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (",", "API tokens: TIER2_API_TOKENS: token 1 is empty"),
        (" , ", "API tokens: TIER2_API_TOKENS: token 1 is empty"),
        (f"{TOKEN},", "API tokens: TIER2_API_TOKENS: token 2 is empty"),
        (f"{TOKEN},tiny-token", "API tokens: TIER2_API_TOKENS: token 2 is shorter than 20 characters"),
        ("x" * 19, "API tokens: TIER2_API_TOKENS: token 1 is shorter than 20 characters"),
        (f"{TOKEN}\x07", "API tokens: TIER2_API_TOKENS: token 1 has a space or a character that cannot go in a header"),
    ],
)  # fmt: skip
def test_api_tokens_are_long_and_not_empty(value: str, message: str) -> None:
    """Empty entries and tokens under 20 characters are one line naming the token's place,
    never the token."""
    with pytest.raises(ConfigError) as err:
        api_tokens(None, {"TIER2_API_TOKENS": value})
    said = str(err.value)
    assert said.startswith(message) and "\n" not in said
    assert all(t not in said for t in (TOKEN, "tiny-token", "x" * 19))


def test_good_api_tokens_are_read_from_the_variable_named() -> None:
    """Comma-separated tokens of 20 characters or more, spaces around them dropped."""
    other = "b" * 20
    assert api_tokens("TOKENS", {"TOKENS": f" {TOKEN} , {other}"}) == [TOKEN, other]


def test_serve_refuses_empty_token_entries_in_one_line() -> None:
    """`tier2 serve`'s start: TIER2_API_TOKENS="," is one StartError line, not a traceback."""
    with pytest.raises(StartError, match=r"^API tokens: TIER2_API_TOKENS: token 1 is empty"):
        api_secrets(Config(), {"TIER2_API_TOKENS": ","})
    tokens, _ = api_secrets(Config(), {"TIER2_API_TOKENS": TOKEN})
    assert tokens == [TOKEN]


@pytest.mark.parametrize(
    "database",
    [
        "postgresql+psycopg://u:secret@host/db",
        "postgresql://tier2:pw@db.example.com:5432/tier2",
        "postgresql://tier2@db/tier2?password=secret",
    ],
)
def test_a_password_in_database_is_refused_naming_the_variable(
    tmp_path: Path, database: str
) -> None:
    """A password in tier2.toml's database URL: refused, saying to use TIER2_DB; the password
    is not repeated."""
    path = write(tmp_path, f'database = "{database}"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert "database: Value error, holds a password" in str(err.value)
    assert "TIER2_DB" in str(err.value)
    assert ":pw@" not in str(err.value) and "secret@" not in str(err.value)


def test_a_database_url_without_a_password_is_kept(tmp_path: Path) -> None:
    """A user without a password (the password in PGPASSWORD or .pgpass) is fine."""
    config = load_config(write(tmp_path, 'database = "postgresql://tier2@db/tier2"\n'))
    assert config.database == "postgresql://tier2@db/tier2"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[connector.rt]\nurl = "u"\npassword = "hunter2"\n', "connector.rt: Value error, password: a secret is not kept in tier2.toml; put it in an environment variable and give that variable's name as password_env"),
        ('[connector.rt]\nurl = "u"\ntoken_env = "T"\ntoken = "abc"\n', "connector.rt: Value error, token: a secret is not kept in tier2.toml; put it in an environment variable and give that variable's name as token_env"),
        ('[connector.rt]\nurl = "https://root:pw@rt.example.com/REST/2.0/"\npassword_env = "P"\n', "connector.rt.url: Value error, holds a password"),
        ('[connector.rt]\nurl = "u"\npassword_env = "hunter2 is my password"\n', "connector.rt.password_env: Value error, must be the name of an environment variable"),
        ('[connector.zendesk]\nsubdomain = "a"\nemail = "e"\ntoken_env = "T"\ntag = "t"\ntoken = "abc"\n', "connector.zendesk: Value error, token: a secret is not kept in tier2.toml"),
        ('[connector.zendesk]\nsubdomain = "a"\nemail = "e"\ntoken_env = "T"\ntag = "t"\nbase_url = "https://e:tok@a.zendesk.com/api/v2/"\n', "connector.zendesk.base_url: Value error, holds a password"),
        ('[webhooks]\nzendesk_secret = "abc"\n', "webhooks: Value error, zendesk_secret: a secret is not kept in tier2.toml; put it in an environment variable and give that variable's name as zendesk_secret_env"),
        ('[api]\ntokens = "abc,def"\n', "api: Value error, tokens: a secret is not kept in tier2.toml; put it in an environment variable and give that variable's name as tokens_env"),
        ('[api]\ntokens_env = "abc,def"\n', "api.tokens_env: Value error, must be the name of an environment variable"),
        ('db_password = "abc"\n', "(top level)"),
    ],
)  # fmt: skip
def test_secrets_in_the_file_are_refused(tmp_path: Path, text: str, message: str) -> None:
    """A password, token or secret written in tier2.toml is refused, naming the key that
    takes the name of its environment variable instead; the secret is not repeated."""
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert message in str(err.value)
    for secret_value in ("hunter2", "abc", ":pw@", ":tok@"):
        assert secret_value not in str(err.value)


def test_the_api_limits_and_docs_are_settings(tmp_path: Path) -> None:
    """[api] sets the docs and each limit; the defaults are HttpLimits' own."""
    assert http_limits(Config()) == HttpLimits()
    text = "[api]\ndocs = false\nmax_body_bytes = 65536\nbody_timeout_seconds = 5\n"
    config = load_config(write(tmp_path, text))
    assert config.api.docs is False
    assert http_limits(config) == HttpLimits(max_body_bytes=65536, body_timeout_seconds=5)
    with pytest.raises(ConfigError, match=r"api.max_body_bytes: Input should be greater"):
        load_config(write(tmp_path, "[api]\nmax_body_bytes = 0\n"))

"""tier2.toml: validated with the key that is wrong; secrets only by environment-variable name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tier2.entrypoints.config import ConfigError, load_config, secret

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

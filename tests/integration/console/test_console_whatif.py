"""The Library page's what-if: a head of support runs `tier2 whatif DRAFT` on a draft folder
in the background and sees what the command reports; others, bad folders and forms without
the CSRF token are refused."""

from __future__ import annotations

import re
import shutil
import threading
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from tests.integration.console.conftest import World, csrf_of, make_world, sign_in
from tier2.core.library import Library
from tier2.entrypoints.cli import app as cli
from tier2.entrypoints.http.console import _replay
from tier2.library.lint import lint_library

DRAFT = "raise-cap"
DEADLINE = 120.0
_COUNT = re.compile(r'data-count="(\w+)">([\d,]+)<')


REROUTE = "reroute"
_EDITS = {
    DRAFT: [("{role: tier2, limit: 500,", "{role: tier2, limit: 1000,")],
    REROUTE: [
        ("  management_trigger: support_manager", "  management_trigger: vp_support"),
        ("  sla_breach: support_manager", "  sla_breach: vp_support"),
    ],
}


def _draft(folder: Path, edits: str = DRAFT) -> Path:
    """A copy of the built-in saas library (the fixture store's) with tier2's cap raised
    (or, `reroute`, the management and SLA escalations sent to vp_support instead)."""
    source = Path(str(resources.files("tier2.library") / "builtin" / "saas"))
    shutil.copytree(source, folder)
    yaml = folder / "library.yaml"
    text = yaml.read_text(encoding="utf-8")
    for old, new in _EDITS[edits]:
        assert old in text
        text = text.replace(old, new)
    yaml.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def drafted(template_store: Path, tmp_path: Path, saas: Library) -> Iterator[World]:
    path = tmp_path / "console.db"
    shutil.copy(template_store, path)
    drafts = tmp_path / "drafts"
    drafts.mkdir()
    _draft(drafts / DRAFT)
    _draft(drafts / REROUTE, REROUTE)
    _draft(tmp_path / "outside")
    (drafts / "escape").symlink_to(tmp_path / "outside", target_is_directory=True)
    made = make_world(path, saas, drafts_dir=drafts)
    yield made
    made.console.whatif.join(DEADLINE)
    made.client.close()
    made.engine.dispose()


def _start(world: World, draft: str, *, csrf: bool = True, hx: bool = False) -> Any:
    token = csrf_of(world.client.get("/library"))
    data = {"draft": draft, **({"csrf_token": token} if csrf else {})}
    headers = {"HX-Request": "true"} if hx else {}
    return world.client.post("/library/whatif", data=data, headers=headers, follow_redirects=False)


def _counts(html: str) -> dict[str, int]:
    return {k: int(v.replace(",", "")) for k, v in _COUNT.findall(html)}


def _cli(world: World, draft: Path) -> dict[str, Any]:
    url = world.engine.url.render_as_string(hide_password=False)
    result = CliRunner().invoke(
        cli, ["whatif", str(draft), "--db", url, "--format", "json", "--no-lint"]
    )
    assert result.exit_code == 0, result.output
    found: dict[str, Any] = orjson.loads(result.stdout)
    return found


@pytest.mark.parametrize(("draft", "changed"), [(DRAFT, 0), (REROUTE, 10)])
def test_head_runs_a_whatif_and_sees_what_the_command_reports(
    drafted: World, tmp_path: Path, draft: str, changed: int
) -> None:
    """A head of support's what-if of a draft folder ends with the counts, matrix, changed cases and CSV of `tier2 whatif`."""
    sign_in(drafted.client, "hana")
    page = drafted.client.get("/library")
    assert f'<option value="{draft}">' in page.text and 'value="builtin:saas"' in page.text
    assert 'value="escape"' not in page.text  # a symlink out of drafts_dir is not offered
    started = _start(drafted, draft)
    assert started.status_code == 303 and started.headers["location"] == "/library#whatif"
    polled = drafted.client.get("/library/whatif", headers={"HX-Request": "true"})
    assert polled.status_code == 200 and 'id="whatif"' in polled.text
    assert drafted.console.whatif.join(DEADLINE), "the what-if did not finish in time"
    done = drafted.client.get("/library/whatif", headers={"HX-Request": "true"})
    assert 'hx-trigger="load delay:2s"' not in done.text  # no more polling
    expected = _cli(drafted, tmp_path / "drafts" / draft)
    keys = ("cases", "unchanged", "changed", "reasons_only", "params_only", "errored")
    assert _counts(done.text) == {k: expected[k] for k in keys}
    assert expected["cases"] == 40 and expected["changed"] == changed
    run = drafted.console.whatif.latest()
    assert run is not None and run.result is not None and run.done == run.total == 40
    assert run.lint is not None and "whatif-lint" in done.text  # the draft's lint heads it
    for key in ("matrix", "to_humans", "money_delta", "review"):
        assert run.result[key] == expected[key], key
    assert {c["case_id"] for c in run.result["changes"]} == {
        c["case_id"] for c in expected["changes"]
    }
    for c in expected["changes"][:200]:
        assert f'href="/case/{c["case_id"]}"' in done.text
    for old in expected["matrix"]:
        assert f'href="/cases?outcome={old}"' in done.text
    for target in expected["to_humans"]:
        assert f'href="/cases?outcome=escalate&amp;escalate_to={target}"' in done.text
    if changed:
        listed = drafted.client.get("/cases?outcome=escalate&escalate_to=support_manager")
        assert listed.status_code == 200
        assert all(c["case_id"] in listed.text for c in expected["changes"])
    exported = drafted.client.get("/library/whatif.csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    lines = exported.text.splitlines()
    assert lines[0].startswith("case_id,old_outcome,new_outcome")
    assert len(lines) == 1 + expected["changed"]
    assert drafted.client.get("/library").text.count('data-count="cases"') == 1


def test_a_second_start_while_one_runs_is_refused(
    drafted: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While a what-if runs, starting another is refused (409) saying one is running."""
    release = threading.Event()

    def held(library: Library, samples: int) -> Any:
        assert release.wait(DEADLINE)
        return lint_library(library, samples=samples)

    monkeypatch.setattr(_replay, "lint_library", held)
    sign_in(drafted.client, "hana")
    assert _start(drafted, "builtin:saas").status_code == 303
    running = drafted.client.get("/library/whatif")
    assert 'hx-get="/library/whatif"' in running.text and "Linting the draft" in running.text
    again = _start(drafted, DRAFT, hx=True)
    assert again.status_code == 409 and "is running" in again.text
    release.set()
    assert drafted.console.whatif.join(DEADLINE)
    run = drafted.console.whatif.latest()
    assert run is not None and run.phase == "done" and run.draft == "saas (built-in)"
    assert run.result is not None and run.result["changed"] == 0  # the library that decided


@pytest.mark.parametrize("name", ["vic", "sam"])
def test_a_viewer_or_a_senior_may_not_start_one(drafted: World, name: str) -> None:
    """Only a head of support starts a what-if: a viewer and a senior get 403, and no form."""
    sign_in(drafted.client, name)
    assert 'id="whatif-start"' not in drafted.client.get("/library").text
    assert _start(drafted, DRAFT).status_code == 403
    assert drafted.console.whatif.latest() is None


@pytest.mark.parametrize(
    "draft", ["..", "../drafts/raise-cap", "escape", "/etc", ".", "nope", "builtin:other", ""]
)
def test_a_folder_outside_drafts_dir_is_refused(drafted: World, draft: str) -> None:
    """A name with `..`, a symlink out, an absolute path or no such folder is refused (400)."""
    sign_in(drafted.client, "hana")
    refused = _start(drafted, draft)
    assert refused.status_code == 400 and 'id="whatif-notice"' in refused.text
    assert drafted.console.whatif.latest() is None


def test_no_csrf_token_is_refused(drafted: World) -> None:
    """A start without the session's CSRF token is refused (403)."""
    sign_in(drafted.client, "hana")
    assert _start(drafted, DRAFT, csrf=False).status_code == 403
    assert drafted.console.whatif.latest() is None


def test_without_drafts_dir_the_form_says_so(world: World) -> None:
    """With no [console] drafts_dir the form offers the built-ins and says drafts are not configured."""
    sign_in(world.client, "hana")
    page = world.client.get("/library").text
    assert 'id="whatif-unconfigured"' in page and 'value="builtin:ecommerce"' in page
    assert _start(world, "raise-cap").status_code == 400
    assert world.client.get("/library/whatif.csv").status_code == 404

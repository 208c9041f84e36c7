"""A company's own library folder: its templates override the package's, decisions follow."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest

from tests.conftest import SAAS_BASE, patched, run
from tier2.app.deciding import DECIDED, decide_units
from tier2.contract import read_units
from tier2.library.loader import LibraryError, load_library, resolve_library_path


def _library(tmp_path: Path, **templates: str) -> Path:
    """A copy of the saas library as a company's folder, with these templates (name: text)."""
    folder = tmp_path / "northwind"
    if not folder.exists():
        shutil.copytree(resolve_library_path("saas"), folder)
    if templates:
        (folder / "templates").mkdir(exist_ok=True)
    for name, text in templates.items():
        (folder / "templates" / f"{name}.md.j2").write_text(text)
    return folder


def test_templates_in_the_library_override_the_defaults(tmp_path: Path) -> None:
    """A reply.md.j2 in the library's templates/ replaces the package's draft reply."""
    folder = _library(tmp_path, reply="Hi {{ case.customer.name }}, outcome {{ outcome }}.\n")
    d = run(SAAS_BASE, load_library(str(folder)))
    assert d["customer_reply"] == "Hi Ada Brandt, outcome resolve."
    assert d["note"].startswith("## tier2 decision: resolve")  # the default note still applies


def test_an_overriding_template_may_use_jinja2s_globals(tmp_path: Path) -> None:
    """A template calling Jinja2's globals (range, namespace, joiner) renders as Jinja2 says."""
    folder = _library(
        tmp_path,
        reply="{% set ns = namespace(n=0) %}{% for i in range(3) %}{% set ns.n = ns.n + i %}"
        "{% endfor %}{% set comma = joiner(', ') %}"
        "{% for a in actions %}{{ comma() }}{{ a.type }}{% endfor %} / {{ ns.n }}\n",
    )
    d = run(SAAS_BASE, load_library(str(folder)))
    assert d["customer_reply"] == "refund / 3"
    _library(
        tmp_path,
        parts="{% for i in range(2) %}{{ i }}{% endfor %}",
        reply='{% include "parts.md.j2" %} included\n',
    )
    assert run(SAAS_BASE, load_library(str(folder)))["customer_reply"] == "01 included"


def test_changing_a_policy_changes_the_library_digest(tmp_path: Path) -> None:
    """The decision names the exact library content that produced it."""
    folder = _library(tmp_path)
    before = run(SAAS_BASE, load_library(str(folder)))["library"]["digest"]
    policies = folder / "policies.yaml"
    policies.write_text(policies.read_text().replace("seats > 20", "seats > 30"))
    after = run(SAAS_BASE, load_library(str(folder)))["library"]["digest"]
    assert before != after


def test_a_template_that_cannot_render_fails_at_load(tmp_path: Path) -> None:
    """An override that reads an undefined variable is refused when the library loads."""
    folder = _library(tmp_path, guidance="Do this: {{ no_such_thing }}\n")
    with pytest.raises(
        LibraryError, match=r"guidance\.md\.j2 line 1: UndefinedError: 'no_such_thing' is undefined"
    ):
        load_library(str(folder))


def test_a_template_with_bad_syntax_fails_at_load(tmp_path: Path) -> None:
    """A template that does not compile names the file and line."""
    folder = _library(tmp_path, reply="Hello {% if %}\n")
    with pytest.raises(LibraryError, match=r"reply\.md\.j2: line 1"):
        load_library(str(folder))


# --------------------------------------------------------------------------- untrusted templates


def test_a_template_that_runs_code_is_refused_at_load(tmp_path: Path) -> None:
    """The probe that printed `uid=0(root)` from a reply.md.j2 is a load error naming the file
    and line (`tier2 lint` loads the same way): the sandbox runs no code."""
    folder = _library(tmp_path, reply="{{ cycler.__init__.__globals__.os.popen('id').read() }}\n")
    with pytest.raises(LibraryError, match=r"reply\.md\.j2 line 1: SecurityError") as caught:
        load_library(str(folder))
    assert "uid=" not in str(caught.value)


def test_a_symlinked_template_is_refused_at_load(tmp_path: Path) -> None:
    """A reply.md.j2 that links to /etc/passwd never reaches a customer: the library does not
    load, the error naming the file."""
    folder = _library(tmp_path)
    (folder / "templates").mkdir()
    (folder / "templates" / "reply.md.j2").symlink_to("/etc/passwd")
    with pytest.raises(LibraryError, match=r"templates: reply\.md\.j2: is a symbolic link"):
        load_library(str(folder))


def test_a_template_including_a_file_outside_is_refused_at_load(tmp_path: Path) -> None:
    """`{% include "../../x" %}` is a load error naming the file and line."""
    folder = _library(tmp_path, note='Note\n{% include "../../library.yaml" %}\n')
    with pytest.raises(LibraryError, match=r"note\.md\.j2 line 2: includes '\.\./\.\./library"):
        load_library(str(folder))


def test_a_template_that_loops_forever_is_refused_at_load(tmp_path: Path) -> None:
    """Loops within loops stop at the step limit, in well under a second of work per case."""
    folder = _library(
        tmp_path,
        guidance="{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
    )
    with pytest.raises(LibraryError, match="more than 100,000 loop iterations and calls"):
        load_library(str(folder))


def test_a_template_failing_on_one_case_sends_that_case_to_a_person(tmp_path: Path) -> None:
    """A template that fails only on some case loads; that case goes to senior_support with
    reason library_error naming the template, nothing carried out, its note written without
    the templates; the rest of the batch is decided as usual."""
    folder = _library(
        tmp_path,
        reply='{% if case.ticket.subject == "boom" %}{{ 1 / 0 }}{% endif %}Hello\n',
    )
    library = load_library(str(folder))
    cases = [patched(SAAS_BASE, {"case_id": f"NW-{i}", "ticket.subject": s}) for i, s in enumerate(["ok", "boom", "fine"])]  # fmt: skip
    units = list(read_units(b"".join(orjson.dumps(c) + b"\n" for c in cases), jsonl=True))
    verdicts = decide_units(library, units, None)
    assert [status for status, _ in verdicts] == [DECIDED, DECIDED, DECIDED]
    ok, boom = orjson.loads(verdicts[0][1]), orjson.loads(verdicts[1][1])
    assert ok["outcome"] == "resolve" and ok["customer_reply"].endswith("Hello")
    assert (boom["outcome"], boom["escalate_to"]) == ("escalate", "senior_support")
    first = boom["reasons"][0]
    assert (
        first["code"] == "library_error"
        and "reply.md.j2 line 1: ZeroDivisionError" in first["detail"]
    )
    assert "The documents could not be written" in boom["note"]
    assert "boom" not in (boom["customer_reply"] or "")


def test_a_library_template_reads_the_case_as_plain_data(tmp_path: Path) -> None:
    """An override sees the whole case as plain data (times as ISO 8601 text, the severity as
    its word), the case's text escaped for Markdown in the note and plain in the reply."""
    folder = _library(
        tmp_path,
        note="{{ case.ticket.severity }} {{ case.ticket.messages[0].at }} {{ case.customer.name }}\n",
        reply="{{ case.ticket.messages | length }} {{ case.customer.name }}\n",
    )
    raw = patched(SAAS_BASE, {"customer.name": "Ada & <Bob>"})
    d = run(raw, load_library(str(folder)))
    assert d["note"] == "medium 2026-03-03T08:05:00+01:00 Ada &amp; &lt;Bob&gt;\n"
    assert d["customer_reply"] == "2 Ada & \u2039Bob\u203a"

"""A company's own library folder: its templates override the package's, decisions follow."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import SAAS_BASE, run
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

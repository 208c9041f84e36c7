"""A library's templates are untrusted code: they render in Jinja2's immutable sandbox, from
plain data, read nothing outside the library's templates folder, and are bounded in work and
size; what fails is a TemplateRenderError (a DocumentError), never code run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from tier2.core.documents import DocumentError
from tier2.library.render import (
    MAX_SIZE,
    MAX_STEPS,
    JinjaTemplates,
    SlaNotes,
    TemplateLoadError,
    TemplateRenderError,
)

# Plain data, as tier2.core.documents gives it (only the names these tests use).
DATA: dict[str, Any] = {
    "case": {"case_id": "NW-1", "ticket": {"id": "20417", "subject": "Charged twice"}},
    "outcome": "resolve",
    "actions": [{"type": "refund", "amount": 240.0, "currency": "EUR"}],
    "words": ["a", "b", "c"],
}


def templates(tmp_path: Path, **files: str) -> JinjaTemplates:
    """A library's templates folder with these files (name: text), loaded."""
    folder = tmp_path / "templates"
    folder.mkdir(exist_ok=True)
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return JinjaTemplates(folder)


def reply(tmp_path: Path, text: str, data: dict[str, Any] = DATA) -> str:
    """The reply rendered from a library's own reply.md.j2."""
    return templates(tmp_path, **{"reply.md.j2": text}).render("reply.md", data)


# --------------------------------------------------------------------------- no code runs

ESCAPES = [
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__['os'].system('id') }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ case.__class__.__mro__ }}",
    "{{ words.__class__.__base__.__subclasses__() }}",
    "{{ (1).__class__ }}",
    "{{ range.__globals__ }}",
    "{{ range.__code__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ dict.mro() }}",
    "{{ cycler.mro() }}",
    "{{ case['__class__'] }}",
    "{{ case|attr('__class__') }}",
    "{{ self.__init__ }}",
    "{{ loop.__class__ }}{% for x in words %}{% endfor %}",
    "{% for x in words %}{{ loop.__init__.__globals__ }}{% endfor %}",
    "{{ '{0.__class__}'.format(case) }}",
    "{{ '%s'.format_map(case) }}",
    "{{ words.append(1) }}",
    "{{ case.update({'x': 1}) }}",
    "{{ case.ticket.clear() }}",
]


@pytest.mark.parametrize("source", ESCAPES)
def test_a_template_cannot_reach_pythons_internals(tmp_path: Path, source: str) -> None:
    """`__class__`, `__mro__`, `__subclasses__`, `__globals__`, a class's or callable's
    attributes, str.format and mutating methods fail as a render error; nothing runs."""
    with pytest.raises(TemplateRenderError) as caught:
        reply(tmp_path, source)
    assert caught.value.template == "reply.md.j2 line 1"
    assert "uid=" not in str(caught.value)


def test_the_os_popen_probe_is_a_security_error_naming_the_template(tmp_path: Path) -> None:
    """The probe that printed `uid=0(root)` is refused, the error naming file, line and why."""
    with pytest.raises(TemplateRenderError, match=r"reply\.md\.j2 line 2: SecurityError: "):
        reply(tmp_path, "Hello\n{{ cycler.__init__.__globals__.os.popen('id').read() }}\n")


def test_a_render_error_is_a_document_error() -> None:
    """What pipeline code catches (the core's DocumentError) covers the template's errors."""
    assert issubclass(TemplateRenderError, DocumentError)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        ("{{ nothing }}", "UndefinedError: 'nothing' is undefined"),
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ 1 + 'a' }}", "TypeError"),
        ("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
    ],
)
def test_any_failure_of_a_template_is_a_render_error(
    tmp_path: Path, source: str, problem: str
) -> None:
    """An undefined name, a Python exception, a recursion: a TemplateRenderError saying which."""
    with pytest.raises(TemplateRenderError, match=problem):
        reply(tmp_path, source)


# --------------------------------------------------------------------------- files


def test_a_symlinked_template_is_a_load_error(tmp_path: Path) -> None:
    """A template that is a symbolic link (to /etc/passwd) is refused when the library loads."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "reply.md.j2").symlink_to("/etc/passwd")
    with pytest.raises(TemplateLoadError, match=r"reply\.md\.j2: is a symbolic link"):
        JinjaTemplates(folder)


def test_a_symlinked_folder_in_the_templates_is_a_load_error(tmp_path: Path) -> None:
    """A folder inside templates/ that is a link (to /etc) is refused, even if unused."""
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "etc").symlink_to("/etc")
    (folder / "reply.md.j2").write_text('{% include "etc/passwd" %}')
    with pytest.raises(TemplateLoadError, match=r"etc: is a symbolic link"):
        JinjaTemplates(folder)


def test_a_symlinked_templates_folder_is_a_load_error(tmp_path: Path) -> None:
    """The library's templates/ itself may not be a link to another folder."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "reply.md.j2").write_text("hello")
    (tmp_path / "templates").symlink_to(elsewhere)
    with pytest.raises(TemplateLoadError, match="is a symbolic link"):
        JinjaTemplates(tmp_path / "templates")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('{% include "../../x" %}', r"reply\.md\.j2 line 1: includes '\.\./\.\./x' is outside"),
        ('\n{% include ["ok.md.j2", "../x"] %}', r"reply\.md\.j2 line 2: includes '\.\./x'"),
        ('{% extends "/etc/passwd" %}', r"line 1: extends '/etc/passwd' is outside"),
        ('{% import "sub/../../x" as m %}', r"line 1: imports 'sub/\.\./\.\./x' is outside"),
        ('{% from "..\\\\x" import m %}', r"line 1: imports '\.\.\\\\x' is outside"),
    ],
)
def test_naming_a_template_outside_the_folder_is_a_load_error(
    tmp_path: Path, source: str, message: str
) -> None:
    """An include, extends or import of a path outside templates/ is refused at load, naming the
    file and line, whether or not a case would ever reach it."""
    with pytest.raises(TemplateLoadError, match=message):
        templates(tmp_path, **{"reply.md.j2": "{% if false %}" + source + "{% endif %}"})


def test_a_computed_name_outside_the_folder_fails_when_rendered(tmp_path: Path) -> None:
    """An include whose name is computed is held to the same rule when it renders."""
    with pytest.raises(TemplateRenderError, match=r"'\.\./\.\./etc/passwd' is outside"):
        reply(tmp_path, '{% set up = "../" %}{% include up ~ up ~ "etc/passwd" %}')


def test_a_library_template_includes_its_own_parts(tmp_path: Path) -> None:
    """Including a file of the library's own templates folder, in a subfolder too, works."""
    loaded = templates(
        tmp_path,
        **{
            "parts/greeting.md.j2": "Hi {{ case.case_id }}",
            "reply.md.j2": '{% include "parts/greeting.md.j2" %} / {{ outcome }}',
        },
    )
    assert loaded.render("reply.md", DATA) == "Hi NW-1 / resolve"


def test_every_template_of_the_folder_is_compiled_at_load(tmp_path: Path) -> None:
    """A part no document includes yet is still checked when the library loads."""
    with pytest.raises(TemplateLoadError, match=r"unused\.md\.j2: line 1"):
        templates(tmp_path, **{"unused.md.j2": "{% if %}"})


# --------------------------------------------------------------------------- bounds


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        # loops and recursion: at most MAX_STEPS loop iterations and calls
        ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "loop iterations and calls"),
        ("{% set xs = range(100000)|list %}{% for a in xs %}{% for b in xs %}{% endfor %}{% endfor %}", "loop iterations and calls"),
        ("{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(60) }}", "loop iterations and calls"),
        ("{% for i in range(1000000) %}{% endfor %}", "(?i)range too big"),
        # values: at most MAX_SIZE characters or items
        ("{{ 'x' * 100000000 }}", "a value longer than"),
        ("{{ range(10)|list * 1000000 }}", "a value longer than"),
        ("{{ 2 ** 10000000 }}", "a power of more than"),
        ("{{ '%0999999999d' % 1 }}", "a format width"),
        ("{{ '%*d' % (999999999, 1) }}", "a format width"),
        ("{{ '%0999999999d'|format(1) }}", "a format width"),
        ("{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}", "a value longer than"),
        ("{{ ('x' * 1000)|replace('x', 'y' * 10000) }}", "a value longer than"),
        ("{{ 'x'|center(1000000000) }}", "a value longer than"),
        ("{{ ('x\n' * 1000)|indent(1000000) }}", "a value longer than"),
        ("{{ range(100000)|join('x' * 1000) }}", "a value longer than"),
        ("{{ range(3)|slice(1000000000)|list }}", "a value longer than"),
        ("{{ range(3)|batch(1000000000, 'x')|list }}", "a value longer than"),
        ("{{ 'x'.ljust(1000000000) }}", "unsafe"),
        ("{{ 'x'.zfill(1000000000) }}", "unsafe"),
        ("{{ 'x'.replace('x', 'yy') }}", "unsafe"),
        ("{{ (10).to_bytes(1000000000, 'big') }}", "unsafe"),
        ("{{ lipsum(100000) }}", "'lipsum' is undefined"),
        ("{{ [1, 2]|random }}", "No filter named 'random'"),
        # the document: at most MAX_SIZE characters, however it is written
        ("{% for i in range(100000) %}{{ 'x' * 100000 }}{% endfor %}", "a document longer than"),
        ("{% for i in range(100000) %}" + "x" * 1000 + "{% endfor %}", "a document longer than"),
        ("{% macro m() %}{% for i in range(50000) %}{{ 'x' * 1000 }}{% endfor %}{% endmacro %}{{ m() }}", "a document longer than"),
        ("{% set big %}{% for i in range(50000) %}{{ 'y' * 1000 }}{% endfor %}{% endset %}", "a document longer than"),
    ],
)  # fmt: skip
def test_a_template_is_bounded_in_work_and_size(tmp_path: Path, source: str, problem: str) -> None:
    """A template that loops (nearly) forever or builds a huge string fails quickly with a
    render error (or, for what cannot compile, a load error) saying what it ran into."""
    start = time.monotonic()
    with pytest.raises((TemplateRenderError, TemplateLoadError), match=problem):
        reply(tmp_path, source)
    assert time.monotonic() - start < 10


def test_the_bounds_leave_room_for_real_templates(tmp_path: Path) -> None:
    """A loop of thousands of items, a long join and a long document are still fine."""
    text = reply(
        tmp_path,
        "{% for i in range(20000) %}{{ i % 10 }}{% endfor %}|{{ range(50000)|join(',')|length }}",
    )
    assert text == "0123456789" * 2000 + "|" + str(len(",".join(map(str, range(50000)))))
    assert MAX_STEPS == 100_000 and MAX_SIZE == 1_000_000


def test_a_bounded_render_that_fails_leaves_the_next_unbounded(tmp_path: Path) -> None:
    """The budget of a library's template that ran out does not leak into the next document."""
    loaded = templates(
        tmp_path,
        **{"reply.md.j2": "{% for i in range(100000) %}{{ words|length }}{% endfor %}x" * 2},
    )
    with pytest.raises(TemplateRenderError):
        loaded.render("reply.md", DATA)
    assert loaded.render("guidance.md", {**DATA, **GUIDANCE}).strip().startswith("Returned")


GUIDANCE = {
    "base_guidance": None,
    "reasons": [{"code": "policy_return", "detail": "x matched", "rule": "x"}],
    "missing_steps": ["verify_invoice"],
}


# --------------------------------------------------------------------------- what it reads


@pytest.mark.parametrize(
    ("source", "reads"),
    [
        ("{{ outcome }}", set()),
        ("{{ case.case_id }} {{ case.ticket.subject }}", {("case_id",), ("ticket", "subject")}),
        ("{{ case['ticket']['id'] }}", {("ticket", "id")}),
        ("{{ case.ticket.subject.upper() }}", {("ticket", "subject")}),
        ("{% set t = case.ticket %}{{ t.id }}", {("ticket",)}),
        ("{% for m in case.ticket.messages %}{{ m.body }}{% endfor %}", {("ticket", "messages")}),
        ("{{ case.customer.plan.seats }}", {("customer", "plan")}),
        ("{{ case }}", None),
        ("{{ case|tojson }}", None),
        ("{% for k in case %}{{ k }}{% endfor %}", None),
        ("{{ case[outcome] }}", None),
        ("{% include 'part.md.j2' %}", {("ticket", "status")}),
    ],
)
def test_what_the_templates_read_of_the_case_is_known_at_load(
    tmp_path: Path, source: str, reads: set[tuple[str, ...]] | None
) -> None:
    """`case_reads`: the paths of `case` the templates (the library's reply, the package's note,
    every part one may include) read, or None when one reads it as a whole: the documents' data
    has only those."""
    loaded = templates(
        tmp_path, **{"reply.md.j2": source, "part.md.j2": "{{ case.ticket.status }}"}
    )
    note = {("case_id",), ("ticket", "id"), ("ticket", "category"), ("ticket", "severity")}
    every = None if reads is None else reads | note | {("ticket", "status")}
    assert loaded.case_reads == every


PACKAGE_READS = {
    ("case_id",),
    ("ticket", "id"),
    ("ticket", "category"),
    ("ticket", "severity"),
    ("ticket", "subject"),
    ("customer", "name"),
}


def test_the_package_templates_read_a_few_fields_of_the_case() -> None:
    """The built-in templates read only ids, category, severity, subject and name (so building
    the rest of the case for them is not needed)."""
    assert JinjaTemplates().case_reads == PACKAGE_READS


# --------------------------------------------------------------------------- SLA notes


@pytest.mark.parametrize("offset", [timedelta(hours=1), timedelta(hours=-5)])
def test_the_sla_note_reads_as_before(offset: timedelta) -> None:
    """The SLA monitor's note, from plain data (times formatted by the `datetime` filter), has
    the same words and times as before."""
    tz = timezone(offset)
    now = datetime(2026, 3, 3, 10, 20, tzinfo=tz)
    text = SlaNotes().render(
        case_id="NW-1",
        kind="breached",
        target="first_response",
        severity="high",
        used=1.25,
        elapsed_hours=5.0,
        target_hours=4.0,
        due=now - timedelta(hours=1),
        now=now,
        escalate_to="support_manager",
    )
    stamp = now.strftime("%Y-%m-%d %H:%M %z")
    due = (now - timedelta(hours=1)).strftime("%Y-%m-%d %H:%M %z")
    assert text == (
        "**tier2 SLA monitor: SLA breached** (case NW-1)\n\n"
        "- Target: first response for a high case, 4.0 h\n"
        f"- Used: 5.0 h (125 %); due {due}\n"
        f"- Checked: {stamp}\n"
        "- Escalated to: support_manager (handbook A5, reason `sla_breach`)\n"
    )


def test_the_sla_note_escapes_the_case_id() -> None:
    """A case id with a line break and a key line cannot forge a line of the SLA note."""
    text = SlaNotes().render(
        case_id="NW-1\ntier2-key: X <b>",
        kind="at_risk",
        target="resolution",
        severity="low",
        used=0.9,
        elapsed_hours=1.0,
        target_hours=2.0,
        due=None,
        now=datetime(2026, 3, 3, tzinfo=UTC),
        escalate_to="support_manager",
    )
    assert "(case NW-1 tier2-key: X &lt;b&gt;)" in text
    assert not any(line.startswith("tier2-key") for line in text.splitlines())

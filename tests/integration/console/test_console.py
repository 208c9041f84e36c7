"""The web console over a real store and the local help desk: signing in, the limits on it,
CSRF, roles, the cases list and page, the review queue's accept / resolve / rate written to
the store, the help desk and the audit log, the library page and the overview."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from tests.integration.console.conftest import (
    PASSWORD,
    TOKEN,
    World,
    csrf_of,
    make_world,
    sign_in,
)
from tier2.app.report import report
from tier2.core.library import Library
from tier2.entrypoints.http.console import _library
from tier2.entrypoints.http.console._library import lint_report
from tier2.library.lint import LintReport
from tier2.store import audit
from tier2.store import models as m
from tier2.store.report import SqlReportReader


def test_sign_in_opens_the_console(world: World) -> None:
    """The right password: a signed HttpOnly, SameSite=Lax session and the overview."""
    response = sign_in(world.client, "sam")
    assert response.status_code == 303 and response.headers["location"] == "/"
    cookie = response.headers["set-cookie"]
    assert "tier2_console=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    page = world.client.get("/")
    assert page.status_code == 200 and "sam (senior, senior_support)" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


def test_a_page_without_a_session_sends_to_sign_in(world: World) -> None:
    """Every console page needs a signed-in user: the browser is sent to /login."""
    response = world.client.get("/cases?outcome=escalate", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fcases%3Foutcome%3Descalate"
    world.client.cookies.set("tier2_console", "forged.cookie.value")
    assert world.client.get("/queue", follow_redirects=False).status_code == 303


def test_a_wrong_password_is_refused(world: World) -> None:
    """A wrong password (or an unknown user) is a 401 with one message, and no session."""
    for name in ("sam", "nobody"):
        response = sign_in(world.client, name, "wrong password here")
        assert response.status_code == 401 and "Wrong name or password." in response.text
    assert world.client.get("/", follow_redirects=False).status_code == 303


def test_five_failures_lock_the_account(world: World) -> None:
    """After 5 failed sign-ins the account is locked for 15 minutes, even to the right
    password; when the lock has passed, the right password works again."""
    for _ in range(4):
        assert sign_in(world.client, "sam", "not the password!").status_code == 401
    locked = sign_in(world.client, "sam", "not the password!")
    assert locked.status_code == 401 and "locked for 15 minutes" in locked.text
    again = sign_in(world.client, "sam")
    assert again.status_code == 401 and "This account is locked" in again.text
    with Session(world.engine) as session:
        user = session.get(m.User, "sam")
        assert user is not None and user.locked_until is not None
        assert user.locked_until > datetime.now(UTC) + timedelta(minutes=14)
    with Session(world.engine) as session, session.begin():
        session.execute(
            update(m.User).values(locked_until=datetime.now(UTC) - timedelta(seconds=1))
        )
    assert sign_in(world.client, "sam").status_code == 303


def test_an_address_with_too_many_failures_waits(
    template_store: Path, tmp_path: Path, saas: Library
) -> None:
    """Failed sign-ins from one address are limited whatever names they try (429)."""
    import shutil

    path = tmp_path / "limited.db"
    shutil.copy(template_store, path)
    world = make_world(path, saas, address_failures=3)
    for name in ("a", "b", "c"):
        assert sign_in(world.client, name, "guess guess guess").status_code == 401
    refused = sign_in(world.client, "sam")
    assert refused.status_code == 429 and "from this address" in refused.text
    world.engine.dispose()


def test_a_form_without_its_csrf_token_is_refused(world: World) -> None:
    """Every POST needs the session's CSRF token: without it, or with another, a 403 and
    nothing written."""
    client = world.client
    login = client.get("/login")
    assert csrf_of(login)
    no_token = client.post("/login", data={"name": "sam", "password": PASSWORD})
    assert no_token.status_code == 403
    assert sign_in(client, "sam").status_code == 303
    case_id = world.escalated()[0]
    for data in ({}, {"csrf_token": "not-the-token"}):
        refused = client.post(f"/queue/{case_id}/accept", data=data)
        assert refused.status_code == 403 and "security token" in refused.text
    assert client.post("/logout", data={}).status_code == 403
    with Session(world.engine) as session:
        assert session.get(m.Acceptance, (case_id, 1)) is None


def test_a_viewer_is_refused_the_review_form(world: World) -> None:
    """A viewer reads the queue and the cases but gets a 403 for a case's review forms."""
    sign_in(world.client, "vic")
    case_id = world.escalated()[0]
    assert world.client.get("/queue").status_code == 200
    assert world.client.get(f"/case/{case_id}").status_code == 200
    refused = world.client.get(f"/queue/{case_id}")
    assert refused.status_code == 403 and "viewer" in refused.text
    token = csrf_of(world.client.get("/cases"))
    posted = world.client.post(f"/queue/{case_id}/rate", data={"csrf_token": token})
    assert posted.status_code == 403


def test_a_senior_of_another_team_is_refused(world: World) -> None:
    """A senior of finance may not work a case escalated to senior_support (403), nor
    see it in their queue."""
    sign_in(world.client, "fin")
    case_id = world.escalated()[0]
    assert case_id not in world.client.get("/queue").text
    assert world.client.get(f"/queue/{case_id}").status_code == 403
    token = csrf_of(world.client.get("/cases"))
    refused = world.client.post(f"/queue/{case_id}/accept", data={"csrf_token": token})
    assert refused.status_code == 403
    with Session(world.engine) as session:
        assert session.get(m.Acceptance, (case_id, 1)) is None


def _work_token(world: World, case_id: str) -> str:
    page = world.client.get(f"/queue/{case_id}")
    assert page.status_code == 200, page.text[:300]
    return csrf_of(page)


def test_accept_records_the_acceptance_and_audits_it(world: World) -> None:
    """Accept writes the acceptance (who, when, estimate) and an `accepted` audit entry; the
    queue shows who accepted it; a second acceptance is a 409."""
    sign_in(world.client, "sam")
    case_id = world.escalated()[0]
    estimate = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")
    token = _work_token(world, case_id)
    done = world.client.post(
        f"/queue/{case_id}/accept", data={"csrf_token": token, "estimated_resolution_at": estimate}
    )
    assert done.status_code == 200 and f"You accepted case {case_id}." in done.text
    with Session(world.engine) as session:
        row = session.get(m.Acceptance, (case_id, 1))
        assert row is not None and row.accepted_by == "sam"
        assert row.estimated_resolution_at is not None
        events = session.scalars(
            select(m.AuditEntry.event).where(m.AuditEntry.case_id == case_id)
        ).all()
    assert events[-1] == "accepted"
    assert "sam, est." in world.client.get("/queue").text
    again = world.client.post(f"/queue/{case_id}/accept", data={"csrf_token": token})
    assert again.status_code == 409 and "was accepted by sam" in again.text


def test_resolve_writes_back_to_the_help_desk_and_the_audit_log(world: World) -> None:
    """Resolve: a human_resolutions row, the note on the ticket under its key, the ticket
    resolved, a `resolved_by_human` entry, the whole audit log verifying; the follow-up hook
    is called and the case leaves the queue."""
    sign_in(world.client, "sam")
    case_id = world.escalated()[0]
    token = _work_token(world, case_id)
    done = world.client.post(
        f"/queue/{case_id}/resolve",
        data={"csrf_token": token, "summary": "Refunded the <duplicate> charge.",
              "role": "support_manager", "action_type": "refund", "amount": "240",
              "currency": "EUR"},
    )  # fmt: skip
    assert done.status_code == 200 and "is resolved" in done.text, done.text[:500]
    with Session(world.engine) as session:
        case = session.get(m.Case, case_id)
        assert case is not None
        row = session.scalars(
            select(m.HumanResolution).where(m.HumanResolution.case_id == case_id)
        ).one()
        assert (row.resolved_by, row.role, row.amount, row.currency) == (
            "sam", "support_manager", 240.0, "EUR",
        )  # fmt: skip
        ticket = session.get(m.Ticket, case.ticket_id)
        assert ticket is not None and ticket.status == "resolved"
        note = session.scalars(
            select(m.TicketMessage).where(
                m.TicketMessage.idempotency_key == f"{case_id}:{case.escalations}:resolved"
            )
        ).one()
        assert "Refunded the &lt;duplicate&gt; charge." in note.body and note.internal
        last = session.scalars(
            select(m.AuditEntry)
            .where(m.AuditEntry.case_id == case_id)
            .order_by(m.AuditEntry.seq.desc())
        ).first()
        assert last is not None and last.event == "resolved_by_human"
        assert audit.verify(session).intact
    assert world.followed == [[case_id]]
    assert f'/queue/{case_id}"' not in world.client.get("/queue").text
    page = world.client.get(f"/case/{case_id}")
    assert "Resolved by sam (support_manager)" in page.text and "Verified:" in page.text


def test_bad_resolution_input_is_a_message_not_an_error(world: World) -> None:
    """An amount above the role's authority: 422, the reason on the page, nothing written."""
    sign_in(world.client, "sam")
    case_id = world.escalated()[0]
    token = _work_token(world, case_id)
    response = world.client.post(
        f"/queue/{case_id}/resolve",
        data={"csrf_token": token, "summary": "Refunded", "role": "support_manager",
              "action_type": "refund", "amount": "99999999", "currency": "EUR"},
    )  # fmt: skip
    assert response.status_code == 422 and "above the authority of support_manager" in response.text
    assert 'value="99999999"' in response.text  # the form keeps what was typed
    with Session(world.engine) as session:
        assert not session.scalars(select(m.HumanResolution)).all()


def test_rate_stores_the_review_and_exports_a_disagreement(world: World) -> None:
    """A rating is stored with its score; a disagreement downloads as a regression case:
    the stored case, what was expected and what tier2 decided."""
    sign_in(world.client, "sam")
    case_id = world.escalated()[0]
    token = _work_token(world, case_id)
    rated = world.client.post(
        f"/queue/{case_id}/rate",
        data={"csrf_token": token, "right_outcome": "yes", "handoff_score": "4",
              "correct_escalate_to": "finance", "missing": "the invoice"},
    )  # fmt: skip
    assert rated.status_code == 200 and "disagrees with tier2" in rated.text
    with Session(world.engine) as session:
        review = session.scalars(select(m.Review).where(m.Review.case_id == case_id)).one()
        case = session.get(m.Case, case_id)
        assert case is not None
        assert (review.agrees, review.correct_escalate_to, review.score) == (False, "finance", 65.0)
    exported = world.client.get(f"/queue/{case_id}/regression.json")
    assert exported.status_code == 200
    assert "attachment" in exported.headers["content-disposition"]
    body = orjson.loads(exported.content)
    assert body["case"] == case.payload
    assert body["expected"] == {"outcome": "escalate", "escalate_to": "finance"}
    assert body["decided"]["outcome"] == "escalate"
    assert body["decided"]["escalate_to"] == "senior_support"


def test_the_cases_list_filters_and_pages(world: World) -> None:
    """Filters by outcome and id; pages by key; CSV of the filtered list; a bad filter value
    is a message."""
    sign_in(world.client, "vic")
    escalated = world.escalated()
    page = world.client.get("/cases?outcome=escalate")
    assert page.status_code == 200 and escalated[0] in page.text
    with Session(world.engine) as session:
        resolved = session.scalars(select(m.Case.id).where(m.Case.outcome == "resolve")).all()
        all_ids = session.scalars(select(m.Case.id)).all()
    assert not any(f">{r}<" in page.text for r in resolved)
    one = world.client.get(f"/cases?q={escalated[0]}")
    assert one.text.count("/case/") == 1
    partial = world.client.get("/cases?outcome=escalate", headers={"HX-Request": "true",
                                                                  "HX-Target": "case-table"})  # fmt: skip
    assert "<html" not in partial.text and "<table" in partial.text
    seen = world.client.get("/cases.csv").text.splitlines()
    assert seen[0].startswith("case_id,") and len(seen) == len(all_ids) + 1
    bad = world.client.get("/cases?outcome=explode")
    assert bad.status_code == 400 and "outcome: no such value" in bad.text


def test_the_cases_list_pages_by_key(template_store: Path, tmp_path: Path, saas: Library) -> None:
    """With a page of 15, the 40 cases are three pages, each after the last row shown."""
    import re
    import shutil

    path = tmp_path / "paged.db"
    shutil.copy(template_store, path)
    world = make_world(path, saas, page_size=15)
    sign_in(world.client, "vic")
    url, seen = "/cases", []
    for _ in range(5):
        page = world.client.get(url)
        seen += re.findall(r'href="/case/([^"]+)"', page.text)
        found = re.search(r'href="(/cases\?[^"]*after=[^"]+)" rel="next"', page.text)
        if found is None:
            break
        url = found.group(1).replace("&amp;", "&")
    assert len(seen) == 40 and len(set(seen)) == 40
    world.engine.dispose()


def test_the_case_page_shows_the_path_escaped(world: World) -> None:
    """A case's stages, reasons, note and audit entries; its text is escaped, never markup."""
    case_id = world.escalated()[0]
    with Session(world.engine) as session, session.begin():
        case = session.get(m.Case, case_id)
        assert case is not None
        payload = dict(case.payload)
        payload["handoff"] = {**payload["handoff"], "reason": "<script>alert(1)</script>"}
        case.payload = payload
    sign_in(world.client, "vic")
    page = world.client.get(f"/case/{case_id}")
    assert page.status_code == 200
    for part in ("receive", "gather_context", "apply_policy", "resolve_or_escalate", "document",
                 "Audit entries", "Verified:", "SLA clock"):  # fmt: skip
        assert part in page.text
    assert "<script>alert(1)</script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert world.client.get("/case/NO-SUCH").status_code == 404


def test_the_case_page_says_when_the_audit_chain_breaks(world: World) -> None:
    """An entry of the case changed after writing: the page says it does not verify."""
    case_id = world.escalated()[0]
    with Session(world.engine) as session, session.begin():
        entry = session.scalars(select(m.AuditEntry).where(m.AuditEntry.case_id == case_id)).first()
        assert entry is not None
        entry.data = {**entry.data, "outcome": "resolve"}
    sign_in(world.client, "vic")
    page = world.client.get(f"/case/{case_id}")
    assert "Does not verify" in page.text and "does not match" in page.text


def test_the_api_keeps_its_bearer_tokens(world: World) -> None:
    """The API routes work as before beside the console: a token, not a session."""
    case_id = world.escalated()[0]
    assert world.client.get(f"/cases/{case_id}").status_code == 401
    found = world.client.get(f"/cases/{case_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert found.status_code == 200 and found.json()["case_id"] == case_id
    assert world.client.get("/health").status_code == 200


def test_the_library_page_lists_policies_lint_and_versions(world: World) -> None:
    """Every policy with its citation, lint's findings, and the digest that decided the 40
    cases."""
    sign_in(world.client, "vic")
    assert lint_report(world.console) is not None  # (computed in the background, waited for)
    page = world.client.get("/library")
    assert page.status_code == 200
    for p in world.library.policies:
        assert p.id in page.text and p.citation in page.text
    assert "Likely conflicts" in page.text and "Unreachable policies" in page.text
    assert world.library.digest in page.text and "(this library)" in page.text


def test_the_library_page_does_not_wait_for_lint(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first visit starts lint in the background and shows the page at once, its lint
    section asking again (/library/lint) until the findings are there; a failure is said."""
    monkeypatch.setattr(_library, "_LINTED", {})
    monkeypatch.setattr(_library, "_FAILED", {})
    monkeypatch.setattr(_library, "_RUNNING", {})
    go = threading.Event()
    real = _library.lint_library

    def slow(library: Library) -> LintReport:
        assert go.wait(30)
        return real(library)

    monkeypatch.setattr(_library, "lint_library", slow)
    sign_in(world.client, "vic")
    page = world.client.get("/library")
    assert page.status_code == 200 and "Computing" in page.text
    assert 'hx-get="/library/lint"' in page.text and "Likely conflicts" not in page.text
    again = world.client.get("/library/lint")
    assert "Computing" in again.text and "<html" not in again.text.lower()
    go.set()
    assert lint_report(world.console) is not None
    done = world.client.get("/library/lint")
    assert "Likely conflicts" in done.text and "hx-get" not in done.text

    def broken(library: Library) -> LintReport:
        raise ValueError("no generator for this library")

    monkeypatch.setattr(_library, "_LINTED", {})
    monkeypatch.setattr(_library, "lint_library", broken)
    world.client.get("/library/lint")
    assert lint_report(world.console) is None
    failed = world.client.get("/library")
    assert "tier2 lint failed on the library: no generator" in failed.text
    assert 'hx-get="/library/lint"' not in failed.text


def test_the_overview_shows_the_reports_numbers(world: World) -> None:
    """The overview's numbers are `tier2 report`'s, and each links to its cases."""
    sign_in(world.client, "vic")
    page = world.client.get("/")
    assert page.status_code == 200
    found = report(SqlReportReader(world.engine), zone=world.console.zone, now=datetime.now(UTC))
    period = found["period"]
    assert f">{found['escalations']}</a>" in page.text
    for outcome, n in found["outcomes"].items():
        link = f"/cases?outcome={outcome}&amp;from={period['from']}&amp;to={period['to']}"
        assert f'{link}">{n}</a>' in page.text
    csv = world.client.get("/overview/outcomes.csv")
    assert csv.status_code == 200 and csv.text.splitlines()[0] == "outcome,cases"
    rows = dict(line.split(",") for line in csv.text.splitlines()[1:])
    assert {k: int(v) for k, v in rows.items()} == found["outcomes"]
    assert 'id="at-risk"' in page.text  # the at-risk list, and its CSV
    at_risk = world.client.get("/overview/at_risk.csv")
    assert at_risk.status_code == 200
    assert len(at_risk.text.splitlines()) == 1 + len(found["at_risk"])
    assert world.client.get("/?from=yesterday").status_code == 400


def test_resolved_cases_are_listed_by_when_and_who(world: World) -> None:
    """The cases resolved in a period (the report's cycle-time cases) and by whom."""
    with Session(world.engine) as session:
        resolved = session.scalars(select(m.Case.id).where(m.Case.resolved_at.is_not(None))).all()
        by_tier2 = session.scalars(select(m.Case.id).where(m.Case.resolved_by == "tier2")).all()
    sign_in(world.client, "vic")
    page = world.client.get("/cases?resolved_from=2000-01-01&resolved_to=2100-01-01")
    assert page.text.count('href="/case/') == len(resolved)
    mine = world.client.get("/cases?resolved_by=tier2")
    assert mine.text.count('href="/case/') == len(by_tier2)

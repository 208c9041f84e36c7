"""The console as an attacker sees it: hostile case text on every page and download, CSRF,
sessions, roles, open redirects, sign-in enumeration, CSV injection, bounds on input, and
money granted above one's authority."""

from __future__ import annotations

import csv
import dataclasses
import io
import time
from datetime import UTC, datetime
from pathlib import Path
from time import time as real_time
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from tests.integration.console.conftest import (
    PASSWORD,
    SECRET,
    World,
    csrf_of,
    make_world,
    sign_in,
)
from tier2.core.library import Library
from tier2.entrypoints.http.console._security import (
    COOKIE,
    SessionData,
    Sessions,
    fingerprint,
    hash_password,
)
from tier2.store import models as m
from tier2.store.console import save_user

XSS = (
    '"><img src=x onerror=alert(1)></script><script>alert(1)</script>'
    "<style>body{display:none}</style>javascript:alert(1)"
)
RAW = ("<img src=x", "<script>alert", "<style>body")


def _clean(text: str) -> None:
    for raw in RAW:
        assert raw not in text, text[max(0, text.find(raw) - 200) : text.find(raw) + 200]


def _hostile_case(world: World, case_id: str) -> None:
    """Every text field a customer, tier-1 or the help desk controls set to hostile markup."""
    with Session(world.engine) as session, session.begin():
        case = session.get(m.Case, case_id)
        assert case is not None
        payload = dict(case.payload)
        ticket = dict(payload.get("ticket") or {})
        ticket.update(subject=XSS, description=XSS)
        payload["ticket"] = ticket
        payload["handoff"] = {**(payload.get("handoff") or {}), "reason": XSS,
                              "customer_expectation": XSS}  # fmt: skip
        case.payload = payload
        case.first_reason = XSS[:48]
        decision = session.scalars(
            select(m.Decision).where(m.Decision.case_id == case_id).order_by(m.Decision.seq.desc())
        ).first()
        assert decision is not None
        body = dict(decision.body)
        body["note"] = XSS
        body["customer_reply"] = XSS
        form = dict(body.get("escalation_handoff") or {})
        form["ticket_information"] = {
            **(form.get("ticket_information") or {}), "subject": XSS,
            "customer": {"name": XSS, "id": XSS, "segment": XSS, "arr": XSS},
        }  # fmt: skip
        form["issue_summary"] = {
            **(form.get("issue_summary") or {}), "description": XSS, "tier1_reason": XSS,
            "customer_expectation": XSS,
        }  # fmt: skip
        form["customer_communication"] = {"last_customer_message": XSS, "sentiment": XSS}
        form["steps_taken"] = [{"by": XSS, "step": XSS, "result": XSS}]
        form["recommendation"] = {"actions": [{"type": XSS, "amount": XSS, "currency": XSS}],
                                  "policy": XSS}  # fmt: skip
        body["escalation_handoff"] = form
        decision.body = body


def _work_token(world: World, case_id: str) -> str:
    page = world.client.get(f"/queue/{case_id}")
    assert page.status_code == 200, page.text[:300]
    return csrf_of(page)


# ---------------------------------------------------------------------- XSS


def test_hostile_case_text_is_escaped_on_every_page(world: World) -> None:
    """Markup in a ticket, its handoff, tier2's note and a reason is text on every page."""
    case_id = world.escalated()[0]
    _hostile_case(world, case_id)
    save_user(world.engine, XSS[:60], hash_password(PASSWORD), "head_of_support", None,
              datetime.now(UTC))  # fmt: skip
    assert sign_in(world.client, XSS[:60]).status_code == 303
    for url in ("/", "/cases", f"/case/{case_id}", "/queue", f"/queue/{case_id}", "/library",
                f"/cases?q={XSS}", f"/?from={XSS}", "/login?next=" + XSS):  # fmt: skip
        page = world.client.get(url)
        assert page.status_code in (200, 400), (url, page.status_code)
        _clean(page.text)
    overview = world.client.get("/").text
    embedded = overview.split('<script type="application/json" id="chart-data">')[1]
    assert "</script" not in embedded.split("</script>")[0]


def test_a_seniors_words_are_escaped(world: World) -> None:
    """A resolution's summary and a rating's comment and missing text stay text."""
    sign_in(world.client, "hana")
    case_id = world.escalated()[0]
    token = _work_token(world, case_id)
    rated = world.client.post(
        f"/queue/{case_id}/rate",
        data={"csrf_token": token, "right_outcome": "no", "correct_outcome": "resolve",
              "handoff_score": "2", "missing": XSS[:2000], "comment": XSS},
    )  # fmt: skip
    assert rated.status_code == 200, rated.text[:400]
    done = world.client.post(
        f"/queue/{case_id}/resolve", data={"csrf_token": token, "summary": XSS, "role": "c_level"}
    )
    assert done.status_code == 200, done.text[:400]
    for url in (f"/case/{case_id}", f"/queue/{case_id}", "/queue", "/"):
        _clean(world.client.get(url).text)
    failed = world.client.post(
        f"/queue/{case_id}/rate", data={"csrf_token": token, "handoff_score": XSS, "comment": XSS}
    )
    assert failed.status_code == 422
    _clean(failed.text)
    exported = world.client.get(f"/queue/{case_id}/regression.json")
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("application/json")
    assert exported.headers["x-content-type-options"] == "nosniff"
    assert orjson.loads(exported.content)["review"]["comment"] == XSS


def test_hostile_policy_titles_are_escaped(
    template_store: Path, tmp_path: Path, saas: Library
) -> None:
    """A library folder's policy titles, citations and sources are text on the pages."""
    hostile = dataclasses.replace(
        saas,
        policies=tuple(
            dataclasses.replace(p, title=XSS, citation=XSS) for p in saas.policies
        ),
    )  # fmt: skip
    path = tmp_path / "console.db"
    path.write_bytes(template_store.read_bytes())
    world = make_world(path, hostile)
    try:
        sign_in(world.client, "vic")
        for url in ("/library", f"/case/{world.escalated()[0]}"):
            page = world.client.get(url)
            assert page.status_code == 200
            _clean(page.text)
    finally:
        world.client.close()
        world.engine.dispose()


def test_every_page_sends_a_strict_content_security_policy(world: World) -> None:
    """Pages, error pages and the sign-in page allow no inline script, no framing."""
    assert "script-src 'self';" in world.client.get("/login").headers["content-security-policy"]
    sign_in(world.client, "vic")
    for url in (
        "/",
        "/cases",
        "/queue",
        "/library",
        "/case/NOPE",
        f"/queue/{world.escalated()[0]}",
    ):
        policy = world.client.get(url).headers["content-security-policy"]
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy


# ---------------------------------------------------------------------- CSRF


def test_another_sessions_token_is_refused(world: World, saas: Library) -> None:
    """Another session's CSRF token, in a form or an HTMX header, is refused (403)."""
    other = TestClient(world.client.app)
    sign_in(other, "hana")
    stolen = csrf_of(other.get("/cases"))
    sign_in(world.client, "sam")
    case_id = world.escalated()[0]
    form = world.client.post(f"/queue/{case_id}/accept", data={"csrf_token": stolen})
    assert form.status_code == 403
    htmx = world.client.post(
        f"/queue/{case_id}/accept", headers={"HX-Request": "true", "X-CSRF-Token": stolen}
    )
    assert htmx.status_code == 403
    assert world.client.post("/logout", data={"csrf_token": stolen}).status_code == 403
    assert world.client.get("/logout").status_code == 405  # GET never signs out
    with Session(world.engine) as session:
        assert session.get(m.Acceptance, (case_id, 1)) is None
    own = world.client.post(
        f"/queue/{case_id}/accept",
        headers={"HX-Request": "true", "X-CSRF-Token": _work_token(world, case_id)},
    )
    assert own.status_code == 200 and "You accepted" in own.text


# ---------------------------------------------------------------------- sessions


def test_sign_in_starts_a_new_session(world: World) -> None:
    """The token of the sign-in form's session is not the signed-in session's (fixation)."""
    before = csrf_of(world.client.get("/login"))
    sign_in(world.client, "sam")
    after = csrf_of(world.client.get("/cases"))
    assert before != after


def test_secure_cookies_when_configured(
    template_store: Path, tmp_path: Path, saas: Library
) -> None:
    """With secure_cookies the session cookie is Secure, HttpOnly and SameSite=Lax."""
    path = tmp_path / "console.db"
    path.write_bytes(template_store.read_bytes())
    world = make_world(path, saas, secure_cookies=True)
    try:
        world.client.base_url = world.client.base_url.copy_with(scheme="https")
        cookie = sign_in(world.client, "sam").headers["set-cookie"]
        assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    finally:
        world.client.close()
        world.engine.dispose()


def test_an_expired_or_forged_session_is_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cookie signed session_hours ago, or signed with another secret, signs in no one."""
    with Session(world.engine) as session:
        stored = session.get(m.User, "hana")
        assert stored is not None
        key = fingerprint(stored.password_hash)
    codec = Sessions(SECRET, 3600)
    monkeypatch.setattr(time, "time", lambda: real_time() - 13 * 3600)  # (itsdangerous's)
    old = codec.dump(SessionData("t" * 20, "hana", key))
    monkeypatch.undo()
    world.client.cookies.set(COOKIE, old)
    assert world.client.get("/", follow_redirects=False).status_code == 303
    forged = Sessions("another-secret-of-at-least-32-bytes!!", 3600).dump(
        SessionData("t" * 20, "hana", key)
    )
    world.client.cookies.set(COOKIE, forged)
    assert world.client.get("/", follow_redirects=False).status_code == 303
    world.client.cookies.set(COOKIE, codec.dump(SessionData("t" * 20, "hana", key)))
    assert world.client.get("/", follow_redirects=False).status_code == 200


def test_the_sign_in_page_does_not_prolong_a_session(world: World) -> None:
    """Visiting /login or failing a sign-in while signed in does not re-sign the cookie."""
    sign_in(world.client, "sam")
    page = world.client.get("/login")
    assert page.status_code == 200 and "set-cookie" not in page.headers
    token = csrf_of(page)
    failed = world.client.post(
        "/login", data={"name": "sam", "password": "wrong password!!", "csrf_token": token}
    )
    assert failed.status_code == 401 and "set-cookie" not in failed.headers


def test_a_changed_password_a_demotion_or_a_deletion_applies_at_once(world: World) -> None:
    """A demotion, a new password or a deletion in the store applies to the next request."""
    sign_in(world.client, "sam")
    case_id = world.escalated()[0]
    token = _work_token(world, case_id)
    with Session(world.engine) as session, session.begin():
        session.execute(update(m.User).where(m.User.name == "sam").values(role="viewer"))
    refused = world.client.post(f"/queue/{case_id}/accept", data={"csrf_token": token})
    assert refused.status_code == 403
    save_user(world.engine, "sam", hash_password("a new password, long"), "senior",
              "senior_support", datetime.now(UTC))  # fmt: skip
    assert world.client.get("/", follow_redirects=False).status_code == 303
    sign_in(world.client, "sam", "a new password, long")
    assert world.client.get("/").status_code == 200
    with Session(world.engine) as session, session.begin():
        session.execute(delete(m.User).where(m.User.name == "sam"))
    assert world.client.get("/", follow_redirects=False).status_code == 303


def test_signing_out_ends_the_session(world: World) -> None:
    """After sign-out the old cookie, replayed, signs in no one."""
    sign_in(world.client, "sam")
    cookie = world.client.cookies.get(COOKIE)
    assert cookie
    token = csrf_of(world.client.get("/"))
    out = world.client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303
    world.client.cookies.set(COOKIE, cookie)
    assert world.client.get("/", follow_redirects=False).status_code == 303


def test_a_stranger_locking_an_account_does_not_end_its_sessions(world: World) -> None:
    """Five wrong passwords from someone else lock sign-in, but not a signed-in session."""
    sign_in(world.client, "sam")
    stranger = TestClient(world.client.app)
    for _ in range(5):
        sign_in(stranger, "sam", "not the password!")
    assert sign_in(stranger, "sam").status_code == 401  # locked to sign-in
    assert world.client.get("/", follow_redirects=False).status_code == 200


# ---------------------------------------------------------------------- sign-in


def test_unknown_names_cannot_be_told_from_known_ones(world: World) -> None:
    """An unknown name gets a known name's answers, the lockout after five failures too."""
    answers: dict[str, list[tuple[int, str]]] = {}
    for name in ("sam", "nobody-here"):
        client = TestClient(world.client.app)
        found = []
        for _ in range(6):
            response = sign_in(client, name, "not the password!")
            text = response.text.split('id="login-error">')[1].split("</p>")[0]
            found.append((response.status_code, text))
        answers[name] = found
    assert answers["sam"] == answers["nobody-here"]
    assert "locked" in answers["sam"][-1][1]


def test_sign_in_takes_as_long_for_an_unknown_name(world: World) -> None:
    """An unknown name is verified against a dummy argon2 hash: roughly as slow."""

    def timed(name: str) -> float:
        client = TestClient(world.client.app)
        token = csrf_of(client.get("/login"))
        start = time.perf_counter()
        client.post("/login", data={"name": name, "password": "x" * 16, "csrf_token": token})
        return time.perf_counter() - start

    known = min(timed("hana") for _ in range(3))
    unknown = min(timed("nobody") for _ in range(3))
    assert unknown > known / 3


@pytest.mark.parametrize(
    "target",
    ["//evil.example", "///evil.example", "https:evil.example", "https://evil.example",
     "/\\evil.example", "\\\\evil.example", "/%5C%5Cevil.example\\", "javascript:alert(1)",
     "/\t/evil.example", " //evil.example", "%2F%2Fevil.example", "/path\r\nSet-Cookie: x=1"],
)  # fmt: skip
def test_next_never_leaves_the_site(world: World, target: str) -> None:
    """After sign-in `next` goes to a path of this site, never to another host."""
    token = csrf_of(world.client.get("/login", params={"next": target}))
    response = world.client.post(
        "/login", data={"name": "vic", "password": PASSWORD, "csrf_token": token, "next": target},
        follow_redirects=False,
    )  # fmt: skip
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert "\n" not in location and "\r" not in location and "\\" not in location
    htmx = TestClient(world.client.app)
    token = csrf_of(htmx.get("/login"))
    redirected = htmx.post(
        "/login", data={"name": "vic", "password": PASSWORD, "csrf_token": token, "next": target},
        headers={"HX-Request": "true"},
    )  # fmt: skip
    assert redirected.headers["hx-redirect"].startswith("/")
    assert not redirected.headers["hx-redirect"].startswith(("//", "/\\"))


# ---------------------------------------------------------------------- authorization


def test_a_viewer_may_post_nothing(world: World) -> None:
    """A viewer's accept, resolve and rate are 403 even with a valid token."""
    sign_in(world.client, "vic")
    token = csrf_of(world.client.get("/cases"))
    case_id = world.escalated()[0]
    for action in ("accept", "resolve", "rate"):
        data = {"csrf_token": token, "summary": "x", "role": "c_level", "handoff_score": "5"}
        assert world.client.post(f"/queue/{case_id}/{action}", data=data).status_code == 403
    with Session(world.engine) as session:
        assert not session.scalars(select(m.HumanResolution)).all()
        assert not session.scalars(select(m.Review)).all()


def test_a_senior_may_not_work_another_teams_case_by_its_id(world: World) -> None:
    """Another team's case is 403 to a senior, odd ids 404; the head of support may work it."""
    sign_in(world.client, "fin")
    token = csrf_of(world.client.get("/cases"))
    case_id = world.escalated()[0]
    data = {"csrf_token": token, "summary": "x", "role": "finance", "handoff_score": "5",
            "right_outcome": "yes", "right_target": "yes"}  # fmt: skip
    for action in ("accept", "resolve", "rate"):
        assert world.client.post(f"/queue/{case_id}/{action}", data=data).status_code == 403
    for odd in ("..%2F..%2Fcase", "%00", "x'%20OR%201=1--", "%2e%2e", case_id + "%20"):
        response = world.client.post(f"/queue/{odd}/accept", data=data)
        assert response.status_code in (404, 405), (odd, response.status_code)
    with Session(world.engine) as session:
        assert session.get(m.Acceptance, (case_id, 1)) is None
        assert not session.scalars(select(m.Review)).all()
    head = TestClient(world.client.app)
    sign_in(head, "hana")
    page = head.get(f"/queue/{case_id}")
    done = head.post(f"/queue/{case_id}/accept", data={"csrf_token": csrf_of(page)})
    assert done.status_code == 200


def test_downloads_need_a_signed_in_user(world: World) -> None:
    """The CSVs and the regression case send a stranger to sign in."""
    case_id = world.escalated()[0]
    for url in ("/cases.csv", "/overview/outcomes.csv", f"/queue/{case_id}/regression.json",
                f"/queue/{case_id}/regression.json?reviewer=sam", "/library/lint"):  # fmt: skip
        response = world.client.get(url, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


# ---------------------------------------------------------------------- CSV injection


FORMULAS = ('=HYPERLINK("http://evil")', "+1+cmd", "-2+cmd", "@SUM(A1)", "\tx", "\rx")


def _cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def test_csv_cells_never_start_a_formula(world: World) -> None:
    """A text cell of any CSV starting with = + - @, a tab or a CR is quoted with a '."""
    ids = world.escalated()
    with Session(world.engine) as session, session.begin():
        for case_id, formula in zip(ids, FORMULAS, strict=False):
            session.execute(
                update(m.Case).where(m.Case.id == case_id)
                .values(ticket_id=formula, first_reason=formula, escalate_to=formula)
            )  # fmt: skip
    sign_in(world.client, "vic")
    texts = [world.client.get("/cases.csv").text]
    for table in ("outcomes", "first_reasons", "escalated_to", "money", "resolved_by", "sla"):
        response = world.client.get(f"/overview/{table}.csv")
        assert response.status_code == 200
        texts.append(response.text)
    cells = [c for t in texts for c in _cells(t)]
    assert any(c.startswith("'=HYPERLINK") for c in cells)
    for cell in cells:
        assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
        assert not (cell.startswith("-") and not _number(cell)), cell


def _number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------- input bounds


@pytest.mark.parametrize(
    "url",
    ["/cases?to=9999-12-31", "/cases?resolved_to=9999-12-31", "/cases?from=0001-01-01",
     "/cases?after=9999-12-31T23:59:59%2B14:00|x", "/cases?after=0001-01-01T00:00:00|x",
     "/cases.csv?to=9999-12-31", "/?to=9999-12-31", "/?from=0001-01-01",
     "/?baseline_from=0001-01-01&baseline_to=9999-12-31", "/overview/outcomes.csv?to=9999-12-31",
     "/cases?state=%ff%fe", "/cases?q=%00%ff", "/cases?q=" + "x" * 5000],
)  # fmt: skip
def test_far_dates_and_odd_queries_are_answered(world: World, url: str) -> None:
    """Far dates, odd bytes and long values in a query are a page or a 400, never a 500."""
    sign_in(world.client, "vic")
    response = world.client.get(url)
    assert response.status_code in (200, 400), (url, response.status_code, response.text[:300])
    assert "Traceback" not in response.text


@pytest.mark.parametrize(
    "form",
    [{"amount": "-1", "action_type": "refund", "currency": "EUR"},
     {"amount": "1e400", "action_type": "refund", "currency": "EUR"},
     {"amount": "nan", "action_type": "refund", "currency": "EUR"},
     {"amount": "10", "action_type": "refund", "currency": "E<R"},
     {"amount": "10", "action_type": "refund", "currency": "JPY"},
     {"amount": "10", "action_type": "<b>", "currency": "EUR"},
     {"amount": "10", "currency": "EUR"},
     {"role": "nobody"},
     {"summary": "x" * 5000},
     {"summary": ""}],
)  # fmt: skip
def test_bad_resolve_forms_are_messages(world: World, form: dict[str, str]) -> None:
    """Bad amounts, currencies, roles or summaries are a 422 on the page, nothing written."""
    sign_in(world.client, "hana")
    case_id = world.escalated()[0]
    data = {"csrf_token": _work_token(world, case_id), "summary": "done", "role": "c_level", **form}
    response = world.client.post(f"/queue/{case_id}/resolve", data=data)
    assert response.status_code == 422, response.text[:300]
    assert 'id="work-error"' in response.text
    with Session(world.engine) as session:
        assert not session.scalars(select(m.HumanResolution)).all()


def test_odd_bodies_are_refused_cleanly(world: World) -> None:
    """Non-UTF-8 bytes, hundreds of fields, a far estimate: an answer, never a 500."""
    sign_in(world.client, "hana")
    case_id = world.escalated()[0]
    token = _work_token(world, case_id)
    raw = world.client.post(
        f"/queue/{case_id}/accept",
        content=b"csrf_token=" + token.encode() + b"&estimated_resolution_at=%ff%fe\xff",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert raw.status_code in (400, 422), raw.status_code
    many = {f"f{i}": "x" for i in range(500)}
    crowded = world.client.post(f"/queue/{case_id}/accept", data={"csrf_token": token, **many})
    assert crowded.status_code in (400, 413, 422), crowded.status_code
    for estimate in ("99999-01-01T00:00", "0001-01-01T00:00", "9999-12-31T23:59:59-23:59"):
        far = world.client.post(
            f"/queue/{case_id}/accept",
            data={"csrf_token": token, "estimated_resolution_at": estimate},
        )
        assert far.status_code == 422, (estimate, far.status_code)
    huge = world.client.post(
        "/login", content=b"name=" + b"a" * 5_000_000, headers={"content-type":
                                                                 "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert huge.status_code in (400, 403, 413)


# ---------------------------------------------------------------------- money


def test_a_senior_may_not_grant_under_a_role_above_their_own(world: World) -> None:
    """A senior may not grant under a role above theirs (c_level); a head of support may."""
    sign_in(world.client, "sam")
    case_id = world.escalated()[0]
    token = _work_token(world, case_id)
    offered = _role_options(world.client.get(f"/queue/{case_id}").text)
    assert "c_level" not in offered and "vp_support" not in offered
    assert "senior_support" in offered and "support_manager" in offered
    for role, amount in (("c_level", "1000000"), ("vp_support", "20000"), ("c_level", "")):
        data: dict[str, Any] = {"csrf_token": token, "summary": "Refunded", "role": role}
        if amount:
            data |= {"action_type": "refund", "amount": amount, "currency": "EUR"}
        refused = world.client.post(f"/queue/{case_id}/resolve", data=data)
        assert refused.status_code == 403, (role, refused.status_code, refused.text[:300])
        assert "authority" in refused.text
    with Session(world.engine) as session:
        assert not session.scalars(select(m.HumanResolution)).all()
    head = TestClient(world.client.app)
    sign_in(head, "hana")
    head_page = head.get(f"/queue/{case_id}")
    assert "c_level" in _role_options(head_page.text)
    done = head.post(
        f"/queue/{case_id}/resolve",
        data={"csrf_token": csrf_of(head_page), "summary": "Refunded", "role": "c_level",
              "action_type": "refund", "amount": "1000000", "currency": "EUR"},
    )  # fmt: skip
    assert done.status_code == 200, done.text[:300]


def _role_options(page: str) -> str:
    """The options of the resolve form's role select."""
    return page.split('<select id="role" name="role">')[1].split("</select>", maxsplit=1)[0]

"""The web console in a real browser: Debian's Chromium driven by chromedriver (Selenium),
the app served by uvicorn on a loopback port. A senior signs in with the keyboard, filters
the cases, drills down to a case, accepts, resolves and rates it, and the help desk and the
audit log show it; a viewer is refused the review form; a form without its CSRF token is
refused. Screenshots go to artifacts/screenshots/.

Without chromium and chromedriver (scripts/test-browser.sh installs them) the tests are
skipped on a developer's machine and fail under CI=true."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.fakes.served import ServedApp
from tests.integration.runner.test_runner import make_store
from tier2.entrypoints.http import HttpLimits, create_app
from tier2.entrypoints.http.console import Console, ConsoleSettings
from tier2.entrypoints.http.console._security import hash_password
from tier2.helpdesk.local import LocalHelpDesk
from tier2.store import audit
from tier2.store import models as m
from tier2.store.console import save_user

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "correct horse battery staple"
SECRET = "browser-test-session-secret-0123456789abcdef"
TOKEN = "browser-test-api-token-0123456789"
WAIT = 15  # seconds any wait in the browser may take
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--window-size=1280,1800",
)  # fmt: skip


def _browser() -> tuple[str, str]:
    """Chromium and chromedriver, or a skip (a failure under CI=true)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        chromium = None
    if chromium and driver:
        return chromium, driver
    why = "no chromium, chromedriver or selenium: run scripts/test-browser.sh (as root)"
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, ServedApp]]:
    """The console over a store of 40 decided cases, served on a loopback port."""
    path = tmp_path_factory.mktemp("browser") / "console.db"
    engine, library, runner = make_store(f"sqlite:///{path}", n=40)
    runner.run_once()
    hashed = hash_password(PASSWORD)
    for name, role, team in (("sam", "senior", "senior_support"), ("vic", "viewer", None)):
        save_user(engine, name, hashed, role, team, datetime.now(UTC))
    console = Console(library, engine, LocalHelpDesk(engine), ConsoleSettings(secret=SECRET))
    app = create_app(library, engine, [TOKEN], console=console)
    with ServedApp(app, HttpLimits(), timeout=20) as server:
        yield engine, server
    engine.dispose()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium (its own profile: no cookies), every wait bounded."""
    chromium, driver_path = _browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(WAIT * 2)
    driver.set_script_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()


def _shot(driver: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _wait_for(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _text_in(driver: Any, css: str, text: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, WAIT).until(
        ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text)
    )


def _sign_in(driver: Any, base: str, name: str) -> None:
    """With the keyboard: the name, Tab, the password, Enter."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.get(f"{base}/login")
    field = _wait_for(driver, "#name")
    field.send_keys(name, Keys.TAB)
    driver.switch_to.active_element.send_keys(PASSWORD, Keys.ENTER)
    _wait_for(driver, "form.signout")
    assert name in driver.find_element(By.CSS_SELECTOR, "form.signout").text


def _escalated(engine: Any) -> str:
    with Session(engine) as session:
        found = session.scalars(
            select(m.Case.id)
            .where(m.Case.state == "escalated", m.Case.escalate_to == "senior_support")
            .where(m.Case.resolved_at.is_(None))
            .where(
                ~select(m.HumanResolution.id).where(m.HumanResolution.case_id == m.Case.id).exists()
            )
            .order_by(m.Case.received_at.desc(), m.Case.id.desc())
        ).first()
    assert found is not None
    return found


def test_a_senior_drills_down_accepts_resolves_and_rates(
    served: tuple[Any, ServedApp], browser: Any
) -> None:
    """Sign in, filter the cases (HTMX), open a case, work it: accept, resolve, rate; the
    ticket is resolved with the note, the audit log has the entries and verifies."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    engine, server = served
    base = f"http://127.0.0.1:{server.port}"
    _sign_in(browser, base, "sam")
    _wait_for(browser, "#chart-outcomes")
    _shot(browser, "01-overview")
    assert not [e for e in browser.get_log("browser") if "Content Security Policy" in e["message"]]
    browser.get(f"{base}/cases")
    Select(_wait_for(browser, "#f-outcome")).select_by_value("escalate")
    case_id = _escalated(engine)
    _text_in(browser, "#case-table caption", "newest first")
    _wait_for(browser, f'#case-table a[href="/case/{case_id}"]')
    assert "outcome=escalate" in browser.current_url  # the filter is in the address
    _shot(browser, "02-cases-filtered")
    browser.find_element(By.CSS_SELECTOR, f'a[href="/case/{case_id}"]').click()
    _text_in(browser, "h1", f"Case {case_id}")
    assert "Verified:" in browser.find_element(By.ID, "audit").text
    _shot(browser, "03-case")
    browser.find_element(By.CSS_SELECTOR, "a.button").click()
    _wait_for(browser, "#accept-button").click()
    _text_in(browser, "#work-panel", f"You accepted case {case_id}.")
    _shot(browser, "04-accepted")
    _wait_for(browser, "#summary").send_keys("Refunded the duplicate charge <for real>.")
    Select(browser.find_element(By.ID, "role")).select_by_value("senior_support")
    browser.find_element(By.ID, "resolve-button").click()
    _text_in(browser, "#work-panel", "is resolved")
    _shot(browser, "05-resolved")
    for box in ("right_outcome", "right_target"):
        browser.find_element(By.ID, box).click()
    Select(browser.find_element(By.ID, "handoff_score")).select_by_value("4")
    browser.find_element(By.ID, "rate-button").click()
    _text_in(browser, "#work-panel", "Your rating of tier2's decision is saved: score 95")
    _shot(browser, "06-rated")
    with Session(engine) as session:
        case = session.get(m.Case, case_id)
        assert case is not None
        ticket = session.get(m.Ticket, case.ticket_id)
        assert ticket is not None and ticket.status == "resolved"
        note = session.scalars(
            select(m.TicketMessage).where(m.TicketMessage.ticket_id == case.ticket_id)
            .order_by(m.TicketMessage.seq.desc())
        ).first()  # fmt: skip
        assert note is not None and "Refunded the duplicate charge &lt;for real&gt;." in note.body
        events = session.scalars(
            select(m.AuditEntry.event).where(m.AuditEntry.case_id == case_id)
        ).all()
        assert events[-3:] == ["accepted", "resolved_by_human", "reviewed"]
        assert audit.verify(session).intact
    browser.get(f"{base}/case/{case_id}")
    _text_in(browser, "#people", "Resolved by sam (senior_support)")
    _shot(browser, "07-case-after")


def test_a_viewer_is_refused_the_review_form(served: tuple[Any, ServedApp], browser: Any) -> None:
    """A viewer reads the case but its review form is a 403 page."""
    engine, server = served
    base = f"http://127.0.0.1:{server.port}"
    _sign_in(browser, base, "vic")
    case_id = _escalated(engine)
    browser.get(f"{base}/queue/{case_id}")
    _text_in(browser, "h1", "Not allowed")
    assert "the review forms are for seniors" in browser.page_source
    _shot(browser, "08-viewer-refused")


def test_a_form_without_its_csrf_token_is_refused(
    served: tuple[Any, ServedApp], browser: Any
) -> None:
    """The accept form posted with its CSRF token taken out: refused, nothing accepted."""
    engine, server = served
    base = f"http://127.0.0.1:{server.port}"
    _sign_in(browser, base, "sam")
    case_id = _escalated(engine)
    browser.get(f"{base}/queue/{case_id}")
    button = _wait_for(browser, "#accept-button")
    browser.execute_script(
        "document.querySelector('form[action$=\"/accept\"] input[name=csrf_token]').remove()"
    )
    button.click()
    _text_in(browser, "#work-panel", "security token is missing")
    _shot(browser, "09-csrf-refused")
    with Session(engine) as session:
        assert session.get(m.Acceptance, (case_id, 1)) is None


def test_the_overview_shows_the_figures_of_tier2_report(
    served: tuple[Any, ServedApp], browser: Any
) -> None:
    """The overview's headline and outcome counts, read off the page, equal `tier2 report
    --format json` on the same store; a count drills down to the cases behind it."""
    import json

    from selenium.webdriver.common.by import By
    from typer.testing import CliRunner

    from tier2.entrypoints.cli import app

    engine, server = served
    base = f"http://127.0.0.1:{server.port}"
    _sign_in(browser, base, "vic")
    _wait_for(browser, "dl.tiles")
    tiles = {
        tile.find_element(By.TAG_NAME, "dt").text: tile.find_element(By.TAG_NAME, "dd").text
        for tile in browser.find_elements(By.CSS_SELECTOR, "dl.tiles > div")
    }
    printed = CliRunner().invoke(
        app, ["report", "--db", engine.url.render_as_string(), "--format", "json"]
    )
    assert printed.exit_code == 0, printed.output
    report = json.loads(printed.output)
    assert int(tiles["Escalations received"].replace(",", "")) == report["escalations"]
    median = float(tiles["Median cycle time"].split()[0].replace(",", ""))
    assert median == report["cycle_time"]["median_business_hours"]
    shown = {
        row.find_element(By.TAG_NAME, "th").text: int(
            row.find_element(By.TAG_NAME, "td").text.replace(",", "")
        )
        for row in browser.find_elements(
            By.CSS_SELECTOR, "section[aria-labelledby='out-h'] tbody tr"
        )
    }
    assert shown == report["outcomes"]
    _shot(browser, "08-overview-equals-report")
    link = browser.find_element(By.CSS_SELECTOR, "section[aria-labelledby='out-h'] tbody tr a")
    count = int(link.text.replace(",", ""))
    link.click()
    _wait_for(browser, "#case-table")
    assert "outcome=" in browser.current_url
    rows = browser.find_elements(By.CSS_SELECTOR, "#case-table tbody tr")
    assert len(rows) == min(count, 50)

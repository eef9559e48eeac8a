"""Browser acceptance tests of the admin app: Playwright driving Debian's Chromium against a running Kanal.

One Chromium per test session (starting it is the slow part); each test gets its own browser context
(fresh cookies), its own Kanal on a fresh SQLite database with workers running (the outbox reaches the
reference CRM) and its own admins. See tests/e2e/README.md for what to install and where screenshots go.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml
from sqlalchemy import insert, select
from sqlmodel import col

from crm_sim.server import RunningCRMSim
from gateway.db import read_session, write_connection
from gateway.ids import new_id, new_ticket_code
from gateway.inbox import InboundMessageRow, RawDelivery
from normalizer.gazetteer import load_gazetteer
from review_queue.auth import create_admin
from review_queue.tables import AdminRole, Report, ReportEvent
from tests.conftest import base_settings
from tests.support.databases import sqlite_url
from tests.support.servers import RunningGateway, wait_until

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, Dialog, Page, Playwright

CHROMIUM = Path(os.environ.get("KANAL_TEST_CHROMIUM", "/usr/bin/chromium"))
#: Set by .ci/run: a missing browser is then a failure, not a skip, so CI cannot pass without these tests.
REQUIRE_BROWSER = os.environ.get("KANAL_TEST_REQUIRE_BROWSER") == "1"
INSTALL_HINT = (
    "install Debian's Chromium (`apt-get install -y chromium`, giving /usr/bin/chromium) and the Python "
    "package (`.venv/bin/pip install -e '.[test]'`, which pins playwright); never `playwright install`, "
    "whose browser download fails on a closed network"
)
#: Without the background-networking flags Chromium keeps calling Google's hosts, which the closed
#: network refuses; the rest keep a root, headless, GPU-less machine happy.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Screenshots are also copied here (var/ is gitignored) so they outlive pytest's temporary folders.
SCREENSHOT_COPY_DIR = Path(os.environ.get("KANAL_E2E_SCREENSHOTS", REPO_ROOT / "var" / "screenshots"))

PASSWORD = "correct-horse-battery"
GAMBIR = "31.71.01.1001"  # kelurahan Gambir, kecamatan Gambir, Jakarta Pusat
CIDENG = "31.71.01.1002"  # kelurahan Cideng, the same kecamatan
MENTENG = "31.71.06.1001"  # kelurahan Menteng, Jakarta Pusat
WEB_FORM = "web_form:balaiwarga"
API = "api:partner"


def _missing_browser() -> str | None:
    """What is missing to run the browser tests, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package playwright is not installed"
    return None


# Package scope, not session: while Playwright's sync API is open its event loop is the thread's
# current one, and every later `asyncio.run()` in the suite would fail. So it closes after tests/e2e.
@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    missing = _missing_browser()
    if missing:
        message = f"browser tests need Chromium and Playwright: {missing}; {INSTALL_HINT}"
        if REQUIRE_BROWSER:
            pytest.fail(f"KANAL_TEST_REQUIRE_BROWSER=1 and {message}", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's Chromium, headless, one for all the browser tests; `launch` gives it a fresh, empty profile."""
    launched = playwright_driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@dataclass
class Tab:
    """One page of a fresh browser context, with every JavaScript dialog and page error it saw."""

    page: Page
    base_url: str
    dialogs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def goto(self, path: str) -> int:
        """Open `path`; the HTTP status of the answer (after redirects)."""
        response = self.page.goto(self.base_url + path)
        assert response is not None, f"no answer for {path}"
        return response.status

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        """Through the real login form, as a person does; ends on the page the form sends them to."""
        self.goto("/admin/login")
        self.page.fill("#username", username)
        self.page.fill("#password", password)
        with self.page.expect_navigation():
            self.page.click("form[action^='/admin/login'] button[type=submit]")
        assert "/admin/login" not in self.page.url, f"sign-in as {username} failed:\n{self.body_text()}"

    def body_text(self) -> str:
        return self.page.inner_text("body")


def _on_dialog(tab: Tab) -> Callable[[Dialog], None]:
    def record(dialog: Dialog) -> None:
        tab.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    return record


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(locale="id-ID", timezone_id="Asia/Jakarta", viewport={"width": 1280, "height": 900})
    made.set_default_timeout(15_000)
    yield made
    made.close()


@dataclass
class Kanal:
    """A running Kanal for one test, with the helpers the tests share."""

    gateway: RunningGateway
    crm: RunningCRMSim
    context: BrowserContext

    @property
    def url(self) -> str:
        return self.gateway.url

    @property
    def engine(self) -> Any:
        return self.gateway.runtime.engine

    def admin(self, username: str, role: AdminRole = AdminRole.WILAYAH_ADMIN, **scope: Any) -> str:
        """An account with `scope` (`scope_wilayah=[...]`, `scope_channels=[...]`); its username."""
        create_admin(self.engine, username=username, password=PASSWORD, role=role, **scope)
        return username

    def tab(self) -> Tab:
        """A new page in this test's browser context (one cookie jar: sign in once per test)."""
        tab = Tab(self.context.new_page(), self.url)
        tab.page.on("dialog", _on_dialog(tab))
        tab.page.on("pageerror", lambda error: tab.errors.append(str(error)))
        return tab

    def signed_in(self, username: str) -> Tab:
        tab = self.tab()
        tab.sign_in(username)
        return tab

    @contextmanager
    def fresh_browser(self) -> Iterator[Kanal]:
        """This Kanal seen from another browser context (another person's cookies)."""
        assert self.context.browser is not None
        other = self.context.browser.new_context(locale="id-ID", timezone_id="Asia/Jakarta")
        other.set_default_timeout(15_000)
        try:
            yield Kanal(self.gateway, self.crm, other)
        finally:
            other.close()

    def stored_or_none(self, ticket: str) -> Report | None:
        with read_session(self.engine) as session:
            found = session.execute(select(Report).where(col(Report.ticket_code) == ticket)).scalar_one_or_none()
            if found is not None:
                session.expunge(found)
            return found

    def stored(self, ticket: str) -> Report:
        """The report as the database holds it now."""
        with read_session(self.engine) as session:
            found: Report = session.execute(select(Report).where(col(Report.ticket_code) == ticket)).scalar_one()
            session.expunge(found)
            return found

    def report(
        self,
        *,
        channel_id: str = WEB_FORM,
        kelurahan: str | None = GAMBIR,
        text: str = "Jalan berlubang di depan sekolah, sudah dua minggu, hubungi 0812-3456-7890",
        masked: str | None = None,
        sender: dict[str, Any] | None = None,
        **columns: Any,
    ) -> Report:
        """A report waiting for review, stored as the normalizer leaves one (with its delivery and message)."""
        lineage = {r.level: r.code for r in load_gazetteer().lineage(kelurahan)} if kelurahan else {}
        delivery_id, message_id, ticket = new_id(), new_id(), new_ticket_code()
        report = Report(
            ticket_code=ticket,
            channel_id=channel_id,
            inbound_message_id=message_id,
            text_original=text,
            text_clean=text,
            text_masked=masked if masked is not None else re.sub(r"08[\d-]{8,}\d", "[telepon]", text),
            kota_code=lineage.get("kota"),
            kecamatan_code=lineage.get("kecamatan"),
            kelurahan_code=lineage.get("kelurahan"),
            place={"kelurahan_code": kelurahan, "address_text": "Jl. Medan Merdeka Barat"} if kelurahan else None,
            location={"address": "Jl. Medan Merdeka Barat"},
            sender=sender,
            **({"completeness": 80} | columns),
        )
        with write_connection(self.engine) as connection:
            body = json.dumps({"text": text, **({"sender": sender} if sender else {})}).encode()
            connection.execute(
                insert(RawDelivery),
                [
                    {
                        "id": delivery_id,
                        "channel_id": channel_id,
                        "received_at": report.received_at,
                        "headers": {},
                        "body": body,
                    }
                ],
            )
            connection.execute(
                insert(InboundMessageRow),
                [
                    {
                        "id": message_id,
                        "channel_id": channel_id,
                        "external_id": new_id(),
                        "ticket_code": ticket,
                        "delivery_id": delivery_id,
                        "received_at": report.received_at,
                        "message": {"text": text, **({"sender": sender} if sender else {})},
                        "state": "normalized",
                        "delivery_count": 1,
                        "attempts": 1,
                    }
                ],
            )
            connection.execute(insert(Report), [report.model_dump()])
            # As the normalizer records it: the status page's "received" step.
            created = ReportEvent(
                report_id=report.id, actor="system:normalizer", action="created", after={"state": report.state}
            )
            connection.execute(insert(ReportEvent), [created.model_dump()])
        return report


def kanal_settings_for(database_url: str, crm: RunningCRMSim, **extra_channels: dict[str, Any]) -> dict[str, Any]:
    settings = base_settings(database_url, crm.base_url)
    settings["channels"].update(extra_channels)
    # The citizen messages Kanal ships (the "ask for info" text among them), sent without delay.
    shipped = yaml.safe_load((REPO_ROOT / "config" / "notifications.yaml").read_text(encoding="utf-8"))
    settings["notifications"] = shipped["notifications"] | {
        "poll_interval_seconds": 0.1,
        "backoff_base_seconds": 0.1,
        "backoff_cap_seconds": 0.2,
    }
    return settings


@pytest.fixture
def make_kanal(tmp_path: Path, crm: RunningCRMSim, context: BrowserContext) -> Iterator[Callable[..., Kanal]]:
    """Start Kanal (SQLite, workers on, the reference CRM); keyword arguments add channels or settings."""
    running: list[RunningGateway] = []

    def start(channels: dict[str, dict[str, Any]] | None = None, **settings: Any) -> Kanal:
        configured = kanal_settings_for(sqlite_url(tmp_path), crm, **(channels or {}))
        configured.update(settings)
        gateway = RunningGateway(configured).__enter__()
        running.append(gateway)
        return Kanal(gateway, crm, context)

    yield start
    for gateway in running:
        gateway.__exit__(None, None, None)


@pytest.fixture
def kanal(make_kanal: Callable[..., Kanal]) -> Kanal:
    return make_kanal()


@pytest.fixture(scope="session")
def screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture
def screenshot(screenshot_dir: Path) -> Callable[[Tab, str], Path]:
    """Save a full-page PNG under pytest's temporary folder and copy it to var/screenshots/."""

    def save(tab: Tab, name: str) -> Path:
        path = screenshot_dir / f"{name}.png"
        tab.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000, f"{path} looks empty"
        SCREENSHOT_COPY_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, SCREENSHOT_COPY_DIR / path.name)
        return path

    return save


def crm_requests(crm: RunningCRMSim) -> list[dict[str, Any]]:
    """Every service request the reference CRM stored lately (its Open311 search, newest window)."""
    response = httpx.get(f"{crm.base_url}requests.json", timeout=10)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


def wait_for_crm_request(crm: RunningCRMSim, ticket: str, *, timeout: float = 30) -> dict[str, Any]:
    """The CRM request whose description starts with `ticket` (open311.description writes "[TICKET] ...")."""

    def stored() -> dict[str, Any] | None:
        return next((r for r in crm_requests(crm) if f"[{ticket}]" in (r.get("description") or "")), None)

    found = wait_until(stored, timeout=timeout, interval=0.2, what=f"the CRM request of {ticket}")
    assert found is not None
    return found

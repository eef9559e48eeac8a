"""Fixtures shared by the whole suite: one database per test on each engine, the reference CRM, the gateway."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crm_sim.server import RunningCRMSim
from tests.support.databases import PostgresTemplates, sqlite_url
from tests.support.network_guard import LoopbackOnly
from tests.support.servers import RunningGateway

TEST_API_SECRET = "test-partner-secret-0123456789"
TEST_CRM_KEY = "test-crm-key"
TEST_SECRET_KEY = "test-secret-key-0123456789-abcdefghij"
ADMIN_PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def network_guard(monkeypatch: pytest.MonkeyPatch) -> LoopbackOnly:
    """Every test: no connection may leave loopback; attempts are refused and recorded."""
    guard = LoopbackOnly()
    guard.install(monkeypatch)
    return guard


@pytest.fixture(scope="session")
def pg_templates() -> Iterator[PostgresTemplates]:
    templates = PostgresTemplates()
    yield templates
    templates.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path, pg_templates: PostgresTemplates) -> Iterator[str]:
    """A fresh, empty database for this test, on each engine in turn."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path)
    else:
        with pg_templates.fresh() as url:
            yield url


@pytest.fixture
def postgres_url(pg_templates: PostgresTemplates) -> Iterator[str]:
    """A fresh PostgreSQL database, for what only PostgreSQL deployments do (several processes)."""
    with pg_templates.fresh() as url:
        yield url


@pytest.fixture
def crm(tmp_path: Path) -> Iterator[RunningCRMSim]:
    """The reference Open311 CRM on a loopback port, with its own SQLite file."""
    with RunningCRMSim(db_path=tmp_path / "crm.sqlite3", api_keys=[TEST_CRM_KEY]) as sim:
        yield sim


def base_settings(database_url: str, crm_url: str) -> dict[str, Any]:
    return {
        "database_url": database_url,
        "secret_key": TEST_SECRET_KEY,
        "log_level": "INFO",
        "channels": {
            "api:partner": {"type": "api", "settings": {"secret": TEST_API_SECRET}},
            # A partner whose every report is forwarded: the load tests send thousands of look-alike
            # messages without places, which a trusted channel would otherwise hold for review.
            "api:trusted": {
                "type": "api",
                "trusted": True,
                "hold_for_review": [],
                "settings": {"secret": TEST_API_SECRET},
            },
            "web_form:balaiwarga": {"type": "web_form", "settings": {"min_fill_seconds": 0}},
        },
        "crm": {
            "base_url": crm_url,
            "api_key": TEST_CRM_KEY,
            "backoff_base_seconds": 0.05,
            "backoff_cap_seconds": 0.5,
            "max_attempts": 100,
            "timeout_seconds": 5,
        },
        "workers": {"poll_interval_seconds": 0.05},
    }


@pytest.fixture
def settings(database_url: str, crm: RunningCRMSim) -> dict[str, Any]:
    """Settings for a gateway on this test's database, sending to this test's CRM. Change before use."""
    return base_settings(database_url, crm.base_url)


@pytest.fixture
def gateway(settings: dict[str, Any]) -> Iterator[RunningGateway]:
    with RunningGateway(settings) as running:
        yield running


@pytest.fixture
def http(gateway: RunningGateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        yield client


@pytest.fixture
def admin_headers(gateway: RunningGateway, http: httpx.Client) -> dict[str, str]:
    """A reviewer's bearer token, obtained the way an admin client gets one."""
    from review_queue.auth import create_admin
    from review_queue.tables import AdminRole

    create_admin(gateway.runtime.engine, username="rina", password=ADMIN_PASSWORD, role=AdminRole.REVIEWER)
    response = http.post("/api/v1/auth/token", data={"username": "rina", "password": ADMIN_PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


MakeGateway = Callable[[dict[str, Any]], RunningGateway]

"""The public status page limits look-ups per client address, misses costing more (both engines)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from gateway.routes.status import LookupBudget
from gateway.settings import KanalSettings
from kanal_testing.server import kanal_settings
from tests.admin.support import GAMBIR, add_report
from tests.support.servers import RunningGateway

UNKNOWN = "AB1CD-2EF3G"  # well formed, no such report


# -- the budget alone --------------------------------------------------------------------------------


def test_a_burst_then_a_wait_that_refills() -> None:
    budget = LookupBudget(burst=3, per_minute=6)  # one look-up back every ten seconds
    assert [budget.take("a", 100.0) for _ in range(3)] == [0, 0, 0]
    assert budget.take("a", 100.0) == 10
    assert budget.wait("a", 105.0) == 5, "waiting counts down"
    assert budget.take("a", 110.0) == 0, "one look-up came back"
    assert budget.take("b", 110.0) == 0, "another address has its own bucket"


def test_misses_cost_more_and_the_debt_is_bounded() -> None:
    budget = LookupBudget(burst=4, per_minute=60)  # one a second
    assert budget.take("a", 0.0) == 0
    budget.charge("a", 2, 0.0)  # a miss: three in all
    assert budget.take("a", 0.0) == 0
    assert budget.take("a", 0.0) == 1, "four found look-ups would have passed; one found and one miss use it up"
    for _ in range(100):
        budget.charge("a", 2, 0.0)
    assert budget.wait("a", 0.0) == 5, "a run of misses waits at most (1 + burst) / rate"


def test_memory_is_bounded() -> None:
    budget = LookupBudget(burst=1, per_minute=1, max_clients=100)
    for i in range(1000):
        budget.take(f"10.0.{i // 256}.{i % 256}", 0.0)
    assert len(budget._buckets) == 100


def test_defaults_and_validation() -> None:
    config = KanalSettings().status_page
    assert (config.enabled, config.burst, config.per_minute, config.miss_cost) == (True, 20, 10.0, 3.0)
    with pytest.raises(ValueError, match="miss_cost"):
        KanalSettings.model_validate({"status_page": {"miss_cost": 0.5}})


# -- through the gateway -----------------------------------------------------------------------------


@pytest.fixture
def gateway(database_url: str) -> Iterator[RunningGateway]:
    limits = {"burst": 3, "per_minute": 1, "miss_cost": 2}
    settings = kanal_settings(database_url, {}, workers={"enabled": False}, status_page=limits)
    with RunningGateway(settings) as running:
        yield running


def _as(client: str) -> dict[str, str]:
    # The test server trusts 127.0.0.1 as a proxy (uvicorn's default forwarded_allow_ips), as a
    # deployment trusts its reverse proxy: the limit counts the address the proxy names.
    return {"X-Forwarded-For": client}


def test_found_tickets_then_429_with_a_friendly_page(gateway: RunningGateway) -> None:
    ticket = add_report(gateway.runtime.engine, channel_id="web_form:balaiwarga", kelurahan=GAMBIR).ticket_code
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        found = [http.get(f"/status/{ticket}", headers=_as("198.51.100.1")) for _ in range(3)]
        assert [r.status_code for r in found] == [200, 200, 200]
        refused = http.get(f"/status/{ticket}", headers=_as("198.51.100.1"))
        assert refused.status_code == 429
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        assert "Terlalu banyak pencarian" in refused.text and "Tunggu sekitar 1 menit" in refused.text
        assert "default-src 'none'" in refused.headers["content-security-policy"]
        assert refused.headers["cache-control"] == "no-store"
        english = http.get(f"/status/{ticket}", params={"lang": "en"}, headers=_as("198.51.100.1"))
        assert english.status_code == 429 and "Too many look-ups" in english.text
        # The form says so at once too, instead of after a redirect.
        form = http.get("/status", params={"ticket": ticket}, headers=_as("198.51.100.1"))
        assert form.status_code == 429
        # Someone else is not held back, nor is the blank form.
        assert http.get(f"/status/{ticket}", headers=_as("198.51.100.2")).status_code == 200
        assert http.get("/status", headers=_as("198.51.100.1")).status_code == 200


def test_unknown_and_malformed_codes_cost_more(gateway: RunningGateway) -> None:
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        client = _as("2001:db8:1:2::10")
        assert http.get(f"/status/{UNKNOWN}", headers=client).status_code == 404
        assert http.get("/status", params={"ticket": "hello<b>"}, headers=client).status_code == 400
        # Two misses (two look-ups each) spent more than the burst of three.
        assert http.get(f"/status/{UNKNOWN}", headers=client).status_code == 429
        # The same IPv6 /64 is the same household or phone.
        assert http.get(f"/status/{UNKNOWN}", headers=_as("2001:db8:1:2::99")).status_code == 429
        assert http.get(f"/status/{UNKNOWN}", headers=_as("2001:db8:1:3::10")).status_code == 404


def test_a_well_formed_code_on_the_form_is_counted_once(gateway: RunningGateway) -> None:
    ticket = add_report(gateway.runtime.engine, channel_id="web_form:balaiwarga").ticket_code
    with httpx.Client(base_url=gateway.url, timeout=30, follow_redirects=True) as http:
        client = _as("192.0.2.7")
        typed = ticket.lower().replace("-", " ")
        pages = [http.get("/status", params={"ticket": typed}, headers=client) for _ in range(3)]
        assert [p.status_code for p in pages] == [200, 200, 200], "form + redirect: one look-up each"
        assert http.get("/status", params={"ticket": typed}, headers=client).status_code == 429


def test_the_limit_can_be_turned_off(database_url: str) -> None:
    settings = kanal_settings(database_url, {}, workers={"enabled": False}, status_page={"enabled": False, "burst": 1})
    with RunningGateway(settings) as gateway, httpx.Client(base_url=gateway.url, timeout=30) as http:
        assert [http.get(f"/status/{UNKNOWN}").status_code for _ in range(5)] == [404] * 5

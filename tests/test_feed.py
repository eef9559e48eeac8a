"""The unified feed: a CRM pulling validated reports in commit order, masked, at least once, never skipping one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from review_queue import feed
from review_queue.auth import create_admin
from review_queue.tables import AdminRole
from tests.conftest import ADMIN_PASSWORD, TEST_SECRET_KEY
from tests.support.api_client import complaint, post_api
from tests.support.review import approve, wait_for_reports
from tests.support.servers import REPO_ROOT, RunningGateway, wait_until, write_config

PERSONAL = "NIK saya 3171014509870001, hubungi 081234567890 atau budi.santoso@mail.com"
PERSONAL_BITS = ("3171014509870001", "081234567890", "budi.santoso@mail.com", "Budi", "Santoso")


def consumer_headers(gateway: RunningGateway, name: str = "crm-jakarta") -> dict[str, str]:
    key, _ = feed.create_consumer(gateway.runtime.engine, name=name)
    return {"Authorization": f"Bearer {key}"}


def read_all(http: httpx.Client, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every entry now in the feed, following `next_cursor` until `has_more` is false."""
    entries: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": 1000, **params}
    while True:
        response = http.get("/api/v1/feed", params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        entries += page["items"]
        query["cursor"] = page["next_cursor"]
        if not page["has_more"]:
            return entries


def wait_for_entries(http: httpx.Client, headers: dict[str, str], n: int, **match: str) -> list[dict[str, Any]]:
    def enough() -> list[dict[str, Any]] | None:
        entries = read_all(http, headers)
        matching = [e for e in entries if all(e[k] == v for k, v in match.items())]
        return entries if len(matching) >= n else None

    return wait_until(enough, timeout=30, interval=0.1, what=f"{n} feed entries {match}")  # type: ignore[no-any-return]


def post_reports(http: httpx.Client, prefix: str, n: int, *, channel: str = "api:partner", text: str = "") -> list[str]:
    """Send `n` complaints; return their ticket codes in the order sent."""
    tickets = []
    for i in range(n):
        body = complaint(f"{prefix}-{i}", text) if text else complaint(f"{prefix}-{i}")
        answer = post_api(http, body, channel=channel)
        assert answer.status_code == 200, answer.text
        tickets.append(answer.json()["accepted"][0]["ticket"])
    return tickets


def test_approved_reports_and_their_later_changes_appear_in_order_masked(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    headers = consumer_headers(gateway)
    text = f"Jalan berlubang besar di depan pasar Senen sudah dua minggu. {PERSONAL}"
    tickets = post_reports(http, "order", 5, text=text)
    wait_for_reports(http, admin_headers, 5, state="pending_review")
    assert read_all(http, headers) == [], "nothing pending is in the feed"

    approved, rejected, left_pending = [tickets[3], tickets[0], tickets[2]], tickets[1], tickets[4]
    for ticket in approved:
        assert approve(http, admin_headers, ticket).status_code == 200
    answer = http.post(f"/api/v1/reports/{rejected}/reject", json={"reason": "bukan wewenang"}, headers=admin_headers)
    assert answer.status_code == 200, answer.text

    entries = wait_for_entries(http, headers, 3, kind="forwarded")
    assert [e["report"]["ticket_code"] for e in entries if e["kind"] == "approved"] == approved
    assert {e["report"]["ticket_code"] for e in entries} == set(approved)
    assert rejected not in json.dumps(entries) and left_pending not in json.dumps(entries)
    assert [e["position"] for e in entries] == sorted({e["position"] for e in entries})
    assert len({e["id"] for e in entries}) == len(entries) == 6

    for entry in entries:
        shown = json.dumps(entry)
        assert not [bit for bit in PERSONAL_BITS if bit in shown], f"personal data in the feed: {shown}"
        assert "[NIK]" in entry["report"]["text"] and "[telepon]" in entry["report"]["text"]
        assert entry["report"]["sender"]["name"] == "B. S."
    for ticket in approved:
        approval, forwarded = [e for e in entries if e["report"]["ticket_code"] == ticket]
        assert (approval["kind"], approval["report"]["state"]) == ("approved", "approved")
        assert approval["report"]["crm_service_request_id"] is None
        assert (forwarded["kind"], forwarded["report"]["state"]) == ("forwarded", "forwarded")
        assert forwarded["report"]["crm_service_request_id"], "the CRM's id comes with the forwarding"
        assert forwarded["report"]["version"] > approval["report"]["version"]
        assert forwarded["position"] > approval["position"]


def test_paging_two_at_a_time_sees_every_entry_once(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    headers = consumer_headers(gateway)
    tickets = post_reports(http, "paging", 7, channel="api:trusted")  # trusted: approved as they arrive
    everything = wait_for_entries(http, headers, 7, kind="forwarded")
    assert len(everything) == 14

    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = http.get("/api/v1/feed", params={"limit": 2, **({"cursor": cursor} if cursor else {})}, headers=headers)
        assert page.status_code == 200, page.text
        body = page.json()
        assert len(body["items"]) <= 2
        seen += body["items"]
        if not body["has_more"]:
            break
        cursor = body["next_cursor"]
    assert [e["id"] for e in seen] == [e["id"] for e in everything]
    assert {e["report"]["ticket_code"] for e in seen if e["kind"] == "approved"} == set(tickets)

    # Caught up: an empty page gives the same cursor back, and polling with it picks up what comes next.
    last = body["next_cursor"]
    empty = http.get("/api/v1/feed", params={"cursor": last}, headers=headers).json()
    assert empty == {"items": [], "next_cursor": last, "has_more": False}
    (late,) = post_reports(http, "paging-late", 1, channel="api:trusted")
    fresh = wait_until(
        lambda: http.get("/api/v1/feed", params={"cursor": last}, headers=headers).json()["items"],
        timeout=30,
        what="the late report in the feed",
    )
    assert fresh[0]["report"]["ticket_code"] == late and fresh[0]["kind"] == "approved"


def test_a_reader_paging_during_concurrent_approvals_never_skips_a_report(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    """Acceptance: small pages while reports are approved concurrently see every report, in order, none skipped."""
    headers = consumer_headers(gateway)
    tickets = post_reports(http, "race", 30)
    pending = wait_for_reports(http, admin_headers, 30, state="pending_review")
    ids = {r["id"] for r in pending}
    approvals_done = threading.Event()
    seen: list[dict[str, Any]] = []

    def read_while_approving() -> None:
        cursor = None
        with httpx.Client(base_url=gateway.url, timeout=30, headers=headers) as reader:
            while True:
                finished = approvals_done.is_set()  # before the read: this page was asked for after the last commit
                params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
                response = reader.get("/api/v1/feed", params=params)
                assert response.status_code == 200, response.text
                page = response.json()
                seen.extend(page["items"])
                cursor = page["next_cursor"]
                if finished and not page["has_more"]:
                    return

    def approve_one(ticket: str) -> int:
        return approve(http, admin_headers, ticket).status_code

    reader_thread = threading.Thread(target=read_while_approving)
    reader_thread.start()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(approve_one, tickets))
    approvals_done.set()
    reader_thread.join(timeout=60)
    assert not reader_thread.is_alive(), "the reader never caught up"
    assert statuses == [200] * 30

    approvals = Counter(e["report_id"] for e in seen if e["kind"] == "approved")
    assert set(approvals) == ids, f"approved reports the reader never saw: {ids - set(approvals)}"
    assert set(approvals.values()) == {1}, "each approval is seen exactly once"
    positions = [e["position"] for e in seen]
    assert all(a < b for a, b in zip(positions, positions[1:], strict=False)), "positions strictly increase"
    # What the reader saw page by page is exactly the start of the feed as it stands now: nothing skipped.
    now = read_all(http, headers)
    assert [e["id"] for e in seen] == [e["id"] for e in now[: len(seen)]]


def test_a_bad_cursor_is_refused_with_what_to_do(http: httpx.Client, gateway: RunningGateway) -> None:
    headers = consumer_headers(gateway)
    for cursor in ("not-a-cursor", "eyJwb3NpdGlvbiI6IDF9", feed.encode_cursor(10**6), "a2YxOi0x"):
        response = http.get("/api/v1/feed", params={"cursor": cursor}, headers=headers)
        assert response.status_code == 400, (cursor, response.text)
        assert "leave `cursor` out" in response.json()["detail"]
    assert http.get("/api/v1/feed", params={"limit": 0}, headers=headers).status_code == 422
    assert http.get("/api/v1/feed", params={"limit": 1001}, headers=headers).status_code == 422


def test_the_feed_needs_a_consumer_key_or_a_superadmin_token(
    http: httpx.Client, gateway: RunningGateway, admin_headers: dict[str, str]
) -> None:
    key, _ = feed.create_consumer(gateway.runtime.engine, name="crm")
    missing = http.get("/api/v1/feed")
    assert missing.status_code == 401 and "kanal feed consumer create" in missing.json()["detail"]
    assert http.get("/api/v1/feed", headers={"Authorization": "Bearer kfeed_wrong"}).status_code == 401
    assert http.get("/api/v1/feed", headers={"X-Kanal-Feed-Key": key + "x"}).status_code == 401
    assert http.get("/api/v1/feed", headers={"X-Kanal-Feed-Key": key}).status_code == 200
    assert http.get("/api/v1/feed", headers={"Authorization": f"Bearer {key}"}).status_code == 200
    assert http.get("/api/v1/feed", headers=admin_headers).status_code == 403, "a reviewer is not a feed consumer"
    create_admin(gateway.runtime.engine, username="sari", password=ADMIN_PASSWORD, role=AdminRole.SUPERADMIN)
    token = http.post("/api/v1/auth/token", data={"username": "sari", "password": ADMIN_PASSWORD}).json()
    superadmin = {"Authorization": f"Bearer {token['access_token']}"}
    assert http.get("/api/v1/feed", headers=superadmin).status_code == 200
    assert http.get("/api/v1/feed", params={"cursor": "server"}, headers=superadmin).status_code == 400
    with pytest.raises(feed.ConsumerError, match="already exists"):
        feed.create_consumer(gateway.runtime.engine, name="crm")


def test_the_server_side_cursor_moves_only_when_the_consumer_acknowledges(
    http: httpx.Client, gateway: RunningGateway
) -> None:
    headers = consumer_headers(gateway)
    other = consumer_headers(gateway, "crm-other")
    post_reports(http, "server", 3, channel="api:trusted")
    wait_for_entries(http, headers, 3, kind="forwarded")

    first = http.get("/api/v1/feed", params={"cursor": "server", "limit": 2}, headers=headers).json()
    again = http.get("/api/v1/feed", params={"use_server_cursor": "true", "limit": 2}, headers=headers).json()
    assert [e["id"] for e in again["items"]] == [e["id"] for e in first["items"]], "unacknowledged: read again"
    ack = http.post("/api/v1/feed/ack", json={"cursor": first["next_cursor"]}, headers=headers)
    assert ack.status_code == 200 and ack.json()["cursor"] == first["next_cursor"]
    second = http.get("/api/v1/feed", params={"cursor": "server", "limit": 2}, headers=headers).json()
    assert second["items"][0]["position"] == first["items"][-1]["position"] + 1

    # Acknowledging an older cursor does not move it back; each consumer has its own.
    assert http.post("/api/v1/feed/ack", json={"cursor": feed.encode_cursor(0)}, headers=headers).status_code == 200
    assert http.get("/api/v1/feed", params={"cursor": "server", "limit": 2}, headers=headers).json() == second
    assert http.get("/api/v1/feed", params={"cursor": "server", "limit": 2}, headers=other).json() == first
    assert http.post("/api/v1/feed/ack", json={"cursor": "junk"}, headers=headers).status_code == 400
    assert http.post("/api/v1/feed/ack", json={"cursor": "junk"}).status_code == 401


def test_openapi_documents_the_feed(http: httpx.Client, gateway: RunningGateway) -> None:
    spec = http.get("/openapi.json").json()
    feed_get = spec["paths"]["/api/v1/feed"]["get"]
    assert {p["name"] for p in feed_get["parameters"]} >= {"cursor", "limit", "use_server_cursor"}
    assert {"400", "401"} <= set(feed_get["responses"])
    assert spec["components"]["schemas"]["FeedPage"]["examples"][0]["items"][0]["report"]["ticket_code"]
    assert "/api/v1/feed/ack" in spec["paths"]


def test_the_example_consumer_prints_every_report_once(
    http: httpx.Client, gateway: RunningGateway, tmp_path: Path
) -> None:
    # The key comes from the operator's command, as a deployment would get it.
    config = write_config(
        tmp_path / "config", {"database_url": gateway.runtime.settings.database_url, "secret_key": TEST_SECRET_KEY}
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANAL_")} | {"KANAL_CONFIG_DIR": str(config)}
    created = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "feed", "consumer", "create", "--name", "example"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith(feed.KEY_PREFIX) and "not shown again" in created.stderr
    headers = {"Authorization": f"Bearer {key}"}
    tickets = post_reports(http, "example", 3, channel="api:trusted")
    wait_for_entries(http, headers, 3, kind="forwarded")

    def consume(*extra: str) -> tuple[list[dict[str, Any]], str]:
        done = subprocess.run(
            [sys.executable, str(REPO_ROOT / "examples" / "feed_consumer.py"), "--url", gateway.url, "--once"]
            + ["--limit", "2", *extra],
            env=env | {"KANAL_FEED_KEY": key},
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        return [json.loads(line) for line in done.stdout.splitlines()], done.stderr

    printed, progress = consume("--state", str(tmp_path / "own.json"))
    assert len(printed) == 6 and len({p["entry_id"] for p in printed}) == 6
    assert {p["report"]["ticket_code"] for p in printed if p["kind"] == "approved"} == set(tickets)
    assert "caught up" in progress
    assert consume("--state", str(tmp_path / "own.json"))[0] == [], "a second run resumes from its cursor file"

    printed_server, _ = consume("--state", str(tmp_path / "server.json"), "--server-cursor")
    assert [p["entry_id"] for p in printed_server] == [p["entry_id"] for p in printed]
    assert consume("--state", str(tmp_path / "server-2.json"), "--server-cursor")[0] == [], "Kanal kept the cursor"

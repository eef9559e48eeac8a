"""Staff intake at the walk-in desks: an officer enters a complaint, prints the receipt, and the report
reaches the queue of the area it is about -- and of nobody else."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kanal_testing import inbound_messages, quarantine_rows, reports, wait_until
from kanal_testing.server import kanal_settings
from review_queue.auth import create_admin
from review_queue.tables import AdminRole
from tests.admin.support import GAMBIR, MENTENG, PASSWORD, Browser, audit_rows, csrf_token_in
from tests.support.servers import RunningGateway

GAMBIR_DESK = "walk_in:kel-gambir"
MENTENG_DESK = "walk_in:kel-menteng"
CITY_DESK = "walk_in:balaikota"
DESKS = {
    GAMBIR_DESK: {
        "type": "walk_in",
        "settings": {
            "desk_kind": "kelurahan",
            "desk_name": "Kantor Kelurahan Gambir",
            "wilayah_code": GAMBIR,
            "default_place_to_desk": True,
        },
    },
    MENTENG_DESK: {
        "type": "walk_in",
        "settings": {"desk_kind": "kelurahan", "desk_name": "Kantor Kelurahan Menteng", "wilayah_code": MENTENG},
    },
    CITY_DESK: {
        "type": "walk_in",
        "settings": {"desk_kind": "balai_kota", "desk_name": "Pendopo Balai Kota", "wilayah_code": "31"},
    },
}
TICKET = re.compile(r"/admin/intake/receipt/([A-Z0-9-]+)")
COMPLAINT = "Saluran tersumbat <script>alert(1)</script> <img src=x onerror=alert(2)>, hubungi 0812-3456-7890"


def _gateway(database_url: str) -> RunningGateway:
    return RunningGateway(kanal_settings(database_url, DESKS))


@pytest.fixture
def sqlite_gateway(tmp_path: Path) -> Iterator[RunningGateway]:
    with _gateway(f"sqlite:///{tmp_path / 'kanal.sqlite3'}") as gateway:
        _admins(gateway)
        yield gateway


def _admins(gateway: RunningGateway) -> None:
    engine = gateway.runtime.engine
    create_admin(engine, username="ops", password=PASSWORD, role=AdminRole.SUPERADMIN)
    create_admin(engine, username="lurah", password=PASSWORD, role=AdminRole.WILAYAH_ADMIN, scope_wilayah=[GAMBIR])
    create_admin(
        engine, username="lurah.menteng", password=PASSWORD, role=AdminRole.WILAYAH_ADMIN, scope_wilayah=[MENTENG]
    )
    create_admin(
        engine, username="pendopo", password=PASSWORD, role=AdminRole.CHANNEL_ADMIN, scope_channels=[CITY_DESK]
    )
    create_admin(engine, username="vera", password=PASSWORD, role=AdminRole.VIEWER)


def _signed_in(gateway: RunningGateway, username: str) -> Browser:
    browser = Browser(gateway)
    assert browser.login(username).status_code == 303
    return browser


def _form(browser: Browser, desk: str | None = None) -> httpx.Response:
    page = browser.http.get("/admin/intake", params={"desk": desk} if desk else None)
    assert page.status_code == 200, page.text[:500]
    return page


def _fields(page: httpx.Response, **values: str) -> dict[str, str]:
    hidden = dict(re.findall(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)"', page.text))
    return {**hidden, "csrf_token": csrf_token_in(page), **values}


def _submit(browser: Browser, data: dict[str, str], photo: bytes | None = None) -> httpx.Response:
    files = {"photo": ("foto.png", photo, "image/png")} if photo else {"photo": ("", b"", "application/octet-stream")}
    return browser.http.post("/admin/intake", data=data, files=files)


def _token(http: httpx.Client, username: str) -> dict[str, str]:
    response = http.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_a_desk_complaint_prints_a_receipt_and_reaches_only_its_kelurahans_queue(database_url: str) -> None:
    with _gateway(database_url) as gateway:
        _admins(gateway)
        with _signed_in(gateway, "lurah") as browser:
            _kelurahan_flow(gateway, browser)


def _kelurahan_flow(gateway: RunningGateway, browser: Browser) -> None:
    """The officer's whole path, then the report as the two kelurahan admins see it."""
    engine = gateway.runtime.engine
    page = _form(browser)  # one usable desk: its form at once
    assert "Kantor Kelurahan Gambir" in page.text and "Kantor Kelurahan Menteng" not in page.text
    sent = _submit(
        browser,
        _fields(page, text=COMPLAINT, address="depan pos RW 03", wilayah_code=GAMBIR, citizen_name="Siti"),
    )
    assert sent.status_code == 303, sent.text[:800]
    match = TICKET.search(sent.headers["location"])
    assert match, sent.headers["location"]
    ticket = match.group(1)

    receipt = browser.http.get(sent.headers["location"])
    assert receipt.status_code == 200
    text = receipt.text
    assert ticket in text and "Kantor Kelurahan Gambir" in text and "lurah" in text and "WIB" in text
    assert f"/status/{ticket}" in text
    assert "[telepon]" in text and "0812-3456-7890" not in text, "the receipt shows the complaint masked"
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<img src=x" not in text and "&lt;img src=x onerror=alert(2)&gt;" in text
    assert "<script" not in text, "the receipt carries no script at all"
    assert "@media print" in gateway_css(browser)

    [row] = inbound_messages(engine)
    assert (row.channel_id, row.ticket_code) == (GAMBIR_DESK, ticket)
    assert row.message["received_by"] == "lurah"
    assert row.message["sender"] == {"name": "Siti"}
    [report] = wait_until(lambda: reports(engine), timeout=20, what="the report")
    assert report.kelurahan_code == GAMBIR and report.channel_id == GAMBIR_DESK

    [entry] = audit_rows(engine, "walk_in_intake")
    assert (entry.actor_name, entry.target_id) == ("lurah", ticket)
    assert entry.detail is not None and entry.detail["channel_id"] == GAMBIR_DESK

    with httpx.Client(base_url=gateway.url, timeout=30) as api:
        mine = api.get("/api/v1/reports", headers=_token(api, "lurah"))
        assert ticket in mine.text
        elsewhere = api.get(f"/api/v1/reports/{ticket}", headers=_token(api, "lurah.menteng"))
        assert elsewhere.status_code == 404


def gateway_css(browser: Browser) -> str:
    return browser.http.get("/admin/static/admin.css").text


def test_the_desks_route_refuses_anyone_but_the_intake_page(sqlite_gateway: RunningGateway) -> None:
    with httpx.Client(base_url=sqlite_gateway.url, timeout=30) as http:
        body = b'{"intake_id": "aaaaaaaaaaaaaaaaaaaa", "text": "palsu", "received_by": "lurah"}'
        answer = http.post(
            f"/channels/{GAMBIR_DESK}/inbound", content=body, headers={"content-type": "application/json"}
        )
    assert answer.status_code == 401
    engine = sqlite_gateway.runtime.engine
    assert inbound_messages(engine) == []
    [kept] = quarantine_rows(engine)
    assert kept.channel_id == GAMBIR_DESK and kept.status_code == 401


def test_a_form_without_its_csrf_token_is_refused(sqlite_gateway: RunningGateway) -> None:
    with _signed_in(sqlite_gateway, "lurah") as browser:
        data = _fields(_form(browser), text="Sampah menumpuk", address="Jl. Tanah Abang II")
        del data["csrf_token"]
        assert _submit(browser, data).status_code == 403
    assert inbound_messages(sqlite_gateway.runtime.engine) == []


def test_an_officer_cannot_use_a_desk_outside_their_scope(sqlite_gateway: RunningGateway) -> None:
    with _signed_in(sqlite_gateway, "lurah.menteng") as browser:
        assert browser.http.get("/admin/intake", params={"desk": GAMBIR_DESK}).status_code == 404
        page = _form(browser)
        assert "Kantor Kelurahan Menteng" in page.text and "Kantor Kelurahan Gambir" not in page.text
        forged = _fields(page, desk=GAMBIR_DESK, text="Sampah menumpuk", address="Jl. Tanah Abang II")
        assert _submit(browser, forged).status_code == 404
    with _signed_in(sqlite_gateway, "vera") as browser:
        assert browser.http.get("/admin/intake").status_code == 403, "a viewer does not take complaints"
    assert inbound_messages(sqlite_gateway.runtime.engine) == []


def test_a_city_wide_desk_is_for_its_own_officers_and_superadmins(sqlite_gateway: RunningGateway) -> None:
    with _signed_in(sqlite_gateway, "pendopo") as browser:
        assert "Pendopo Balai Kota" in _form(browser).text
    with _signed_in(sqlite_gateway, "ops") as browser:
        chooser = browser.http.get("/admin/intake").text
        assert all(name in chooser for name in ("Pendopo Balai Kota", "Kelurahan Gambir", "Kelurahan Menteng"))
    with _signed_in(sqlite_gateway, "lurah") as browser:
        assert browser.http.get("/admin/intake", params={"desk": CITY_DESK}).status_code == 404


def test_the_citizens_contact_is_optional_and_kept_only_with_consent(sqlite_gateway: RunningGateway) -> None:
    engine = sqlite_gateway.runtime.engine
    with _signed_in(sqlite_gateway, "lurah") as browser:
        page = _form(browser)
        refused = _submit(
            browser, _fields(page, text="Lampu mati", address="Gg. Kenari", citizen_phone="0812 3456 7890")
        )
        assert refused.status_code == 422 and "persetujuan" in refused.text
        assert 'value="0812 3456 7890"' in refused.text, "the officer's typing is given back"
        assert inbound_messages(engine) == []

        anonymous = _submit(browser, _fields(_form(browser), text="Lampu mati", address="Gg. Kenari"))
        assert anonymous.status_code == 303
        consented = _fields(_form(browser), text="Pohon tumbang", address="Gg. Kenari", citizen_email="siti@example.id")
        consented["contact_consent"] = "yes"
        assert _submit(browser, consented).status_code == 303
    senders = sorted(str(row.message.get("sender")) for row in inbound_messages(engine))
    assert senders == ["None", "{'email': 'siti@example.id'}"]


def test_a_complaint_with_no_place_at_a_kelurahan_desk_lands_in_that_kelurahan(sqlite_gateway: RunningGateway) -> None:
    engine = sqlite_gateway.runtime.engine
    with _signed_in(sqlite_gateway, "lurah") as browser:
        assert _submit(browser, _fields(_form(browser), text="Jalan berlubang, motor sering jatuh")).status_code == 303
    [report] = wait_until(lambda: reports(engine), timeout=20, what="the report")
    assert report.kelurahan_code == GAMBIR


def test_a_desk_without_default_place_asks_for_one(sqlite_gateway: RunningGateway) -> None:
    with _signed_in(sqlite_gateway, "lurah.menteng") as browser:
        answer = _submit(browser, _fields(_form(browser), text="Jalan berlubang"))
    assert answer.status_code == 422 and "Lokasi wajib diisi" in answer.text


def test_sending_the_form_twice_gives_one_report_and_the_same_receipt(sqlite_gateway: RunningGateway) -> None:
    engine = sqlite_gateway.runtime.engine
    with _signed_in(sqlite_gateway, "lurah") as browser:
        data = _fields(_form(browser), text="Sampah menumpuk", address="Jl. Tanah Abang II")
        first, second = _submit(browser, data), _submit(browser, data)
        assert first.status_code == second.status_code == 303
        assert second.headers["location"] == first.headers["location"] + "?again=1"
        assert "sudah tersimpan sebelumnya" in browser.http.get(second.headers["location"]).text
    assert len(inbound_messages(engine)) == 1


def test_a_photo_taken_at_the_desk_travels_with_the_complaint(sqlite_gateway: RunningGateway) -> None:
    full = json.loads((Path(__file__).parents[1] / "fixtures" / "walk_in" / "full.json").read_text())
    photo = base64.b64decode(full["photo"]["data_base64"])
    with _signed_in(sqlite_gateway, "lurah") as browser:
        page = _form(browser)
        assert _submit(browser, _fields(page, text="Saluran mampet", address="Gg. Kenari"), photo).status_code == 303
        not_photo = _submit(browser, _fields(_form(browser), text="x", address="y"), b"%PDF-1.4 surat")
        assert not_photo.status_code == 422 and "JPEG" in not_photo.text
    [row] = inbound_messages(sqlite_gateway.runtime.engine)
    assert row.message["media"][0]["url"] == "inline:photo"
    assert row.message["media"][0]["content_type"] == "image/png"


def test_a_receipt_is_not_shown_outside_the_desks_scope(sqlite_gateway: RunningGateway) -> None:
    with _signed_in(sqlite_gateway, "lurah") as browser:
        sent = _submit(browser, _fields(_form(browser), text="Sampah", address="Jl. Tanah Abang II"))
        location = sent.headers["location"]
    with _signed_in(sqlite_gateway, "lurah.menteng") as browser:
        assert browser.http.get(location).status_code == 404
        assert browser.http.get("/admin/intake/receipt/K7F3Q-9Q2MX").status_code == 404
    assert len(inbound_messages(sqlite_gateway.runtime.engine)) == 1

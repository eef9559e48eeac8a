"""The `web_form` adapter as a citizen's browser, a bot and an operator meet it (no server needed)."""

from __future__ import annotations

import contextlib
import random
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from pydantic import ValidationError

from adapters.contract import AdapterContext, AdapterResponse, InboundMessage, RawRequest, StoredOutcome
from adapters.errors import PayloadIgnored, PayloadRejected, SignatureInvalid, Throttled
from adapters.web_form import (
    SlidingWindowLimiter,
    WebFormAdapter,
    WebFormSettings,
    client_key,
    kanal_register_adapters,
    read_form,
)

BASE_URL = "http://127.0.0.1:8080"
CHANNEL_ID = "web_form:balaiwarga"
FORM_PATH = f"/channels/{CHANNEL_ID}/inbound"
T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
CITIZEN_IP = "203.0.113.7"

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + bytes(range(256)) * 4 + b"\xff\xd9"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\r\n\x00\xff" * 200
WEBP = b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200


# ------------------------------------------------------------------------------------------- helpers


def make_adapter(**settings: object) -> WebFormAdapter:
    """An adapter as the gateway builds it; `min_fill_seconds` is 0 unless a test is about it."""
    return WebFormAdapter(
        settings=WebFormSettings.model_validate({"min_fill_seconds": 0, **settings}),
        context=AdapterContext(channel_id=CHANNEL_ID, instance_secret=b"x" * 32, public_base_url=BASE_URL),
    )


@pytest.fixture
def adapter() -> WebFormAdapter:
    return make_adapter()


@dataclass(frozen=True)
class ServedForm:
    """What a browser keeps from a GET: the hidden token and the cookie to send back."""

    token: str
    cookie: str  # the `name=value` pair as a browser sends it in `Cookie:`


def get_request(at: datetime = T0, ip: str = CITIZEN_IP) -> RawRequest:
    return RawRequest("GET", BASE_URL + FORM_PATH, {}, {}, b"", ip, at)


def served_form(response: AdapterResponse) -> ServedForm:
    match = re.search(r'name="form_token" value="([^"]+)"', response.body.decode())
    assert match, "the page has no form_token"
    return ServedForm(token=match.group(1), cookie=response.headers["Set-Cookie"].split(";", 1)[0])


def open_form(adapter: WebFormAdapter, at: datetime = T0) -> ServedForm:
    return served_form(adapter.answer_get(get_request(at)))


def multipart(fields: Mapping[str, str], files: Mapping[str, tuple[str, str, bytes]] = {}) -> tuple[bytes, str]:
    """A multipart/form-data body as a browser builds it; returns (body, content type)."""
    boundary = "----KanalTestBoundary" + uuid.uuid4().hex
    chunks: list[bytes] = []
    for name, value in fields.items():
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        )
    for name, (filename, content_type, data) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        chunks.append(head.encode() + data + b"\r\n")
    chunks.append(f"--{boundary}--\r\n".encode())
    return b"".join(chunks), f"multipart/form-data; boundary={boundary}"


def post_request(
    body: bytes,
    content_type: str | None,
    *,
    cookie: str | None = None,
    at: datetime = T0,
    ip: str = CITIZEN_IP,
    headers: Mapping[str, str] = {},
) -> RawRequest:
    all_headers = {k.lower(): v for k, v in headers.items()}
    if content_type is not None:
        all_headers["content-type"] = content_type
    if cookie is not None:
        all_headers["cookie"] = cookie
    return RawRequest("POST", BASE_URL + FORM_PATH, all_headers, {}, body, ip, at)


def complaint(**overrides: str) -> dict[str, str]:
    fields = {
        "description": "Jalan berlubang besar di depan sekolah, sudah dua minggu. Motor sering jatuh.",
        "address": "Jl. Kebon Sirih No. 22",
        "kelurahan": "Kebon Sirih",
        "kecamatan": "Menteng",
        "lat": "",
        "lng": "",
        "name": "Siti Rahayu",
        "phone": "0812-3456-7890",
        "email": "siti@contoh.id",
        "website": "",
    }
    fields.update(overrides)
    return fields


def submit(
    form: ServedForm,
    fields: Mapping[str, str] | None = None,
    photo: tuple[str, str, bytes] | None = None,
    *,
    at: datetime = T0 + timedelta(seconds=60),
    ip: str = CITIZEN_IP,
    headers: Mapping[str, str] = {},
    cookie: str | None | bool = True,
) -> RawRequest:
    """A browser POST of the served form: token in the body, cookie (unless False/None) in the header."""
    values = {"form_token": form.token, **(fields if fields is not None else complaint())}
    body, content_type = multipart(values, {"photo": photo} if photo else {})
    sent_cookie = form.cookie if cookie is True else (cookie or None)
    return post_request(body, content_type, cookie=sent_cookie, at=at, ip=ip, headers=headers)


def deliver(adapter: WebFormAdapter, request: RawRequest) -> list[InboundMessage]:
    """What the gateway does for a POST, up to storage: verify then parse."""
    adapter.verify(request)
    return adapter.parse(request)


def page(response: AdapterResponse) -> str:
    assert response.content_type.startswith("text/html")
    return response.body.decode()


def assert_security_headers(response: AdapterResponse) -> None:
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "form-action 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    nonce = re.search(r"script-src 'nonce-([^']+)'", csp)
    assert nonce
    for tag in re.findall(r"<(?:script|style)\b[^>]*>", page(response)):
        assert f'nonce="{nonce.group(1)}"' in tag, f"inline {tag} would be blocked by the CSP"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


# --------------------------------------------------------------------------------------- the form page


def test_form_page_is_self_contained_accessible_and_sets_the_form_cookie(adapter: WebFormAdapter) -> None:
    response = adapter.answer_get(get_request())
    html = page(response)

    assert response.status_code == 200
    assert_security_headers(response)
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("kanal_form_")
    assert f"Path={FORM_PATH}" in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # the test site is plain http
    assert '<html lang="id">' in html
    assert "Balai Warga: Laporkan Masalah di Sekitar Anda" in html
    assert f'action="{FORM_PATH}"' in html and 'enctype="multipart/form-data"' in html
    assert "Kirim laporan" in html
    # Every visible input has a label; the honeypot is out of the tab order and autofill.
    for field in ("description", "address", "kelurahan", "kecamatan", "photo", "name", "phone", "email"):
        assert f'<label for="{field}">' in html
    assert re.search(r'<input type="text" id="website" name="website" tabindex="-1" autocomplete="off"', html)
    # No external assets: nothing fetched from anywhere.
    assert "<link" not in html and " src=" not in html and "@import" not in html and "url(" not in html
    # The location button only appears when the script runs; the form works without it.
    assert 'id="geo-button" hidden' in html


def test_each_get_issues_a_fresh_token_and_cookie(adapter: WebFormAdapter) -> None:
    first, second = open_form(adapter), open_form(adapter)
    assert first.token != second.token
    assert first.cookie != second.cookie


def test_https_site_marks_the_cookie_secure() -> None:
    adapter = WebFormAdapter(
        settings=WebFormSettings(),
        context=AdapterContext(
            channel_id=CHANNEL_ID, instance_secret=b"x" * 32, public_base_url="https://jakarta.go.id"
        ),
    )
    assert "; Secure" in adapter.answer_get(get_request()).headers["Set-Cookie"]


# ----------------------------------------------------------------------------------------- submitting


def test_valid_submission_becomes_one_message_with_contact_location_and_photo(
    adapter: WebFormAdapter,
) -> None:
    form = open_form(adapter)
    # Declared as JPEG with a path in the name; the bytes are a PNG.
    request = submit(form, photo=("../../Users/siti/foto jalan.PNG.jpg", "image/jpeg", PNG))

    [message] = deliver(adapter, request)

    assert message.text.startswith("Jalan berlubang besar")
    assert message.external_id == form.token.split(".")[1]
    assert message.sender is not None
    assert (message.sender.name, message.sender.phone, message.sender.email) == (
        "Siti Rahayu",
        "0812-3456-7890",
        "siti@contoh.id",
    )
    assert message.location is not None
    assert message.location.address == "Jl. Kebon Sirih No. 22, Kelurahan Kebon Sirih, Kecamatan Menteng"
    assert message.location.lat is None and message.location.lng is None
    [photo] = message.media
    assert (photo.url, photo.content_type, photo.filename) == (
        "inline:photo",
        "image/png",
        "foto_jalan_PNG.png",
    )
    assert message.sent_at == request.received_at


@pytest.mark.parametrize(("data", "expected"), [(JPEG, "image/jpeg"), (PNG, "image/png"), (WEBP, "image/webp")])
def test_photo_type_comes_from_its_bytes(adapter: WebFormAdapter, data: bytes, expected: str) -> None:
    [message] = deliver(adapter, submit(open_form(adapter), photo=("gambar", "application/octet-stream", data)))
    assert message.media[0].content_type == expected
    assert message.media[0].filename == "gambar." + expected.split("/")[1].replace("jpeg", "jpg")


def test_no_photo_chosen_means_no_media(adapter: WebFormAdapter) -> None:
    # A browser sends an empty file part when the file input was left empty.
    [message] = deliver(adapter, submit(open_form(adapter), photo=("", "application/octet-stream", b"")))
    assert message.media == []


def test_coordinates_alone_locate_the_complaint(adapter: WebFormAdapter) -> None:
    fields = complaint(address="", kelurahan="", kecamatan="", lat="-6.186486", lng="106.834091")
    [message] = deliver(adapter, submit(open_form(adapter), fields))
    assert message.location is not None
    assert (message.location.lat, message.location.lng, message.location.address) == (
        -6.186486,
        106.834091,
        None,
    )


@pytest.mark.parametrize(("lat", "lng"), [("91", "106.8"), ("-6.2", "abc"), ("nan", "106.8"), ("0", "0"), ("-6.2", "")])
def test_unusable_coordinates_are_dropped_not_refused(adapter: WebFormAdapter, lat: str, lng: str) -> None:
    [message] = deliver(adapter, submit(open_form(adapter), complaint(lat=lat, lng=lng)))
    assert message.location is not None
    assert message.location.lat is None and message.location.lng is None
    assert message.location.address is not None


def test_text_keeps_indonesian_characters_and_line_breaks(adapter: WebFormAdapter) -> None:
    fields = complaint(description="Banjir 50 cm 🌧️\r\nSudah 3 hari.\x00", name="Ngurah Rai Wiçaksono")
    [message] = deliver(adapter, submit(open_form(adapter), fields))
    assert message.text == "Banjir 50 cm 🌧️\nSudah 3 hari."
    assert message.sender is not None and message.sender.name == "Ngurah Rai Wiçaksono"


def test_contact_is_optional(adapter: WebFormAdapter) -> None:
    [message] = deliver(adapter, submit(open_form(adapter), complaint(name="", phone="", email="")))
    assert message.sender is None


def test_urlencoded_submission_is_accepted(adapter: WebFormAdapter) -> None:
    form = open_form(adapter)
    body = urlencode({"form_token": form.token, **complaint()}).encode()
    request = post_request(body, "application/x-www-form-urlencoded", cookie=form.cookie, at=T0 + timedelta(seconds=30))
    [message] = deliver(adapter, request)
    assert message.location is not None and message.location.address is not None
    assert message.external_id == form.token.split(".")[1]


def test_same_form_posted_twice_is_the_same_complaint(adapter: WebFormAdapter) -> None:
    form = open_form(adapter)
    [first] = deliver(adapter, submit(form, at=T0 + timedelta(seconds=40)))
    [again] = deliver(adapter, submit(form, at=T0 + timedelta(seconds=41)))  # double click / re-POST
    [other] = deliver(adapter, submit(open_form(adapter), at=T0 + timedelta(seconds=42)))
    assert first.external_id == again.external_id
    assert other.external_id != first.external_id


def test_thanks_page_shows_the_ticket_code_to_keep(adapter: WebFormAdapter) -> None:
    request = submit(open_form(adapter))
    [message] = deliver(adapter, request)
    response = adapter.acknowledge(request, [StoredOutcome(message.external_id, "K7F3Q-9Q2MX", False)])
    html = page(response)
    assert response.status_code == 200
    assert_security_headers(response)
    assert "K7F3Q-9Q2MX" in html and "Simpan kode ini" in html
    assert "sudah kami terima sebelumnya" not in html

    resent = page(adapter.acknowledge(request, [StoredOutcome(message.external_id, "K7F3Q-9Q2MX", True)]))
    assert "K7F3Q-9Q2MX" in resent and "sudah kami terima sebelumnya" in resent


# -------------------------------------------------------------------------------- cross-site protection


def _tamper_mac(token: str) -> str:
    issued, nonce, mac = token.split(".")
    return f"{issued}.{nonce}.{'0' if mac[0] != '0' else '1'}{mac[1:]}"


def _backdate(token: str) -> str:
    issued, nonce, mac = token.split(".")
    return f"{int(issued) - 100}.{nonce}.{mac}"


@pytest.mark.parametrize(
    ("case", "expected_code"),
    [
        ("tampered mac", "token"),
        ("tampered issued time", "token"),
        ("missing token", "token"),
        ("garbage token", "token"),
        ("missing cookie", "no-cookie"),
        ("cookie from another form", "cookie-mismatch"),
        ("expired", "expired"),
        ("cross-site origin", "cross-site"),
        ("null origin", "cross-site"),
        ("sec-fetch-site cross-site", "cross-site"),
    ],
)
def test_forged_or_stale_submissions_are_refused_with_a_reload_hint(
    adapter: WebFormAdapter, case: str, expected_code: str
) -> None:
    form = open_form(adapter)
    fields = complaint()
    at = T0 + timedelta(seconds=60)
    cookie: str | bool = True
    headers: dict[str, str] = {}
    if case == "tampered mac":
        form = ServedForm(_tamper_mac(form.token), form.cookie)
    elif case == "tampered issued time":
        form = ServedForm(_backdate(form.token), form.cookie)
    elif case == "missing token":
        form = ServedForm("", form.cookie)
    elif case == "garbage token":
        form = ServedForm("<script>.x.y", form.cookie)
    elif case == "missing cookie":
        cookie = False
    elif case == "cookie from another form":
        cookie = open_form(adapter).cookie
    elif case == "expired":
        at = T0 + timedelta(seconds=7201)
    elif case == "cross-site origin":
        headers = {"Origin": "https://evil.example"}
    elif case == "null origin":
        headers = {"Origin": "null"}
    elif case == "sec-fetch-site cross-site":
        headers = {"Sec-Fetch-Site": "cross-site"}

    with pytest.raises(SignatureInvalid) as caught:
        adapter.verify(submit(form, fields, at=at, cookie=cookie, headers=headers))

    assert caught.value.status_code == 401
    assert "Muat ulang formulir, lalu kirim lagi." in caught.value.message
    assert f"(kode: {expected_code})" in caught.value.message


def test_form_posted_faster_than_a_person_types_is_refused() -> None:
    adapter = make_adapter(min_fill_seconds=3)
    form = open_form(adapter)
    with pytest.raises(SignatureInvalid, match="terlalu cepat"):
        adapter.verify(submit(form, at=T0 + timedelta(seconds=1)))
    adapter.verify(submit(form, at=T0 + timedelta(seconds=3)))


def test_same_origin_headers_pass(adapter: WebFormAdapter) -> None:
    headers = {"Origin": BASE_URL, "Sec-Fetch-Site": "same-origin"}
    adapter.verify(submit(open_form(adapter), headers=headers))
    adapter.verify(submit(open_form(adapter), headers={"Origin": "HTTP://127.0.0.1:8080"}))


def test_token_from_another_channel_instance_is_refused(adapter: WebFormAdapter) -> None:
    other = WebFormAdapter(
        settings=WebFormSettings(min_fill_seconds=0),
        context=AdapterContext(channel_id=CHANNEL_ID, instance_secret=b"y" * 32, public_base_url=BASE_URL),
    )
    with pytest.raises(SignatureInvalid):
        adapter.verify(submit(open_form(other)))


def test_refused_form_comes_back_filled_in_with_a_working_token(adapter: WebFormAdapter) -> None:
    stale = submit(open_form(adapter), complaint(description="Lampu jalan mati"), at=T0 + timedelta(hours=3))
    with pytest.raises(SignatureInvalid) as caught:
        adapter.verify(stale)

    response = adapter.reject(stale, 401, caught.value.message)
    html = page(response)
    assert response.status_code == 401
    assert_security_headers(response)
    assert "kedaluwarsa" in html
    assert ">Lampu jalan mati</textarea>" in html and 'value="Siti Rahayu"' in html
    # The citizen presses submit again with the new token and cookie, and it goes through.
    retry = submit(
        served_form(response),
        complaint(description="Lampu jalan mati"),
        at=T0 + timedelta(hours=3, minutes=1),
    )
    [message] = deliver(adapter, retry)
    assert message.text == "Lampu jalan mati"


def test_cross_site_post_gets_a_plain_error_page_not_a_prefilled_form(adapter: WebFormAdapter) -> None:
    forged = submit(
        open_form(adapter), complaint(description="Pesan palsu"), headers={"Origin": "https://evil.example"}
    )
    with pytest.raises(SignatureInvalid) as caught:
        adapter.verify(forged)
    response = adapter.reject(forged, 401, caught.value.message)
    html = page(response)
    assert response.status_code == 401
    assert "Set-Cookie" not in response.headers
    assert "Pesan palsu" not in html and "form_token" not in html
    assert f'href="{FORM_PATH}"' in html


# ---------------------------------------------------------------------------------------------- bots


def test_honeypot_is_dropped_with_the_same_thank_you_page_minus_the_code(adapter: WebFormAdapter) -> None:
    request = submit(open_form(adapter), complaint(website="http://spam.example"))
    adapter.verify(request)
    with pytest.raises(PayloadIgnored, match="honeypot"):
        adapter.parse(request)

    dropped = adapter.ignored(request, "honeypot field filled")
    real = adapter.acknowledge(request, [StoredOutcome("x", "K7F3Q-9Q2MX", False)])
    assert dropped.status_code == real.status_code == 200
    assert dropped.headers.keys() == real.headers.keys()
    assert "Terima kasih, laporan Anda sudah kami terima." in page(dropped)
    assert not re.search(r"[A-Z0-9]{5}-[A-Z0-9]{5}", page(dropped))
    assert "Simpan kode ini" not in page(dropped)


def test_honeypot_wins_over_other_problems(adapter: WebFormAdapter) -> None:
    request = submit(open_form(adapter), complaint(website="x", description="", email="bukan-email"))
    with pytest.raises(PayloadIgnored):
        adapter.parse(request)


def test_rate_limit_per_client_address(adapter: WebFormAdapter) -> None:
    adapter = make_adapter(rate_limit_count=3, rate_limit_window_seconds=600)
    form = open_form(adapter)
    for second in range(3):
        adapter.verify(submit(form, at=T0 + timedelta(seconds=10 + second)))

    flood = submit(form, at=T0 + timedelta(seconds=20))
    with pytest.raises(Throttled) as caught:
        adapter.verify(flood)
    assert 0 < caught.value.retry_after <= 600
    assert "Coba lagi dalam 10 menit" in caught.value.message
    # A neighbour on another address is not affected.
    adapter.verify(submit(form, at=T0 + timedelta(seconds=21), ip="198.51.100.20"))
    # The 429 page says when to come back.
    response = adapter.reject(flood, 429, caught.value.message)
    assert response.status_code == 429
    assert_security_headers(response)
    assert "coba lagi dalam 10 menit" in page(response)
    assert response.headers["Retry-After"] == str(caught.value.retry_after)
    # Once the window has slid past the first submission, one more is allowed.
    adapter.verify(submit(open_form(adapter, T0 + timedelta(seconds=600)), at=T0 + timedelta(seconds=611)))


def test_rate_limit_counts_forged_posts_too(adapter: WebFormAdapter) -> None:
    adapter = make_adapter(rate_limit_count=2)
    junk = post_request(b"junk", "text/plain", at=T0)
    for _ in range(2):
        with pytest.raises(SignatureInvalid):
            adapter.verify(junk)
    with pytest.raises(Throttled):
        adapter.verify(junk)


def test_ipv6_clients_are_limited_per_slash_64() -> None:
    assert client_key("2001:db8:1:2::1") == client_key("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("") == "unknown"


def test_rate_limiter_memory_is_bounded() -> None:
    limiter = SlidingWindowLimiter(2, 60, max_keys=100)
    for i in range(1000):
        assert limiter.hit(f"10.0.{i // 256}.{i % 256}", 1000.0 + i / 100) is None
    assert len(limiter._hits) <= 100
    # Clients idle for a whole window are forgotten as soon as anyone else comes by.
    limiter.hit("10.9.9.9", 5000.0)
    assert list(limiter._hits) == ["10.9.9.9"]


# ------------------------------------------------------------------------------- rejected submissions


def test_executable_renamed_to_jpg_is_refused_415(adapter: WebFormAdapter) -> None:
    request = submit(open_form(adapter), photo=("foto.jpg", "image/jpeg", EXE))
    adapter.verify(request)
    with pytest.raises(PayloadRejected) as caught:
        adapter.parse(request)
    assert caught.value.status_code == 415
    assert "bukan foto JPEG, PNG, atau WebP" in caught.value.message
    html = page(adapter.reject(request, 415, caught.value.message))
    assert "jenis berkas tidak didukung" in html
    assert "pilih foto Anda sekali lagi" in html


def test_photo_over_the_cap_is_refused_413() -> None:
    adapter = make_adapter(max_photo_bytes=16 * 1024)
    request = submit(open_form(adapter), photo=("besar.jpg", "image/jpeg", JPEG[:4] + b"\x00" * 20_000))
    with pytest.raises(PayloadRejected) as caught:
        deliver(adapter, request)
    assert caught.value.status_code == 413
    assert "maksimal 16 KB" in caught.value.message
    response = adapter.reject(request, 413, caught.value.message)
    assert response.status_code == 413
    assert "Foto terlalu besar (maksimal 16 KB)" in page(response)
    assert 'value="Siti Rahayu"' in page(response)


def test_body_cut_off_by_the_gateway_gets_the_same_indonesian_413_page(adapter: WebFormAdapter) -> None:
    # The route stops reading at max_body_bytes and hands us what it has, with its own message.
    full = submit(open_form(adapter), photo=("besar.jpg", "image/jpeg", JPEG[:4] + b"\x00" * 100_000))
    cut = post_request(full.body[:50_000], full.headers["content-type"], cookie=full.headers["cookie"])
    html = page(adapter.reject(cut, 413, "body too large: 5767169 bytes or more, limit 5767168"))
    assert "Foto terlalu besar (maksimal 5 MB)" in html
    assert "body too large" not in html
    assert ">Jalan berlubang besar" in html  # the fields before the photo are given back


def test_max_body_leaves_room_for_the_photo_and_the_fields() -> None:
    assert WebFormAdapter.max_body_bytes == 5 * 1024 * 1024 + 512 * 1024
    with pytest.raises(ValidationError):
        WebFormSettings(max_photo_bytes=WebFormAdapter.max_body_bytes)


def test_empty_description_comes_back_422_with_the_rest_of_the_input(adapter: WebFormAdapter) -> None:
    fields = complaint(description="   ", address="Jl. Cikini Raya 73", phone="021 3190 1234")
    request = submit(open_form(adapter), fields, photo=("x.png", "image/png", PNG))
    with pytest.raises(PayloadRejected) as caught:
        deliver(adapter, request)
    assert caught.value.status_code == 422
    assert "Uraian masalah wajib diisi." in caught.value.message

    response = adapter.reject(request, 422, caught.value.message)
    html = page(response)
    assert response.status_code == 422
    assert_security_headers(response)
    assert 'role="alert"' in html and "Uraian masalah wajib diisi." in html
    assert 'value="Jl. Cikini Raya 73"' in html
    assert 'value="Kebon Sirih"' in html and 'value="Menteng"' in html
    assert 'value="Siti Rahayu"' in html and 'value="021 3190 1234"' in html and 'value="siti@contoh.id"' in html
    assert "pilih foto Anda sekali lagi" in html  # a file input cannot be refilled
    assert 'id="website" name="website" tabindex="-1" autocomplete="off" value=""' in html
    assert "Set-Cookie" in response.headers  # a fresh token, so fixing and resubmitting just works


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"address": "", "lat": "", "lng": ""}, "Lokasi wajib diisi"),
        ({"email": "siti@"}, "Alamat email tidak valid"),
        ({"email": "siti rahayu@contoh.id"}, "Alamat email tidak valid"),
        ({"phone": "12345"}, "Nomor telepon tidak valid"),
        ({"phone": "telepon saya"}, "Nomor telepon tidak valid"),
        ({"description": "x" * 5001}, "Uraian masalah terlalu panjang"),
        ({"address": "y" * 501}, "Alamat terlalu panjang"),
    ],
)
def test_bad_fields_are_explained(adapter: WebFormAdapter, overrides: dict[str, str], problem: str) -> None:
    with pytest.raises(PayloadRejected) as caught:
        deliver(adapter, submit(open_form(adapter), complaint(**overrides)))
    assert caught.value.status_code == 422
    assert problem in caught.value.message


def test_all_problems_are_listed_at_once(adapter: WebFormAdapter) -> None:
    with pytest.raises(PayloadRejected) as caught:
        adapter.parse(submit(open_form(adapter), complaint(description="", address="", email="x")))
    for problem in ("Uraian masalah wajib diisi", "Lokasi wajib diisi", "Alamat email tidak valid"):
        assert problem in caught.value.message


@pytest.mark.parametrize("phone", ["+62 812 3456 7890", "(021) 319-01234", "081234567890"])
def test_usual_phone_numbers_pass(adapter: WebFormAdapter, phone: str) -> None:
    [message] = deliver(adapter, submit(open_form(adapter), complaint(phone=phone)))
    assert message.sender is not None and message.sender.phone == phone


# ------------------------------------------------------------------------------------------ escaping

XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>'


def _assert_escaped(html: str) -> None:
    assert "<script>alert" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("status", [400, 401, 413, 415, 422])
def test_citizen_input_is_escaped_when_the_form_comes_back(adapter: WebFormAdapter, status: int) -> None:
    fields = {name: XSS for name in ("description", "address", "kelurahan", "kecamatan", "name", "phone", "email")}
    request = submit(open_form(adapter), {**fields, "lat": XSS, "lng": XSS})
    html = page(adapter.reject(request, status, f"Masalah: {XSS}"))
    _assert_escaped(html)
    # Nine fields given back, plus the message (a 413 always shows our own message instead).
    assert html.count("&lt;script&gt;alert(1)") == (9 if status == 413 else 10)
    # The only script on the page is the form's own, carrying the CSP nonce.
    assert len(re.findall(r"<script\b", html)) == 1


def test_gateway_messages_and_operator_texts_are_escaped_on_every_page() -> None:
    adapter = make_adapter(title=f"Balai Warga {XSS}")
    request = submit(open_form(adapter), complaint(description=XSS))
    forged = submit(open_form(adapter), complaint(description=XSS), headers={"Origin": "https://evil.example"})
    pages = [
        adapter.answer_get(get_request()),
        adapter.acknowledge(request, [StoredOutcome("x", "<script>alert(1)</script>", False)]),
        adapter.ignored(request, XSS),
        adapter.reject(request, 429, XSS),
        adapter.reject(forged, 401, XSS),
        adapter.reject(request, 422, XSS),
    ]
    for response in pages:
        _assert_escaped(page(response))
        assert_security_headers(response)


def test_citizen_text_reaches_the_message_unchanged(adapter: WebFormAdapter) -> None:
    [message] = deliver(adapter, submit(open_form(adapter), complaint(description=XSS)))
    assert message.text == XSS  # escaping is for pages; storage keeps what was written


# ------------------------------------------------------------------------------------ garbage bodies


def _garbage_bodies() -> list[tuple[str, bytes, str | None]]:
    valid, content_type = multipart(
        {"form_token": "1.abcdefghijklmnop." + "0" * 64, **complaint()},
        {"photo": ("a.jpg", "image/jpeg", JPEG)},
    )
    boundary = content_type.split("boundary=")[1]
    rng = random.Random(20250301)
    return [
        ("empty", b"", content_type),
        ("whitespace", b"\r\n \r\n", content_type),
        ("random bytes", rng.randbytes(4096), content_type),
        ("random bytes, no content type", rng.randbytes(512), None),
        ("json", b'{"description": "x"}', "application/json"),
        ("truncated multipart", valid[: len(valid) // 2], content_type),
        ("truncated in a header", valid[:60], content_type),
        ("wrong boundary", valid, "multipart/form-data; boundary=somethingelse"),
        ("no boundary", valid, "multipart/form-data"),
        ("empty boundary", valid, "multipart/form-data; boundary="),
        ("header injection in content type", valid, f"multipart/form-data; boundary={boundary}\r\nX-A: b"),
        ("non-latin content type", valid, "multipart/form-data; boundary=☃"),
        ("only the closing boundary", f"--{boundary}--\r\n".encode(), content_type),
        (
            "nested multipart",
            valid.replace(
                b"Content-Disposition", b"Content-Type: multipart/mixed; boundary=x\r\nContent-Disposition", 1
            ),
            content_type,
        ),
        ("huge field", multipart({"description": "a" * 3_000_000})[0], None),
        ("too many parts", multipart({f"f{i}": "x" for i in range(100)})[0], None),
        ("latin-1 text field", valid.replace(b"Jalan berlubang", b"Jalan \xe9\xe9 berlubang"), content_type),
        ("urlencoded bad percent", b"description=%E9%E9&address=x", "application/x-www-form-urlencoded"),
        ("urlencoded binary", rng.randbytes(300), "application/x-www-form-urlencoded"),
        (
            "urlencoded too many fields",
            b"&".join(b"a=%d" % i for i in range(500)),
            "application/x-www-form-urlencoded",
        ),
        ("urlencoded without token", b"description=x&address=y", "application/x-www-form-urlencoded"),
    ]


@pytest.mark.parametrize(
    ("name", "body", "content_type"), _garbage_bodies(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_garbage_is_refused_cleanly_by_every_step(
    adapter: WebFormAdapter, name: str, body: bytes, content_type: str | None
) -> None:
    if content_type is None and name != "random bytes, no content type":
        # Self-built bodies: use the content type the helper generated.
        content_type = "multipart/form-data; boundary=" + body[2 : body.index(b"\r\n")].decode()
    request = post_request(body, content_type, at=T0 + timedelta(seconds=30))

    with pytest.raises(SignatureInvalid):
        adapter.verify(request)
    with pytest.raises(PayloadRejected) as caught:
        adapter.parse(request)
    assert 400 <= caught.value.status_code < 500
    assert caught.value.message
    for status in (caught.value.status_code, 401):
        assert adapter.reject(request, status, caught.value.message).status_code == status


def test_mangled_submissions_never_raise_anything_unexpected() -> None:
    adapter = make_adapter(rate_limit_count=10_000)
    form = open_form(adapter)
    valid = submit(form, photo=("a.webp", "image/webp", WEBP))
    rng = random.Random(7)
    for _ in range(500):
        body = bytearray(valid.body)
        for _ in range(rng.randint(1, 8)):
            body[rng.randrange(len(body))] = rng.randrange(256)
        if rng.random() < 0.3:
            del body[rng.randrange(len(body)) :]
        request = post_request(bytes(body), valid.headers["content-type"], cookie=form.cookie, at=valid.received_at)
        with contextlib.suppress(SignatureInvalid):
            adapter.verify(request)
        with contextlib.suppress(PayloadRejected, PayloadIgnored):
            adapter.parse(request)
        assert adapter.reject(request, 400, "x").status_code == 400


def test_a_photo_full_of_line_breaks_is_cheap_to_parse(adapter: WebFormAdapter) -> None:
    # A line-by-line MIME parser needs seconds for this; the route must not hand out CPU that cheaply.
    request = submit(open_form(adapter), photo=("a.jpg", "image/jpeg", JPEG[:4] + b"\r\n" * 2_500_000))
    started = time.perf_counter()
    adapter.verify(request)
    [message] = adapter.parse(request)
    assert time.perf_counter() - started < 1.5
    assert message.media[0].content_type == "image/jpeg"


def test_photo_bytes_survive_the_round_trip(adapter: WebFormAdapter) -> None:
    data = JPEG + random.Random(3).randbytes(50_000) + b"\r\n--not-the-boundary\r\n\r"
    form = read_form(submit(open_form(adapter), photo=("Föto Jalan (1).jpeg", "image/jpeg", data)))
    assert form.photo is not None
    assert form.photo.data == data
    [message] = adapter.parse(submit(open_form(adapter), photo=("Föto Jalan (1).jpeg", "image/jpeg", data)))
    assert message.media[0].filename == "Föto_Jalan_1.jpg"


# -------------------------------------------------------------------------------------- configuration


def test_settings_defaults_and_limits() -> None:
    settings = WebFormSettings()
    assert settings.title == "Balai Warga: Laporkan Masalah di Sekitar Anda"
    assert (settings.rate_limit_count, settings.rate_limit_window_seconds) == (5, 600)
    assert settings.max_photo_bytes == 5 * 1024 * 1024
    assert (settings.min_fill_seconds, settings.token_max_age_seconds) == (3, 7200)
    with pytest.raises(ValidationError):
        WebFormSettings(min_fill_seconds=100, token_max_age_seconds=60)
    with pytest.raises(ValidationError):
        WebFormSettings.model_validate({"rate_limt_count": 5})  # typo: unknown keys are errors


def test_registered_as_the_web_form_channel_type() -> None:
    assert kanal_register_adapters() == [WebFormAdapter]
    assert WebFormAdapter.channel_type == "web_form"

"""The `web_form` channel type through the adapter kit: the contract every adapter meets, on both engines.

The form's own behaviour (tokens, photos, pages, limits) is tested without a server in
`test_web_form_unit.py`; this file is how a browser meets it through the real route.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest

from kanal_testing import ChannelProfile, ContractSuite, Prepared

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "web_form"


class WebFormProfile(ChannelProfile):
    """A browser: it GETs the form for a token and cookie, then posts multipart with both."""

    channel_type = "web_form"
    channel_id = "web_form:balaiwarga"
    # A test fills the form at once; the bot check would refuse it otherwise.
    channel_settings = {"min_fill_seconds": 0}
    fixtures = FIXTURES
    expected_text = "Sampah menumpuk di pinggir Kali Ciliwung dekat jembatan, bau dan mulai menyumbat saluran air."
    boundary = "----kanal-test-boundary-7MA4YWxkTrZu0gW"

    def _form(self, http: httpx.Client) -> tuple[str, str]:
        # A fresh client per form: the shared client's cookie jar must not add cookies behind our back.
        page = httpx.get(str(http.base_url).rstrip("/") + self.url(), timeout=10)
        assert page.status_code == 200, page.text
        token = re.search(r'name="form_token"\s+value="([^"]+)"', page.text)
        assert token, "form page has no form_token field"
        cookie = "; ".join(f"{name}={value}" for name, value in page.cookies.items())
        return token.group(1), cookie

    def _multipart(self, fields: dict[str, str], photo: tuple[str, str, bytes] | None = None) -> bytes:
        parts = []
        for name, value in fields.items():
            parts.append(
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            )
        if photo:
            filename, content_type, data = photo
            head = (
                f'--{self.boundary}\r\nContent-Disposition: form-data; name="photo"; filename="{filename}"\r\n'
                f"Content-Type: {content_type}\r\n\r\n"
            )
            parts.append(head.encode() + data + b"\r\n")
        return b"".join(parts) + f"--{self.boundary}--\r\n".encode()

    def _headers(self, http: httpx.Client, cookie: str) -> dict[str, str]:
        return {
            "Content-Type": f"multipart/form-data; boundary={self.boundary}",
            "Origin": str(http.base_url).rstrip("/"),
            "Cookie": cookie,
        }

    def prepare(self, http: httpx.Client, fixture: str) -> Prepared:
        # A fixture here is the form as filled in (fields and photo), not bytes: the token is issued per GET.
        spec = json.loads((self.fixtures / fixture).read_text())
        token, cookie = self._form(http)
        fields = {**spec["fields"], "form_token": token}
        photo = None
        if spec.get("photo"):
            photo_path = self.fixtures / spec["photo"]["file"]
            photo = (spec["photo"]["filename"], spec["photo"]["content_type"], photo_path.read_bytes())
        return Prepared(self._multipart(fields, photo), self._headers(http, cookie))

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        _token, cookie = self._form(http)
        return Prepared(body, self._headers(http, cookie))

    def tamper(self, prepared: Prepared) -> Prepared:
        # Flip the last hex digit of the token's MAC.
        tampered = re.sub(
            rb'(name="form_token"\r\n\r\n[^\r]*)([0-9a-f])\r\n',
            lambda m: m.group(1) + (b"0" if m.group(2) != b"0" else b"1") + b"\r\n",
            prepared.content,
        )
        assert tampered != prepared.content
        return Prepared(tampered, prepared.headers)

    def strip(self, prepared: Prepared) -> Prepared:
        stripped = re.sub(
            rb'--[^\r]*\r\nContent-Disposition: form-data; name="form_token"\r\n\r\n[^\r]*\r\n',
            b"",
            prepared.content,
        )
        assert stripped != prepared.content
        headers = {k: v for k, v in prepared.headers.items() if k != "Cookie"}
        return Prepared(stripped, headers)


class TestWebFormContract(ContractSuite):
    profile = WebFormProfile()

    @pytest.fixture
    def kanal_database_url(self, database_url: str) -> str:
        # Kanal's own suite runs the contract on both engines (the conftest's `database_url`).
        return database_url

"""How a test authenticates a delivery for each channel type: the only per-adapter part of the harness.

Every adapter registered with Kanal must have a profile here; `test_common_cases` fails otherwise, so
a new adapter cannot skip the common cases.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from tests.conftest import TEST_API_SECRET
from tests.support.api_client import signed_headers

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


@dataclass(frozen=True)
class Prepared:
    """A delivery ready to send: body, headers (including any cookie)."""

    content: bytes
    headers: dict[str, str] = field(default_factory=dict)


class ChannelProfile(ABC):
    channel_type: str
    channel_id: str
    #: A complete, valid delivery in the fixtures folder: text, sender, place and photo.
    valid_fixture = "full.json"

    @property
    def fixtures(self) -> Path:
        return FIXTURES / self.channel_type

    def url(self) -> str:
        return f"/channels/{self.channel_id}/inbound"

    @abstractmethod
    def prepare(self, http: httpx.Client, fixture: str) -> Prepared:
        """A correctly authenticated delivery of the named fixture."""

    @abstractmethod
    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        """`body` as-is, authenticated as far as the channel's format allows."""

    @abstractmethod
    def tamper(self, prepared: Prepared) -> Prepared:
        """The same delivery with a wrong signature or token."""

    @abstractmethod
    def strip(self, prepared: Prepared) -> Prepared:
        """The same delivery with no signature or token at all."""

    @abstractmethod
    def secrets(self) -> list[str]:
        """Strings that must never appear in logs or stored headers."""

    def send(self, http: httpx.Client, prepared: Prepared) -> httpx.Response:
        return http.post(self.url(), content=prepared.content, headers=prepared.headers)


class ApiProfile(ChannelProfile):
    channel_type = "api"
    channel_id = "api:partner"

    def prepare(self, http: httpx.Client, fixture: str) -> Prepared:
        return self.prepare_raw(http, (self.fixtures / fixture).read_bytes())

    def prepare_raw(self, http: httpx.Client, body: bytes) -> Prepared:
        return Prepared(body, signed_headers(body))

    def tamper(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers=signed_headers(prepared.content, secret="not-the-partner-secret-000"))

    def strip(self, prepared: Prepared) -> Prepared:
        return replace(prepared, headers={"Content-Type": "application/json"})

    def secrets(self) -> list[str]:
        return [TEST_API_SECRET]


class WebFormProfile(ChannelProfile):
    channel_type = "web_form"
    channel_id = "web_form:balaiwarga"
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
        return replace(prepared, content=tampered)

    def strip(self, prepared: Prepared) -> Prepared:
        stripped = re.sub(
            rb'--[^\r]*\r\nContent-Disposition: form-data; name="form_token"\r\n\r\n[^\r]*\r\n',
            b"",
            prepared.content,
        )
        assert stripped != prepared.content
        headers = {k: v for k, v in prepared.headers.items() if k != "Cookie"}
        return Prepared(stripped, headers)

    def secrets(self) -> list[str]:
        from tests.conftest import TEST_SECRET_KEY

        return [TEST_SECRET_KEY]


PROFILES: dict[str, ChannelProfile] = {p.channel_type: p for p in (ApiProfile(), WebFormProfile())}

"""What a partner system does: sign a JSON body and post it to an `api` channel."""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

import httpx

from adapters import signing
from kanal_testing.store import count, inbox_count, quarantine_rows, reports
from tests.conftest import TEST_API_SECRET

__all__ = ["complaint", "count", "inbox_count", "post_api", "quarantine_rows", "reports", "signed_headers"]


def signed_headers(body: bytes, *, secret: str = TEST_API_SECRET, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "X-Kanal-Signature": signing.sign(secret.encode(), body, stamp),
        "Content-Type": "application/json",
    }


def post_api(
    http: httpx.Client, payload: dict[str, Any] | bytes, *, channel: str = "api:partner", **sign: Any
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return http.post(f"/channels/{channel}/inbound", content=body, headers=signed_headers(body, **sign))


def complaint(
    external_id: str, text: str = "Jalan berlubang besar di depan pasar, sudah dua minggu tidak diperbaiki"
) -> dict[str, Any]:
    # Each complaint comes from its own caller: one caller's messages close together would be one
    # complaint and its follow-ups (see normalizer/duplicates.py).
    number = zlib.crc32(external_id.encode()) % 10**8
    return {
        "external_id": external_id,
        "text": text,
        "sender": {"id": f"caller-{external_id}", "name": "Budi Santoso", "phone": f"0812{number:08d}"},
        "location": {"lat": -6.1865, "lng": 106.8437, "address": "Jl. Kramat Raya, Senen"},
        "media": [{"url": "https://partner.example/photos/1.jpg", "content_type": "image/jpeg"}],
        "sent_at": "2026-11-27T08:15:00+07:00",
    }

"""Ticket codes a citizen can read out, row ids that sort by time, and the `api` signature rules."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from adapters import signing
from adapters.errors import SignatureInvalid
from gateway.ids import canonical_ticket_code, new_id, new_ticket_code


def test_row_ids_are_uuid7_and_sort_by_creation_time() -> None:
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    assert uuid.UUID(first).version == 7 and first < second


def test_ticket_codes_avoid_letters_that_are_misread() -> None:
    codes = {new_ticket_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert not any(ch in code for code in codes for ch in "ILOU")
    code = next(iter(codes))
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert canonical_ticket_code(typed) == code
    assert canonical_ticket_code("not a code") == ""


def test_every_ticket_code_has_a_digit_in_each_half() -> None:
    """So a code quoted in lower case with a space still reads as a code, not as two words."""
    for code in (new_ticket_code() for _ in range(2000)):
        first, second = code.split("-")
        assert any(ch.isdigit() for ch in first) and any(ch.isdigit() for ch in second), code


NOW = datetime(2026, 11, 28, 1, 0, tzinfo=UTC)
SECRET = b"partner-secret-0123456789"


def test_a_signature_over_the_exact_bytes_verifies() -> None:
    body = b'{"external_id": "a", "text": "b"}'
    signing.verify(signing.sign(SECRET, body, int(NOW.timestamp())), body, [SECRET], now=NOW)


@pytest.mark.parametrize(
    ("header", "body", "problem"),
    [
        (None, b"x", "missing"),
        ("v1=abc", b"x", "malformed"),
        ("t=abc,v1=00", b"x", "malformed"),
        (signing.sign(SECRET, b"x", int(NOW.timestamp()) - 301), b"x", "away from our clock"),
        (signing.sign(SECRET, b"x", int(NOW.timestamp()) + 301), b"x", "away from our clock"),
        (signing.sign(SECRET, b"x", int(NOW.timestamp())), b"x ", "does not match"),
        (signing.sign(b"other-secret-0123456789", b"x", int(NOW.timestamp())), b"x", "does not match"),
    ],
    ids=["missing", "no timestamp", "bad timestamp", "stale", "future", "body changed", "other secret"],
)
def test_signature_problems_are_refused_with_a_reason(header: str | None, body: bytes, problem: str) -> None:
    with pytest.raises(SignatureInvalid, match=problem):
        signing.verify(header, body, [SECRET], now=NOW)


def test_any_of_several_v1_values_may_match_during_rotation() -> None:
    stamp = int(NOW.timestamp())
    old = signing.sign(b"old-secret-0123456789", b"x", stamp).split(",")[1]
    new = signing.sign(SECRET, b"x", stamp)
    signing.verify(f"{new},{old}", b"x", [b"old-secret-0123456789"], now=NOW)

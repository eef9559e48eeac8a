"""Row ids (time-ordered UUIDv7) and ticket codes (short, unambiguous, easy to read out on the phone)."""

from __future__ import annotations

import os
import secrets
import time
import uuid

# Crockford's base32: no I, L, O or U, so a code survives being read aloud or typed from an SMS.
_TICKET_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_TICKET_LENGTH = 10  # 50 random bits: collisions stay negligible at tens of millions of reports
_READ_AS = str.maketrans({"I": "1", "L": "1", "O": "0", "U": "V"})


def new_id() -> str:
    """A UUIDv7 (RFC 9562) as text: sorts by creation time, so indexes stay append-mostly."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (millis & ((1 << 48) - 1)) << 80
    value |= 0x7 << 76  # version
    value |= ((rand >> 62) & 0xFFF) << 64  # rand_a
    value |= 0b10 << 62  # variant
    value |= rand & ((1 << 62) - 1)  # rand_b
    return str(uuid.UUID(int=value))


def new_ticket_code() -> str:
    """A random ticket code such as `K7F3Q-9Q2MX`, with a digit in each half.

    The digit is what tells a code typed in lower case with a space ("k7f3q 9q2mx") from two ordinary
    words when a citizen quotes it in a follow-up; it costs under half a bit of the 50.
    """
    while True:
        bits = int.from_bytes(secrets.token_bytes(7), "big")  # 56 random bits, one system call
        raw = "".join(_TICKET_ALPHABET[(bits >> (5 * i)) & 31] for i in range(_TICKET_LENGTH))
        if any(ch.isdigit() for ch in raw[:5]) and any(ch.isdigit() for ch in raw[5:]):
            return f"{raw[:5]}-{raw[5:]}"


def canonical_ticket_code(text: str) -> str:
    """Normalise a code as a citizen might type it (`k7f3o 9q2mx`) to its stored form, or return ''."""
    compact = "".join(ch for ch in text.upper() if ch.isalnum()).translate(_READ_AS)
    if len(compact) != _TICKET_LENGTH or any(ch not in _TICKET_ALPHABET for ch in compact):
        return ""
    return f"{compact[:5]}-{compact[5:]}"

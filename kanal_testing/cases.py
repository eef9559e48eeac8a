"""Table-driven adapter cases: a labelled fixture, what the channel must answer, what must be stored."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from kanal_testing.profile import ChannelProfile
from kanal_testing.server import KanalUnderTest
from kanal_testing.store import inbound_messages, inbox_count, quarantine_rows


@dataclass(frozen=True)
class Case:
    """One labelled delivery. Fields left `None` are not checked."""

    label: str
    #: A file in the profile's `fixtures` folder.
    fixture: str
    #: The status the channel must answer; 200 means stored, anything else means refused.
    status: int
    #: For accepted cases: what the stored message must say.
    text: str | None = None
    external_id: str | None = None
    sender_name: str | None = None
    #: A phrase the stored location's address must contain.
    address: str | None = None
    media_count: int | None = None
    #: For refused cases: a phrase the answer must contain, so the sender knows what to fix.
    error: str | None = None


def run_case(profile: ChannelProfile, case: Case, http: httpx.Client, gateway: KanalUnderTest) -> None:
    """Send `case.fixture` through the real route and check the answer and what was (not) stored.

    Expects an empty database: a refused case must leave exactly one quarantined delivery and no message,
    an accepted one exactly one stored message.
    """
    response = profile.send(http, profile.prepare(http, case.fixture))
    assert response.status_code == case.status, f"{case.label}: {response.status_code} {response.text[:400]}"
    engine = gateway.runtime.engine
    if case.status != 200:
        assert inbox_count(engine) == 0, f"{case.label}: a refused delivery was stored"
        assert len(quarantine_rows(engine)) == 1, f"{case.label}: a refused delivery was not kept for inspection"
        if case.error:
            assert case.error in response.text, f"{case.label}: answer lacks {case.error!r}: {response.text[:400]}"
        return
    rows = inbound_messages(engine)
    assert len(rows) == 1, f"{case.label}: expected one stored message, found {len(rows)}"
    row = rows[0]
    message = row.message
    if case.text is not None:
        assert message["text"] == case.text, f"{case.label}: stored text {message['text']!r}"
    if case.external_id is not None:
        assert row.external_id == case.external_id, f"{case.label}: stored external id {row.external_id!r}"
    if case.sender_name is not None:
        name = (message.get("sender") or {}).get("name")
        assert name == case.sender_name, f"{case.label}: stored sender name {name!r}"
    if case.address is not None:
        address = (message.get("location") or {}).get("address") or ""
        assert case.address in address, f"{case.label}: stored address {address!r}"
    if case.media_count is not None:
        media = message.get("media") or []
        assert len(media) == case.media_count, f"{case.label}: {len(media)} media stored"

"""Table-driven adapter cases: a labelled fixture, what the channel must answer, what must be stored."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from sqlalchemy import select

from gateway.db import read_session
from gateway.inbox import InboundMessageRow
from tests.contract.profiles import ChannelProfile
from tests.support.api_client import inbox_count, quarantine_rows
from tests.support.servers import RunningGateway


@dataclass(frozen=True)
class Case:
    label: str
    fixture: str
    status: int
    #: For accepted cases: what the stored message must say.
    text: str | None = None
    external_id: str | None = None
    sender_name: str | None = None
    address: str | None = None
    media_count: int | None = None
    #: For refused cases: a phrase the answer must contain, so the sender knows what to fix.
    error: str | None = None


def run_case(profile: ChannelProfile, case: Case, http: httpx.Client, gateway: RunningGateway) -> None:
    response = profile.send(http, profile.prepare(http, case.fixture))
    assert response.status_code == case.status, f"{case.label}: {response.status_code} {response.text[:400]}"
    engine = gateway.runtime.engine
    if case.status != 200:
        assert inbox_count(engine) == 0, f"{case.label}: a refused delivery was stored"
        assert len(quarantine_rows(engine)) == 1, f"{case.label}: a refused delivery was not kept for inspection"
        if case.error:
            assert case.error in response.text, f"{case.label}: answer lacks {case.error!r}: {response.text[:400]}"
        return
    with read_session(engine) as session:
        row = session.execute(select(InboundMessageRow)).scalar_one()
    message = row.message
    if case.text is not None:
        assert message["text"] == case.text
    if case.external_id is not None:
        assert row.external_id == case.external_id
    if case.sender_name is not None:
        assert message.get("sender", {}).get("name") == case.sender_name
    if case.address is not None:
        assert case.address in message.get("location", {}).get("address", "")
    if case.media_count is not None:
        assert len(message.get("media", [])) == case.media_count

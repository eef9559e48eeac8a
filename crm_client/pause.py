"""The credentials pause: after a 401/403 nothing more is sent until an operator acts.

Ending it: `kanal outbox resume` (or `POST /api/v1/outbox/resume`) once the key is fixed on either side, or
a restart with different credentials in the configuration (the pause remembers a fingerprint of the
refused ones). Until then /healthz shows the alert and the dispatcher logs it once per process.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Engine
from sqlmodel import Session

from crm_client.tables import CRMPause
from gateway.db import read_session, utcnow, write_session
from gateway.settings import CRMConfig

PAUSE_NAME = "crm"


def credentials_fingerprint(crm: CRMConfig) -> str:
    """A short hash of the credentials in use: tells a changed key from the refused one, reveals nothing useful."""
    secret = (
        crm.api_key.get_secret_value()
        if crm.kind == "open311"
        else crm.push_secret.get_secret_value()
        if crm.push_secret
        else ""
    )
    target = crm.base_url if crm.kind == "open311" else crm.push_url or ""
    return hashlib.sha256(f"kanal-crm-pause\0{crm.kind}\0{target}\0{secret}".encode()).hexdigest()[:16]


def current(engine: Engine) -> CRMPause | None:
    with read_session(engine) as session:
        return session.get(CRMPause, PAUSE_NAME)


def pause(session: Session, *, reason: str, crm: CRMConfig) -> None:
    """Hold all sending, in the caller's transaction; a pause already in place keeps its start time."""
    existing = session.get(CRMPause, PAUSE_NAME)
    if existing is None:
        session.add(
            CRMPause(
                name=PAUSE_NAME,
                paused_at=utcnow(),
                reason=reason[:2000],
                credentials_fingerprint=credentials_fingerprint(crm),
            )
        )


def resume(engine: Engine) -> bool:
    """Lift the pause; return whether there was one."""
    with write_session(engine) as session:
        held = session.get(CRMPause, PAUSE_NAME)
        if held is None:
            return False
        session.delete(held)
        return True


def resume_if_credentials_changed(engine: Engine, crm: CRMConfig) -> bool:
    """At start-up: a pause for credentials that are no longer configured is lifted (the operator fixed them)."""
    held = current(engine)
    if held is None or held.credentials_fingerprint == credentials_fingerprint(crm):
        return False
    return resume(engine)

"""The attempt log: every request to the CRM and its answer, with secrets taken out before storage."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from crm_client.errors import CRMError
from crm_client.open311 import Created
from crm_client.tables import CRMAttempt
from gateway.settings import CRMConfig

ANSWER_LIMIT = 2000
REDACTED = "[redacted]"
#: A CRM that echoes the request back may echo `api_key=...` too, in a form body or a query string.
_KEY_IN_TEXT = re.compile(r"(api_key[\"']?\s*[=:]\s*[\"']?)[^&\s\"',}]+", re.IGNORECASE)


@dataclass(frozen=True)
class Attempt:
    """One request as the dispatcher saw it, before it is stored."""

    at: datetime
    operation: str  # "create", "resolve_token", "push"
    outcome: Created | CRMError
    duration_ms: int


def redact(text: str | None, crm: CRMConfig) -> str | None:
    """`text` without our API key or push secret, truncated to what the log keeps."""
    if text is None:
        return None
    for secret in (crm.api_key, crm.push_secret):
        value = secret.get_secret_value() if secret is not None else ""
        if len(value) >= 4:  # a shorter value would blank out ordinary words
            text = text.replace(value, REDACTED)
    text = _KEY_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, text)
    return text[:ANSWER_LIMIT]


def attempt_row(outbox_id: str, attempt: Attempt, crm: CRMConfig) -> CRMAttempt:
    outcome = attempt.outcome
    status: int | None
    if isinstance(outcome, Created):
        status, answer, kind = outcome.status_code, outcome.answer, None
    else:
        # No answer body (a timeout, a refused connection, a check before sending): the message says what happened.
        status, answer, kind = outcome.status_code, outcome.answer or outcome.message, outcome.kind
    return CRMAttempt(
        outbox_id=outbox_id,
        at=attempt.at,
        operation=attempt.operation,
        http_status=status,
        answer=redact(answer, crm),
        error_kind=kind,
        duration_ms=attempt.duration_ms,
    )


def attempts_for(session: Session, outbox_id: str, *, limit: int = 50) -> list[CRMAttempt]:
    """The item's attempts, newest first."""
    query = (
        select(CRMAttempt)
        .where(col(CRMAttempt.outbox_id) == outbox_id)
        .order_by(col(CRMAttempt.at).desc(), col(CRMAttempt.id).desc())
        .limit(limit)
    )
    return list(session.execute(query).scalars())


def last_attempts(session: Session, outbox_ids: list[str]) -> dict[str, CRMAttempt]:
    """The newest attempt of each item, for list views."""
    if not outbox_ids:
        return {}
    rows = session.execute(
        select(CRMAttempt)
        .where(col(CRMAttempt.outbox_id).in_(outbox_ids))
        .order_by(col(CRMAttempt.at), col(CRMAttempt.id))
    ).scalars()
    return {row.outbox_id: row for row in rows}

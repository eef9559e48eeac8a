"""The admin audit log: who signed in, failed to, was locked out, signed out, changed a setting or an account.

Changes to reports are not written here: each is a `report_event` row with the fields before and
after (review_queue/tables.py). The audit page shows both. Rows are only ever added.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Connection, insert
from sqlmodel import Field, Session, SQLModel

from gateway.db import UTCDateTime, utcnow
from gateway.ids import new_id
from review_queue.tables import AdminUser

#: `actor_name` of rows no signed-in admin caused (a failed sign-in, a lock-out).
ANONYMOUS = "anonymous"


class AuditAction(StrEnum):
    LOGIN = "login"
    #: `detail`: the username tried (never the password) and why: unknown_user, wrong_password, locked, disabled.
    LOGIN_FAILED = "login_failed"
    #: `detail`: the username, the failures counted and until when the account is locked.
    LOCKOUT = "lockout"
    LOGOUT = "logout"
    #: `detail`: from and to.
    LANGUAGE_CHANGED = "language_changed"
    # -- a superadmin managing accounts (review_queue/account_admin.py); `target_id`: the account's id.
    #: `detail`: the username and the settings it was given (role, scope, language).
    ACCOUNT_CREATED = "account_created"
    #: `detail`: the username, and `before` and `after` of the settings that changed.
    ACCOUNT_CHANGED = "account_changed"
    #: `detail`: the username and the sessions and API tokens ended.
    ACCOUNT_DISABLED = "account_disabled"
    #: `detail`: the username.
    ACCOUNT_ENABLED = "account_enabled"
    #: `detail`: the username, and the lock-out and failure count cleared.
    ACCOUNT_UNLOCKED = "account_unlocked"
    #: `detail`: the username and the sessions and API tokens ended; never the password or its hash.
    ACCOUNT_PASSWORD_SET = "account_password_set"  # noqa: S105 - an action name, not a password


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"

    id: str = Field(default_factory=new_id, primary_key=True, max_length=36)
    at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False, index=True))
    #: The admin who acted; None when nobody was signed in. The name is copied so a row still reads
    #: after the account is renamed or removed.
    actor_id: str | None = Field(default=None, index=True, max_length=36)
    actor_name: str = Field(max_length=100)
    action: str = Field(index=True, max_length=50)
    #: What the action was about, e.g. ("admin_user", <id>).
    target_type: str | None = Field(default=None, max_length=50)
    target_id: str | None = Field(default=None, max_length=100)
    detail: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    ip: str | None = Field(default=None, max_length=64)


def record(
    session_or_connection: Session | Connection,
    *,
    actor: AdminUser | str | None,
    action: AuditAction | str,
    target_type: str | None = None,
    target_id: str | None = None,
    detail: dict[str, Any] | None = None,
    ip: str | None = None,
) -> None:
    """Add one audit row inside the caller's transaction, so it commits (or not) with what it describes.

    :param actor: the admin who acted, a name for a non-admin actor ("system:sla"), or None (nobody
        signed in).
    :param detail: JSON-serialisable facts; never a password or a token.
    """
    if isinstance(actor, AdminUser):
        actor_id, actor_name = actor.id, actor.username
    else:
        actor_id, actor_name = None, actor or ANONYMOUS
    row = AuditLog(
        at=utcnow(),
        actor_id=actor_id,
        actor_name=actor_name[:100],
        action=str(action),
        target_type=target_type,
        target_id=target_id,
        detail=detail,
        ip=ip[:64] if ip else None,
    )
    if isinstance(session_or_connection, Session):
        session_or_connection.add(row)
    else:
        session_or_connection.execute(insert(AuditLog), [row.model_dump()])

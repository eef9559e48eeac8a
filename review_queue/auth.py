"""Admin accounts and bearer tokens. Passwords are argon2id hashes; tokens are stored as SHA-256 only."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select
from sqlmodel import Session, col

from gateway.db import read_session, utcnow, write_session
from review_queue.tables import AdminRole, AdminUser, ApiToken

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps "no such user" as slow as "wrong password".
_DUMMY_HASH = _hasher.hash("kanal-dummy-password")
MIN_PASSWORD_LENGTH = 10


class AccountError(ValueError):
    """The account cannot be created as asked; the message says why."""


def create_admin(engine: Engine, *, username: str, password: str, role: AdminRole) -> AdminUser:
    username = username.strip()
    if not username or len(username) > 100:
        raise AccountError("username must be 1 to 100 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"password must be at least {MIN_PASSWORD_LENGTH} characters")
    with write_session(engine) as session:
        if session.execute(select(AdminUser).where(col(AdminUser.username) == username)).scalar_one_or_none():
            raise AccountError(f"an admin named {username!r} already exists")
        admin = AdminUser(username=username, password_hash=_hasher.hash(password), role=role)
        session.add(admin)
    return admin


def authenticate(engine: Engine, *, username: str, password: str) -> AdminUser | None:
    with read_session(engine) as session:
        admin = session.execute(
            select(AdminUser).where(col(AdminUser.username) == username.strip())
        ).scalar_one_or_none()
    stored = admin.password_hash if admin is not None and not admin.disabled else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return admin if admin is not None and not admin.disabled else None


def issue_token(engine: Engine, admin: AdminUser, *, ttl: timedelta) -> tuple[str, ApiToken]:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    record = ApiToken(token_hash=_digest(token), admin_id=admin.id, created_at=now, expires_at=now + ttl)
    with write_session(engine) as session:
        session.execute(delete(ApiToken).where(col(ApiToken.expires_at) < now))
        session.add(record)
    return token, record


def admin_for_token(session: Session, token: str) -> AdminUser | None:
    row = session.execute(
        select(AdminUser)
        .join(ApiToken, col(ApiToken.admin_id) == AdminUser.id)
        .where(col(ApiToken.token_hash) == _digest(token), col(ApiToken.expires_at) > utcnow())
    ).scalar_one_or_none()
    return row if row is not None and not row.disabled else None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()

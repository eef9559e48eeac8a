"""Admin accounts, sign-in with lock-out, and bearer tokens.

Passwords are argon2id hashes; tokens are stored as SHA-256 only. Failed sign-ins are counted per
account in the database, so every process sharing it agrees on a lock-out.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, delete, select
from sqlmodel import Session, col

from gateway.db import read_session, utcnow, write_session
from review_queue import audit
from review_queue.accounts import AccountError
from review_queue.audit import AuditAction
from review_queue.tables import AdminRole, AdminUser, ApiToken

__all__ = [
    "AccountError",
    "LockoutPolicy",
    "SignInAttempt",
    "admin_for_token",
    "authenticate",
    "check_password",
    "create_admin",
    "hash_password",
    "issue_token",
    "settle_sign_in",
]

_hasher = PasswordHasher()
# Verifying against this when the user does not exist keeps "no such user" as slow as "wrong password".
_DUMMY_HASH = _hasher.hash("kanal-dummy-password")
MIN_PASSWORD_LENGTH = 10


def create_admin(
    engine: Engine,
    *,
    username: str,
    password: str,
    role: AdminRole,
    scope_channels: Sequence[str] | None = None,
    scope_wilayah: Sequence[str] | None = None,
    language: str = "id",
) -> AdminUser:
    """Create an account; raise `AccountError` saying what to change.

    Scope rules are `review_queue.accounts.validate_account`'s: with neither scope part given, a reviewer
    or viewer sees every report; wilayah codes must exist in normalizer/data/wilayah.csv.
    """
    # The same checks as the account pages (review_queue/account_admin.py), imported here because that
    # module builds on this one.
    from review_queue.account_admin import check_settings, clean_username, hash_new_password

    username = clean_username(username)
    settings = check_settings(role=role, scope_channels=scope_channels, scope_wilayah=scope_wilayah, language=language)
    password_hash = hash_new_password(password)
    with write_session(engine) as session:
        if session.execute(select(AdminUser).where(col(AdminUser.username) == username)).scalar_one_or_none():
            raise AccountError(f"an admin named {username!r} already exists")
        admin = AdminUser(
            username=username,
            password_hash=password_hash,
            role=settings.role,
            scope_channels=list(settings.scope_channels),
            scope_wilayah=list(settings.scope_wilayah),
            language=settings.language,
        )
        session.add(admin)
    return admin


def hash_password(password: str) -> str:
    """The stored form of `password` (argon2id), as `create_admin` stores it. Slow on purpose: call it
    outside a write transaction. The caller checks the length (`MIN_PASSWORD_LENGTH`) first.
    """
    return _hasher.hash(password)


def authenticate(engine: Engine, *, username: str, password: str) -> AdminUser | None:
    """The account if the password is right and it is neither disabled nor locked out; None otherwise.

    Counts nothing: `check_password` with `settle_sign_in` is the sign-in that counts failures.
    """
    attempt = check_password(engine, username=username, password=password)
    if not attempt.password_ok or attempt.admin is None:
        return None
    locked = attempt.admin.locked_until is not None and attempt.admin.locked_until > utcnow()
    return None if locked else attempt.admin


@dataclass(frozen=True)
class LockoutPolicy:
    """After `max_failures` failed sign-ins within `window`, the account is locked for `lockout`."""

    max_failures: int = 5
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=15)


@dataclass(frozen=True)
class SignInAttempt:
    """A username and password checked against the stored hash, before anything is recorded."""

    username: str  # as typed (stripped, at most 100 characters): audited, so a guessed name is visible
    admin: AdminUser | None  # the account of that name, disabled or not
    password_ok: bool


def check_password(engine: Engine, *, username: str, password: str) -> SignInAttempt:
    """Verify the password (slow: argon2). Run it outside a write transaction, then `settle_sign_in`."""
    username = username.strip()[:100]
    with read_session(engine) as session:
        admin = session.execute(select(AdminUser).where(col(AdminUser.username) == username)).scalar_one_or_none()
    # Always one verification, against the dummy hash when there is no usable account, so the answer
    # takes as long for an unknown name as for a wrong password.
    stored = admin.password_hash if admin is not None and not admin.disabled else _DUMMY_HASH
    try:
        _hasher.verify(stored, password)
        ok = admin is not None and not admin.disabled
    except (VerificationError, InvalidHashError):
        ok = False
    return SignInAttempt(username=username, admin=admin, password_ok=ok)


def settle_sign_in(
    session: Session, attempt: SignInAttempt, *, policy: LockoutPolicy, ip: str | None, via: str = "web"
) -> AdminUser | None:
    """Record the attempt in the caller's write transaction; return the admin if they may sign in.

    A success resets the failure count; a failure counts it and, at the limit, locks the account. A
    locked account is refused even with the right password. Every outcome is audited (the username
    tried, never the password). Callers show one message for every refusal, so a guesser cannot tell
    an unknown name, a wrong password and a locked account apart.
    """
    target_id = attempt.admin.id if attempt.admin is not None else None

    def refused(reason: str) -> None:
        audit.record(
            session,
            actor=None,
            action=AuditAction.LOGIN_FAILED,
            target_type="admin_user" if target_id else None,
            target_id=target_id,
            detail={"username": attempt.username, "via": via, "reason": reason},
            ip=ip,
        )

    if attempt.admin is None:
        refused("unknown_user")
        return None
    # Locked for the read-modify-write of the counters: two processes failing at once both count.
    admin = session.get(AdminUser, attempt.admin.id, with_for_update=True)
    if admin is None or admin.disabled:
        refused("disabled")
        return None
    now = utcnow()
    if admin.locked_until is not None and admin.locked_until > now:
        refused("locked")
        return None
    if attempt.password_ok:
        admin.failed_logins, admin.failed_since = 0, None
        session.add(admin)
        audit.record(
            session,
            actor=admin,
            action=AuditAction.LOGIN,
            target_type="admin_user",
            target_id=admin.id,
            detail={"via": via},
            ip=ip,
        )
        return admin
    _count_failure(admin, now, policy)
    session.add(admin)
    refused("wrong_password")
    if admin.locked_until is not None and admin.locked_until > now:
        audit.record(
            session,
            actor=None,
            action=AuditAction.LOCKOUT,
            target_type="admin_user",
            target_id=admin.id,
            detail={"username": admin.username, "failures": policy.max_failures, "until": _iso(admin.locked_until)},
            ip=ip,
        )
    return None


def _count_failure(admin: AdminUser, now: datetime, policy: LockoutPolicy) -> None:
    if admin.failed_since is None or now - admin.failed_since > policy.window:
        admin.failed_since, admin.failed_logins = now, 1
    else:
        admin.failed_logins += 1
    if admin.failed_logins >= policy.max_failures:
        # The count starts again after the lock-out: the next guess after it is the first of a new window.
        admin.locked_until = now + policy.lockout
        admin.failed_logins, admin.failed_since = 0, None


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


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

"""A superadmin managing admin accounts: create, change role, scope and language, disable, enable,
unlock, and set a new password. The admin pages (review_queue/web/pages_accounts.py) are a thin layer
over these functions.

Each change runs in the caller's write transaction and writes its audit row there, so the change and
its record commit together or not at all. Passwords are hashed before that transaction opens
(`hash_new_password`): argon2 is slow on purpose, and on SQLite writes go one at a time.

The rules:

- only an enabled superadmin may do any of this (`NotPermitted`);
- roles and scopes follow `review_queue.accounts.validate_account`, as `kanal admin create` does;
- at least one enabled superadmin always remains: superadmins are the ones who see every report,
  so without one some reports would be invisible to everyone (docs/admin.md, Scopes);
- disabling an account or setting its password deletes its sessions and API tokens, so a copied
  cookie or token stops working at once (and does not come back if the account is enabled again);
- audit rows name the account and what changed, never a password or its hash.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import CursorResult, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from gateway.db import utcnow
from review_queue import audit, auth
from review_queue.accounts import AccountError, Scope, scope_of, validate_account
from review_queue.audit import AuditAction, AuditLog
from review_queue.tables import AdminRole, AdminSession, AdminUser, ApiToken

#: The `admin_user.username` column's size; `create_admin` allows the same.
MAX_USERNAME = 100
#: The sign-in form ignores longer passwords unread (review_queue/web/pages_auth.py), so a longer one
#: could never be used.
MAX_PASSWORD_LENGTH = 1000
#: The audit log's `target_type` of rows about an account.
TARGET = "admin_user"


class AccountRefused(AccountError):
    """A refusal the pages put in the admin's language: the i18n `key` with `params`.

    The message (English) is for logs and other callers.
    """

    def __init__(self, key: str, message: str, **params: object) -> None:
        super().__init__(message, key=key, **params)
        self.key: str = key


class NotPermitted(PermissionError):
    """Only an enabled superadmin may manage accounts."""


class AccountNotFound(LookupError):
    """No account has this id."""


@dataclass(frozen=True)
class AccountSettings:
    """What a superadmin sets on an account, checked: build it with `check_settings`."""

    role: AdminRole
    scope_channels: list[str]
    scope_wilayah: list[str]
    language: str

    def as_detail(self) -> dict[str, Any]:
        return {
            "role": str(self.role),
            "scope_channels": list(self.scope_channels),
            "scope_wilayah": list(self.scope_wilayah),
            "language": self.language,
        }


@dataclass(frozen=True)
class AccountRow:
    """One line of the account list."""

    account: AdminUser
    #: None unless the account is locked now.
    locked_until: datetime | None
    #: From the audit log's `login` rows (web or API); None: never, or before the log existed.
    last_sign_in: datetime | None


@dataclass(frozen=True)
class Ended:
    """The sign-ins a change ended: browser sessions and API tokens."""

    sessions: int
    tokens: int


# -- checks that need no database ---------------------------------------------------------------------


def check_settings(
    *,
    role: AdminRole | str,
    scope_channels: Sequence[str] | None,
    scope_wilayah: Sequence[str] | None,
    language: str,
) -> AccountSettings:
    """The settings as stored, or `AccountError` naming the first problem (`validate_account`'s rules).

    `None` for both scope parts gives a reviewer or viewer the whole city, as `kanal admin create` does;
    lists (even empty ones) are stored as given.
    """
    channels, wilayah = validate_account(
        role=role, scope_channels=scope_channels, scope_wilayah=scope_wilayah, language=language
    )
    return AccountSettings(role=AdminRole(role), scope_channels=channels, scope_wilayah=wilayah, language=language)


def clean_username(username: str) -> str:
    """`username` without surrounding spaces; `AccountRefused` if empty, too long or with control characters."""
    username = username.strip()
    if not username or len(username) > MAX_USERNAME or any(unicodedata.category(ch) == "Cc" for ch in username):
        raise AccountRefused(
            "accounts.err.username",
            f"username must be 1 to {MAX_USERNAME} characters, without control characters",
            n=MAX_USERNAME,
        )
    return username


def hash_new_password(password: str) -> str:
    """The stored form of a new password, after checking its length. Slow: call it outside a write transaction."""
    if len(password) < auth.MIN_PASSWORD_LENGTH:
        raise AccountRefused(
            "accounts.err.password_short",
            f"password must be at least {auth.MIN_PASSWORD_LENGTH} characters",
            n=auth.MIN_PASSWORD_LENGTH,
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountRefused(
            "accounts.err.password_long",
            f"password must be at most {MAX_PASSWORD_LENGTH} characters",
            n=MAX_PASSWORD_LENGTH,
        )
    return auth.hash_password(password)


def stored_scope(account: AdminUser) -> Scope:
    """The scope stored on `account`, as if it were enabled (`scope_of` gives a disabled one nothing)."""
    if not account.disabled:
        return scope_of(account)
    # A throwaway copy, never added to a session.
    return scope_of(
        AdminUser(
            id=account.id,
            username=account.username,
            password_hash="-",  # noqa: S106 - not a password: the copy is never stored
            role=account.role,
            scope_channels=list(account.scope_channels or ()),
            scope_wilayah=list(account.scope_wilayah or ()),
        )
    )


#: Who changes an account: an enabled superadmin (the pages), or an operator on the server ("cli:<user>",
#: `kanal admin ...`), who can reach the database anyway and must be able to repair the last superadmin.
Actor = AdminUser | str
OPERATOR_PREFIX = "cli:"


def may_manage(admin: AdminUser) -> bool:
    """Whether `admin` may use this module: an enabled superadmin."""
    return admin.role == AdminRole.SUPERADMIN and not admin.disabled


# -- reading ----------------------------------------------------------------------------------------


def list_accounts(session: Session) -> list[AccountRow]:
    """Every account, by username, with its lock-out (if running) and last sign-in."""
    accounts = list(session.execute(select(AdminUser).order_by(col(AdminUser.username))).scalars())
    last = last_sign_ins(session, [a.id for a in accounts])
    now = utcnow()
    return [_row(a, last.get(a.id), now) for a in accounts]


def get_account(session: Session, account_id: str) -> AccountRow:
    """One account, as `list_accounts` shows it; `AccountNotFound` if no account has this id."""
    account = session.get(AdminUser, account_id)
    if account is None:
        raise AccountNotFound(account_id)
    return _row(account, last_sign_ins(session, [account.id]).get(account.id), utcnow())


def _row(account: AdminUser, last_sign_in: datetime | None, now: datetime) -> AccountRow:
    running = account.locked_until is not None and account.locked_until > now
    return AccountRow(
        account=account, locked_until=account.locked_until if running else None, last_sign_in=last_sign_in
    )


def last_sign_ins(session: Session, account_ids: Iterable[str]) -> dict[str, datetime]:
    """Each account's latest successful sign-in, from the audit log (the account row does not keep it)."""
    ids = list(account_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(col(AuditLog.actor_id), func.max(col(AuditLog.at)))
        .where(col(AuditLog.action) == AuditAction.LOGIN, col(AuditLog.actor_id).in_(ids))
        .group_by(col(AuditLog.actor_id))
    ).all()
    return {actor_id: at for actor_id, at in rows if actor_id is not None}


# -- changes (in the caller's write transaction) ------------------------------------------------------


def create_account(
    session: Session,
    *,
    actor: Actor,
    username: str,
    settings: AccountSettings,
    password_hash: str,
    ip: str | None,
) -> AdminUser:
    """Add the account; `AccountRefused` if the name is taken. `password_hash` comes from `hash_new_password`."""
    _require_manager(actor)
    username = clean_username(username)
    taken = session.execute(select(col(AdminUser.id)).where(col(AdminUser.username) == username)).first()
    if taken is not None:
        raise _taken(username)
    account = AdminUser(
        username=username,
        password_hash=password_hash,
        role=settings.role,
        scope_channels=list(settings.scope_channels),
        scope_wilayah=list(settings.scope_wilayah),
        language=settings.language,
    )
    session.add(account)
    try:
        session.flush()  # two superadmins creating the same name at once: the unique index decides
    except IntegrityError:
        raise _taken(username) from None
    _record(session, actor, AuditAction.ACCOUNT_CREATED, account, ip, **settings.as_detail())
    return account


def update_account(
    session: Session, *, actor: Actor, account_id: str, settings: AccountSettings, ip: str | None
) -> dict[str, tuple[Any, Any]]:
    """Give the account `settings`; return what changed (name: (before, after)), empty if nothing did.

    Refuses (`AccountRefused`) to demote the last enabled superadmin.
    """
    _require_manager(actor)
    superadmins = _lock_superadmins(session)
    account = _locked_account(session, account_id)
    before = _settings_of(account)
    after = settings.as_detail()
    changed = {name: (before[name], after[name]) for name in after if before[name] != after[name]}
    if not changed:
        return {}
    if "role" in changed and superadmins == [account.id] and settings.role != AdminRole.SUPERADMIN:
        raise _last_superadmin()
    account.role = settings.role
    account.scope_channels = list(settings.scope_channels)
    account.scope_wilayah = list(settings.scope_wilayah)
    account.language = settings.language
    session.add(account)
    _record(
        session,
        actor,
        AuditAction.ACCOUNT_CHANGED,
        account,
        ip,
        before={name: old for name, (old, _new) in changed.items()},
        after={name: new for name, (_old, new) in changed.items()},
    )
    return changed


def disable(session: Session, *, actor: Actor, account_id: str, ip: str | None) -> Ended | None:
    """Disable the account and end its sessions and API tokens; None if it was disabled already.

    Refuses (`AccountRefused`) to disable the last enabled superadmin.
    """
    _require_manager(actor)
    superadmins = _lock_superadmins(session)
    account = _locked_account(session, account_id)
    if account.disabled:
        return None
    if superadmins == [account.id]:
        raise _last_superadmin()
    account.disabled = True
    session.add(account)
    ended = _end_sign_ins(session, account.id)
    _record(
        session,
        actor,
        AuditAction.ACCOUNT_DISABLED,
        account,
        ip,
        sessions_ended=ended.sessions,
        tokens_ended=ended.tokens,
    )
    return ended


def enable(session: Session, *, actor: Actor, account_id: str, ip: str | None) -> bool:
    """Enable the account again (its password is unchanged); False if it was enabled already."""
    _require_manager(actor)
    account = _locked_account(session, account_id)
    if not account.disabled:
        return False
    account.disabled = False
    session.add(account)
    _record(session, actor, AuditAction.ACCOUNT_ENABLED, account, ip)
    return True


def unlock(session: Session, *, actor: Actor, account_id: str, ip: str | None) -> bool:
    """Clear the lock-out and the failure count, so the owner may sign in at once; False if there was neither."""
    _require_manager(actor)
    account = _locked_account(session, account_id)
    if account.locked_until is None and not account.failed_logins and account.failed_since is None:
        return False
    locked_until = account.locked_until
    failures = account.failed_logins
    account.locked_until, account.failed_logins, account.failed_since = None, 0, None
    session.add(account)
    _record(
        session,
        actor,
        AuditAction.ACCOUNT_UNLOCKED,
        account,
        ip,
        locked_until=locked_until.isoformat(timespec="seconds") if locked_until else None,
        failed_logins=failures,
    )
    return True


def set_password(
    session: Session,
    *,
    actor: Actor,
    account_id: str,
    password_hash: str,
    ip: str | None,
    keep_session: str | None = None,
) -> Ended:
    """Store a new password (from `hash_new_password`) and end the account's sessions and API tokens.

    :param keep_session: a session id not to end: the superadmin's own browser when they set their own
        password, so they are not signed out by it.
    """
    _require_manager(actor)
    account = _locked_account(session, account_id)
    account.password_hash = password_hash
    session.add(account)
    ended = _end_sign_ins(session, account.id, keep_session=keep_session)
    _record(
        session,
        actor,
        AuditAction.ACCOUNT_PASSWORD_SET,
        account,
        ip,
        sessions_ended=ended.sessions,
        tokens_ended=ended.tokens,
    )
    return ended


# -- helpers ------------------------------------------------------------------------------------------


def _require_manager(actor: Actor) -> None:
    if isinstance(actor, str):
        if not actor.startswith(OPERATOR_PREFIX):
            raise NotPermitted(f"{actor!r} is not an operator ({OPERATOR_PREFIX}<name>) nor a superadmin")
        return
    if not may_manage(actor):
        raise NotPermitted(f"{actor.username!r} is not an enabled superadmin")


def _lock_superadmins(session: Session) -> list[str]:
    """The ids of the enabled superadmins, their rows locked in id order.

    Every change that could leave none takes these locks first and in the same order, so two
    superadmins demoting each other at once are serialised (the second sees one left) instead of
    both succeeding or deadlocking.
    """
    query = (
        select(col(AdminUser.id))
        .where(col(AdminUser.role) == AdminRole.SUPERADMIN, col(AdminUser.disabled).is_(False))
        .order_by(col(AdminUser.id))
        .with_for_update()
    )
    return list(session.execute(query).scalars())


def _locked_account(session: Session, account_id: str) -> AdminUser:
    account = session.get(AdminUser, account_id, with_for_update=True)
    if account is None:
        raise AccountNotFound(account_id)
    return account


def _settings_of(account: AdminUser) -> dict[str, Any]:
    return {
        "role": str(account.role),
        "scope_channels": list(account.scope_channels or ()),
        "scope_wilayah": list(account.scope_wilayah or ()),
        "language": account.language,
    }


def _end_sign_ins(session: Session, account_id: str, *, keep_session: str | None = None) -> Ended:
    sessions = delete(AdminSession).where(col(AdminSession.admin_id) == account_id)
    if keep_session is not None:
        sessions = sessions.where(col(AdminSession.token_hash) != keep_session)
    tokens = delete(ApiToken).where(col(ApiToken.admin_id) == account_id)
    return Ended(sessions=_count(session.execute(sessions)), tokens=_count(session.execute(tokens)))


def _count(result: object) -> int:
    return max(cast(CursorResult[Any], result).rowcount, 0)


def _record(
    session: Session, actor: Actor, action: AuditAction, account: AdminUser, ip: str | None, **detail: Any
) -> None:
    audit.record(
        session,
        actor=actor,
        action=action,
        target_type=TARGET,
        target_id=account.id,
        detail={"username": account.username, **detail},
        ip=ip,
    )


def _taken(username: str) -> AccountRefused:
    return AccountRefused("accounts.err.taken", f"an admin named {username!r} already exists", username=username)


def _last_superadmin() -> AccountRefused:
    return AccountRefused(
        "accounts.err.last_superadmin",
        "this is the last enabled superadmin; make or enable another superadmin first",
    )

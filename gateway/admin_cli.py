"""`kanal admin list|unlock|disable|enable|set-password`: account repairs for an operator on the server.

The admin pages (/admin/accounts) do the same for a signed-in superadmin. These exist for when no
superadmin can sign in: the last one is locked out, disabled by mistake, or has forgotten the password.
Each change is recorded in the audit log with the actor `cli:<the operating-system user>`.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session, col

from gateway.db import read_session, write_session
from review_queue import account_admin
from review_queue.account_admin import OPERATOR_PREFIX, AccountNotFound
from review_queue.accounts import scope_of
from review_queue.auth import AccountError
from review_queue.tables import AdminUser
from review_queue.workdays import WIB


def add_commands(admin_sub: Any, engine: Callable[[], Engine]) -> None:
    """Register the commands under `kanal admin`; `engine` opens the configured database (migrated)."""
    listing = admin_sub.add_parser("list", help="every account: role, scope, disabled, locked, last sign-in")
    listing.add_argument("--json", action="store_true", help="one JSON object per account")
    listing.set_defaults(handler=lambda args: _list(engine(), args.json))
    for name, helptext, action in (
        ("unlock", "lift a lock-out now (after too many wrong passwords)", _switch("unlock")),
        ("disable", "disable an account: it cannot sign in, its sessions and API tokens end", _switch("disable")),
        ("enable", "enable a disabled account again", _switch("enable")),
        ("set-password", "set a new password; the account's sessions and API tokens end", _set_password),
    ):
        command = admin_sub.add_parser(name, help=helptext)
        command.add_argument("username", metavar="USERNAME")
        if name == "set-password":
            command.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
        command.set_defaults(handler=lambda args, action=action: action(engine(), args))


def _operator() -> str:
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): still say it was the command line
        who = "unknown"
    return f"{OPERATOR_PREFIX}{who}"


def _list(engine: Engine, as_json: bool) -> int:
    with read_session(engine) as session:
        rows = account_admin.list_accounts(session)
    if not rows:
        print("kanal: no admin accounts yet; make one with: kanal admin create NAME --role superadmin")
        return 0
    for row in rows:
        account = row.account
        facts = {
            "username": account.username,
            "role": str(account.role),
            "sees": scope_of(account).describe("en"),
            "disabled": account.disabled,
            "locked_until": _wib(row.locked_until),
            "last_sign_in": _wib(row.last_sign_in),
        }
        if as_json:
            print(json.dumps(facts, ensure_ascii=False))
            continue
        state = "active"
        if account.disabled:
            state = "disabled"
        elif row.locked_until:
            state = f"locked until {facts['locked_until']}"
        print(f"{account.username:<24} {facts['role']:<14} {state:<32} sees: {facts['sees']}")
    return 0


def _wib(moment: datetime | None) -> str | None:
    return moment.astimezone(WIB).isoformat(timespec="minutes") if moment else None


def _account_id(session: Session, username: str) -> str:
    found = session.execute(select(col(AdminUser.id)).where(col(AdminUser.username) == username)).scalar_one_or_none()
    if found is None:
        raise AccountNotFound(username)
    return str(found)


def _change(engine: Engine, username: str, change: Callable[[Session, str], Any], done: str, unchanged: str) -> int:
    try:
        with write_session(engine) as session:
            result = change(session, _account_id(session, username))
    except AccountNotFound:
        print(f"kanal: no admin named {username!r}; `kanal admin list` shows the accounts", file=sys.stderr)
        return 1
    except AccountError as exc:
        print(f"kanal: {exc}; nothing changed", file=sys.stderr)
        return 1
    print(f"kanal: {username}: {done if result not in (None, False) else unchanged}")
    return 0


#: command -> (service function, what to say when it changed something, when it did not)
_SWITCHES: dict[str, tuple[Callable[..., Any], str, str]] = {
    "unlock": (account_admin.unlock, "unlocked; they can sign in now", "was not locked; nothing changed"),
    "disable": (
        account_admin.disable,
        "disabled; their sessions and API tokens have ended",
        "was disabled already",
    ),
    "enable": (account_admin.enable, "enabled again", "was enabled already"),
}


def _switch(command: str) -> Callable[[Engine, argparse.Namespace], int]:
    change, done, unchanged = _SWITCHES[command]

    def run(engine: Engine, args: argparse.Namespace) -> int:
        actor = _operator()
        return _change(
            engine,
            args.username,
            lambda session, account_id: change(session, actor=actor, account_id=account_id, ip=None),
            done,
            unchanged,
        )

    return run


def read_new_password(username: str, *, from_stdin: bool) -> str | None:
    """The password piped in, or typed twice at a prompt; None (after saying so) when the two differ."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    password = getpass.getpass(f"password for {username}: ")
    if getpass.getpass("again: ") != password:
        print("kanal: the two passwords differ; nothing changed", file=sys.stderr)
        return None
    return password


def _set_password(engine: Engine, args: argparse.Namespace) -> int:
    password = read_new_password(args.username, from_stdin=args.password_stdin)
    if password is None:
        return 1
    try:
        password_hash = account_admin.hash_new_password(password)
    except AccountError as exc:
        print(f"kanal: {exc}; nothing changed", file=sys.stderr)
        return 1
    actor = _operator()
    return _change(
        engine,
        args.username,
        lambda session, account_id: account_admin.set_password(
            session, actor=actor, account_id=account_id, password_hash=password_hash, ip=None
        ),
        "new password set; their sessions and API tokens have ended",
        "",
    )

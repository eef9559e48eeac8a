"""FastAPI dependencies shared by the routers: the runtime, sessions, the signed-in admin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlmodel import Session

from gateway.db import read_session
from gateway.runtime import Runtime
from review_queue.accounts import can_act, scope_of
from review_queue.auth import admin_for_token
from review_queue.tables import AdminRole, AdminUser


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain `def` dependency in a worker thread, a hop on every delivery.
    runtime: Runtime = request.app.state.kanal
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_read_session(runtime: RuntimeDep) -> Iterator[Session]:
    with read_session(runtime.engine) as session:
        yield session


ReadSessionDep = Annotated[Session, Depends(get_read_session)]

_bearer = HTTPBearer(auto_error=False)


def current_admin(
    session: ReadSessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> AdminUser:
    admin = admin_for_token(session, credentials.credentials) if credentials else None
    if admin is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing, expired or unknown bearer token; get one from POST /api/v1/auth/token",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return admin


AdminDep = Annotated[AdminUser, Depends(current_admin)]


def actor(admin: AdminDep) -> AdminUser:
    """An admin whose role may act on reports (within their scope: the route checks it per report)."""
    if not can_act(admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {admin.role!r} may read reports but not act on them")
    return admin


ActorDep = Annotated[AdminUser, Depends(actor)]


def reviewer(admin: AdminDep) -> AdminUser:
    """An admin who may act on every report: for actions not tied to one report's scope (the CRM outbox)."""
    if not can_act(admin):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"role {admin.role!r} may read reports but not act on them")
    if not scope_of(admin).everything:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "this acts beyond one channel or wilayah; your account's scope is limited: ask a superadmin",
        )
    return admin


ReviewerDep = Annotated[AdminUser, Depends(reviewer)]


def superadmin(admin: AdminDep) -> AdminUser:
    if admin.role != AdminRole.SUPERADMIN:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only a superadmin may read raw refused deliveries")
    return admin


SuperadminDep = Annotated[AdminUser, Depends(superadmin)]

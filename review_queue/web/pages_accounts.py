"""Admin accounts, for superadmins: list, create, change, disable or enable, unlock, set a password.

- GET /admin/accounts: every account: username, role, scope, language, status, lock-out, last sign-in.
- GET /admin/accounts/new, POST /admin/accounts/new: the form for a new account.
- GET /admin/accounts/{id}: one account, with its forms; POST /admin/accounts/{id}: role, scope, language.
- POST /admin/accounts/{id}/disable, /enable, /unlock, /password.

Anyone but an enabled superadmin gets the same 404 page as for an account that does not exist, as
scope violations are answered elsewhere. The rules and the audit rows are review_queue/account_admin.py's;
this module reads forms, shows problems (422, the values kept, never a password) and redirects after
each change (303), so reloading a page never repeats it.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from typing import Annotated, TypeVar

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import Session

from gateway.db import read_session, write_session
from gateway.deps import RuntimeDep
from gateway.runtime import Runtime
from review_queue import account_admin
from review_queue.account_admin import AccountNotFound, AccountRefused, AccountRow, AccountSettings
from review_queue.accounts import AccountError
from review_queue.auth import MIN_PASSWORD_LENGTH
from review_queue.tables import AdminRole, AdminUser
from review_queue.web.csrf import CsrfDep
from review_queue.web.i18n import LANGUAGE_NAMES, Lang, language_of, register, translate
from review_queue.web.render import render
from review_queue.web.session import WebAdminDep

router = APIRouter(include_in_schema=False)

ACCOUNTS_PATH = "/admin/accounts"
#: Longest scope field read; a real scope is a few dozen codes.
MAX_SCOPE_FIELD = 10_000
#: Notices shown after a redirect (`?done=...`); any other value is ignored.
DONE = ("created", "saved", "unchanged", "disabled", "enabled", "unlocked", "password_set")

T = TypeVar("T")

register(
    {
        "nav.accounts": {"id": "Akun admin", "en": "Admin accounts"},
        "accounts.title": {"id": "Akun admin", "en": "Admin accounts"},
        "accounts.intro": {
            "id": "Semua akun halaman admin dan API. Hanya superadmin yang dapat membuka halaman ini; setiap "
            "perubahan tercatat di jejak audit.",
            "en": "Every account of the admin pages and the API. Only superadmins can open this page; every "
            "change is recorded in the audit trail.",
        },
        "accounts.new": {"id": "Buat akun baru", "en": "Create an account"},
        "accounts.new.title": {"id": "Akun baru", "en": "New account"},
        "accounts.status": {"id": "Status", "en": "Status"},
        "accounts.active": {"id": "Aktif", "en": "Active"},
        "accounts.disabled": {"id": "Nonaktif", "en": "Disabled"},
        "accounts.locked_until": {"id": "Dikunci sampai", "en": "Locked until"},
        "accounts.last_sign_in": {"id": "Terakhir masuk", "en": "Last sign-in"},
        "accounts.never": {"id": "belum tercatat", "en": "not recorded"},
        "accounts.created_at": {"id": "Dibuat", "en": "Created"},
        "accounts.edit": {"id": "Kelola", "en": "Manage"},
        "accounts.you": {"id": "(Anda)", "en": "(you)"},
        "accounts.back": {"id": "← Semua akun", "en": "← All accounts"},
        "accounts.channels": {"id": "Kanal cakupan", "en": "Scope channels"},
        "accounts.channels_hint": {
            "id": "Satu per baris atau dipisah koma: twitter:dkijakarta (satu kanal), twitter:* (semua kanal "
            "Twitter), * (semua kanal).",
            "en": "One per line or separated by commas: twitter:dkijakarta (one channel), twitter:* (every "
            "Twitter channel), * (every channel).",
        },
        "accounts.wilayah": {"id": "Kode wilayah cakupan", "en": "Scope wilayah codes"},
        "accounts.wilayah_hint": {
            "id": "Kode Kemendagri, satu per baris atau dipisah koma: 31.71 (kota), 31.71.01 (kecamatan), "
            "31.71.01.1001 (kelurahan).",
            "en": "Kemendagri codes, one per line or separated by commas: 31.71 (kota), 31.71.01 (kecamatan), "
            "31.71.01.1001 (kelurahan).",
        },
        "accounts.scope_rules": {
            "id": "Admin kanal memerlukan minimal satu kanal, admin wilayah minimal satu kode wilayah. Dengan "
            "kanal dan wilayah, akun melihat laporan yang cocok dengan keduanya. Superadmin melihat semua "
            "laporan, apa pun cakupannya.",
            "en": "A channel admin needs at least one channel, an area admin at least one wilayah code. With "
            "both, the account sees the reports matching both. A superadmin sees every report, whatever the scope.",
        },
        "accounts.scope_default": {
            "id": "Kosongkan keduanya agar peninjau atau pemantau melihat seluruh kota.",
            "en": "Leave both empty for a reviewer or viewer to see the whole city.",
        },
        "accounts.scope_empty": {
            "id": "Jika keduanya kosong, akun ini tidak melihat laporan apa pun; tulis * di kanal untuk seluruh kota.",
            "en": "With both empty this account sees no report; write * as the channel for the whole city.",
        },
        "accounts.password": {"id": "Kata sandi awal", "en": "Initial password"},
        "accounts.password_again": {"id": "Ulangi kata sandi", "en": "Password again"},
        "accounts.password_hint": {
            "id": "Minimal {n} karakter. Sampaikan kepada pemilik akun secara langsung, bukan lewat grup atau "
            "pesan yang dibaca orang lain.",
            "en": "At least {n} characters. Give it to the account's owner in person, not in a group chat or "
            "anywhere others read.",
        },
        "accounts.create": {"id": "Buat akun", "en": "Create account"},
        "accounts.problems": {
            "id": "Belum disimpan. Perbaiki hal berikut lalu kirim lagi:",
            "en": "Not saved. Fix the following and send again:",
        },
        "accounts.password_not_kept": {
            "id": "Demi keamanan, kata sandi tidak ditampilkan lagi: ketik ulang.",
            "en": "For safety, passwords are not shown again: type them again.",
        },
        "accounts.settings": {"id": "Peran, cakupan dan bahasa", "en": "Role, scope and language"},
        "accounts.save": {"id": "Simpan perubahan", "en": "Save changes"},
        "accounts.lockout": {"id": "Penguncian", "en": "Lock-out"},
        "accounts.not_locked": {"id": "Tidak dikunci.", "en": "Not locked."},
        "accounts.locked": {"id": "Dikunci sampai {until}.", "en": "Locked until {until}."},
        "accounts.failures": {
            "id": "Percobaan masuk gagal yang sedang dihitung: {count}.",
            "en": "Failed sign-ins being counted: {count}.",
        },
        "accounts.unlock": {"id": "Buka kunci sekarang", "en": "Unlock now"},
        "accounts.unlock_hint": {
            "id": "Menghapus penguncian dan hitungan gagal masuk; pemilik akun dapat langsung masuk lagi.",
            "en": "Clears the lock-out and the failure count; the owner can sign in again at once.",
        },
        "accounts.access": {"id": "Akses", "en": "Access"},
        "accounts.disable": {"id": "Nonaktifkan akun", "en": "Disable account"},
        "accounts.disable_hint": {
            "id": "Akun nonaktif tidak dapat masuk; sesi dan token API yang sedang berjalan langsung berakhir.",
            "en": "A disabled account cannot sign in; its open sessions and API tokens end at once.",
        },
        "accounts.enable": {"id": "Aktifkan kembali", "en": "Enable again"},
        "accounts.enable_hint": {
            "id": "Pemilik akun dapat masuk lagi dengan kata sandinya.",
            "en": "The owner can sign in again with their password.",
        },
        "accounts.new_password": {"id": "Kata sandi baru", "en": "New password"},
        "accounts.new_password_hint": {
            "id": "Minimal {n} karakter; sampaikan kepada pemilik akun secara langsung. Semua sesi dan token API "
            "akun ini berakhir (kecuali sesi Anda sendiri bila ini akun Anda).",
            "en": "At least {n} characters; give it to the owner in person. Every session and API token of this "
            "account ends (except your own session if this is your account).",
        },
        "accounts.set_password": {"id": "Simpan kata sandi baru", "en": "Set the new password"},
        "accounts.done.created": {
            "id": "Akun dibuat. Sampaikan kata sandi awalnya kepada pemiliknya.",
            "en": "Account created. Give its initial password to its owner.",
        },
        "accounts.done.saved": {"id": "Perubahan disimpan.", "en": "Changes saved."},
        "accounts.done.unchanged": {"id": "Tidak ada yang berubah.", "en": "Nothing changed."},
        "accounts.done.disabled": {
            "id": "Akun dinonaktifkan; sesi dan token API-nya telah diakhiri.",
            "en": "Account disabled; its sessions and API tokens have ended.",
        },
        "accounts.done.enabled": {"id": "Akun diaktifkan kembali.", "en": "Account enabled again."},
        "accounts.done.unlocked": {
            "id": "Kunci dibuka; pemilik akun dapat langsung masuk lagi.",
            "en": "Unlocked; the owner can sign in again at once.",
        },
        "accounts.done.password_set": {
            "id": "Kata sandi baru disimpan; sesi dan token API lama akun ini telah diakhiri.",
            "en": "New password set; this account's earlier sessions and API tokens have ended.",
        },
        "accounts.err.username": {
            "id": "Nama pengguna harus 1 sampai {n} karakter, tanpa karakter kontrol.",
            "en": "The username must be 1 to {n} characters, without control characters.",
        },
        "accounts.err.taken": {
            "id": "Nama pengguna {username} sudah dipakai. Pilih nama lain.",
            "en": "The username {username} is taken. Choose another.",
        },
        "accounts.err.password_short": {
            "id": "Kata sandi minimal {n} karakter.",
            "en": "The password must be at least {n} characters.",
        },
        "accounts.err.password_long": {
            "id": "Kata sandi paling banyak {n} karakter.",
            "en": "The password must be at most {n} characters.",
        },
        "accounts.err.password_mismatch": {
            "id": "Kedua kata sandi berbeda. Ketik ulang keduanya.",
            "en": "The two passwords differ. Type both again.",
        },
        "accounts.err.scope_long": {
            "id": "Isian cakupan terlalu panjang (paling banyak {n} karakter).",
            "en": "A scope field is too long (at most {n} characters).",
        },
        "accounts.err.role": {"id": "Peran {role} tidak dikenal.", "en": "Unknown role {role}."},
        "accounts.err.language": {"id": "Bahasa {language} tidak dikenal.", "en": "Unknown language {language}."},
        "accounts.err.channel_id": {
            "id": "Cakupan kanal {channel} bukan id kanal: tulis jenis:nama (twitter:dkijakarta), jenis:* "
            "(semua kanal twitter) atau * (semua kanal).",
            "en": "Scope channel {channel} is not a channel id: write type:name (twitter:dkijakarta), type:* "
            "(every twitter channel) or * (every channel).",
        },
        "accounts.err.channel_admin_scope": {
            "id": "Admin kanal perlu sedikitnya satu kanal dalam cakupan, misalnya twitter:*.",
            "en": "A channel admin needs at least one scope channel, e.g. twitter:*.",
        },
        "accounts.err.wilayah_admin_scope": {
            "id": "Admin wilayah perlu sedikitnya satu kode wilayah, misalnya 31.71.01.1001.",
            "en": "A wilayah admin needs at least one wilayah code, e.g. 31.71.01.1001.",
        },
        "accounts.err.wilayah_unknown": {
            "id": "Kode wilayah {code} tidak dikenal. Pakai kode Kemendagri: 31.71 (kota), 31.71.01 (kecamatan) "
            "atau 31.71.01.1001 (kelurahan).",
            "en": "Unknown wilayah code {code}. Use a Kemendagri code: 31.71 (kota), 31.71.01 (kecamatan) or "
            "31.71.01.1001 (kelurahan).",
        },
        "accounts.err.wilayah_provinsi": {
            "id": "Kode {code} adalah seluruh provinsi. Tulis kode kotanya, atau kosongkan wilayah agar semua "
            "laporan terlihat (juga yang tanpa tempat).",
            "en": "Code {code} is the whole provinsi. Give its kota codes, or leave the wilayah empty to see every "
            "report (also those without a place).",
        },
        "accounts.err.last_superadmin": {
            "id": "Ini satu-satunya superadmin yang aktif, jadi tidak dapat dinonaktifkan atau diturunkan. Buat "
            "atau aktifkan superadmin lain dulu: harus selalu ada minimal satu superadmin aktif.",
            "en": "This is the only enabled superadmin, so it cannot be disabled or given another role. Create or "
            "enable another superadmin first: at least one enabled superadmin must remain.",
        },
        "accounts.not_found.title": {"id": "Tidak ditemukan", "en": "Not found"},
        "accounts.not_found.message": {
            "id": "Halaman atau akun ini tidak ada. Periksa alamatnya.",
            "en": "This page or account does not exist. Check the address.",
        },
    }
)

_SEPARATORS = re.compile(r"[\s,;]+")


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _problem_text(exc: AccountError, lang: Lang) -> str:
    """The refusal in the admin's language; an error without a key (none is expected) as written."""
    if exc.key:
        return translate(exc.key, lang, **exc.params)
    return str(exc)


def _split(text: str) -> list[str]:
    """The codes of a scope field: separated by lines, spaces, commas or semicolons."""
    if len(text) > MAX_SCOPE_FIELD:
        raise AccountRefused("accounts.err.scope_long", "scope field too long", n=MAX_SCOPE_FIELD)
    return [part for part in _SEPARATORS.split(text) if part]


def _not_found(request: Request, admin: AdminUser) -> Response:
    lang = language_of(admin)
    return render(
        request,
        "error.html",
        admin=admin,
        status_code=404,
        title=translate("accounts.not_found.title", lang),
        message=translate("accounts.not_found.message", lang),
    )


def _roles(lang: Lang) -> list[tuple[str, str]]:
    return [(role.value, translate(f"role.{role.value}", lang)) for role in AdminRole]


def _read(runtime: Runtime, job: Callable[[Session], T]) -> T:
    with read_session(runtime.engine) as session:
        return job(session)


async def _write(runtime: Runtime, job: Callable[[Session], T]) -> T:
    def run() -> T:
        with write_session(runtime.engine) as session:
            return job(session)

    return await runtime.writes.run(run, urgent=True)  # a superadmin is waiting at the form


# -- the list -----------------------------------------------------------------------------------------


@router.get(ACCOUNTS_PATH)
async def accounts_list(request: Request, runtime: RuntimeDep, admin: WebAdminDep) -> Response:
    """Every account, with what it sees in the admin's language."""
    if not account_admin.may_manage(admin):
        return _not_found(request, admin)
    rows = await asyncio.to_thread(_read, runtime, account_admin.list_accounts)
    lang = language_of(admin)
    return render(
        request,
        "accounts.html",
        admin=admin,
        rows=rows,
        scope_of_row=lambda row: account_admin.stored_scope(row.account).describe(lang),
        language_names=LANGUAGE_NAMES,
    )


# -- a new account ------------------------------------------------------------------------------------

_NEW_FIELDS = ("username", "role", "scope_channels", "scope_wilayah", "language")


def _new_page(
    request: Request, admin: AdminUser, values: dict[str, str], *, problems: list[str], status_code: int = 200
) -> Response:
    return render(
        request,
        "accounts_new.html",
        admin=admin,
        status_code=status_code,
        values=values,
        problems=problems,
        roles=_roles(language_of(admin)),
        language_names=LANGUAGE_NAMES,
        min_password=MIN_PASSWORD_LENGTH,
        max_password=account_admin.MAX_PASSWORD_LENGTH,
        max_username=account_admin.MAX_USERNAME,
    )


@router.get(f"{ACCOUNTS_PATH}/new")
def account_new_form(request: Request, admin: WebAdminDep) -> Response:
    if not account_admin.may_manage(admin):
        return _not_found(request, admin)
    values = {"username": "", "role": AdminRole.REVIEWER.value, "scope_channels": "", "scope_wilayah": ""}
    return _new_page(request, admin, {**values, "language": "id"}, problems=[])


@router.post(f"{ACCOUNTS_PATH}/new")
async def account_create(
    request: Request,
    runtime: RuntimeDep,
    admin: WebAdminDep,
    _csrf: CsrfDep,
    username: Annotated[str, Form()] = "",
    role: Annotated[str, Form()] = "",
    scope_channels: Annotated[str, Form()] = "",
    scope_wilayah: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "id",
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
) -> Response:
    """Check the form (cheap checks before the slow hash), then store the account and go to its page."""
    if not account_admin.may_manage(admin):
        return _not_found(request, admin)
    lang = language_of(admin)
    typed = dict(zip(_NEW_FIELDS, (username, role, scope_channels, scope_wilayah, language), strict=True))
    shown = {name: value[:MAX_SCOPE_FIELD] for name, value in typed.items()}
    try:
        name = account_admin.clean_username(username)
        channels, wilayah = _split(scope_channels), _split(scope_wilayah)
        # Both empty: a reviewer or viewer gets the whole city, as with `kanal admin create`.
        both_empty = not channels and not wilayah
        settings = account_admin.check_settings(
            role=role,
            scope_channels=None if both_empty else channels,
            scope_wilayah=None if both_empty else wilayah,
            language=language,
        )
        if password != password_again:
            raise AccountRefused("accounts.err.password_mismatch", "the two passwords differ")
        password_hash = await asyncio.to_thread(account_admin.hash_new_password, password)
        ip = _ip(request)
        created = await _write(
            runtime,
            lambda session: account_admin.create_account(
                session, actor=admin, username=name, settings=settings, password_hash=password_hash, ip=ip
            ),
        )
    except AccountError as exc:
        return _new_page(request, admin, shown, problems=[_problem_text(exc, lang)], status_code=422)
    return RedirectResponse(f"{ACCOUNTS_PATH}/{created.id}?done=created", status_code=303)


# -- one account --------------------------------------------------------------------------------------


def _edit_page(
    request: Request,
    admin: AdminUser,
    row: AccountRow,
    *,
    values: dict[str, str] | None = None,
    problems: list[str] | None = None,
    problem_at: str = "",
    done: str | None = None,
    status_code: int = 200,
) -> Response:
    account = row.account
    lang = language_of(admin)
    stored = {
        "role": str(account.role),
        "scope_channels": "\n".join(account.scope_channels or ()),
        "scope_wilayah": "\n".join(account.scope_wilayah or ()),
        "language": account.language,
    }
    return render(
        request,
        "accounts_edit.html",
        admin=admin,
        status_code=status_code,
        row=row,
        account=account,
        is_self=account.id == admin.id,
        stored_scope_text=account_admin.stored_scope(account).describe(lang),
        values=values or stored,
        problems=problems or [],
        problem_at=problem_at,
        done=done if done in DONE else None,
        roles=_roles(lang),
        language_names=LANGUAGE_NAMES,
        min_password=MIN_PASSWORD_LENGTH,
        max_password=account_admin.MAX_PASSWORD_LENGTH,
    )


async def _load(runtime: Runtime, account_id: str) -> AccountRow | None:
    try:
        return await asyncio.to_thread(_read, runtime, lambda session: account_admin.get_account(session, account_id))
    except AccountNotFound:
        return None


def _back(account_id: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"{ACCOUNTS_PATH}/{account_id}?done={done}", status_code=303)


@router.get(f"{ACCOUNTS_PATH}/{{account_id}}")
async def account_page(
    request: Request, account_id: str, runtime: RuntimeDep, admin: WebAdminDep, done: str | None = None
) -> Response:
    """One account: its facts, and the forms that change it."""
    if not account_admin.may_manage(admin):
        return _not_found(request, admin)
    row = await _load(runtime, account_id)
    if row is None:
        return _not_found(request, admin)
    return _edit_page(request, admin, row, done=done)


async def _refused(
    request: Request,
    runtime: Runtime,
    admin: AdminUser,
    account_id: str,
    exc: AccountError,
    *,
    at: str,
    values: dict[str, str] | None = None,
) -> Response:
    """The account's page again, with the problem shown by the form that caused it."""
    row = await _load(runtime, account_id)
    if row is None:
        return _not_found(request, admin)
    # 409: the request was well formed but the accounts as they stand forbid it; 422: the form needs fixing.
    status_code = 409 if isinstance(exc, AccountRefused) and exc.key == "accounts.err.last_superadmin" else 422
    problem = _problem_text(exc, language_of(admin))
    return _edit_page(request, admin, row, values=values, problems=[problem], problem_at=at, status_code=status_code)


@router.post(f"{ACCOUNTS_PATH}/{{account_id}}")
async def account_save(
    request: Request,
    account_id: str,
    runtime: RuntimeDep,
    admin: WebAdminDep,
    _csrf: CsrfDep,
    role: Annotated[str, Form()] = "",
    scope_channels: Annotated[str, Form()] = "",
    scope_wilayah: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "",
) -> Response:
    """Role, scope and language. Empty scope fields are stored empty (the account then sees nothing)."""
    if not account_admin.may_manage(admin):
        return _not_found(request, admin)
    typed = {"role": role, "scope_channels": scope_channels, "scope_wilayah": scope_wilayah, "language": language}
    shown = {name: value[:MAX_SCOPE_FIELD] for name, value in typed.items()}
    ip = _ip(request)
    try:
        settings: AccountSettings = account_admin.check_settings(
            role=role, scope_channels=_split(scope_channels), scope_wilayah=_split(scope_wilayah), language=language
        )
        changed = await _write(
            runtime,
            lambda session: account_admin.update_account(
                session, actor=admin, account_id=account_id, settings=settings, ip=ip
            ),
        )
    except AccountNotFound:
        return _not_found(request, admin)
    except AccountError as exc:
        return await _refused(request, runtime, admin, account_id, exc, at="settings", values=shown)
    return _back(account_id, "saved" if changed else "unchanged")


@router.post(f"{ACCOUNTS_PATH}/{{account_id}}/disable")
async def account_disable(
    request: Request, account_id: str, runtime: RuntimeDep, admin: WebAdminDep, _csrf: CsrfDep
) -> Response:
    """Disable the account; its sessions and API tokens end in the same transaction."""
    if not account_admin.may_manage(admin):
        return _not_found(request, admin)
    ip = _ip(request)
    try:
        ended = await _write(runtime, lambda s: account_admin.disable(s, actor=admin, account_id=account_id, ip=ip))
    except AccountNotFound:
        return _not_found(request, admin)
    except AccountError as exc:
        return await _refused(request, runtime, admin, account_id, exc, at="access")
    # A superadmin who disabled their own account is signed out by it: the redirect then leads to the form.
    return _back(account_id, "unchanged" if ended is None else "disabled")


@router.post(f"{ACCOUNTS_PATH}/{{account_id}}/enable")
async def account_enable(
    request: Request, account_id: str, runtime: RuntimeDep, admin: WebAdminDep, _csrf: CsrfDep
) -> Response:
    """Enable the account again; its password is unchanged."""
    if not account_admin.may_manage(admin):
        return _not_found(request, admin)
    ip = _ip(request)
    try:
        enabled = await _write(runtime, lambda s: account_admin.enable(s, actor=admin, account_id=account_id, ip=ip))
    except AccountNotFound:
        return _not_found(request, admin)
    return _back(account_id, "enabled" if enabled else "unchanged")


@router.post(f"{ACCOUNTS_PATH}/{{account_id}}/unlock")
async def account_unlock(
    request: Request, account_id: str, runtime: RuntimeDep, admin: WebAdminDep, _csrf: CsrfDep
) -> Response:
    """Lift a lock-out early: the owner may sign in at once."""
    if not account_admin.may_manage(admin):
        return _not_found(request, admin)
    ip = _ip(request)
    try:
        cleared = await _write(runtime, lambda s: account_admin.unlock(s, actor=admin, account_id=account_id, ip=ip))
    except AccountNotFound:
        return _not_found(request, admin)
    return _back(account_id, "unlocked" if cleared else "unchanged")


@router.post(f"{ACCOUNTS_PATH}/{{account_id}}/password")
async def account_password(
    request: Request,
    account_id: str,
    runtime: RuntimeDep,
    admin: WebAdminDep,
    _csrf: CsrfDep,
    password: Annotated[str, Form()] = "",
    password_again: Annotated[str, Form()] = "",
) -> Response:
    """A new password the superadmin gives the owner; the account's other sessions and tokens end."""
    if not account_admin.may_manage(admin):
        return _not_found(request, admin)
    ip = _ip(request)
    # The superadmin's own browser stays signed in when they set their own password.
    keep: str | None = getattr(request.state, "admin_session_id", None) if account_id == admin.id else None
    try:
        if password != password_again:
            raise AccountRefused("accounts.err.password_mismatch", "the two passwords differ")
        password_hash = await asyncio.to_thread(account_admin.hash_new_password, password)
        await _write(
            runtime,
            lambda s: account_admin.set_password(
                s, actor=admin, account_id=account_id, password_hash=password_hash, ip=ip, keep_session=keep
            ),
        )
    except AccountNotFound:
        return _not_found(request, admin)
    except AccountError as exc:
        return await _refused(request, runtime, admin, account_id, exc, at="password")
    return _back(account_id, "password_set")

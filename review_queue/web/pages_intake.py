"""Staff intake at the walk-in desks and the call centre: /admin/intake and the printable receipt.

Each desk is a `walk_in` channel instance (adapters/walk_in.py). An officer picks a desk their scope
allows (`may_use_desk`), types the citizen's complaint, and the page builds the desk's delivery,
signs it with the desk's own secret and runs it through the real ingest path in-process
(`Ingestor.deliver`): verified, parsed, stored and normalized exactly like any channel's message, so
the report lands in the queue of whoever's scope covers it. Then the browser goes to the receipt:
ticket code, desk, officer, time in WIB, the complaint with personal data masked, and the status URL,
printed for the citizen. Every intake is in the audit log.

The form carries a fresh `intake_id`, the delivery's external id: a double click or a re-sent form is
recognised by the inbox and leads to the same ticket, not a second report.

The receipt is printed for the citizen, so its text is always in Bahasa Indonesia; the controls around
it follow the officer's language.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import col, select
from starlette.datastructures import UploadFile

from adapters.contract import RawRequest
from adapters.walk_in import (
    DEFAULT_MAX_PHOTO_BYTES,
    MAX_ADDRESS_CHARS,
    MAX_TEXT_CHARS,
    WalkInAdapter,
    build_payload,
    sign,
)
from adapters.web_form import sniff_image
from gateway.db import read_session, utcnow, write_session
from gateway.deps import RuntimeDep
from gateway.inbox import InboundMessageRow
from gateway.plugins import Channel
from gateway.runtime import Runtime
from normalizer.gazetteer import load_gazetteer
from normalizer.steps.masking import mask_personal_data
from review_queue import audit
from review_queue.accounts import Scope, scope_of
from review_queue.tables import AdminUser
from review_queue.web.csrf import CsrfDep
from review_queue.web.i18n import Lang, language_of, register, translate
from review_queue.web.render import render
from review_queue.web.session import WebActorDep

router = APIRouter(include_in_schema=False)

INTAKE_PATH = "/admin/intake"
AUDIT_ACTION = "walk_in_intake"
_INTAKE_ID = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\".]{2,}$")
_PHONE = re.compile(r"^\+?\(?[0-9][0-9 ().-]*$")
_TEXT_FIELDS = ("text", "address", "wilayah_code", "lat", "lng", "citizen_name", "citizen_phone", "citizen_email")

register(
    {
        "intake.title": {"id": "Input pengaduan loket", "en": "Walk-in intake"},
        "intake.choose_desk": {"id": "Pilih loket", "en": "Choose a desk"},
        "intake.no_desk": {
            "id": "Tidak ada loket yang boleh Anda gunakan. Minta superadmin menambahkan loket (kanal walk_in) "
            "di wilayah Anda, atau memberi akun Anda cakupan loket tersebut.",
            "en": "There is no desk you may use. Ask a superadmin to configure a desk (a walk_in channel) in your "
            "area, or to give your account that desk in its scope.",
        },
        "intake.desk": {"id": "Loket", "en": "Desk"},
        "intake.other_desk": {"id": "Ganti loket", "en": "Change desk"},
        "intake.officer": {"id": "Petugas", "en": "Officer"},
        "intake.complaint": {"id": "Isi pengaduan", "en": "Complaint"},
        "intake.complaint_hint": {
            "id": "Tulis sesuai penuturan warga: apa masalahnya, sejak kapan, dampaknya.",
            "en": "As the citizen tells it: what the problem is, since when, what it causes.",
        },
        "intake.place": {"id": "Lokasi masalah", "en": "Where the problem is"},
        "intake.address": {"id": "Alamat atau patokan", "en": "Address or landmark"},
        "intake.wilayah": {"id": "Wilayah", "en": "Area"},
        "intake.wilayah_none": {"id": "(sesuai alamat)", "en": "(as in the address)"},
        "intake.wilayah_desk": {
            "id": "(sesuai alamat; jika lokasi kosong: wilayah loket ini)",
            "en": "(as in the address; with no place at all: this desk's area)",
        },
        "intake.coordinates": {"id": "Koordinat (jika ada)", "en": "Coordinates (if known)"},
        "intake.lat": {"id": "Lintang", "en": "Latitude"},
        "intake.lng": {"id": "Bujur", "en": "Longitude"},
        "intake.photo": {"id": "Foto (JPEG, PNG, WebP; maks. {mb} MB)", "en": "Photo (JPEG, PNG, WebP; max {mb} MB)"},
        "intake.citizen": {"id": "Pelapor (boleh dikosongkan)", "en": "The citizen (all optional)"},
        "intake.name": {"id": "Nama", "en": "Name"},
        "intake.phone": {"id": "Telepon", "en": "Phone"},
        "intake.email": {"id": "Email", "en": "E-mail"},
        "intake.consent": {
            "id": "Warga setuju nomor telepon/email-nya disimpan untuk dihubungi tentang laporan ini.",
            "en": "The citizen agrees that their phone/e-mail is kept to contact them about this report.",
        },
        "intake.submit": {"id": "Simpan dan cetak tanda terima", "en": "Save and print the receipt"},
        "intake.problems": {"id": "Pengaduan belum tersimpan:", "en": "The complaint was not saved:"},
        "intake.err.text": {"id": "Isi pengaduan wajib diisi.", "en": "Write the complaint."},
        "intake.err.text_long": {
            "id": "Isi pengaduan terlalu panjang (maksimal {n} karakter).",
            "en": "The complaint is too long (at most {n} characters).",
        },
        "intake.err.address_long": {
            "id": "Alamat terlalu panjang (maksimal {n} karakter).",
            "en": "The address is too long (at most {n} characters).",
        },
        "intake.err.place": {
            "id": "Lokasi wajib diisi: tulis alamat atau patokan, pilih wilayah, atau isi koordinat.",
            "en": "Say where: write an address or landmark, choose an area, or give coordinates.",
        },
        "intake.err.wilayah": {"id": "Pilih wilayah dari daftar.", "en": "Choose an area from the list."},
        "intake.err.coordinates": {
            "id": "Koordinat tidak valid: isi lintang dan bujur (angka desimal), atau kosongkan keduanya.",
            "en": "Invalid coordinates: give latitude and longitude as decimals, or leave both empty.",
        },
        "intake.err.phone": {
            "id": "Nomor telepon tidak valid. Tulis angka saja, misalnya 0812 3456 7890.",
            "en": "Invalid phone number. Digits only, e.g. 0812 3456 7890.",
        },
        "intake.err.email": {
            "id": "Alamat email tidak valid. Contoh: nama@contoh.id.",
            "en": "Invalid e-mail address. Example: name@example.id.",
        },
        "intake.err.name_long": {"id": "Nama terlalu panjang.", "en": "The name is too long."},
        "intake.err.consent": {
            "id": "Telepon/email hanya disimpan dengan persetujuan warga: centang persetujuan, atau kosongkan.",
            "en": "A phone/e-mail is kept only with the citizen's consent: tick the consent box, or clear them.",
        },
        "intake.err.photo_large": {
            "id": "Foto terlalu besar (maksimal {mb} MB). Kecilkan foto atau simpan tanpa foto.",
            "en": "The photo is too large (at most {mb} MB). Use a smaller one or save without it.",
        },
        "intake.err.photo_kind": {
            "id": "Berkas bukan foto JPEG, PNG, atau WebP. Pilih foto lain atau simpan tanpa foto.",
            "en": "The file is not a JPEG, PNG or WebP photo. Choose another or save without it.",
        },
        "intake.err.form": {
            "id": "Formulir tidak lengkap. Muat ulang halaman, lalu isi lagi.",
            "en": "The form is incomplete. Reload the page and fill it in again.",
        },
        "intake.err.storage": {
            "id": "Penyimpanan sedang sibuk; pengaduan belum tersimpan. Tekan simpan lagi dalam beberapa detik.",
            "en": "Storage is busy; the complaint was not saved. Press save again in a few seconds.",
        },
        "intake.err.refused": {
            "id": "Pengaduan ditolak oleh loket: {detail}",
            "en": "The desk refused the complaint: {detail}",
        },
        "intake.not_found.title": {"id": "Tidak ditemukan", "en": "Not found"},
        "intake.not_found.message": {
            "id": "Loket atau tanda terima ini tidak ada, atau di luar cakupan akun Anda. Kembali ke input loket.",
            "en": "This desk or receipt does not exist, or is outside your account's scope. Go back to intake.",
        },
        "intake.kind.balai_kota": {"id": "Pendopo Balai Kota", "en": "City Hall pavilion"},
        "intake.kind.kelurahan": {"id": "Kantor kelurahan", "en": "Kelurahan office"},
        "intake.kind.kecamatan": {"id": "Kantor kecamatan", "en": "Kecamatan office"},
        "intake.kind.walikota": {"id": "Kantor wali kota", "en": "Mayor's office"},
        "intake.kind.inspektorat": {"id": "Inspektorat", "en": "Inspectorate"},
        "intake.kind.call_centre": {"id": "Call centre", "en": "Call centre"},
        "receipt.print_hint": {
            "id": "Cetak halaman ini (Ctrl+P) dan serahkan kepada warga.",
            "en": "Print this page (Ctrl+P) and hand it to the citizen.",
        },
        "receipt.again": {
            "id": "Pengaduan ini sudah tersimpan sebelumnya; ini tanda terima yang sama.",
            "en": "This complaint was already saved; this is the same receipt.",
        },
        "receipt.new": {"id": "Input pengaduan berikutnya", "en": "Take the next complaint"},
    }
)


@dataclass(frozen=True)
class Desk:
    """A configured walk-in desk, as the intake page shows it."""

    channel_id: str
    kind: str
    name: str
    wilayah_code: str
    default_place_to_desk: bool
    max_photo_bytes: int


@dataclass(frozen=True)
class AreaOption:
    code: str
    label: str
    group: str


def desks(runtime: Runtime) -> list[Desk]:
    """Every enabled `walk_in` channel, by desk name."""
    found = []
    for channel in runtime.channels.values():
        adapter = channel.adapter
        if isinstance(adapter, WalkInAdapter):
            settings = adapter.settings
            found.append(
                Desk(
                    channel_id=channel.id,
                    kind=settings.desk_kind,
                    name=settings.desk_name,
                    wilayah_code=settings.wilayah_code,
                    default_place_to_desk=settings.default_place_to_desk,
                    max_photo_bytes=settings.max_photo_bytes,
                )
            )
    return sorted(found, key=lambda d: (d.name.lower(), d.channel_id))


def may_use_desk(scope: Scope, desk: Desk) -> bool:
    """Whether an officer with `scope` may take complaints at `desk`.

    The same rule as seeing a report (`Scope.allows`), applied to a report from this desk placed in the
    desk's own area: the channel part (if any) must name the desk or `walk_in:*`, and the wilayah part
    (if any) must contain the desk's `wilayah_code`. So a kelurahan admin uses their kelurahan's desk, a
    kecamatan admin every desk in the kecamatan, and a city-wide desk ("31") needs a channel scope.
    """
    if scope.everything:
        return True
    if scope.is_empty:
        return False
    if scope.channels or scope.channel_types:
        kind = desk.channel_id.partition(":")[0]
        if desk.channel_id not in scope.channels and kind not in scope.channel_types:
            return False
    if scope.wilayah:
        code = desk.wilayah_code
        if not any(code == area or code.startswith(area + ".") for area in scope.wilayah):
            return False
    return True


def _usable_desks(runtime: Runtime, scope: Scope) -> list[Desk]:
    return [desk for desk in desks(runtime) if may_use_desk(scope, desk)]


def area_options(desk: Desk) -> list[AreaOption]:
    """The areas an officer may pick for the problem: those in the desk's kota, or the whole city."""
    gazetteer = load_gazetteer()
    kota = ".".join(desk.wilayah_code.split(".")[:2]) if "." in desk.wilayah_code else None
    options = []
    for region in sorted(gazetteer.regions.values(), key=lambda r: r.code):
        if region.level not in ("kecamatan", "kelurahan"):
            continue
        if kota is not None and not region.code.startswith(kota + "."):
            continue
        kota_region = gazetteer.regions[".".join(region.code.split(".")[:2])]
        if region.level == "kecamatan":
            label = f"Kec. {region.name}"
        else:
            label = f"Kel. {region.name} (Kec. {gazetteer.regions[region.parent or ''].name})"
        options.append(AreaOption(code=region.code, label=label, group=kota_region.short_name))
    return options


def _not_found(request: Request, admin: AdminUser, lang: Lang) -> Response:
    return render(
        request,
        "error.html",
        admin=admin,
        status_code=404,
        title=translate("intake.not_found.title", lang),
        message=translate("intake.not_found.message", lang),
    )


# -- the form ---------------------------------------------------------------------------------------


@router.get(INTAKE_PATH)
def intake_form(request: Request, runtime: RuntimeDep, admin: WebActorDep, desk: str | None = None) -> Response:
    """The desks this officer may use; with `?desk=<channel id>` (or only one desk), that desk's form."""
    usable = _usable_desks(runtime, scope_of(admin))
    if desk is None and len(usable) != 1:
        return render(request, "intake_desks.html", admin=admin, desks=usable)
    chosen = usable[0] if desk is None else next((d for d in usable if d.channel_id == desk), None)
    if chosen is None:
        return _not_found(request, admin, language_of(admin))
    return _form_page(request, admin, chosen, several=len(usable) > 1)


def _form_page(
    request: Request,
    admin: AdminUser,
    desk: Desk,
    *,
    several: bool,
    values: dict[str, str] | None = None,
    problems: list[str] | None = None,
    consent: bool = False,
    intake_id: str | None = None,
    status_code: int = 200,
) -> Response:
    filled = dict.fromkeys(_TEXT_FIELDS, "")
    filled.update(values or {})
    return render(
        request,
        "intake.html",
        admin=admin,
        status_code=status_code,
        desk=desk,
        several_desks=several,
        areas=area_options(desk),
        values=filled,
        consent=consent,
        problems=problems or [],
        intake_id=intake_id or secrets.token_urlsafe(16),
        max_photo_mb=math.floor(desk.max_photo_bytes / (1024 * 1024)),
        max_text=MAX_TEXT_CHARS,
    )


@dataclass
class _Checked:
    """The form, checked: what the payload needs, or the problems to show."""

    fields: dict[str, object]
    problems: list[str]


def _check(form_values: dict[str, str], consent: bool, desk: Desk, lang: Lang, areas: set[str]) -> _Checked:
    problems: list[str] = []

    def problem(key: str, **params: object) -> None:
        problems.append(translate(key, lang, **params))

    text = form_values["text"].strip()
    if not text:
        problem("intake.err.text")
    elif len(text) > MAX_TEXT_CHARS:
        problem("intake.err.text_long", n=MAX_TEXT_CHARS)
    address = " ".join(form_values["address"].split())
    if len(address) > MAX_ADDRESS_CHARS:
        problem("intake.err.address_long", n=MAX_ADDRESS_CHARS)
    area = form_values["wilayah_code"].strip()
    if area and area not in areas:
        problem("intake.err.wilayah")
    lat_text, lng_text = form_values["lat"].strip(), form_values["lng"].strip()
    lat = lng = None
    if lat_text or lng_text:
        try:
            lat, lng = float(lat_text.replace(",", ".")), float(lng_text.replace(",", "."))
        except ValueError:
            problem("intake.err.coordinates")
        else:
            if not (math.isfinite(lat) and math.isfinite(lng) and -90 <= lat <= 90 and -180 <= lng <= 180):
                problem("intake.err.coordinates")
                lat = lng = None
    if not (address or area or lat is not None or desk.default_place_to_desk):
        problem("intake.err.place")
    name = " ".join(form_values["citizen_name"].split())
    phone = " ".join(form_values["citizen_phone"].split())
    email = form_values["citizen_email"].strip()
    if len(name) > 200:
        problem("intake.err.name_long")
    if phone and not _looks_like_phone(phone):
        problem("intake.err.phone")
    if email and (len(email) > 254 or not _EMAIL.fullmatch(email)):
        problem("intake.err.email")
    if (phone or email) and not consent:
        problem("intake.err.consent")
    citizen = {k: v for k, v in (("name", name), ("phone", phone), ("email", email)) if v}
    fields: dict[str, object] = {
        "text": text,
        "address": address or None,
        "wilayah_code": area or None,
        "lat": lat,
        "lng": lng,
        "citizen": citizen or None,
        "contact_consent": consent,
    }
    return _Checked(fields=fields, problems=problems)


def _looks_like_phone(phone: str) -> bool:
    digits = sum(c.isdigit() for c in phone)
    return len(phone) <= 25 and _PHONE.fullmatch(phone) is not None and 8 <= digits <= 15


async def _photo(upload: object, desk: Desk, lang: Lang) -> tuple[dict[str, str] | None, str | None]:
    """The photo as the payload carries it, or a problem; (None, None) when no photo was chosen."""
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None, None
    data = await upload.read(desk.max_photo_bytes + 1)
    if not data:
        return None, None
    mb = math.floor(desk.max_photo_bytes / (1024 * 1024))
    if len(data) > desk.max_photo_bytes:
        return None, translate("intake.err.photo_large", lang, mb=mb)
    if sniff_image(data) is None:
        return None, translate("intake.err.photo_kind", lang)
    return {"filename": upload.filename[:300], "data_base64": base64.b64encode(data).decode()}, None


@router.post(INTAKE_PATH)
async def intake_submit(request: Request, runtime: RuntimeDep, admin: WebActorDep, _csrf: CsrfDep) -> Response:
    """Check the form, deliver it to the desk's channel in-process, and go to the receipt."""
    lang = language_of(admin)
    # The CSRF middleware has read the body already; this parses the same bytes (photo at most 5 MB).
    async with request.form(max_files=2, max_fields=50, max_part_size=DEFAULT_MAX_PHOTO_BYTES * 2) as form:
        values = {name: str(form.get(name) or "") for name in _TEXT_FIELDS}
        desk_id = str(form.get("desk") or "")
        intake_id = str(form.get("intake_id") or "")
        consent = form.get("contact_consent") == "yes"
        usable = _usable_desks(runtime, scope_of(admin))
        desk = next((d for d in usable if d.channel_id == desk_id), None)
        if desk is None:
            return _not_found(request, admin, lang)
        if not _INTAKE_ID.fullmatch(intake_id):
            return _form_page(
                request, admin, desk, several=len(usable) > 1, values=values, consent=consent,
                problems=[translate("intake.err.form", lang)], status_code=422,
            )  # fmt: skip
        checked = _check(values, consent, desk, lang, {a.code for a in area_options(desk)})
        photo, photo_problem = await _photo(form.get("photo"), desk, lang)
    if photo_problem:
        checked.problems.append(photo_problem)
    if checked.problems:
        return _form_page(
            request, admin, desk, several=len(usable) > 1, values=values, consent=consent,
            problems=checked.problems, intake_id=intake_id, status_code=422,
        )  # fmt: skip

    channel = runtime.channels[desk.channel_id]
    body = build_payload(intake_id=intake_id, received_by=admin.username, photo=photo, **checked.fields)
    raw = _signed_request(channel, body, request)
    answer = await runtime.ingestor.deliver(channel, raw)
    if answer.status_code != 200:
        if answer.status_code == 503:
            problem = translate("intake.err.storage", lang)
        else:
            problem = translate("intake.err.refused", lang, detail=_detail(answer.body))
        return _form_page(
            request, admin, desk, several=len(usable) > 1, values=values, consent=consent,
            problems=[problem], intake_id=intake_id, status_code=answer.status_code,
        )  # fmt: skip
    outcome = json.loads(answer.body)["accepted"][0]
    ticket, duplicate = str(outcome["ticket"]), bool(outcome["duplicate"])
    ip = request.client.host if request.client else None
    citizen = checked.fields["citizen"]

    def record() -> None:
        with write_session(runtime.engine) as session:
            audit.record(
                session,
                actor=admin,
                action=AUDIT_ACTION,
                target_type="ticket",
                target_id=ticket,
                detail={
                    "channel_id": desk.channel_id,
                    "desk": desk.name,
                    "duplicate": duplicate,
                    "contact_given": bool(citizen),
                    "photo": photo is not None,
                },
                ip=ip,
            )

    await runtime.writes.run(record, urgent=True)
    suffix = "?again=1" if duplicate else ""
    return RedirectResponse(f"{INTAKE_PATH}/receipt/{ticket}{suffix}", status_code=303)


def _signed_request(channel: Channel, body: bytes, request: Request) -> RawRequest:
    """The delivery as the desk's route would receive it, signed with the desk's own secret."""
    received_at = utcnow()
    headers = sign(channel.adapter.context.instance_secret, body, int(received_at.timestamp()))
    headers["user-agent"] = "kanal-intake-page"
    return RawRequest(
        method="POST",
        url=channel.adapter.context.inbound_url(),
        headers=headers,
        query={},
        body=body,
        client_ip=request.client.host if request.client else "",
        received_at=received_at,
    )


def _detail(body: bytes) -> str:
    try:
        answer = json.loads(body)
    except ValueError:
        return "-"
    return str(answer.get("detail", "-")) if isinstance(answer, dict) else "-"


# -- the receipt ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    ticket: str
    desk: Desk
    officer: str
    received_at: datetime
    text_masked: str
    place_masked: str | None
    photos: int
    contact_kept: bool
    status_url: str


def _load_receipt(runtime: Runtime, ticket: str, usable: list[Desk]) -> Receipt | None:
    by_id = {desk.channel_id: desk for desk in usable}
    if not by_id or len(ticket) > 20:
        return None
    with read_session(runtime.engine) as session:
        row = session.exec(
            select(InboundMessageRow).where(
                col(InboundMessageRow.ticket_code) == ticket, col(InboundMessageRow.channel_id).in_(sorted(by_id))
            )
        ).first()
    if row is None:
        return None
    message = row.message
    place = (message.get("location") or {}).get("address")
    sender = message.get("sender") or {}
    base = runtime.settings.public_base_url.rstrip("/")
    return Receipt(
        ticket=row.ticket_code,
        desk=by_id[row.channel_id],
        officer=str(message.get("received_by") or "-"),
        received_at=row.received_at,
        text_masked=mask_personal_data(str(message.get("text") or ""))[0],
        place_masked=mask_personal_data(place)[0] if place else None,
        photos=len(message.get("media") or []),
        contact_kept=bool(sender.get("phone") or sender.get("email")),
        status_url=f"{base}/status/{row.ticket_code}",
    )


@router.get(INTAKE_PATH + "/receipt/{ticket}")
async def receipt(
    request: Request, runtime: RuntimeDep, admin: WebActorDep, ticket: str, again: str | None = None
) -> Response:
    """The printable receipt of an intake at a desk this officer may use; 404 otherwise, as for no ticket."""
    usable = _usable_desks(runtime, scope_of(admin))
    found = await asyncio.to_thread(_load_receipt, runtime, ticket.strip().upper(), usable)
    if found is None:
        return _not_found(request, admin, language_of(admin))
    return render(request, "receipt.html", admin=admin, receipt=found, again=again == "1")

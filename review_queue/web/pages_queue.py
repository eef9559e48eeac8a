"""GET /admin/queue: the reports waiting for a decision in the signed-in admin's scope, most urgent first.

Order, paging and counts: review_queue/queue.py. Filters arrive as query parameters (a plain GET form,
so the page works without JavaScript and a filtered view can be bookmarked):

- `state` (repeatable; default pending_review and needs_info), `channel`, `category`, `agency`,
  `wilayah` (a kota, kecamatan or kelurahan code), `duplicates=1`;
- `after`: the keyset cursor of the next page, `before` that of the previous one (both from the page
  itself).

Read-only viewers see the queue too; only the decision screen's actions need an acting role.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from gateway.db import read_session, utcnow
from gateway.deps import RuntimeDep
from normalizer.gazetteer import load_gazetteer
from normalizer.steps.completeness import REASONS
from normalizer.taxonomy import Taxonomy
from review_queue import queue
from review_queue.accounts import scope_of
from review_queue.web.i18n import register
from review_queue.web.render import render
from review_queue.web.session import WebAdminDep
from review_queue.web.ttl_cache import TTLCache, app_cache

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50

register(
    {
        "queue.title": {"id": "Antrean verifikasi", "en": "Review queue"},
        "queue.filters": {"id": "Saring", "en": "Filter"},
        "queue.apply": {"id": "Terapkan", "en": "Apply"},
        "queue.reset": {"id": "Hapus saringan", "en": "Clear filters"},
        "queue.state": {"id": "Status", "en": "State"},
        "queue.channel": {"id": "Kanal", "en": "Channel"},
        "queue.category": {"id": "Kategori", "en": "Category"},
        "queue.agency": {"id": "Instansi", "en": "Agency"},
        "queue.wilayah": {"id": "Wilayah", "en": "Area"},
        "queue.duplicates": {"id": "Hanya kemungkinan duplikat", "en": "Possible duplicates only"},
        "queue.any": {"id": "Semua", "en": "Any"},
        "queue.none": {"id": "(tidak ada)", "en": "(none)"},
        "queue.total": {"id": "{n} laporan dalam cakupan dan status ini", "en": "{n} reports in this scope and state"},
        "queue.empty": {"id": "Tidak ada laporan yang menunggu. Bagus!", "en": "Nothing is waiting. Well done!"},
        "queue.next": {"id": "Halaman berikutnya", "en": "Next page"},
        "queue.first": {"id": "Halaman pertama", "en": "First page"},
        "queue.prev": {"id": "Halaman sebelumnya", "en": "Previous page"},
        "queue.ticket": {"id": "Tiket", "en": "Ticket"},
        "queue.text": {"id": "Isi (disamarkan)", "en": "Text (masked)"},
        "queue.place": {"id": "Lokasi", "en": "Place"},
        "queue.routing": {"id": "Kategori / instansi", "en": "Category / agency"},
        "queue.age": {"id": "Umur / SLA", "en": "Age / SLA"},
        "queue.complete": {"id": "Kelengkapan", "en": "Completeness"},
        "queue.duplicate_mark": {"id": "duplikat?", "en": "duplicate?"},
        "queue.no_place": {"id": "lokasi belum diketahui", "en": "place unknown"},
        "queue.done": {"id": "Laporan {ticket}: {what}.", "en": "Report {ticket}: {what}."},
        "queue.shortcuts": {
            "id": "Pintasan: j/k baris berikut/sebelumnya, Enter buka.",
            "en": "Shortcuts: j/k next/previous row, Enter opens.",
        },
        "queue.due": {"id": "tenggat {time}", "en": "due {time}"},
        "age.minutes": {"id": "{n} mnt", "en": "{n} min"},
        "age.hours": {"id": "{n} jam", "en": "{n} h"},
        "age.days": {"id": "{n} hari", "en": "{n} d"},
        "sla.overdue": {"id": "Lewat tenggat", "en": "Overdue"},
        "sla.red": {"id": "Hampir lewat", "en": "Almost due"},
        "sla.yellow": {"id": "Perhatian", "en": "Attention"},
        "sla.green": {"id": "Aman", "en": "On time"},
        "sla.none": {"id": "Tanpa SLA", "en": "No SLA"},
        "state.pending_review": {"id": "Menunggu verifikasi", "en": "Pending review"},
        "state.needs_info": {"id": "Menunggu info pelapor", "en": "Waiting for the citizen"},
        "state.approved": {"id": "Disetujui", "en": "Approved"},
        "state.rejected": {"id": "Ditolak", "en": "Rejected"},
        "state.forwarded": {"id": "Diteruskan ke CRM", "en": "Forwarded to the CRM"},
        "state.crm_failed": {"id": "Gagal ke CRM", "en": "CRM failed"},
        "state.in_progress": {"id": "Diproses", "en": "In progress"},
        "state.resolved": {"id": "Selesai", "en": "Resolved"},
        "state.merged": {"id": "Digabung", "en": "Merged"},
        "done.approved": {"id": "disetujui dan dikirim ke CRM", "en": "approved and sent to the CRM"},
        "done.rejected": {"id": "ditolak", "en": "rejected"},
        "done.info_requested": {"id": "pelapor diminta melengkapi", "en": "the citizen was asked for more"},
        "done.merged": {"id": "digabung", "en": "merged"},
        "done.reassigned": {"id": "dialihkan", "en": "reassigned"},
    }
)
for _code, _reason in REASONS.items():
    register({f"missing.{_code}": {"id": _reason.citizen_text, "en": _reason.admin_text}})


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    count: int
    selected: bool


def age_text(seconds: float) -> tuple[str, dict[str, int]]:
    """The i18n key and parameters for an age: minutes under an hour, hours under two days, then days."""
    minutes = int(seconds // 60)
    if minutes < 60:
        return "age.minutes", {"n": max(minutes, 0)}
    if minutes < 48 * 60:
        return "age.hours", {"n": minutes // 60}
    return "age.days", {"n": minutes // (24 * 60)}


def region_name(code: str) -> str:
    region = load_gazetteer().regions.get(code)
    return region.name if region is not None else code


def category_name(taxonomy: Taxonomy, code: str | None) -> str:
    if not code:
        return ""
    try:
        return taxonomy.category(code).name
    except (KeyError, ValueError, LookupError):
        return code


def agency_name(taxonomy: Taxonomy, code: str | None) -> str:
    if not code:
        return ""
    try:
        return taxonomy.agency(code).name
    except (KeyError, ValueError, LookupError):
        return code


def _options(counter: dict[str, int], selected: str | None, label: object) -> list[Option]:
    return sorted(
        (Option(value, label(value) if value else "", n, value == selected) for value, n in counter.items()),  # type: ignore[operator]
        key=lambda o: (-o.count, o.label),
    )


#: The counts beside the filters are read at most this often per scope and state choice (per process):
#: at a million reports they cost tens of milliseconds, the page itself a few. A decision made through
#: this app clears them (review_queue/web/pages_report.py), so an admin sees their own work at once.
COUNTS_TTL = 15.0


def counts_cache(request: Request) -> TTLCache[queue.Counts]:
    return app_cache(request, "queue_counts", COUNTS_TTL)


@router.get("/admin/queue")
def queue_page(
    request: Request,
    runtime: RuntimeDep,
    admin: WebAdminDep,
    state: Annotated[list[str] | None, Query()] = None,
    channel: str | None = None,
    category: str | None = None,
    agency: str | None = None,
    wilayah: str | None = None,
    duplicates: str | None = None,
    after: str | None = None,
    before: str | None = None,
    done: str | None = None,
    decided: str | None = None,
) -> HTMLResponse:
    states = tuple(s for s in (state or ()) if s in queue.QUEUE_STATES) or queue.DEFAULT_STATES
    filters = queue.Filters(
        states=states,
        channel_id=channel or None,
        category_code=category or None,
        agency_code=agency or None,
        wilayah=wilayah or None,
        duplicates_only=duplicates == "1",
    )
    scope = scope_of(admin)
    bad_cursor = False
    with read_session(runtime.engine) as session:
        try:
            found = queue.page(session, scope, filters, cursor=after, before=before, limit=PAGE_SIZE)
        except queue.BadCursor:
            bad_cursor = True
            found = queue.page(session, scope, filters, limit=PAGE_SIZE)
        tally = counts_cache(request).get((scope, states), lambda: queue.counts(session, scope, states))
    now = utcnow()
    taxonomy = runtime.taxonomy
    params = {
        k: v
        for k, v in {
            "channel": filters.channel_id,
            "category": filters.category_code,
            "agency": filters.agency_code,
            "wilayah": filters.wilayah,
            "duplicates": "1" if filters.duplicates_only else None,
        }.items()
        if v
    }
    query_pairs = [("state", s) for s in states] + list(params.items())
    next_url = "/admin/queue?" + urlencode([*query_pairs, ("after", found.next_cursor)]) if found.next_cursor else None
    prev_url = "/admin/queue?" + urlencode([*query_pairs, ("before", found.prev_cursor)]) if found.prev_cursor else None
    first_url = "/admin/queue?" + urlencode(query_pairs) if found.prev_cursor else None
    wilayah_options = (
        [("kota", o) for o in _options(tally.kota, filters.wilayah, region_name)]
        + [("kecamatan", o) for o in _options(tally.kecamatan, filters.wilayah, region_name)]
        + [("kelurahan", o) for o in _options(tally.kelurahan, filters.wilayah, region_name)]
    )
    rows = []
    for row in found.rows:
        age_key, age_params = age_text((now - row.received_at).total_seconds())
        rows.append(
            {
                "row": row,
                "level": row.level_at(now) or "none",
                "age_key": age_key,
                "age_params": age_params,
                "place": region_name(row.kelurahan_code or row.kecamatan_code or row.kota_code or "")
                if (row.kelurahan_code or row.kecamatan_code or row.kota_code)
                else "",
                "category": category_name(taxonomy, row.category_code),
                "agency": row.agency_unit or agency_name(taxonomy, row.agency_code),
            }
        )
    return render(
        request,
        "queue.html",
        admin=admin,
        rows=rows,
        tally=tally,
        filters=filters,
        states=states,
        all_states=queue.QUEUE_STATES,
        channel_options=_options(tally.channel, filters.channel_id, lambda v: v),
        category_options=_options(tally.category, filters.category_code, lambda v: category_name(taxonomy, v)),
        agency_options=_options(tally.agency, filters.agency_code, lambda v: agency_name(taxonomy, v)),
        wilayah_options=wilayah_options,
        next_url=next_url,
        prev_url=prev_url,
        first_url=first_url,
        bad_cursor=bad_cursor,
        done=done if done in {"approved", "rejected", "info_requested", "merged", "reassigned"} else None,
        done_ticket=decided,
    )

"""GET /admin/dashboard: the head of office's view of their scope, drawn on the server.

Headline figures (open, overdue, median review and closure times), reports per day stacked by
channel, the backlog per agency and per area, and a map of open reports per kelurahan. Every figure is
read through the signed-in admin's scope (`Scope.report_clause()`), so a wilayah admin sees their area
only. The charts are inline SVG (review_queue/svg): no script, no external tiles, and each comes with
a table of the same numbers for screen readers and for copying.

`?days=7|14|30` sets the arrivals window (14 by default); review and closure medians cover 30 days.
The figures of one scope are read at most once a minute per process (`FIGURES_TTL`): the page says
when they were read, and several heads of office opening it together cost one set of queries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from gateway.db import read_session, utcnow
from gateway.deps import RuntimeDep
from review_queue.accounts import scope_of
from review_queue.dashboard import NONE_KEY, BacklogRow, Dashboard, load_dashboard, top_rows
from review_queue.svg import charts, maps
from review_queue.svg import number as number_id
from review_queue.web.i18n import Lang, language_of, register, translate
from review_queue.web.render import render
from review_queue.web.session import WebAdminDep
from review_queue.web.ttl_cache import TTLCache, app_cache

router = APIRouter(include_in_schema=False)

ARRIVAL_DAYS = (7, 14, 30)
DEFAULT_ARRIVAL_DAYS = 14
DURATION_DAYS = 30
#: Bars in a chart; the tables below each chart list every row.
CHART_ROWS = 12
#: How long one scope's figures are reused, in seconds (each read costs a few hundred ms at 100k reports).
FIGURES_TTL = 60.0

register(
    {
        "dashboard.title": {"id": "Dasbor", "en": "Dashboard"},
        "dashboard.as_of": {"id": "Data per {time}.", "en": "Figures as of {time}."},
        "dashboard.summary": {"id": "Ringkasan", "en": "Summary"},
        "dashboard.open": {"id": "Laporan terbuka", "en": "Open reports"},
        "dashboard.overdue": {"id": "Melewati tenggat", "en": "Overdue"},
        "dashboard.received": {"id": "Laporan masuk ({days} hari)", "en": "Received ({days} days)"},
        "dashboard.review_median": {
            "id": "Median waktu verifikasi ({days} hari)",
            "en": "Median time to review ({days} days)",
        },
        "dashboard.closure_median": {
            "id": "Median waktu sampai selesai di CRM ({days} hari)",
            "en": "Median time to CRM closure ({days} days)",
        },
        "dashboard.based_on": {
            "id": "dari {count} laporan; 90% dalam {p90}",
            "en": "of {count} reports; 90% within {p90}",
        },
        "dashboard.none_yet": {"id": "belum ada data", "en": "no data yet"},
        "dashboard.minutes": {"id": "{n} menit", "en": "{n} min"},
        "dashboard.hours": {"id": "{n} jam", "en": "{n} h"},
        "dashboard.days": {"id": "{n} hari", "en": "{n} days"},
        "dashboard.arrivals": {"id": "Laporan masuk per hari, per kanal", "en": "Reports received per day, by channel"},
        "dashboard.window": {"id": "Rentang", "en": "Window"},
        "dashboard.window_days": {"id": "{days} hari", "en": "{days} days"},
        "dashboard.no_arrivals": {"id": "Belum ada laporan masuk.", "en": "No reports received."},
        "dashboard.others": {"id": "Lainnya", "en": "Others"},
        "dashboard.others_rows": {"id": "{n} lainnya", "en": "{n} others"},
        "dashboard.table": {"id": "Tampilkan tabel angka", "en": "Show the figures as a table"},
        "dashboard.day": {"id": "Tanggal", "en": "Date"},
        "dashboard.channel": {"id": "Kanal", "en": "Channel"},
        "dashboard.total": {"id": "Jumlah", "en": "Total"},
        "dashboard.by_agency": {"id": "Tunggakan per instansi", "en": "Backlog by agency"},
        "dashboard.by_kota": {"id": "Tunggakan per kota", "en": "Backlog by city"},
        "dashboard.by_kecamatan": {"id": "Tunggakan per kecamatan", "en": "Backlog by district"},
        "dashboard.agency": {"id": "Instansi", "en": "Agency"},
        "dashboard.kota": {"id": "Kota/kabupaten", "en": "City"},
        "dashboard.kecamatan": {"id": "Kecamatan", "en": "District"},
        "dashboard.open_short": {"id": "terbuka", "en": "open"},
        "dashboard.overdue_short": {"id": "terlambat", "en": "overdue"},
        "dashboard.no_backlog": {"id": "Tidak ada laporan terbuka.", "en": "No open reports."},
        "dashboard.unknown_agency": {"id": "Belum ada instansi", "en": "No agency yet"},
        "dashboard.unknown_place": {"id": "Lokasi belum diketahui", "en": "Place not known yet"},
        "dashboard.map": {"id": "Laporan terbuka per kelurahan", "en": "Open reports by kelurahan"},
        "dashboard.map_legend": {"id": "Laporan terbuka", "en": "Open reports"},
        "dashboard.map_zero": {"id": "tidak ada", "en": "none"},
        "dashboard.map_islands_note": {"id": "(skala berbeda)", "en": "(different scale)"},
        "dashboard.map_unplaced": {
            "id": "{count} laporan terbuka tanpa kelurahan tidak tampil di peta.",
            "en": "{count} open reports with no kelurahan are not on the map.",
        },
        "dashboard.map_how": {
            "id": "Warna: lima kelas dengan jumlah kelurahan yang kira-kira sama; abu-abu: tidak ada laporan terbuka.",
            "en": "Colours: five classes of about as many kelurahan each; grey: no open report.",
        },
    }
)


def number_for(lang: Lang) -> Callable[[float], str]:
    """How numbers are written for `lang`: 1.234,5 in Indonesian, 1,234.5 in English."""
    if lang == "id":
        return number_id

    def english(value: float) -> str:
        return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"

    return english


def duration_text(value: timedelta | None, lang: Lang) -> str:
    """A duration as an admin reads it: minutes under 1.5 h, hours under 2 days, days beyond."""
    if value is None:
        return translate("dashboard.none_yet", lang)
    fmt = number_for(lang)
    minutes = value.total_seconds() / 60
    if minutes < 90:
        return translate("dashboard.minutes", lang, n=fmt(round(minutes)))
    hours = minutes / 60
    if hours < 48:
        return translate("dashboard.hours", lang, n=fmt(round(hours, 1)))
    return translate("dashboard.days", lang, n=fmt(round(hours / 24, 1)))


def day_label(day: date) -> str:
    return day.strftime("%d/%m")


@dataclass(frozen=True)
class DayRow:
    """One line of the arrivals table: the day, its total, and one count per column channel."""

    day: date
    total: int
    counts: tuple[int, ...]


def _bars(rows: tuple[BacklogRow, ...], lang: Lang) -> list[charts.Bar]:
    shown = top_rows(rows, CHART_ROWS, others=translate("dashboard.others_rows", lang, n="{n}"))
    return [charts.Bar(r.label, r.open, r.overdue) for r in shown]


def figures_cache(request: Request) -> TTLCache[Dashboard]:
    return app_cache(request, "dashboard_figures", FIGURES_TTL)


@router.get("/admin/dashboard")
def dashboard_page(request: Request, admin: WebAdminDep, runtime: RuntimeDep, days: int = 14) -> HTMLResponse:
    """The dashboard of the signed-in admin's scope. Any role may read it."""
    days = days if days in ARRIVAL_DAYS else DEFAULT_ARRIVAL_DAYS
    lang = language_of(admin)
    fmt = number_for(lang)
    scope = scope_of(admin)

    def read() -> Dashboard:
        agency_names = {agency.code: agency.name for agency in runtime.taxonomy.agencies}
        with read_session(runtime.engine) as session:
            return load_dashboard(
                session,
                scope=scope.report_clause(),
                now=utcnow(),
                arrival_days=days,
                duration_days=DURATION_DAYS,
                agency_names=agency_names,
                unknown_agency=translate("dashboard.unknown_agency", lang),
                unknown_place=translate("dashboard.unknown_place", lang),
            )

    board = figures_cache(request).get((scope, days, lang), read)
    now = board.now

    def t(key: str, **params: object) -> str:
        return translate(key, lang, **params)

    arrivals = board.arrivals
    channels = list(arrivals.by_channel)
    day_rows = [
        DayRow(day=day, total=arrivals.per_day[n], counts=tuple(arrivals.by_channel[c][n] for c in channels))
        for n, day in enumerate(arrivals.days)
    ]
    open_short, overdue_short = t("dashboard.open_short"), t("dashboard.overdue_short")
    # Built by review_queue.svg, which escapes every piece of text it writes: safe to insert as markup.
    svgs = {
        "arrivals": charts.stacked_bar_chart(
            [day_label(d) for d in arrivals.days],
            arrivals.by_channel,
            title=t("dashboard.arrivals"),
            description=None if arrivals.total else t("dashboard.no_arrivals"),
            others=t("dashboard.others"),
            fmt=fmt,
        ),
        "by_agency": charts.horizontal_bar_chart(
            _bars(board.backlog.by_agency, lang),
            title=t("dashboard.by_agency"),
            value_name=open_short,
            part_name=overdue_short,
            description=t("dashboard.no_backlog"),
            fmt=fmt,
        ),
        "by_kota": charts.horizontal_bar_chart(
            _bars(board.backlog.by_kota, lang),
            title=t("dashboard.by_kota"),
            value_name=open_short,
            part_name=overdue_short,
            description=t("dashboard.no_backlog"),
            fmt=fmt,
        ),
        "map": maps.choropleth(
            board.open_by_kelurahan,
            title=t("dashboard.map"),
            legend_title=t("dashboard.map_legend"),
            zero_label=t("dashboard.map_zero"),
            islands_note=t("dashboard.map_islands_note"),
            fmt=fmt,
        ),
    }
    return render(
        request,
        "dashboard.html",
        admin=admin,
        board=board,
        now=now,
        days=days,
        day_choices=ARRIVAL_DAYS,
        duration_days=DURATION_DAYS,
        channels=channels,
        day_rows=day_rows,
        day_label=day_label,
        num=fmt,
        review_text=duration_text(board.review.median, lang),
        review_p90=duration_text(board.review.p90, lang),
        closure_text=duration_text(board.closure.median, lang),
        closure_p90=duration_text(board.closure.p90, lang),
        unplaced=board.backlog.open - sum(board.open_by_kelurahan.values()),
        none_key=NONE_KEY,
        svg={name: Markup(svg) for name, svg in svgs.items()},  # noqa: S704 - escaped piece by piece by review_queue.svg
    )

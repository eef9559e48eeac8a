"""Dashboard benchmark: how long each figure of the head of office's dashboard takes against history size.

    .venv/bin/python bench/dashboard.py [--quick] [--sizes 10000,100000] [--database sqlite|postgresql|both]

Synthetic history at 800 reports a day (Jakarta's busiest day, every day), so a bigger history is a
longer one: 10k reports = 12.5 days, 100k = 125 days, 1M = 3.4 years. Each report has the history
rows the real code writes (created, approved or rejected, forwarded, CRM status changes), about
four per report; channels, wilayah, agencies and the time each step took are drawn at random with
a fixed seed. Reports that hang ("digantung": never decided, never closed) accumulate with history.

For each engine and size, every query of `review_queue.dashboard` runs `--repeat` times on one
connection (after one warm-up), unscoped and scoped to one kota; p50 and p95 are reported beside a
baseline measured in the same run on the same database: ``SELECT count(*) FROM report``. Review and
closure times are measured twice: without and with the index they need on ``report_event (action,
at)``, which the benchmark creates itself (`ix_report_event_action_at`).

PostgreSQL gets ANALYZE after each fill, as its autovacuum would; SQLite does not, as Kanal never runs
it (tests/admin_dashboard checks the plans with and without SQLite statistics).

One JSON object goes to stdout; progress to stderr. PostgreSQL: a database `kanal_bench_dash_<pid>`
on the local server (trust auth), dropped at the end; filled with foreign-key triggers off
(`session_replication_role = replica`): the synthetic reports have no inbox rows behind them.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from sqlalchemy import Connection, Engine, create_engine, insert, text  # noqa: E402
from sqlmodel import col  # noqa: E402

from gateway import migrate  # noqa: E402
from gateway.db import make_engine  # noqa: E402
from review_queue import dashboard  # noqa: E402
from review_queue.tables import Report, ReportEvent  # noqa: E402

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PER_DAY = 800
NOW = datetime(2026, 11, 1, 3, tzinfo=UTC)  # 10:00 WIB
CHANNELS = [
    ("jaki:app", 55, True),  # trusted: approved by the normalizer, no review
    ("twitter:dkijakarta", 10, False),
    ("whatsapp:dki", 10, False),
    ("lapor:sp4n", 10, False),
    ("email:dki", 5, False),
    ("instagram:governor", 5, False),
    ("walk_in:balaikota", 5, False),
]
AGENCIES = [
    "bina_marga",
    "sda",
    "dishub",
    "satpol_pp",
    "lingkungan_hidup",
    "pertamanan",
    "citata",
    "kelurahan",
    "kesehatan",
    "sosial",
    "pendidikan",
    "bpbd",
    "gulkarmat",
    "dukcapil",
    "bp_bumd",
    "dpmptsp",
    "diskominfotik",
    "bpad",
    "inspektorat",
    "umum",
    "bkd",
]
SCOPE_KOTA = "31.74"  # Jakarta Selatan: about a fifth of the reports
INDEX_NAME = "ix_report_event_action_at"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _kelurahan_codes() -> list[str]:
    path = REPO / "normalizer" / "data" / "wilayah.csv"
    return [line.split(",")[0] for line in path.read_text("utf-8").splitlines() if ",kelurahan," in line]


# -- history -----------------------------------------------------------------------------------------


def _timeline(
    rng: random.Random, received: datetime, trusted: bool
) -> tuple[str, list[tuple[str, datetime, str, str | None, str]]]:
    """A report's state at NOW and its history rows (action, at, actor, state before, state after)."""
    events: list[tuple[str, datetime, str, str | None, str]] = [
        ("created", received + timedelta(seconds=5), "system:normalizer", None, "pending_review")
    ]
    state = "pending_review"

    def step(action: str, at: datetime, actor: str, after: str) -> bool:
        nonlocal state
        if at > NOW:
            return False
        events.append((action, at, actor, state, after))
        state = after
        return True

    if trusted:
        decided = received + timedelta(seconds=5)
        step("approved", decided, "system:normalizer", "approved")
    else:
        if rng.random() < 0.03:  # never reviewed: hangs
            return state, events
        decided = received + timedelta(hours=rng.lognormvariate(math.log(4), 1.0))
        if rng.random() < 0.1:
            step("rejected", decided, "admin:rina", "rejected")
            return state, events
        if not step("approved", decided, "admin:rina", "approved"):
            return state, events
    if not step("forwarded", decided + timedelta(minutes=2), "system:crm", "forwarded"):
        return state, events
    if rng.random() < 0.03:  # the CRM never moves it
        return state, events
    if not step("crm_status", decided + timedelta(hours=rng.uniform(2, 48)), "system:crm", "in_progress"):
        return state, events
    if rng.random() < 0.04:
        return state, events
    step("crm_status", decided + timedelta(days=rng.uniform(1, 20)), "system:crm", "resolved")
    return state, events


def fill(engine: Engine, start: int, stop: int, rng: random.Random, kelurahan: list[str]) -> int:
    """Add reports `start`..`stop` at PER_DAY a day back from NOW; return the history rows written."""
    weights = [w for _, w, _ in CHANNELS]
    written, chunk = 0, 10_000
    for offset in range(start, stop, chunk):
        reports, events = [], []
        for number in range(offset, min(stop, offset + chunk)):
            # Report n is n/PER_DAY days old (plus jitter): the newest first, history reaching back.
            received = NOW - timedelta(days=number / PER_DAY, seconds=rng.randrange(60))
            channel, _, trusted = rng.choices(CHANNELS, weights)[0]
            state, timeline = _timeline(rng, received, trusted)
            place = rng.choice(kelurahan) if rng.random() > 0.1 else None
            due = None
            if state == "pending_review":
                due = received + timedelta(days=1)
            elif state in ("approved", "forwarded"):
                due = timeline[-1][1] + timedelta(days=7)
            report_id = f"r{number:09d}"
            reports.append(
                {
                    "id": report_id,
                    "ticket_code": f"T{number:010d}",
                    "channel_id": channel,
                    "inbound_message_id": f"m{number:09d}",
                    "state": state,
                    "created_at": received + timedelta(seconds=5),
                    "updated_at": timeline[-1][1],
                    "received_at": received,
                    "text_original": "jalan berlubang",
                    "text_clean": "jalan berlubang",
                    "text_masked": "jalan berlubang",
                    "masked_kinds": [],
                    "kota_code": place[:5] if place else None,
                    "kecamatan_code": place[:8] if place else None,
                    "kelurahan_code": place,
                    "agency_code": rng.choice(AGENCIES) if rng.random() > 0.05 else None,
                    "needs_category_choice": False,
                    "match_terms": "",
                    "completeness": 80,
                    "completeness_missing": [],
                    "media": [],
                    "decisions": [],
                    "version": len(timeline),
                    "sla_due_at": due,
                    "sla_level": "overdue" if due is not None and due <= NOW else None,
                }
            )
            for n, (action, at, actor, before, after) in enumerate(timeline):
                events.append(
                    {
                        "id": f"e{number:09d}{n}",
                        "report_id": report_id,
                        "at": at,
                        "actor": actor,
                        "action": action,
                        "before": {"state": before} if before else None,
                        "after": {"state": after},
                    }
                )
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SET LOCAL session_replication_role = replica"))
            connection.execute(insert(Report), reports)
            connection.execute(insert(ReportEvent), events)
        written += len(events)
        log(f"history: {min(stop, offset + chunk):,} reports")
    return written


# -- timing ------------------------------------------------------------------------------------------


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p95_ms": round(ordered[max(0, math.ceil(len(ordered) * 0.95) - 1)] * 1000, 3),
    }


def timed(connection: Connection, run: Callable[[Connection], Any], repeat: int) -> dict[str, float]:
    run(connection)  # warm-up: statement cache, pages in memory
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        run(connection)
        samples.append(time.perf_counter() - started)
    return _percentiles(samples)


def queries(scope: Any) -> dict[str, Callable[[Connection], Any]]:
    return {
        "arrivals_14d": lambda c: dashboard.reports_per_channel_per_day(c, scope=scope, now=NOW, days=14),
        "backlog": lambda c: dashboard.backlog(c, scope=scope, now=NOW),
        "open_by_kelurahan": lambda c: dashboard.open_by_kelurahan(c, scope=scope),
        "time_to_review_30d": lambda c: dashboard.time_to_review(c, scope=scope, now=NOW, days=30),
        "time_to_closure_30d": lambda c: dashboard.time_to_closure(c, scope=scope, now=NOW, days=30),
        "whole_dashboard": lambda c: dashboard.load_dashboard(c, scope=scope, now=NOW),
    }


def measure(engine: Engine, repeat: int, names: list[str] | None = None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    with engine.connect() as connection:
        base = timed(connection, lambda c: c.execute(text("SELECT count(*) FROM report")).scalar_one(), repeat)
        out["baseline_count_reports"] = base
        for label, scope in (("all", None), ("one_kota", col(Report.kota_code) == SCOPE_KOTA)):
            for name, run in queries(scope).items():
                if names is not None and name not in names:
                    continue
                result = timed(connection, run, repeat)
                result["ratio_p50_to_baseline"] = round(result["p50_ms"] / max(base["p50_ms"], 1e-6), 2)
                out[f"{name}/{label}"] = result
    return out


def figures(engine: Engine) -> dict[str, Any]:
    """What the dashboard says at the largest size: a sanity check that the data is realistic."""
    with engine.connect() as c:
        board = dashboard.load_dashboard(c, scope=None, now=NOW)
    return {
        "arrivals_14d": board.arrivals.total,
        "open": board.backlog.open,
        "overdue": board.backlog.overdue,
        "review": {"count": board.review.count, "median_h": _hours(board.review.median)},
        "closure": {"count": board.closure.count, "median_h": _hours(board.closure.median)},
        "kelurahan_with_open": len(board.open_by_kelurahan),
    }


def _hours(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds() / 3600, 2)


@contextmanager
def database(kind: str, folder: Path) -> Iterator[tuple[str, Engine]]:
    """A fresh, migrated database of `kind`, and a plain engine to fill it; dropped afterwards."""
    if kind == "sqlite":
        path = folder / "dashboard.sqlite3"
        url = f"sqlite:///{path}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        # A plain engine fills it: Kanal's turns foreign keys on, and the reports have no inbox rows.
        filler = create_engine(url)
        try:
            yield url, filler
        finally:
            filler.dispose()
            engine.dispose()
        return
    name = f"kanal_bench_dash_{os.getpid()}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    engine = make_engine(url)
    try:
        migrate.upgrade(engine)
        yield url, engine
    finally:
        engine.dispose()
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def set_index(engine: Engine, present: bool) -> None:
    with engine.begin() as connection:
        if present:
            connection.execute(text(f"CREATE INDEX IF NOT EXISTS {INDEX_NAME} ON report_event (action, at)"))
        else:
            connection.execute(text(f"DROP INDEX IF EXISTS {INDEX_NAME}"))


def analyse(engine: Engine) -> None:
    """PostgreSQL's autovacuum keeps statistics; Kanal never runs ANALYZE on SQLite, so neither do we
    (the queries are checked to plan well both with and without SQLite statistics)."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as connection:
            connection.execute(text("ANALYZE"))


def bench(kind: str, sizes: list[int], repeat: int, folder: Path) -> list[dict[str, Any]]:
    results = []
    rng = random.Random(17)
    kelurahan = _kelurahan_codes()
    with database(kind, folder) as (url, filler):
        engine = make_engine(url)
        filled = events = 0
        for size in sorted(sizes):
            set_index(filler, False)
            started = time.perf_counter()
            events += fill(filler, filled, size, rng, kelurahan)
            fill_seconds = time.perf_counter() - started
            filled = size
            analyse(filler)
            log(f"{kind} {size:,}: measuring without the event index")
            plain = measure(engine, repeat)
            set_index(filler, True)
            analyse(filler)
            log(f"{kind} {size:,}: measuring with {INDEX_NAME}")
            indexed = measure(engine, repeat, ["time_to_review_30d", "time_to_closure_30d", "whole_dashboard"])
            result = {
                "database": kind,
                "reports": size,
                "history_rows": events,
                "history_days": round(size / PER_DAY, 1),
                "fill_seconds": round(fill_seconds, 1),
                "without_event_index": plain,
                f"with_{INDEX_NAME}": indexed,
                "figures": figures(engine),
            }
            log(json.dumps(result))
            results.append(result)
        engine.dispose()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="10k reports only, 5 repeats")
    parser.add_argument("--sizes", help="history sizes, comma-separated (default 10000,100000)")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--repeat", type=int, help="timed runs per query (default 20)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([10_000] if args.quick else [10_000, 100_000])
    repeat = args.repeat or (5 if args.quick else 20)
    kinds = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for kind in kinds:
            results += bench(kind, sizes, repeat, Path(folder))
    print(
        json.dumps(
            {
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "loadavg": os.getloadavg(),
                },
                "per_day": PER_DAY,
                "repeat": repeat,
                "results": results,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

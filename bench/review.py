"""Review app benchmark: the queue page and the decision screen, through the real app, at 10k and 1M reports.

    .venv/bin/python bench/review.py [--sizes 10000,1000000] [--database sqlite|postgresql|both] [--requests 100]
                                     [--keep-database]

For each engine and size: a fresh database at the head migration, filled in bulk with synthetic
reports (800 a day, so 1M reports is 3.4 years of history): 3% still pending review, 0.5% waiting for
the citizen (needs_info), the rest decided (forwarded, in progress, resolved, rejected); the pending
ones carry SLA levels (20% overdue, 10% red, 20% yellow, 50% green), 5% are marked duplicates;
kelurahan, channel and category drawn at random with a fixed seed. Pending reports get their inbox
row and raw delivery (the decision screen reads them); decided ones do not (foreign-key checks are
off while seeding: PRAGMA foreign_keys=OFF on SQLite, session_replication_role=replica on PostgreSQL).

Then the real gateway (uvicorn on loopback, workers off) is started on that database; a superadmin
and a kelurahan admin sign in through the login form, and each page is requested `--requests` times
(after a warm-up) with httpx: the queue's first page, its second page (keyset cursor), a filtered
queue, the kelurahan admin's queue, and the decision screen of random pending reports. Times are
client-side over loopback, so the baseline `GET /healthz`, measured in the same run, is reported too
and each p50 is also given as a ratio to it.

One JSON object on stdout; progress on stderr. PostgreSQL: a database `kanal_bench_review_<pid>` on
the local server (trust auth), dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import Engine, create_engine, insert  # noqa: E402
from sqlmodel import Session  # noqa: E402

from gateway import migrate  # noqa: E402
from gateway.db import make_engine  # noqa: E402
from gateway.inbox import InboundMessageRow, RawDelivery  # noqa: E402
from kanal_testing.server import KanalUnderTest, kanal_settings  # noqa: E402
from normalizer.gazetteer import load_gazetteer  # noqa: E402
from review_queue import queue  # noqa: E402
from review_queue.accounts import EVERYTHING, Scope  # noqa: E402
from review_queue.auth import create_admin  # noqa: E402
from review_queue.tables import AdminRole, Report  # noqa: E402

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PER_DAY = 800
NOW = datetime.now(UTC)
CHANNELS = ["jaki:app", "twitter:dkijakarta", "whatsapp:dki", "lapor:sp4n", "email:dki", "web_form:balaiwarga",
            "instagram:governor", "walk_in:balaikota"]  # fmt: skip
CATEGORIES = [("jalan", "bina_marga"), ("parkir-liar", "dishub"), ("pohon", "pertamanan"), ("banjir", "sda")]
DECIDED = ["forwarded"] * 3 + ["resolved"] * 10 + ["in_progress"] * 2 + ["rejected"] * 2
LEVELS = ["overdue"] * 2 + ["red"] + ["yellow"] * 2 + ["green"] * 5
PASSWORD = "bench-password-0123"  # noqa: S105 - a throwaway account in a throwaway database
CHUNK = 20_000
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def log(message: str) -> None:
    print(f"[bench/review] {message}", file=sys.stderr, flush=True)


@contextmanager
def database(kind: str, size: int, *, keep: bool = False) -> Iterator[str]:
    """A fresh database; dropped at the end unless `keep` (then its URL is logged, to look into it)."""
    if kind == "sqlite":
        folder = tempfile.mkdtemp(prefix="kanal-bench-review-")
        try:
            yield f"sqlite:///{folder}/kanal.sqlite3"
        finally:
            if keep:
                log(f"kept: sqlite:///{folder}/kanal.sqlite3 (delete the folder when done)")
            else:
                shutil.rmtree(folder, ignore_errors=True)
        return
    name = f"kanal_bench_review_{os.getpid()}_{size}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    finally:
        if keep:
            log(f"kept: postgresql+psycopg://postgres@127.0.0.1:5432/{name} (DROP DATABASE it when done)")
        else:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def seed(engine: Engine, size: int, rng: random.Random) -> list[str]:
    """`size` reports; returns the ticket codes of pending ones (the decision screens to open)."""
    kelurahan = [r for r in load_gazetteer().regions.values() if r.level == "kelurahan"]
    lineage = {k.code: {r.level: r.code for r in load_gazetteer().lineage(k.code)} for k in kelurahan}
    codes = sorted(lineage)
    pending: list[str] = []
    started = time.perf_counter()
    span = timedelta(days=size / PER_DAY)
    if engine.dialect.name == "sqlite":
        # A plain engine: SQLite leaves foreign keys off unless asked (Kanal's engine asks).
        engine = create_engine(engine.url)
    with engine.begin() as connection:
        if engine.dialect.name != "sqlite":
            connection.exec_driver_sql("SET session_replication_role = replica")
        reports: list[dict[str, Any]] = []
        messages: list[dict[str, Any]] = []
        deliveries: list[dict[str, Any]] = []
        for i in range(size):
            roll = rng.random()
            state = "pending_review" if roll < 0.03 else "needs_info" if roll < 0.035 else rng.choice(DECIDED)
            open_ = state in ("pending_review", "needs_info")
            # Open reports are recent (the last two weeks); decided ones anywhere in the history.
            age = timedelta(seconds=rng.uniform(0, 14 * 86400)) if open_ else span * rng.random()
            received = NOW - age
            kel = rng.choice(codes)
            category, agency = rng.choice(CATEGORIES)
            ticket = f"{(i // 100000):05d}-{(i % 100000):05d}"
            report_id = f"r-{i:010d}"
            message_id = f"m-{i:010d}"
            text_value = f"Jalan berlubang nomor {i} di depan pasar, sudah {rng.randint(1, 9)} minggu"
            level = rng.choice(LEVELS) if state == "pending_review" else None
            reports.append(
                {
                    **_defaults,
                    "id": report_id,
                    "ticket_code": ticket,
                    "channel_id": rng.choice(CHANNELS),
                    "inbound_message_id": message_id,
                    "state": state,
                    "created_at": received,
                    "updated_at": received,
                    "received_at": received,
                    "text_original": text_value,
                    "text_clean": text_value,
                    "text_masked": text_value,
                    "place": {"kelurahan_code": kel, "precision": "kelurahan"},
                    "kota_code": lineage[kel].get("kota"),
                    "kecamatan_code": lineage[kel].get("kecamatan"),
                    "kelurahan_code": kel,
                    "category_code": category,
                    "agency_code": agency,
                    "completeness": rng.choice([20, 40, 60, 80, 100]),
                    "duplicate_of": f"r-{rng.randrange(max(i, 1)):010d}" if open_ and rng.random() < 0.05 else None,
                    "sender": {"id": f"caller-{i}", "name": "Budi Santoso"},
                    "sla_stage": "review" if level else None,
                    "sla_level": level,
                    "sla_due_at": received + timedelta(days=3) if level else None,
                }
            )
            if open_:
                pending.append(ticket)
                deliveries.append(
                    {
                        "id": f"d-{i:010d}",
                        "channel_id": reports[-1]["channel_id"],
                        "received_at": received,
                        "headers": {},
                        "body": json.dumps({"text": text_value}).encode(),
                    }
                )
                messages.append(
                    {
                        "id": message_id,
                        "channel_id": reports[-1]["channel_id"],
                        "external_id": f"x-{i}",
                        "ticket_code": ticket,
                        "delivery_id": f"d-{i:010d}",
                        "received_at": received,
                        "message": {"text": text_value},
                        "state": "normalized",
                        "delivery_count": 1,
                        "attempts": 1,
                    }
                )
            if len(reports) >= CHUNK or i == size - 1:
                connection.execute(insert(Report), reports)
                if deliveries:
                    connection.execute(insert(RawDelivery), deliveries)
                    connection.execute(insert(InboundMessageRow), messages)
                reports, messages, deliveries = [], [], []
                if (i + 1) % (CHUNK * 10) == 0 or i == size - 1:
                    log(f"  {i + 1:,} reports ({time.perf_counter() - started:.0f} s)")
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            connection.exec_driver_sql("ANALYZE")
    else:
        # What autovacuum does to a table after bulk inserts (PostgreSQL 13+ vacuums insert-only tables
        # too): statistics, and the visibility map that lets index-only scans skip the table. Without
        # it every count reads the heap, which no settled database does.
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            log("  VACUUM ANALYZE")
            connection.exec_driver_sql("VACUUM ANALYZE")
    return pending


_defaults = {
    k: v
    for k, v in Report(ticket_code="x", channel_id="x", inbound_message_id="x", text_original="", text_clean="")
    .model_dump()
    .items()
    if k not in ("id", "ticket_code", "channel_id", "inbound_message_id", "created_at", "updated_at", "received_at")
}


def sign_in(client: httpx.Client, username: str) -> None:
    form = client.get("/admin/login")
    token = _TOKEN.search(form.text)
    assert token, "no CSRF token on the login form"
    data = {"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    answer = client.post("/admin/login", data=data)
    assert answer.status_code == 303, answer.text[:500]


def measure(client: httpx.Client, paths: list[str], requests: int) -> dict[str, float]:
    for path in paths[:5]:
        client.get(path)  # warm-up
    times = []
    for n in range(requests):
        path = paths[n % len(paths)]
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, f"{path}: {answer.status_code} {answer.text[:300]}"
    return summary(times)


def measure_counts(url: str, requests: int) -> dict[str, float]:
    """`queue.counts` for a superadmin and a kelurahan admin, straight from the database (no cache)."""
    engine = make_engine(url)
    scopes = [EVERYTHING, Scope(everything=False, wilayah=frozenset({"31.71.01.1001"}))]
    times = []
    try:
        with Session(engine) as session:
            for n in range(requests):
                started = time.perf_counter()
                queue.counts(session, scopes[n % 2], queue.DEFAULT_STATES)
                times.append((time.perf_counter() - started) * 1000)
    finally:
        engine.dispose()
    return summary(times)


def summary(times: list[float]) -> dict[str, float]:
    times = sorted(times)
    return {
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
        "max_ms": round(times[-1], 2),
        "n": len(times),
    }


def run(kind: str, size: int, requests: int, *, keep: bool = False) -> dict[str, Any]:
    rng = random.Random(6)
    with database(kind, size, keep=keep) as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        log(f"{kind} {size:,}: seeding")
        started = time.perf_counter()
        pending = seed(engine, size, rng)
        seeded = time.perf_counter() - started
        gambir = "31.71.01.1001"
        create_admin(engine, username="ops", password=PASSWORD, role=AdminRole.SUPERADMIN)
        create_admin(engine, username="lurah", password=PASSWORD, role=AdminRole.WILAYAH_ADMIN, scope_wilayah=[gambir])
        engine.dispose()
        settings = kanal_settings(url, {}, workers={"enabled": False})
        log(f"{kind} {size:,}: seeded in {seeded:.0f} s; {len(pending):,} open; measuring")
        with (
            KanalUnderTest(settings) as gateway,
            httpx.Client(base_url=gateway.url, timeout=60) as ops,
            httpx.Client(base_url=gateway.url, timeout=60) as lurah,
        ):
            sign_in(ops, "ops")
            sign_in(lurah, "lurah")
            first = ops.get("/admin/queue")
            next_link = re.search(r'href="(/admin/queue\?[^"]*after=[^"]+)"', first.text)
            assert next_link, "the queue has no second page"
            second = next_link.group(1).replace("&amp;", "&")
            sample = rng.sample(pending, min(len(pending), 200))
            targets = {
                "baseline_healthz": (ops, ["/healthz"]),
                "queue_first_page": (ops, ["/admin/queue"]),
                "queue_second_page": (ops, [second]),
                "queue_filtered_category": (ops, ["/admin/queue?category=pohon"]),
                "queue_kelurahan_admin": (lurah, ["/admin/queue"]),
                "decision_screen": (ops, [f"/admin/reports/{t}" for t in sample]),
            }
            results = {}
            for name, (client, paths) in targets.items():
                results[name] = figures = measure(client, paths, requests)
                log(f"{kind} {size:,}: {name}: p50 {figures['p50_ms']} ms, p95 {figures['p95_ms']} ms")
            # The filter counts are cached for a few seconds (review_queue/web/pages_queue.py, COUNTS_TTL):
            # the pages above mostly hit that cache. Their price when it is cold, read directly:
            results["queue_counts_uncached"] = measure_counts(url, requests)
            log(f"{kind} {size:,}: queue_counts_uncached: p50 {results['queue_counts_uncached']['p50_ms']} ms")
        base = results["baseline_healthz"]["p50_ms"] or 1.0
        for figures in results.values():
            figures["p50_ratio_to_baseline"] = round(figures["p50_ms"] / base, 1)
        return {"engine": kind, "reports": size, "open": len(pending), "seed_seconds": round(seeded, 1), **results}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--keep-database", action="store_true", help="keep the seeded database to look into")
    args = parser.parse_args()
    engines = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    runs = [
        run(kind, int(size), args.requests, keep=args.keep_database)
        for kind in engines
        for size in args.sizes.split(",")
    ]
    print(
        json.dumps(
            {
                "benchmark": "review",
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
                "runs": runs,
            },
            indent=2,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""CRM delivery benchmark: how fast a 10,000-report outbox backlog drains into the reference CRM after an
outage, beside a baseline measured in the same run; and the pull feed's read rate when it exists.

    .venv/bin/python bench/crm.py [--quick] [--reports N] [--database-url URL]

Both CRMs are `kanal crm-sim` child processes, so the simulator's CPU is not counted against Kanal's.

* baseline: the same Open311 form bodies POSTed one after another to a fresh `crm-sim` with httpx
  (no database on our side): what one client gets out of this CRM.
* kanal:    N approved reports written straight into the outbox through the service layer's builder
  (`crm_client.outbox.new_item`), as an outage leaves them; then the CRM is up and Kanal starts, and the
  clock runs until every item is `sent` (the dispatcher's claim, 8 requests in flight, one commit per round,
  and an attempt row per request).
* feed:     `GET /api/v1/feed` read page by page (limit 1000) with a consumer key, entries/s, over 100,000
  entries (the drain's own entries, repeated with new positions up to that size; --feed-entries N).

One JSON object goes to stdout; progress to stderr. --quick: 1,000 reports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import func, select  # noqa: E402

from crm_client import outbox  # noqa: E402
from crm_client.open311 import request_fields  # noqa: E402
from crm_client.tables import OutboxItem, OutboxState  # noqa: E402
from crm_sim.server import free_port  # noqa: E402
from gateway import migrate  # noqa: E402
from gateway.db import make_engine, read_session, write_session  # noqa: E402
from gateway.ids import new_id, new_ticket_code  # noqa: E402
from gateway.inbox import InboundMessageRow, RawDelivery  # noqa: E402
from gateway.settings import CRMConfig  # noqa: E402
from kanal_testing.server import KanalUnderTest  # noqa: E402
from review_queue.tables import Report, ReportState  # noqa: E402

CRM_KEY = "bench-crm-key"
SECRET_KEY = "bench-secret-key-0123456789-abcdefghij"  # noqa: S105 - a throwaway benchmark deployment
CHANNEL = "api:bench"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def make_report(n: int, now: datetime) -> tuple[RawDelivery, InboundMessageRow, Report]:
    delivery = RawDelivery(id=new_id(), channel_id=CHANNEL, received_at=now, headers={}, body=b"{}")
    ticket = new_ticket_code()
    message = InboundMessageRow(
        id=new_id(),
        channel_id=CHANNEL,
        external_id=f"bench-{n}",
        ticket_code=ticket,
        delivery_id=delivery.id,
        received_at=now,
        message={},
        state="normalized",
        delivery_count=1,
        attempts=1,
    )
    text = f"Jalan berlubang besar nomor {n} di depan pasar, sudah dua minggu tidak diperbaiki"
    report = Report(
        ticket_code=ticket,
        channel_id=CHANNEL,
        inbound_message_id=message.id,
        state=ReportState.APPROVED,
        received_at=now,
        text_original=text,
        text_clean=text,
        text_masked=text,
        category_code="jalan",
        location={"lat": -6.1865, "lng": 106.8437, "address": "Jl. Kramat Raya, Senen"},
    )
    return delivery, message, report


def fill_outbox(database_url: str, crm: CRMConfig, n: int) -> list[dict[str, str]]:
    """N approved reports with their outbox items, committed 1,000 at a time; returns their form bodies."""
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    now = datetime.now(UTC)
    bodies: list[dict[str, str]] = []
    for start in range(0, n, 1000):
        with write_session(engine) as session:
            rows = [make_report(i, now) for i in range(start, min(n, start + 1000))]
            session.add_all([d for d, _, _ in rows])
            session.flush()
            session.add_all([m for _, m, _ in rows])
            session.flush()
            session.add_all([r for _, _, r in rows])
            session.flush()
            for _, _, report in rows:
                outbox.enqueue(session, report=report, crm=crm)
                bodies.append(request_fields(report, crm))
    engine.dispose()
    return bodies


class CRMProcess:
    """`kanal crm-sim` as a child process: its CPU is not shared with Kanal's (or the client's) interpreter."""

    def __init__(self, db_path: Path) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/"
        command = [sys.executable, "-m", "gateway.cli", "crm-sim", "--port", str(self.port), "--db", str(db_path)]
        self._process = subprocess.Popen([*command, "--api-key", CRM_KEY], cwd=REPO, stdout=subprocess.DEVNULL)

    def __enter__(self) -> CRMProcess:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base_url}services.json", timeout=1).status_code == 200:
                    return self
            time.sleep(0.1)
        self._process.kill()
        raise SystemExit("crm-sim did not start")

    def __exit__(self, *_exc: object) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)


def baseline(bodies: list[dict[str, str]], tmp: Path) -> dict[str, Any]:
    with CRMProcess(tmp / "baseline-crm.sqlite3") as sim, httpx.Client(base_url=sim.base_url, timeout=30) as client:
        started = time.perf_counter()
        for n, body in enumerate(bodies):
            response = client.post(
                "requests.json", data={**body, "api_key": CRM_KEY}, headers={"Idempotency-Key": f"base-{n}"}
            )
            response.raise_for_status()
        seconds = time.perf_counter() - started
    return {"reports": len(bodies), "seconds": round(seconds, 2), "reports_per_s": round(len(bodies) / seconds, 1)}


def sent_count(engine: Any) -> int:
    with read_session(engine) as session:
        return int(
            session.execute(
                select(func.count()).select_from(OutboxItem).where(OutboxItem.state == OutboxState.SENT)  # type: ignore[arg-type]
            ).scalar_one()
        )


def top_up_feed(engine: Any, target: int) -> int:
    """Grow the feed to `target` entries by repeating the drain's real entries (new positions and ids),
    so the read is timed over as many entries as asked, not only as many as the drain produced."""
    from sqlalchemy import insert

    from gateway.ids import new_id
    from review_queue.feed import FeedEntry

    with engine.begin() as connection:
        rows = [dict(r._mapping) for r in connection.execute(select(FeedEntry.__table__)).all()]  # type: ignore[attr-defined]
        if not rows:
            return 0
        position = max(r["position"] for r in rows)
        batch: list[dict[str, Any]] = []
        while position < target:
            source = rows[position % len(rows)]
            position += 1
            batch.append({**source, "position": position, "id": new_id()})
            if len(batch) == 10_000:
                connection.execute(insert(FeedEntry), batch)
                batch = []
        if batch:
            connection.execute(insert(FeedEntry), batch)
    return position


def feed_read(gateway: KanalUnderTest) -> dict[str, Any]:
    try:
        from review_queue.feed import create_consumer
    except ImportError:
        return {"skipped": "GET /api/v1/feed does not exist in this tree"}
    key, _ = create_consumer(gateway.runtime.engine, name="bench")
    entries = pages = 0
    cursor: str | None = None
    with httpx.Client(base_url=gateway.url, timeout=60, headers={"Authorization": f"Bearer {key}"}) as client:
        started = time.perf_counter()
        while True:
            params: dict[str, Any] = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
            response = client.get("/api/v1/feed", params=params)
            if response.status_code == 404:
                return {"skipped": "GET /api/v1/feed answered 404"}
            response.raise_for_status()
            page = response.json()
            pages += 1
            entries += len(page["items"])
            cursor = page.get("next_cursor")
            if not page["items"] or not cursor:
                break
        seconds = time.perf_counter() - started
    return {
        "entries": entries,
        "pages": pages,
        "seconds": round(seconds, 3),
        "entries_per_s": round(entries / seconds, 1) if seconds else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 reports instead of 10,000")
    parser.add_argument("--reports", type=int, default=None)
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--feed-entries", type=int, default=None, help="feed size read (default 100,000; quick 10,000)")
    args = parser.parse_args(argv)
    n = args.reports or (1000 if args.quick else 10_000)
    with tempfile.TemporaryDirectory(prefix="kanal-bench-crm-") as folder:
        tmp = Path(folder)
        database_url = args.database_url or f"sqlite:///{tmp / 'kanal.sqlite3'}"
        crm_settings: dict[str, Any] = {"base_url": "http://127.0.0.1:9/", "api_key": CRM_KEY}
        log(f"filling the outbox with {n} approved reports (the backlog an outage leaves)")
        bodies = fill_outbox(database_url, CRMConfig.model_validate(crm_settings), n)
        log("baseline: sequential POSTs to a fresh crm-sim with httpx")
        base = baseline(bodies, tmp)
        log(f"baseline: {base['reports_per_s']} reports/s")
        with CRMProcess(tmp / "crm.sqlite3") as sim:
            settings = {
                "database_url": database_url,
                "secret_key": SECRET_KEY,
                "log_level": "WARNING",
                "channels": {CHANNEL: {"type": "api", "settings": {"secret": "bench-secret-0123456789abcdef"}}},
                "crm": {**crm_settings, "base_url": sim.base_url},
                "workers": {"poll_interval_seconds": 0.05},
            }
            log("kanal: CRM is back; starting the gateway and timing the drain")
            started = time.perf_counter()
            with KanalUnderTest(settings) as gateway:
                startup = time.perf_counter() - started
                engine = gateway.runtime.engine
                while (done := sent_count(engine)) < n:
                    time.sleep(0.2)
                    if time.perf_counter() - started > 3600:
                        raise SystemExit(f"drain stalled at {done}/{n}")
                seconds = time.perf_counter() - started
                received = httpx.get(f"{sim.base_url}_sim/stats").json()["requests"]
                log(f"kanal: {n} sent in {seconds:.1f} s; the CRM holds {received}")
                total = top_up_feed(engine, args.feed_entries or (10_000 if args.quick else 100_000))
                log(f"feed: reading {total} entries through GET /api/v1/feed")
                feed = feed_read(gateway)
        drain = {
            "reports": n,
            "seconds": round(seconds, 2),
            "reports_per_s": round(n / seconds, 1),
            "crm_received": received,
            "startup_seconds": round(startup, 2),
            "reports_per_s_after_startup": round(n / (seconds - startup), 1),
            "includes": "gateway start-up (migrations, catalogue read) and the 0.2 s completion poll",
        }
        result = {
            "benchmark": "crm_outbox_drain",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "database": database_url.split(":", 1)[0],
            "baseline_sequential_httpx": base,
            "kanal_drain": drain,
            "ratio_kanal_to_baseline": round(drain["reports_per_s"] / base["reports_per_s"], 2),
            "feed": feed,
        }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

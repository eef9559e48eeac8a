"""The two reference servers `bench/ingest.py` measures Kanal against, with the same client.

* `bare_app`: a raw ASGI callable that reads the request body and answers 200 without storing
  anything. Nothing Python-level can answer faster through uvicorn: the **ceiling**.
* `naive_app`: a minimal FastAPI app that stores each body in SQLite (WAL, synchronous=FULL, the
  same durability Kanal uses) with one INSERT + one COMMIT per request before answering 200: the
  **naive floor** (what you get without group commit, and without verifying, parsing or
  de-duplicating anything). The database file is read from env `BENCH_NAIVE_DB`.

Serve either with uvicorn exactly as Kanal is served (one process, default loop/http, no access
log), e.g. `python -m uvicorn bench.reference_apps:bare_app --no-access-log --log-level warning`.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from fastapi import FastAPI, Request, Response

_OK_BODY = b'{"status":"ok"}'
_OK_HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(_OK_BODY)).encode())]


async def bare_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Read the whole body, answer 200; lifespan events are acknowledged, nothing else happens."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": _OK_HEADERS})
    await send({"type": "http.response.body", "body": _OK_BODY})


def _connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute(
        "CREATE TABLE IF NOT EXISTS delivery (id INTEGER PRIMARY KEY, channel_id TEXT NOT NULL, body BLOB NOT NULL)"
    )
    return conn


def create_naive_app(db_path: str) -> FastAPI:
    """One connection, one INSERT and one COMMIT per request, on the event loop (the naive way)."""
    app = FastAPI()
    conn = _connect(db_path)

    @app.post("/channels/{channel_id}/inbound")
    async def inbound(channel_id: str, request: Request) -> Response:
        body = await request.body()
        conn.execute("BEGIN")
        conn.execute("INSERT INTO delivery (channel_id, body) VALUES (?, ?)", (channel_id, body))
        conn.execute("COMMIT")
        return Response(content=_OK_BODY, media_type="application/json")

    @app.get("/healthz")
    async def healthz() -> Response:
        return Response(content=_OK_BODY, media_type="application/json")

    return app


def __getattr__(name: str) -> Any:
    # Built lazily so importing this module (for `bare_app`) needs no BENCH_NAIVE_DB.
    if name == "naive_app":
        return create_naive_app(os.environ["BENCH_NAIVE_DB"])
    raise AttributeError(name)

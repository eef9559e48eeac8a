"""Running the CRM simulator: blocking ``serve``/``main`` for people, ``RunningCRMSim`` for tests.

``main(argv)`` is what ``kanal crm-sim`` calls; it returns a process exit code.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx
import uvicorn

from crm_sim.app import create_app
from crm_sim.status_side import StatusWebhook

DEFAULT_DB = "./var/crm-sim.sqlite3"
DEFAULT_API_KEY = "demo-key"


def serve(
    *,
    host: str = "127.0.0.1",
    port: int = 8070,
    db_path: str | Path,
    api_keys: Iterable[str],
    jurisdiction_id: str | None = None,
    deferred: bool = False,
    deferred_delay: float = 0.0,
    push_secrets: Iterable[str] = (),
    status_webhook: StatusWebhook | None = None,
) -> None:
    """Run the simulator in the foreground until interrupted (Ctrl-C / SIGTERM)."""
    app = create_app(
        db_path=db_path,
        api_keys=set(api_keys),
        jurisdiction_id=jurisdiction_id,
        deferred=deferred,
        deferred_delay=deferred_delay,
        push_secrets=push_secrets,
        status_webhook=status_webhook,
    )
    print(f"crm-sim: Open311 GeoReport v2 at http://{host}:{port}/ (db {db_path})", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


def build_parser() -> argparse.ArgumentParser:
    """The ``kanal crm-sim`` command line."""
    parser = argparse.ArgumentParser(prog="kanal crm-sim", description="Run the Open311 CRM simulator.")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8070, help="TCP port (default 8070)")
    parser.add_argument("--db", default=DEFAULT_DB, help=f"SQLite file (default {DEFAULT_DB})")
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help=f"accepted api_key; repeat for several (default {DEFAULT_API_KEY!r})",
    )
    parser.add_argument("--jurisdiction-id", default=None, help="answer 404 to any other jurisdiction_id")
    parser.add_argument("--deferred", action="store_true", help="answer POSTs with a token instead of an id")
    parser.add_argument(
        "--deferred-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="with --deferred: seconds before a token resolves to a service_request_id (default 0)",
    )
    parser.add_argument("--status-webhook-url", help="post every status change here (e.g. Kanal's /api/v1/crm/status)")
    parser.add_argument(
        "--status-webhook-secret",
        default="",
        help="sign status webhooks with this (Kanal's status_sync.webhook_secret)",
    )
    parser.add_argument(
        "--push-secret",
        action="append",
        dest="push_secrets",
        metavar="SECRET",
        help="accept signed JSON pushes at POST /push/reports with this secret; repeat for several",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (``sys.argv[1:]`` when ``None``), run the simulator, return an exit code."""
    args = build_parser().parse_args(argv)
    db_path = Path(args.db)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        serve(
            host=args.host,
            port=args.port,
            db_path=db_path,
            api_keys=args.api_keys or [DEFAULT_API_KEY],
            jurisdiction_id=args.jurisdiction_id,
            deferred=args.deferred,
            deferred_delay=args.deferred_delay,
            push_secrets=args.push_secrets or (),
            status_webhook=(
                StatusWebhook(args.status_webhook_url, args.status_webhook_secret) if args.status_webhook_url else None
            ),
        )
    except KeyboardInterrupt:
        return 130
    return 0


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS may hand it out again; fine for tests)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class RunningCRMSim:
    """Context manager running the simulator on loopback in a background thread.

    ``base_url`` (``http://127.0.0.1:PORT/``) answers once ``__enter__`` returns. ``stop()`` and
    ``start()`` may be called to simulate an outage; the port stays the same across restarts, and
    data persists because the same database file is reused.
    """

    def __init__(
        self,
        *,
        db_path: str | Path,
        api_keys: Iterable[str] = (DEFAULT_API_KEY,),
        jurisdiction_id: str | None = None,
        deferred: bool = False,
        deferred_delay: float = 0.0,
        push_secrets: Iterable[str] = (),
        port: int | None = None,
        host: str = "127.0.0.1",
        startup_timeout: float = 10.0,
    ) -> None:
        self.db_path = Path(db_path)
        self.api_keys = set(api_keys)
        self.jurisdiction_id = jurisdiction_id
        self.deferred = deferred
        self.deferred_delay = deferred_delay
        self.push_secrets = tuple(push_secrets)
        self.host = host
        self.port = port or free_port(host)
        self.startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """Root URL of the GeoReport endpoints, with trailing slash."""
        return f"http://{self.host}:{self.port}/"

    @property
    def push_url(self) -> str:
        """Where the JSON push receiver listens (needs ``push_secrets``)."""
        return f"{self.base_url}push/reports"

    @property
    def running(self) -> bool:
        """Whether the server thread is up."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> Self:
        """Start serving (a fresh app over the same db file) and wait until it answers HTTP."""
        if self.running:
            return self
        app = create_app(
            db_path=self.db_path,
            api_keys=self.api_keys,
            jurisdiction_id=self.jurisdiction_id,
            deferred=self.deferred,
            deferred_delay=self.deferred_delay,
            push_secrets=self.push_secrets,
        )
        config = uvicorn.Config(app, host=self.host, port=self.port, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name=f"crm-sim:{self.port}", daemon=True)
        self._thread.start()
        self._wait_until_ready()
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"crm-sim failed to start on {self.base_url} (port in use?)")
            if self._server is not None and self._server.started and self._answers():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"crm-sim did not answer on {self.base_url} within {self.startup_timeout}s")

    def _answers(self) -> bool:
        try:
            return httpx.get(f"{self.base_url}services.json", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        """Stop serving and wait for the thread; the port is free again afterwards."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

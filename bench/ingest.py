"""Ingest benchmark: signed `api` deliveries/s persisted-before-ack, against a ceiling and a naive floor.

    /tmp/probe-venv/bin/python bench/ingest.py [--quick] [--database sqlite|postgresql] [--duration S]

Three targets, one client (wrk + bench/signed_bodies.lua, or the built-in Python client), same
connections, same request bodies and signature headers:

* ceiling: `bench.reference_apps:bare_app`, raw ASGI, answers 200 without storing;
* floor:   `bench.reference_apps:naive_app`, FastAPI + SQLite (WAL, synchronous=FULL), one commit per request;
* kanal:   `kanal run` (gateway + workers) with a trusted `api:bench` channel and the reference CRM.

Then, on a fresh Kanal + CRM, the end-to-end run: N unique messages sent by 32 concurrent clients, timed
until all are acked and until the CRM has received all N. One JSON object goes to stdout; progress to stderr.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from adapters.signing import sign  # noqa: E402

CHANNEL = "api:bench"
PATH = f"/channels/{CHANNEL}/inbound"
SECRET = "bench-secret-0123456789abcdef"  # noqa: S105 - the benchmark channel's own key
CRM_KEY = "demo-key"
HOST = "127.0.0.1"
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
LUA = Path(__file__).resolve().parent / "signed_bodies.lua"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------- processes


class Servers:
    """Every process started here, stopped (TERM, then KILL) on exit, error or Ctrl-C."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        logfile = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
        )
        logfile.close()
        self.procs[name] = proc
        return proc

    def stop(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)  # uvicorn: graceful shutdown (runs lifespan shutdown)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def log_errors(self, name: str) -> dict[str, Any]:
        """How many tracebacks the server logged, and the distinct final lines (the exceptions)."""
        path = self.tmp / f"{name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        exceptions: dict[str, int] = {}
        for i, line in enumerate(lines):
            if line.startswith("Traceback"):
                j = i + 1
                while j < len(lines) and (lines[j].startswith(" ") or not lines[j].strip()):
                    j += 1
                if j < len(lines):
                    key = lines[j][:200]
                    exceptions[key] = exceptions.get(key, 0) + 1
        return {"tracebacks": sum(exceptions.values()), "exceptions": exceptions}

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.tmp / f"{name}.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def wait_http(url: str, servers: Servers, name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        proc = servers.procs.get(name)
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{name} exited with {proc.returncode}:\n{servers.log_tail(name)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:  # noqa: S310 - http://127.0.0.1 only
                if answer.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} not ready at {url} after {timeout:.0f} s:\n{servers.log_tail(name)}")


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310 - http://127.0.0.1 only
        return json.loads(answer.read())


def uvicorn_argv(app: str, port: int) -> list[str]:
    # Same server settings as `kanal run`: one process, default (auto) loop and http, no access log.
    return [
        sys.executable, "-m", "uvicorn", app, "--app-dir", str(REPO),
        "--host", HOST, "--port", str(port), "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KANAL_")}
    env.update(extra)
    return env


# ---------------------------------------------------------------------------------------------- databases


class Database:
    """The Kanal database of one phase: a temp SQLite file, or a fresh PostgreSQL database."""

    def __init__(self, kind: str, tmp: Path, name: str) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.url = f"sqlite:///{tmp / (name + '.sqlite3')}"
            self.pg_name = None
        else:
            import psycopg

            self.pg_name = f"kanal_bench_{os.getpid()}_{name}"
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}"')
                conn.execute(f'CREATE DATABASE "{self.pg_name}"')
            self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.pg_name}"

    def external_ids(self, like: str) -> set[str]:
        from sqlalchemy import create_engine, text

        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    text("SELECT external_id FROM inbound_message WHERE channel_id = :c AND external_id LIKE :p"),
                    {"c": CHANNEL, "p": like},
                )
                return {row[0] for row in rows}
        finally:
            engine.dispose()

    def drop(self) -> None:
        if self.pg_name is None:
            return
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.pg_name}" WITH (FORCE)')
        self.pg_name = None

    def describe(self) -> str:
        if self.kind == "sqlite":
            import sqlite3

            return f"sqlite {sqlite3.sqlite_version} (WAL, synchronous=FULL)"
        import psycopg

        with psycopg.connect(PG_ADMIN_URL) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        return f"postgresql {version}"


def write_kanal_config(folder: Path, db_url: str, crm_port: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "database_url": db_url,
        "secret_key": "bench-secret-key-" + uuid.uuid4().hex,
        "log_level": "WARNING",
        "adapters": {"disabled": ["web_form"]},
        # Every report forwarded: the end-to-end run times delivery to the CRM, not admins' review.
        "channels": {CHANNEL: {"type": "api", "trusted": True, "hold_for_review": [], "settings": {"secret": SECRET}}},
        "crm": {"base_url": f"http://{HOST}:{crm_port}/", "api_key": CRM_KEY},
        "workers": {"poll_interval_seconds": 0.2},
    }
    # JSON is YAML; no quoting surprises.
    (folder / "kanal.yaml").write_text(json.dumps(config, indent=2))


class KanalStack:
    """Reference CRM + `kanal run` over a fresh database, for one phase."""

    def __init__(self, servers: Servers, tmp: Path, db_kind: str, name: str, workers: bool = True) -> None:
        self.servers, self.name = servers, name
        self.db = Database(db_kind, tmp, name)
        try:
            self._start(tmp, workers)
        except BaseException:
            self.stop()
            raise

    def _start(self, tmp: Path, workers: bool) -> None:
        servers, name = self.servers, self.name
        self.crm_port, self.port = free_port(), free_port()
        config_dir = tmp / f"{name}-config"
        write_kanal_config(config_dir, self.db.url, self.crm_port)
        kanal = str(Path(sys.executable).with_name("kanal"))
        servers.start(
            f"{name}-crm",
            [kanal, "crm-sim", "--host", HOST, "--port", str(self.crm_port),
             "--db", str(tmp / f"{name}-crm.sqlite3"), "--api-key", CRM_KEY],
            env=clean_env(),
        )  # fmt: skip
        argv = [kanal, "run", "--host", HOST, "--port", str(self.port)]
        if not workers:
            argv.append("--no-workers")
        self.proc = servers.start(f"{name}-kanal", argv, env=clean_env(KANAL_CONFIG_DIR=str(config_dir)))
        wait_http(f"http://{HOST}:{self.crm_port}/_sim/stats", servers, f"{name}-crm")
        wait_http(f"http://{HOST}:{self.port}/healthz", servers, f"{name}-kanal")

    def crm_requests(self) -> int:
        return int(get_json(f"http://{HOST}:{self.crm_port}/_sim/stats")["requests"])

    def stop(self) -> None:
        self.servers.stop(f"{self.name}-kanal")
        self.servers.stop(f"{self.name}-crm")
        self.db.drop()


# ---------------------------------------------------------------------------------------------- bodies


def make_bodies(run: str, tag: str, count: int) -> list[tuple[str, bytes]]:
    """`count` unique signed bodies: (X-Kanal-Signature value, raw JSON body), signed now."""
    secret = SECRET.encode()
    now = int(time.time())
    out = []
    for i in range(count):
        body = json.dumps(
            {
                "external_id": f"{run}-{tag}-{i}",
                "text": f"Jalan berlubang di depan pasar, mohon segera diperbaiki (laporan {i}).",
                "location": {"address": f"Jl. Merdeka No. {i % 500 + 1}, Bandung"},
            },
            separators=(",", ":"),
        ).encode()
        out.append((sign(secret, body, now), body))
    return out


def write_wrk_files(prefix: Path, bodies: list[tuple[str, bytes]], threads: int) -> None:
    """Split `bodies` into one file per wrk thread, so no two threads ever send the same body."""
    for t in range(threads):
        with open(f"{prefix}.{t + 1}", "wb") as f:
            for sig, body in bodies[t::threads]:
                f.write(sig.encode() + b"\t" + body + b"\n")


# ---------------------------------------------------------------------------------------------- clients


def wrk_version() -> str | None:
    path = shutil.which("wrk")
    if not path:
        return None
    result = subprocess.run([path, "-v"], capture_output=True, text=True)
    match = re.search(r"wrk (\S+)", result.stdout + result.stderr)
    return f"wrk {match.group(1)}" if match else "wrk"


def run_wrk(
    port: int, bodies: list[tuple[str, bytes]], args: argparse.Namespace, tmp: Path, duration: float, label: str
) -> dict[str, Any]:
    prefix = tmp / f"wrk-{label}"
    write_wrk_files(prefix, bodies, args.threads)
    argv = [
        "wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{duration:g}s", "--timeout", "10s",
        "--latency", "-s", str(LUA), f"http://{HOST}:{port}{PATH}", "--", str(prefix),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    while True:
        try:
            out, err = proc.communicate(timeout=2)
            break
        except subprocess.TimeoutExpired:
            log(f"  {label}: {time.monotonic() - started:4.0f} / {duration:g} s")
    for t in range(args.threads):
        Path(f"{prefix}.{t + 1}").unlink(missing_ok=True)
    line = next((ln for ln in out.splitlines() if ln.startswith("BENCHJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {err}\n{out}")
    raw = json.loads(line[len("BENCHJSON ") :])
    seconds = raw["duration_us"] / 1e6
    errors = raw["errors"]
    return {
        "requests": raw["requests"],
        "seconds": round(seconds, 2),
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "latency_ms": {k: round(v / 1000, 2) for k, v in raw["latency_us"].items()},
        "non_2xx": errors["status"],
        "errors": {k: v for k, v in errors.items() if k != "status"},
        "bodies_sent": raw["sent"],
        "unique_bodies": len(bodies),
        "bodies_reused": raw["wraps"] > 0,
    }


class PyClient:
    """A small HTTP/1.1 keep-alive client on asyncio streams: pre-built request bytes, one per request."""

    @staticmethod
    def build(port: int, sig: str, body: bytes) -> bytes:
        head = (
            f"POST {PATH} HTTP/1.1\r\nHost: {HOST}:{port}\r\nContent-Type: application/json\r\n"
            f"X-Kanal-Signature: {sig}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        return head.encode() + body

    @staticmethod
    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, req: bytes) -> tuple[int, bytes]:
        writer.write(req)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if not match:
            raise RuntimeError("response without Content-Length")
        body = await reader.readexactly(int(match.group(1)))
        return status, body

    @classmethod
    async def run(
        cls,
        port: int,
        bodies: list[tuple[str, bytes]],
        connections: int,
        *,
        duration: float | None = None,
        on_ack: Any = None,
    ) -> dict[str, Any]:
        """Send `bodies` in order over `connections` connections: all of them, or for `duration` s (cycling)."""
        requests = [cls.build(port, sig, body) for sig, body in bodies]
        latencies: list[float] = []
        counts = {"non_2xx": 0, "errors": 0, "sent": 0}
        position = 0
        wraps = 0
        started = time.perf_counter()
        deadline = started + duration if duration else None

        async def one_connection() -> None:
            nonlocal position, wraps
            reader, writer = await asyncio.open_connection(HOST, port)
            try:
                while True:
                    if deadline is not None:
                        if time.perf_counter() >= deadline:
                            return
                        if position >= len(requests):
                            position, wraps = 0, wraps + 1
                    elif position >= len(requests):
                        return
                    index = position
                    position += 1
                    counts["sent"] += 1
                    t0 = time.perf_counter()
                    try:
                        status, answer = await cls.exchange(reader, writer, requests[index])
                    except (OSError, asyncio.IncompleteReadError, RuntimeError):
                        counts["errors"] += 1
                        writer.close()
                        reader, writer = await asyncio.open_connection(HOST, port)
                        continue
                    latencies.append(time.perf_counter() - t0)
                    if 200 <= status < 300:
                        if on_ack is not None:
                            on_ack(index, answer)
                    else:
                        counts["non_2xx"] += 1
            finally:
                writer.close()

        await asyncio.gather(*(one_connection() for _ in range(connections)))
        seconds = time.perf_counter() - started
        latencies.sort()

        def pct(p: float) -> float:
            if not latencies:
                return 0.0
            return round(latencies[min(len(latencies) - 1, int(len(latencies) * p / 100))] * 1000, 2)

        return {
            "requests": len(latencies),
            "seconds": round(seconds, 2),
            "requests_per_s": round(len(latencies) / seconds, 1),
            "latency_ms": {"p50": pct(50), "p90": pct(90), "p99": pct(99), "p999": pct(99.9),
                           "max": pct(100), "mean": round(sum(latencies) / max(1, len(latencies)) * 1000, 2)},
            "non_2xx": counts["non_2xx"],
            "errors": {"connection": counts["errors"]},
            "bodies_sent": counts["sent"],
            "unique_bodies": len(bodies),
            "bodies_reused": wraps > 0,
        }  # fmt: skip


def load(
    client: str, port: int, bodies: list[tuple[str, bytes]], args: argparse.Namespace, tmp: Path,
    duration: float, label: str,
) -> dict[str, Any]:  # fmt: skip
    if client == "wrk":
        return run_wrk(port, bodies, args, tmp, duration, label)
    log(f"  {label}: Python client for {duration:g} s")
    return asyncio.run(PyClient.run(port, bodies, args.connections, duration=duration))


# ---------------------------------------------------------------------------------------------- phases


def measure_target(
    name: str, port: int, client: str, args: argparse.Namespace, tmp: Path, run: str, expected_rps: float,
    unique_needed: bool,
) -> dict[str, Any]:  # fmt: skip
    """Warm up, then one measured run with fresh bodies (enough for every request to be new if `unique_needed`)."""
    warm = make_bodies(run, f"warm-{name}", max(1000, int(min(expected_rps, 20_000) * args.warmup)))
    log(f"{name}: warming up {args.warmup:g} s")
    load(client, port, warm, args, tmp, args.warmup, f"{name}-warmup")
    factor = 2.0 if unique_needed else 1.0
    count = int(expected_rps * args.duration * factor)
    count = max(count, 2000) if unique_needed else min(max(count, 2000), 100_000)
    log(f"{name}: generating {count} signed bodies")
    bodies = make_bodies(run, f"load-{name}", count)
    log(f"{name}: measuring {args.duration:g} s, {args.connections} connections")
    result = load(client, port, bodies, args, tmp, args.duration, name)
    log(
        f"{name}: {result['requests_per_s']:.0f} req/s, p50 {result['latency_ms']['p50']} ms, "
        f"p99 {result['latency_ms']['p99']} ms, non-2xx {result['non_2xx']}"
    )
    return result


def phase_references(servers: Servers, client: str, args: argparse.Namespace, tmp: Path, run: str) -> dict[str, Any]:
    out = {}
    port = free_port()
    servers.start("ceiling", uvicorn_argv("bench.reference_apps:bare_app", port), env=clean_env())
    wait_http(f"http://{HOST}:{port}/healthz", servers, "ceiling")
    out["ceiling_bare_asgi"] = measure_target("ceiling", port, client, args, tmp, run, 40_000, False)
    servers.stop("ceiling")

    port = free_port()
    naive_db = tmp / "naive.sqlite3"
    servers.start(
        "floor", uvicorn_argv("bench.reference_apps:naive_app", port), env=clean_env(BENCH_NAIVE_DB=str(naive_db))
    )
    wait_http(f"http://{HOST}:{port}/healthz", servers, "floor")
    out["floor_naive_fastapi_sqlite"] = measure_target("floor", port, client, args, tmp, run, 8_000, False)
    servers.stop("floor")
    import sqlite3

    with contextlib.closing(sqlite3.connect(naive_db)) as conn:
        out["floor_naive_fastapi_sqlite"]["rows_stored"] = conn.execute("SELECT COUNT(*) FROM delivery").fetchone()[0]
    return out


def phase_kanal_load(
    servers: Servers, client: str, args: argparse.Namespace, tmp: Path, run: str, expected_rps: float
) -> dict[str, Any]:
    log(f"kanal: starting CRM simulator + kanal run ({args.database}, workers {'off' if args.no_workers else 'on'})")
    stack = KanalStack(servers, tmp, args.database, "load", workers=not args.no_workers)
    profiler = None
    if args.profile:
        # py-spy samples the Kanal process during warm-up + measurement; collapsed stacks ("raw").
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        profiler = subprocess.Popen(
            [spy, "record", "--pid", str(stack.proc.pid), "--format", "raw", "--rate", "200",
             "--output", args.profile, "--nonblocking", "--threads",
             "--gil" if args.profile_gil else "--idle"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        result = measure_target("kanal", stack.port, client, args, tmp, run, expected_rps, True)
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            profiler.wait(timeout=30)
            profiler = None
            log(f"kanal: profile written to {args.profile} (collapsed stacks)")
        stored = stack.db.external_ids(f"{run}-load-kanal-%")
        acked = result["requests"] - result["non_2xx"]
        # Every measured body is unique (unless bodies_reused), so each 2xx is one distinct acked message.
        # Requests still in flight when the client stopped are stored but not counted as acked, so
        # stored >= acked must hold; acked - stored > 0 would mean acknowledged messages were lost.
        result["db_rows_for_measured_bodies"] = len(stored)
        result["acked_unique"] = acked if not result["bodies_reused"] else None
        result["acked_but_missing"] = max(0, acked - len(stored)) if not result["bodies_reused"] else None
        result["stored_but_unacked_in_flight_at_stop"] = max(0, len(stored) - acked)
        result["workers_running"] = not args.no_workers
        result["kanal_log_errors"] = servers.log_errors("load-kanal")
        return result
    finally:
        if profiler is not None and profiler.poll() is None:
            profiler.kill()
        stack.stop()


def phase_e2e(servers: Servers, args: argparse.Namespace, tmp: Path, run: str) -> dict[str, Any]:
    n = args.e2e_messages
    log(f"e2e: fresh CRM simulator + kanal run ({args.database}); {n} messages, {args.connections} concurrent")
    stack = KanalStack(servers, tmp, args.database, "e2e")
    try:
        bodies = make_bodies(run, "e2e", n)
        acked: set[int] = set()
        duplicates = 0
        done_acking: dict[str, float] = {}

        def on_ack(index: int, answer: bytes) -> None:
            nonlocal duplicates
            acked.add(index)
            if b'"duplicate":true' in answer.replace(b" ", b""):
                duplicates += 1

        async def main() -> dict[str, Any]:
            started = time.perf_counter()

            async def send_all() -> dict[str, Any]:
                result = await PyClient.run(stack.port, bodies, args.connections, on_ack=on_ack)
                done_acking["t"] = time.perf_counter() - started
                return result

            sender = asyncio.create_task(send_all())
            crm = 0
            last_log = 0.0
            deadline = started + args.e2e_timeout
            progress_at, progress_value = started, (-1, -1)
            gave_up = None
            while True:
                await asyncio.sleep(0.25)
                crm = await asyncio.to_thread(stack.crm_requests)
                now = time.perf_counter()
                if now - last_log >= 2 or crm >= n:
                    log(f"  e2e: {now - started:5.1f} s  acked {len(acked)}/{n}  at CRM {crm}/{n}")
                    last_log = now
                if crm >= n and sender.done():
                    break
                if (len(acked), crm) != progress_value:
                    progress_at, progress_value = now, (len(acked), crm)
                elif now - progress_at > args.e2e_stall:
                    gave_up = f"no progress for {args.e2e_stall:g} s (acked {len(acked)}, at CRM {crm})"
                elif now > deadline:
                    gave_up = f"timeout after {args.e2e_timeout:g} s (acked {len(acked)}, at CRM {crm})"
                if gave_up:
                    log(f"  e2e: giving up: {gave_up}; see e2e.kanal_log_errors")
                    break
            to_crm = time.perf_counter() - started if crm >= n else None
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender
                client_result = {"latency_ms": None, "non_2xx": None, "errors": None}
            else:
                client_result = await sender
            return {"client": client_result, "to_crm": to_crm, "crm": crm, "gave_up": gave_up}

        outcome = asyncio.run(main())
        stored = stack.db.external_ids(f"{run}-e2e-%")
        acked_ids = {f"{run}-e2e-{i}" for i in acked}
        ack_s = done_acking.get("t")
        client_result = outcome["client"]
        return {
            "messages": n,
            "client": "python asyncio (bench/ingest.py PyClient)",
            "connections": args.connections,
            "acked": len(acked),
            "acked_duplicates": duplicates,
            "acked_but_missing": len(acked_ids - stored),
            "seconds_until_all_acked": round(ack_s, 2) if ack_s else None,
            "acked_per_s": round(len(acked) / ack_s, 1) if ack_s else None,
            "ack_latency_ms": client_result["latency_ms"],
            "non_2xx": client_result["non_2xx"],
            "errors": client_result["errors"],
            "seconds_until_all_at_crm": round(outcome["to_crm"], 2) if outcome["to_crm"] else None,
            "messages_per_s_to_crm": round(n / outcome["to_crm"], 1) if outcome["to_crm"] else None,
            "crm_requests_seen": outcome["crm"],
            "gave_up": outcome["gave_up"],
            "kanal_log_errors": servers.log_errors("e2e-kanal"),
        }
    finally:
        stack.stop()


# ---------------------------------------------------------------------------------------------- main


def kanal_revision() -> dict[str, Any]:
    """The commit measured, and how many files differed from it (read-only git commands)."""

    def git(*argv: str) -> str:
        result = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True)
        return result.stdout.strip() if result.returncode == 0 else ""

    dirty = [line for line in git("status", "--porcelain", "--untracked-files=no").splitlines() if line]
    return {"commit": git("rev-parse", "--short", "HEAD") or None, "modified_files": len(dirty)}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite", help="Kanal's database")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per target (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per target (default 2)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    p.add_argument("--e2e-messages", type=int, default=10_000)
    p.add_argument("--e2e-timeout", type=float, default=900.0, help="give up waiting for the CRM after this")
    p.add_argument("--e2e-stall", type=float, default=60.0,
                   help="give up the e2e run when neither acks nor the CRM count moved for this long")  # fmt: skip
    p.add_argument("--client", choices=["auto", "wrk", "python"], default="auto",
                   help="load client for the three targets (auto: wrk if installed)")  # fmt: skip
    p.add_argument("--skip", action="append", default=[], choices=["references", "load", "e2e"])
    p.add_argument("--no-workers", action="store_true",
                   help="diagnostic: Kanal load run without the normalizer/dispatcher workers")  # fmt: skip
    p.add_argument("--profile", metavar="FILE", help="py-spy record Kanal during its load run (collapsed stacks)")
    p.add_argument("--profile-gil", action="store_true",
                   help="with --profile: sample only the thread holding the GIL (py-spy --gil)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="smoke run: 3 s per target, 1 s warm-up, 1,000 e2e messages")
    args = p.parse_args(argv)
    if args.quick:
        args.duration, args.warmup, args.e2e_messages, args.e2e_stall = 3.0, 1.0, 1000, 20.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    version = wrk_version()
    client = args.client
    if client == "auto":
        client = "wrk" if version else "python"
        if not version:
            log("wrk not found (install: apt-get update && apt-get install -y wrk); using the Python client")
    elif client == "wrk" and not version:
        print("bench: wrk is not installed; apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2

    tmp = Path(tempfile.mkdtemp(prefix="kanal-bench-"))
    servers = Servers(tmp)
    run = uuid.uuid4().hex[:8]
    previous_term = signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    report: dict[str, Any] = {
        "benchmark": "kanal ingest: signed api deliveries persisted before ack",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": {
            "nproc": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
            "tmp_filesystem": subprocess.run(
                ["stat", "-f", "-c", "%T", str(tmp)], capture_output=True, text=True
            ).stdout.strip(),
        },
        "kanal_revision": kanal_revision(),
        "database": None,
        "load_client": {
            "name": version if client == "wrk" else "python asyncio (bench/ingest.py PyClient)",
            "connections": args.connections,
            "threads": args.threads if client == "wrk" else 1,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
        },
        "targets": {},
    }
    try:
        if "references" not in args.skip:
            report["targets"].update(phase_references(servers, client, args, tmp, run))
        floor = report["targets"].get("floor_naive_fastapi_sqlite", {}).get("requests_per_s", 6000.0)
        probe = Database(args.database, tmp, "probe")
        report["database"] = probe.describe()
        probe.drop()
        if "load" not in args.skip:
            kanal = phase_kanal_load(servers, client, args, tmp, run, max(floor, 6000.0))
            report["targets"]["kanal"] = kanal
            ceiling = report["targets"].get("ceiling_bare_asgi")
            floor_t = report["targets"].get("floor_naive_fastapi_sqlite")
            rps, p99 = kanal["requests_per_s"], kanal["latency_ms"]["p99"]
            report["kanal_ratio_to_ceiling"] = round(rps / ceiling["requests_per_s"], 3) if ceiling else None
            report["kanal_ratio_to_floor"] = round(rps / floor_t["requests_per_s"], 3) if floor_t else None
            report["target"] = {
                "at_or_above_floor": (rps >= floor_t["requests_per_s"]) if floor_t else None,
                "p99_ack_under_25ms": p99 < 25.0,
                "acked_but_missing_is_zero": kanal["acked_but_missing"] == 0,
            }
        if "e2e" not in args.skip:
            report["e2e"] = phase_e2e(servers, args, tmp, run)
    except KeyboardInterrupt:
        log("interrupted; stopping servers")
        report["interrupted"] = True
        return_code = 130
    except Exception as exc:
        log(f"failed: {exc}")
        report["error"] = str(exc)
        return_code = 1
    else:
        return_code = 0
    finally:
        report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        servers.stop_all()
        signal.signal(signal.SIGTERM, previous_term)
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(report, indent=2))
    return return_code


if __name__ == "__main__":
    sys.exit(main())

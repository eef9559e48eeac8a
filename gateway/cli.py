"""`kanal`: run the gateway, the reference CRM, the demo, and the operator's chores."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence

from gateway.settings import ConfigError, KanalSettings, load_settings


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["crm-sim"]:
        # The reference CRM has its own flags; hand them over untouched.
        from crm_sim.server import main as crm_sim_main

        return crm_sim_main(args_list[1:])
    parser = _parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except ConfigError as exc:
        print(f"kanal: configuration error:\n{exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kanal", description="Channel-integration gateway for city complaint systems."
    )
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

    run = sub.add_parser("run", help="serve the web routes and run the workers in one process")
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=8080)
    run.add_argument("--no-workers", action="store_true", help="web only; another process runs the workers")
    run.set_defaults(handler=_run)

    worker = sub.add_parser("worker", help="run the normalizer and CRM dispatcher only (PostgreSQL deployments)")
    worker.set_defaults(handler=_worker)

    sub.add_parser("crm-sim", help="serve the reference Open311 CRM (see `kanal crm-sim --help`)")

    demo = sub.add_parser("demo", help="reference CRM + gateway + a demo admin + sample complaints")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--crm-port", type=int, default=8070)
    demo.set_defaults(handler=_demo)

    db = sub.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(metavar="ACTION")
    upgrade = db_sub.add_parser("upgrade", help="apply pending migrations")
    upgrade.set_defaults(handler=_db_upgrade)

    admin = sub.add_parser("admin", help="admin accounts")
    admin_sub = admin.add_subparsers(metavar="ACTION")
    create = admin_sub.add_parser("create", help="create an admin account")
    create.add_argument("--username", required=True)
    create.add_argument("--role", choices=["superadmin", "reviewer", "viewer"], default="reviewer")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(handler=_admin_create)

    normalize = sub.add_parser(
        "normalize",
        help="show what Kanal makes of a message: place, category, agency, masking, completeness, reasons",
    )
    source = normalize.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="one message")
    source.add_argument(
        "--file",
        help="one message per line (plain text, or JSON with 'text' and optional 'lat'/'lng'); "
        "prints one JSON result per line; '-' reads standard input",
    )
    normalize.add_argument("--lat", type=float, help="latitude sent with --text")
    normalize.add_argument("--lng", type=float, help="longitude sent with --text")
    normalize.add_argument("--json", action="store_true", help="machine-readable output for --text")
    normalize.set_defaults(handler=_normalize)

    adapters = sub.add_parser("adapters", help="installed channel types")
    adapters_sub = adapters.add_subparsers(metavar="ACTION")
    listing = adapters_sub.add_parser("list", help="list channel types and the channels using them")
    listing.set_defaults(handler=_adapters_list)
    new = adapters_sub.add_parser(
        "new", help="create kanal-adapter-NAME/: an adapter package with tests that pass as generated"
    )
    new.add_argument("name", help="the new channel type: lowercase letters, digits, underscores")
    new.add_argument("--dir", default=".", help="where to create the package folder (default: here)")
    new.set_defaults(handler=_adapters_new)

    outbox = sub.add_parser("outbox", help="reports on their way to the CRM")
    outbox_sub = outbox.add_subparsers(metavar="ACTION")
    olist = outbox_sub.add_parser("list", help="list outbox items (dead ones by default)")
    olist.add_argument("--state", choices=["pending", "sent", "dead"], default="dead")
    olist.add_argument("--limit", type=int, default=50)
    olist.set_defaults(handler=_outbox_list)
    retry = outbox_sub.add_parser("retry", help="send dead items again")
    retry.add_argument("ids", nargs="*", help="outbox item ids (see `kanal outbox list`)")
    retry.add_argument("--all", action="store_true", help="every dead item")
    retry.set_defaults(handler=_outbox_retry)
    return parser


def _settings() -> KanalSettings:
    settings = load_settings()
    from gateway.logging_setup import configure

    configure(settings.log_level)
    return settings


def _run(args: argparse.Namespace) -> int:
    import uvicorn

    from gateway.app import create_app

    settings = _settings()
    if args.no_workers:
        settings = settings.model_copy(update={"workers": settings.workers.model_copy(update={"enabled": False})})
    app = create_app(settings)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,
    )
    return 0


def _worker(_args: argparse.Namespace) -> int:
    import asyncio

    from gateway.worker_process import run_workers

    settings = _settings()
    if settings.database_url.startswith("sqlite"):
        print(
            "kanal: `kanal worker` shares the database with other processes; that needs PostgreSQL. "
            "On SQLite, `kanal run` already runs the workers.",
            file=sys.stderr,
        )
        return 2
    asyncio.run(run_workers(settings))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from gateway.demo import run_demo

    return run_demo(port=args.port, crm_port=args.crm_port)


def _engine():  # type: ignore[no-untyped-def]
    from gateway import migrate
    from gateway.db import make_engine

    engine = make_engine(_settings().database_url)
    migrate.upgrade(engine)
    return engine


def _db_upgrade(_args: argparse.Namespace) -> int:
    _engine()
    print("kanal: database schema is up to date")
    return 0


def _admin_create(args: argparse.Namespace) -> int:
    from review_queue.auth import AccountError, create_admin
    from review_queue.tables import AdminRole

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass(f"password for {args.username}: ")
        if getpass.getpass("again: ") != password:
            print("kanal: the two passwords differ; nothing created", file=sys.stderr)
            return 1
    try:
        admin = create_admin(_engine(), username=args.username, password=password, role=AdminRole(args.role))
    except AccountError as exc:
        print(f"kanal: {exc}; nothing created", file=sys.stderr)
        return 1
    print(f"kanal: created {admin.role} {admin.username!r}; get a token with POST /api/v1/auth/token")
    return 0


def _normalize(args: argparse.Namespace) -> int:
    from gateway.normalize_cli import normalize_file, normalize_text

    if args.file:
        return normalize_file(args.file)
    return normalize_text(args.text, lat=args.lat, lng=args.lng, as_json=args.json)


def _adapters_list(_args: argparse.Namespace) -> int:
    from gateway.plugins import adapter_types, get_plugin_manager

    settings = _settings()
    manager = get_plugin_manager(disabled=settings.adapters.disabled)
    types = adapter_types(manager, disabled=settings.adapters.disabled)
    for kind, cls in sorted(types.items()):
        used_by = [cid for cid, ch in settings.channels.items() if ch.type == kind and ch.enabled]
        print(f"{kind:<12} {cls.__module__:<28} {cls.description}")
        print(f"{'':<12} channels: {', '.join(used_by) or '(none configured)'}")
    for kind in settings.adapters.disabled:
        print(f"{kind:<12} (disabled in config)")
    return 0


def _adapters_new(args: argparse.Namespace) -> int:
    from pathlib import Path

    from gateway.scaffold import ScaffoldError, create_package

    try:
        target = create_package(args.name, Path(args.dir))
    except ScaffoldError as exc:
        print(f"kanal: {exc}", file=sys.stderr)
        return 2
    print(f"kanal: created {target}")
    print(f"  cd {target}")
    print("  pip install -e '.[test]'   # into the environment where Kanal is installed")
    print("  pytest                    # Kanal's contract suite, green from the start")
    print(f"then make kanal_adapter_{args.name}/adapter.py speak your platform's wire format")
    return 0


def _outbox_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select
    from sqlmodel import col

    from crm_client.tables import OutboxItem
    from gateway.db import read_session

    with read_session(_engine()) as session:
        items = session.execute(
            select(OutboxItem)
            .where(col(OutboxItem.state) == args.state)
            .order_by(col(OutboxItem.created_at))
            .limit(args.limit)
        ).scalars()
        count = 0
        for item in items:
            count += 1
            print(
                json.dumps(
                    {
                        "id": item.id,
                        "report_id": item.report_id,
                        "state": item.state,
                        "attempts": item.attempts,
                        "next_attempt_at": item.next_attempt_at.isoformat(),
                        "last_status_code": item.last_status_code,
                        "last_error": item.last_error,
                    },
                    ensure_ascii=False,
                )
            )
    print(f"kanal: {count} {args.state} item(s)", file=sys.stderr)
    return 0


def _outbox_retry(args: argparse.Namespace) -> int:
    from crm_client.outbox import retry_dead

    if not args.ids and not args.all:
        print("kanal: name the items to retry (ids from `kanal outbox list`) or pass --all", file=sys.stderr)
        return 2
    count = retry_dead(_engine(), item_ids=args.ids or None, actor=f"cli:{getpass.getuser()}")
    print(f"kanal: {count} dead item(s) queued again; a running `kanal run` sends them within seconds")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

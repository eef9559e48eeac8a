"""`kanal`: run the gateway, the reference CRM, the demo, and the operator's chores."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from gateway.settings import ChannelConfig, ConfigError, KanalSettings, load_settings

if TYPE_CHECKING:
    from adapters.contract import Adapter
    from gateway.channel_health import ChannelHealth


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
    create = admin_sub.add_parser(
        "create",
        help="create an admin account",
        description="Roles and scopes are explained in docs/admin.md. A reviewer or viewer given no scope sees "
        "every report; a non-superadmin sees only the reports matching their channels AND their wilayah.",
    )
    create.add_argument("username", nargs="?", metavar="USERNAME")
    create.add_argument("--username", dest="username_option", metavar="USERNAME", help="the same as USERNAME")
    create.add_argument(
        "--role",
        choices=["superadmin", "reviewer", "viewer", "channel_admin", "wilayah_admin"],
        default="reviewer",
    )
    create.add_argument(
        "--scope-channel",
        action="append",
        metavar="ID",
        help="a channel id (twitter:dkijakarta), a channel type (twitter:*) or * (every channel); repeatable",
    )
    create.add_argument(
        "--scope-wilayah",
        action="append",
        metavar="CODE",
        help="a kota (31.71), kecamatan (31.71.01) or kelurahan (31.71.01.1001) code; repeatable",
    )
    create.add_argument("--language", choices=["id", "en"], default="id", help="the admin pages' language")
    create.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    create.set_defaults(handler=_admin_create)
    from gateway.admin_cli import add_commands as add_admin_commands

    add_admin_commands(admin_sub, _engine)

    feed = sub.add_parser("feed", help="the unified feed a CRM pulls (GET /api/v1/feed)")
    feed_consumer = feed.add_subparsers(metavar="WHAT").add_parser("consumer", help="systems that read the feed")
    feed_create = feed_consumer.add_subparsers(metavar="ACTION").add_parser(
        "create", help="create a consumer and print its key (shown once, stored hashed)"
    )
    feed_create.add_argument("--name", required=True, help="who reads with this key, e.g. crm-jakarta")
    feed_create.set_defaults(handler=_feed_consumer_create)

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
    listing = adapters_sub.add_parser(
        "list", help="list channel types, their channels and each channel's health (last message, error, backlog)"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of text")
    listing.set_defaults(handler=_adapters_list)
    new = adapters_sub.add_parser(
        "new", help="create kanal-adapter-NAME/: an adapter package with tests that pass as generated"
    )
    new.add_argument("name", help="the new channel type: lowercase letters, digits, underscores")
    new.add_argument("--dir", default=".", help="where to create the package folder (default: here)")
    new.set_defaults(handler=_adapters_new)

    sla = sub.add_parser("sla", help="service levels: which reports are overdue")
    sla_sub = sla.add_subparsers(metavar="ACTION")
    sla_report = sla_sub.add_parser("report", help="overdue reports by agency, oldest first, times in WIB")
    sla_report.add_argument("--json", action="store_true", help="one JSON object per agency group")
    sla_report.add_argument(
        "--sweep", action="store_true", help="bring the SLA columns up to date first (what the workers do each minute)"
    )
    sla_report.set_defaults(handler=_sla_report)

    outbox = sub.add_parser("outbox", help="reports on their way to the CRM")
    outbox_sub = outbox.add_subparsers(metavar="ACTION")
    olist = outbox_sub.add_parser("list", help="list outbox items (dead ones by default) with the CRM's last answer")
    olist.add_argument("--state", choices=["pending", "resolving", "sent", "dead", "dropped"], default="dead")
    olist.add_argument("--limit", type=int, default=50)
    olist.set_defaults(handler=_outbox_list)
    retry = outbox_sub.add_parser("retry", help="send dead items again, built afresh under the current config")
    retry.add_argument("ids", nargs="*", help="outbox item ids (see `kanal outbox list`)")
    retry.add_argument("--all", action="store_true", help="every dead item")
    retry.set_defaults(handler=_outbox_retry)
    odrop = outbox_sub.add_parser("drop", help="give up on dead (or pending) items; the reason goes in the history")
    odrop.add_argument("ids", nargs="+", help="outbox item ids (see `kanal outbox list`)")
    odrop.add_argument("--reason", required=True, help="why, for the report's history")
    odrop.set_defaults(handler=_outbox_drop)
    resume = outbox_sub.add_parser("resume", help="send again after the CRM refused our credentials (fix them first)")
    resume.set_defaults(handler=_outbox_resume)
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
    from review_queue.accounts import scope_of, validate_account
    from review_queue.auth import AccountError, create_admin
    from review_queue.tables import AdminRole

    username = args.username or args.username_option
    if not username or (args.username and args.username_option and args.username != args.username_option):
        print("kanal: give the username once: kanal admin create USERNAME [--role ROLE]", file=sys.stderr)
        return 2
    scope = {"scope_channels": args.scope_channel, "scope_wilayah": args.scope_wilayah}
    try:
        # Checked before asking for the password, so a typo in a wilayah code costs no retyping.
        validate_account(role=args.role, language=args.language, **scope)
    except AccountError as exc:
        print(f"kanal: {exc}; nothing created", file=sys.stderr)
        return 1
    from gateway.admin_cli import read_new_password

    password = read_new_password(username, from_stdin=args.password_stdin)
    if password is None:
        return 1
    try:
        admin = create_admin(
            _engine(), username=username, password=password, role=AdminRole(args.role), language=args.language, **scope
        )
    except AccountError as exc:
        print(f"kanal: {exc}; nothing created", file=sys.stderr)
        return 1
    print(
        f"kanal: created {admin.role} {admin.username!r} (sees: {scope_of(admin).describe('en')}); "
        "sign in at /admin/login, or get an API token with POST /api/v1/auth/token"
    )
    return 0


def _feed_consumer_create(args: argparse.Namespace) -> int:
    from review_queue.feed import ConsumerError, create_consumer

    try:
        key, consumer = create_consumer(_engine(), name=args.name)
    except ConsumerError as exc:
        print(f"kanal: {exc}; nothing created", file=sys.stderr)
        return 1
    # The key alone on stdout, so a script can capture it; it cannot be shown again (only its hash is kept).
    print(key)
    print(
        f"kanal: created feed consumer {consumer.name!r}; keep the key above, it is not shown again. "
        "Read with `Authorization: Bearer <key>` on GET /api/v1/feed",
        file=sys.stderr,
    )
    return 0


def _normalize(args: argparse.Namespace) -> int:
    from gateway.normalize_cli import normalize_file, normalize_text

    if args.file:
        return normalize_file(args.file)
    return normalize_text(args.text, lat=args.lat, lng=args.lng, as_json=args.json)


def _adapters_list(args: argparse.Namespace) -> int:
    from gateway.channel_health import channel_health
    from gateway.db import database_exists, make_engine
    from gateway.plugins import adapter_types, build_channels, get_plugin_manager

    settings = _settings()
    manager = get_plugin_manager(disabled=settings.adapters.disabled)
    types = adapter_types(manager, disabled=settings.adapters.disabled)
    built = build_channels(settings, manager)
    instances = {cid: ch.config for cid, ch in built.items()}
    # Read from the instance: a type may pull or be pushed to depending on its settings (Telegram's mode).
    pull_ids = [cid for cid, ch in built.items() if ch.adapter.pulls]
    health: dict[str, ChannelHealth] = {}
    problem = None
    if not database_exists(settings.database_url):
        problem = "no database yet: health appears once `kanal run` (or `kanal db upgrade`) has created it"
    else:
        try:
            health = channel_health(make_engine(settings.database_url), instances, pull_ids)
        except Exception as exc:  # unreachable or not migrated: the types are still worth listing
            first_line = str(exc).splitlines()[0][:160] if str(exc) else ""
            problem = (
                f"health unavailable ({type(exc).__name__}: {first_line}); "
                "check database_url, and run `kanal db upgrade` if the schema is old"
            )
    if args.json:
        print(json.dumps(_adapters_json(types, instances, pull_ids, health), indent=2, default=str))
        return 0
    for kind, cls in sorted(types.items()):
        print(f"{kind:<12} {cls.__module__:<28} {cls.description}")
        used_by = sorted(cid for cid, ch in instances.items() if ch.type == kind)
        if not used_by:
            print(f"{'':<12} channels: (none configured)")
        for cid in used_by:
            print(f"{'':<12} {cid}: {_describe_health(health.get(cid), pulls=cid in pull_ids)}")
    for kind in settings.adapters.disabled:
        print(f"{kind:<12} (disabled in config)")
    if problem:
        print(problem, file=sys.stderr)
    return 0


def _describe_health(health: ChannelHealth | None, *, pulls: bool) -> str:
    mode = "pull" if pulls else "push"
    if health is None:
        return f"{mode}; health not known yet (see the note on stderr)"
    success = health.last_success_at.isoformat(timespec="seconds") if health.last_success_at else "never"
    parts = [mode, f"last message {success}"]
    if health.last_error:
        at = health.last_error_at.isoformat(timespec="seconds") if health.last_error_at else "?"
        parts.append(f"last error {at}: {health.last_error[:120]}")
    parts.append(
        f"backlog {health.backlog} (messages {health.waiting_messages}, media {health.waiting_media}, "
        f"replies {health.waiting_replies})"
    )
    return "; ".join(parts)


def _adapters_json(
    types: dict[str, type[Adapter]],  # type: ignore[type-arg]
    instances: dict[str, ChannelConfig],
    pull_ids: list[str],
    health: dict[str, ChannelHealth],
) -> list[dict[str, object]]:
    listing: list[dict[str, object]] = []
    for kind, cls in sorted(types.items()):
        channels: list[dict[str, object]] = []
        for cid in sorted(c for c, ch in instances.items() if ch.type == kind):
            entry: dict[str, object] = {"id": cid, "mode": "pull" if cid in pull_ids else "push"}
            if cid in health:
                h = health[cid]
                entry.update(
                    last_success_at=h.last_success_at,
                    last_error=h.last_error,
                    last_error_at=h.last_error_at,
                    backlog=h.backlog,
                    waiting_messages=h.waiting_messages,
                    waiting_media=h.waiting_media,
                    waiting_replies=h.waiting_replies,
                    consecutive_failures=h.consecutive_failures,
                )
            channels.append(entry)
        listing.append({"type": kind, "module": cls.__module__, "description": cls.description, "channels": channels})
    return listing


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
    from crm_client.api import list_items

    items = list_items(_engine(), state=args.state, limit=args.limit)
    for item in items:
        last = item.last_attempt
        row = {
            "id": item.id,
            "ticket_code": item.ticket_code,
            "state": item.state,
            "attempts": item.attempts,
            "next_attempt_at": item.next_attempt_at.isoformat(),
            "last_status_code": item.last_status_code,
            "last_error": item.last_error,
            # What the CRM itself said (its error array), secrets redacted: often the fix is spelled out there.
            "crm_answer": last.answer if last else None,
        }
        print(json.dumps(row, ensure_ascii=False))
    print(f"kanal: {len(items)} {args.state} item(s)", file=sys.stderr)
    return 0


def _outbox_retry(args: argparse.Namespace) -> int:
    from crm_client.outbox import retry_dead

    if not args.ids and not args.all:
        print("kanal: name the items to retry (ids from `kanal outbox list`) or pass --all", file=sys.stderr)
        return 2
    settings = _settings()
    count = retry_dead(_engine(), item_ids=args.ids or None, actor=f"cli:{getpass.getuser()}", crm=settings.crm)
    print(f"kanal: {count} dead item(s) queued again; a running `kanal run` sends them within seconds")
    return 0


def _outbox_drop(args: argparse.Namespace) -> int:
    from crm_client.outbox import OutboxActionError, drop

    try:
        count = drop(_engine(), item_ids=args.ids, actor=f"cli:{getpass.getuser()}", reason=args.reason)
    except OutboxActionError as exc:
        print(f"kanal: {exc}; nothing dropped", file=sys.stderr)
        return 1
    print(f"kanal: {count} item(s) dropped; the reason is in each report's history")
    return 0


def _outbox_resume(_args: argparse.Namespace) -> int:
    from crm_client import pause

    if pause.resume(_engine()):
        print("kanal: sending to the CRM resumed; a running `kanal run` picks up within seconds")
    else:
        print("kanal: sending was not paused")
    return 0


def _sla_report(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import OperationalError

    from gateway.db import make_engine, utcnow
    from review_queue import sla
    from review_queue.workdays import HolidayFileError, load_calendar

    settings = _settings()
    now = utcnow()
    try:
        calendar = load_calendar(settings.sla.holidays_file)
    except HolidayFileError as exc:
        print(f"kanal: {exc}\nkanal: fix the holiday file (or sla.holidays_file in config/sla.yaml)", file=sys.stderr)
        return 2
    try:
        engine = _engine() if args.sweep else make_engine(settings.database_url)
        if args.sweep:
            channels = settings.channels
            sla.sweep(engine, settings.sla, channels=channels, now=now, calendar=calendar)
        grouped = sla.overdue_reports(engine, now=now, calendar=calendar)
    except OperationalError as exc:
        reason = str(exc.orig or exc).strip().splitlines()[0]
        print(
            f"kanal: cannot read the database ({reason}).\n"
            "kanal: check that it is running and that database_url (config/kanal.yaml or KANAL_DATABASE_URL) "
            "points at it; `kanal db upgrade` creates a missing schema",
            file=sys.stderr,
        )
        return 1
    if args.json:
        for agency, rows in grouped.items():
            print(json.dumps({"agency": agency, "reports": [r.as_json() for r in rows]}, ensure_ascii=False))
    else:
        print(sla.format_overdue(grouped, now=now))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

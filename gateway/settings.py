"""Kanal's settings: `config/*.yaml` merged in name order, then `KANAL_*` environment variables.

Strings may say `${NAME}` or `${NAME:-default}` to take a value from the environment, so secrets stay
out of the files. Any error stops start-up with one line naming the file (or variable), the key and
what was expected.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from normalizer.taxonomy import Taxonomy, check_references

REPO_CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
ENV_PREFIX = "KANAL_"
#: Keys whose values are never echoed in error messages.
_SECRET_WORDS = ("secret", "key", "password", "token")
_INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(?::-([^}]*))?\}")


class ConfigError(Exception):
    """The configuration cannot be used; the message names where and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


HoldReason = Literal["duplicate", "incomplete"]
HOLD_REASONS: tuple[HoldReason, ...] = ("duplicate", "incomplete")


class ChannelConfig(_Strict):
    """One channel instance: which adapter serves it and that adapter's own settings."""

    type: str = Field(min_length=1)
    enabled: bool = True
    #: Trusted channels (the city's own app) skip admin review and go straight to the CRM...
    #: Unset: the channel type decides (JAKI is trusted by default; news and social media never are).
    trusted: bool | None = None
    #: ...except reports that look like a duplicate ("duplicate") or lack a place at kelurahan level or a
    #: concrete problem ("incomplete"). An empty list forwards every report of a trusted channel.
    hold_for_review: list[HoldReason] = Field(default_factory=lambda: list(HOLD_REASONS))
    #: Tell the citizen "received, your ticket is ..." on this channel when a report is made (the
    #: `received` notification template). Unset: the channel type decides (`Adapter.acknowledge_receipt`).
    acknowledge_receipt: bool | None = None
    #: Channels that carry this channel's messages to the citizen when it has no way back itself (the web
    #: form, a walk-in desk): e.g. [email:dki, sms:dki], tried in order, the first that can reach them wins.
    reply_via: list[str] = Field(default_factory=list)
    #: Open311 service code used for this channel's reports until the normalizer routes them.
    service_code: str | None = None
    #: Pull channels only: seconds between polls (the scheduler adds a little jitter)...
    poll_interval_seconds: float = Field(default=60.0, gt=0)
    #: ...and the longest wait between attempts while the platform keeps failing (exponential back-off).
    poll_backoff_cap_seconds: float = Field(default=900.0, gt=0)
    settings: dict[str, Any] = Field(default_factory=dict)


class AdaptersConfig(_Strict):
    #: Channel types switched off: their routes and jobs do not exist.
    disabled: list[str] = Field(default_factory=list)


class CRMConfig(_Strict):
    """Where approved reports go: an Open311 GeoReport v2 endpoint, or a signed JSON push."""

    #: open311: POST requests.json (GeoReport v2). json_push: the report as signed JSON to `push_url`.
    kind: Literal["open311", "json_push"] = "open311"
    base_url: str = "http://127.0.0.1:8070/"
    api_key: SecretStr = SecretStr("demo-key")
    jurisdiction_id: str | None = None
    #: Kanal category code (config/taxonomy.yaml) -> the CRM's service_code; unmapped ones get the default.
    service_map: dict[str, str] = Field(default_factory=dict)
    default_service_code: str = "lainnya"
    #: service_code -> {attribute code: value} for the attributes a service definition asks for. A value
    #: `report.<field>` takes that field of the report (ticket_code, category_code, agency_code, agency_unit,
    #: kota_code, kecamatan_code, kelurahan_code); anything else is sent as written.
    attribute_defaults: dict[str, dict[str, str]] = Field(default_factory=dict)
    #: How long the discovered services.json and service definitions are trusted before being read again.
    services_refresh_seconds: float = Field(default=3600.0, gt=0)
    #: json_push only: where the JSON goes, and the shared secret its X-Kanal-Signature is made with.
    push_url: str | None = None
    push_secret: SecretStr | None = None
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_cap_seconds: float = Field(default=900.0, gt=0)
    #: Send the reporter's name, phone and email as Open311 requester fields. Off by default: Kanal
    #: talks to the citizen itself, and personal data goes onward only where a deployment needs it.
    send_reporter_contact: bool = False

    @model_validator(mode="after")
    def _push_needs_url_and_secret(self) -> CRMConfig:
        if self.kind == "json_push":
            if not self.push_url:
                raise ValueError("crm.kind is json_push: set crm.push_url (where the signed JSON is posted)")
            if self.push_secret is None or len(self.push_secret.get_secret_value()) < 16:
                raise ValueError("crm.kind is json_push: set crm.push_secret to a shared secret of 16+ characters")
        return self


class FeedConfig(_Strict):
    """The unified feed a CRM can pull (`GET /api/v1/feed`)."""

    #: Entries per page when the consumer names no `limit`.
    default_page_size: int = Field(default=100, ge=1, le=1000)
    #: The most entries one page returns, whatever `limit` asks (at most 1000): bounds one request's cost.
    max_page_size: int = Field(default=1000, ge=1, le=1000)


class SLAConfig(_Strict):
    """How long each step may take before a report is overdue (docs/sla.md; defaults in config/sla.yaml)."""

    class Limit(_Strict):
        """One stage's time limit, counted from the stage's start, and the warning colours before it."""

        within: int = Field(ge=0)
        #: `working_days`: Jakarta working days, the deadline at the end (24:00 WIB) of the last one;
        #: `days`: calendar days of 24 hours from the stage's start.
        unit: Literal["working_days", "days"] = "working_days"
        #: Yellow, then red ("almost late", as the CRM colours it) this long after the start, same unit.
        yellow_after: int | None = Field(default=None, ge=0)
        red_after: int | None = Field(default=None, ge=0)

        @model_validator(mode="after")
        def _ordered(self) -> SLAConfig.Limit:
            steps = [v for v in (self.yellow_after, self.red_after) if v is not None]
            if steps != sorted(steps) or any(v > self.within for v in steps):
                raise ValueError("expected yellow_after <= red_after <= within")
            return self

    class Match(_Strict):
        """What a rule applies to; every list given must contain the report's value, empty lists match all."""

        channel_types: list[str] = Field(default_factory=list)
        channel_ids: list[str] = Field(default_factory=list)
        categories: list[str] = Field(default_factory=list)

    class Rule(_Strict):
        """Limits for the reports a `match` selects; a stage it leaves out falls to the next rule."""

        name: str = Field(min_length=1)
        match: SLAConfig.Match = Field(default_factory=lambda: SLAConfig.Match())
        review: SLAConfig.Limit | None = None
        follow_up: SLAConfig.Limit | None = None
        citizen_answer: SLAConfig.Limit | None = None

    enabled: bool = True
    #: Seconds between sweeps, and the most reports one sweep transaction touches.
    sweep_interval_seconds: float = Field(default=60.0, gt=0)
    sweep_batch: int = Field(default=500, ge=1)
    #: Public holidays and cuti bersama; None: the shipped review_queue/data/hari_libur.yaml.
    holidays_file: Path | None = None
    #: Review: from receipt until an admin approves or rejects.
    review: Limit = Field(default_factory=lambda: SLAConfig.Limit(within=1, unit="working_days"))
    #: Follow-up: from approval until the CRM moves the report (in progress, resolved); also while it is
    #: stuck on the way there (crm_failed), which must not hang silently either.
    follow_up: Limit = Field(default_factory=lambda: SLAConfig.Limit(within=7, unit="days", red_after=6))
    #: Citizen answer: from an admin's "ask for info" until the citizen answers (`needs_info`). Past it the
    #: report is overdue, first in the queue: an admin decides with what there is.
    citizen_answer: Limit = Field(default_factory=lambda: SLAConfig.Limit(within=5, unit="working_days", red_after=4))
    #: Rules tried in order before the defaults above; per stage, the first matching rule with that stage wins.
    #: The default list (also in config/sla.yaml) holds LAPOR!'s national limits.
    rules: list[Rule] = Field(
        default_factory=lambda: [
            SLAConfig.Rule(
                name="lapor",
                match=SLAConfig.Match(channel_types=["lapor"]),
                review=SLAConfig.Limit(within=3, unit="working_days"),
                follow_up=SLAConfig.Limit(within=5, unit="working_days", red_after=4),
            )
        ]
    )
    #: Admin roles told about an overdue report (an `admin_notification` row each), each only about the
    #: reports their scope covers.
    notify_roles: list[str] = Field(default_factory=lambda: ["superadmin", "reviewer"])


class StatusSyncConfig(_Strict):
    """Following forwarded reports in the CRM: polled in batches, and pushed by the CRM's webhook."""

    #: Ask the CRM about forwarded reports this often (GET requests.json?service_request_id=a,b,...).
    poll_interval_seconds: float = Field(default=300.0, gt=0)
    #: Reports per request; the oldest-checked first, so every open report is asked about in turn.
    batch_size: int = Field(default=50, ge=1, le=500)
    #: Secret the CRM signs status webhooks with (X-Kanal-Signature, as the `api` channel); empty: webhook off.
    webhook_secret: SecretStr = SecretStr("")


class NotificationsConfig(_Strict):
    """What the citizen is told when the CRM moves their report, and how hard Kanal tries to tell them."""

    #: Language of the messages: "id" (Bahasa Indonesia) or "en".
    language: Literal["id", "en"] = "id"
    #: language -> report state ("in_progress", "resolved", ...) or occasion ("received", "needs_info",
    #: "merged") -> template. Placeholders: {ticket}, {primary} (the report it was merged into), {agency},
    #: {note} (the agency's own words), {status_url}. A state without a template is not told.
    templates: dict[str, dict[str, str]] = Field(default_factory=dict)
    poll_interval_seconds: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: float = Field(default=30.0, gt=0)
    backoff_cap_seconds: float = Field(default=3600.0, gt=0)
    #: How long a process holds a message it is sending before another may try it.
    send_lease_seconds: float = Field(default=300.0, gt=0)


class MediaConfig(_Strict):
    """Photos referenced by a message are downloaded after it is stored, never before (docs/media.md)."""

    enabled: bool = True
    #: Larger files are not downloaded; the attachment is marked unavailable and the message goes on.
    max_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    poll_interval_seconds: float = Field(default=2.0, gt=0)
    #: Files fetched per round.
    batch: int = Field(default=10, ge=1)
    #: After this many failed attempts (the platform down) the attachment is marked unavailable.
    max_attempts: int = Field(default=8, ge=1)
    backoff_base_seconds: float = Field(default=5.0, gt=0)
    backoff_cap_seconds: float = Field(default=900.0, gt=0)


class WorkersConfig(_Strict):
    """The background loops `kanal run` starts beside the web server."""

    enabled: bool = True
    normalize_batch: int = Field(default=200, ge=1)
    dispatch_batch: int = Field(default=50, ge=1)
    poll_interval_seconds: float = Field(default=0.5, gt=0)
    #: How long a claimed row stays claimed if its worker dies mid-flight.
    lease_seconds: float = Field(default=60.0, gt=0)


class IngestConfig(_Strict):
    #: Most deliveries committed in one transaction (group commit).
    max_batch: int = Field(default=256, ge=1)


class AuthConfig(_Strict):
    """Admin sign-in: API bearer tokens, and the admin pages' sessions and lock-out (docs/admin.md)."""

    token_ttl_hours: float = Field(default=12.0, gt=0)
    #: A page session ends after this long without a request...
    session_idle_minutes: float = Field(default=60.0, gt=0)
    #: ...and this long after sign-in however active it is.
    session_lifetime_hours: float = Field(default=12.0, gt=0)
    #: The session cookie's Secure flag; "auto": set when public_base_url is https.
    cookie_secure: Literal["auto"] | bool = "auto"
    #: After this many failed sign-ins to one account within the window, the account is locked...
    login_max_failures: int = Field(default=5, ge=1)
    login_failure_window_minutes: float = Field(default=15.0, gt=0)
    #: ...for this long (the same message as a wrong password is shown meanwhile).
    lockout_minutes: float = Field(default=15.0, gt=0)
    #: Failed sign-ins from one address within the window before it must wait (counted per process).
    login_ip_max_failures: int = Field(default=30, ge=1)


class StatusPageConfig(_Strict):
    """The public status page's limit per client address, against guessing ticket codes (docs/audit.md).

    Each address has a bucket of `burst` look-ups that refills at `per_minute`; a found report costs
    one, an unknown or malformed code `miss_cost`, so a guesser runs dry faster than a citizen. Kept
    in each process's memory, like the web form's limit: several processes each allow this much.
    """

    enabled: bool = True
    burst: int = Field(default=20, ge=1)
    per_minute: float = Field(default=10.0, gt=0)
    miss_cost: float = Field(default=3.0, ge=1)
    #: Addresses remembered at once; beyond, the longest-idle is forgotten (which only lets it in early).
    max_clients: int = Field(default=10_000, ge=100)


class KanalSettings(_Strict):
    """The whole configuration of one deployment."""

    database_url: str = "sqlite:///./var/kanal.sqlite3"
    public_base_url: str = "http://127.0.0.1:8080"
    secret_key: SecretStr = SecretStr("")
    log_level: str = "INFO"
    #: Reverse proxies whose X-Forwarded-For names the real client (comma-separated IPs, or "*").
    #: Per-client limits, such as the web form's, count the address this yields.
    forwarded_allow_ips: str = "127.0.0.1"
    adapters: AdaptersConfig = Field(default_factory=AdaptersConfig)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    crm: CRMConfig = Field(default_factory=CRMConfig)
    workers: WorkersConfig = Field(default_factory=WorkersConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    auth: AuthConfig = Field(default_factory=AuthConfig)
    feed: FeedConfig = Field(default_factory=FeedConfig)
    sla: SLAConfig = Field(default_factory=SLAConfig)
    status_sync: StatusSyncConfig = Field(default_factory=StatusSyncConfig)
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    media: MediaConfig = Field(default_factory=MediaConfig)
    status_page: StatusPageConfig = Field(default_factory=StatusPageConfig)
    #: Categories, agencies, units and phrase rules for routing (config/taxonomy.yaml); None: the shipped one.
    taxonomy: Taxonomy | None = None
    #: Top-level key -> the file or variable that set it, so later checks can name it in errors.
    origins: dict[str, str] = Field(default_factory=dict, exclude=True, repr=False)


def load_settings(
    config_dir: Path | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> KanalSettings:
    """Read, interpolate, merge and validate the configuration; raise `ConfigError` on any problem."""
    env = dict(os.environ if environ is None else environ)
    directory = config_dir or Path(env.get("KANAL_CONFIG_DIR") or _default_config_dir())
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}  # top-level key -> where it was last set, for error messages
    referenced: set[str] = set()  # variables the files name in ${...}: values for them, not overrides
    for path in sorted(directory.glob("*.yaml")):
        data = _read_yaml(path)
        _interpolate(data, env, str(path), (), referenced)
        for key, value in data.items():
            merged[key] = _deep_merge(merged.get(key), value)
            origin[key] = str(path)
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == "KANAL_CONFIG_DIR" or name.startswith("KANAL_TEST"):
            continue
        if name in referenced:
            continue
        keys = name[len(ENV_PREFIX) :].lower().split("__")
        _set_path(merged, keys, value)
        origin[keys[0]] = f"environment variable {name}"
    for key, value in (overrides or {}).items():
        merged[key] = _deep_merge(merged.get(key), value)
        origin[key] = "overrides"
    try:
        settings = KanalSettings.model_validate({**merged, "origins": origin})
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, origin)) from None
    if settings.taxonomy is not None and (problems := check_references(settings.taxonomy)):
        where = origin.get("taxonomy", "configuration")
        raise ConfigError("\n".join(f"{where}: {key}: {message}" for key, message in problems))
    return settings


def describe_validation_error(
    exc: ValidationError, origin: Mapping[str, str], *, prefix: str = "", source: str | None = None
) -> str:
    """One line per problem: `<file>: <dotted key>: <what was expected> (got <value>)`.

    `origin` maps top-level keys to the file that set them; `source`, when given, is used for all.
    Values of secret-looking keys are never echoed.
    """
    lines = []
    for err in exc.errors():
        location = [str(p) for p in err["loc"]]
        where = source or (origin.get(location[0], "configuration") if location else "configuration")
        key = ".".join([p for p in [prefix] if p] + location) or "(top level)"
        got = err.get("input")
        secret = any(word in part for part in key.split(".") for word in _SECRET_WORDS)
        shown = "" if secret or isinstance(got, dict | list) or got is None else f" (got {got!r})"
        lines.append(f"{where}: {key}: {err['msg']}{shown}")
    return "\n".join(lines)


def _default_config_dir() -> Path:
    local = Path.cwd() / "config"
    return local if local.is_dir() else REPO_CONFIG_DIR


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings at the top level, got {type(data).__name__}")
    return data


def _interpolate(node: Any, env: Mapping[str, str], source: str, path: tuple[str, ...], used: set[str]) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _interpolate(value, env, source, (*path, str(key)), used)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            node[index] = _interpolate(value, env, source, (*path, str(index)), used)
    elif isinstance(node, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            used.add(name)
            if name in env:
                return env[name]
            if default is not None:
                return default
            raise ConfigError(
                f"{source}: {'.'.join(path)}: environment variable {name} is not set "
                f"(set it, or write ${{{name}:-default}} in the file)"
            )

        return _INTERPOLATION.sub(substitute, node)
    return node


def _deep_merge(base: Any, update: Any) -> Any:
    if isinstance(base, dict) and isinstance(update, dict):
        result = dict(base)
        for key, value in update.items():
            result[key] = _deep_merge(result.get(key), value)
        return result
    return update


def _set_path(target: dict[str, Any], keys: list[str], value: str) -> None:
    for key in keys[:-1]:
        child = target.get(key)
        if not isinstance(child, dict):
            child = target[key] = {}
        target = child
    target[keys[-1]] = value

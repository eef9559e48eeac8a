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
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

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
    trusted: bool = False
    #: ...except reports that look like a duplicate ("duplicate") or lack a place at kelurahan level or a
    #: concrete problem ("incomplete"). An empty list forwards every report of a trusted channel.
    hold_for_review: list[HoldReason] = Field(default_factory=lambda: list(HOLD_REASONS))
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
    """Where approved reports go: an Open311 GeoReport v2 endpoint."""

    base_url: str = "http://127.0.0.1:8070/"
    api_key: SecretStr = SecretStr("demo-key")
    jurisdiction_id: str | None = None
    default_service_code: str = "lainnya"
    timeout_seconds: float = Field(default=10.0, gt=0)
    max_attempts: int = Field(default=10, ge=1)
    backoff_base_seconds: float = Field(default=2.0, gt=0)
    backoff_cap_seconds: float = Field(default=900.0, gt=0)
    #: Send the reporter's name, phone and email as Open311 requester fields. Off by default: Kanal
    #: talks to the citizen itself, and personal data goes onward only where a deployment needs it.
    send_reporter_contact: bool = False


class FeedConfig(_Strict):
    """The unified feed a CRM can pull (`GET /api/v1/feed`)."""


class SLAConfig(_Strict):
    """How long each step may take before a report is overdue."""


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
    token_ttl_hours: float = Field(default=12.0, gt=0)


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
    for path in sorted(directory.glob("*.yaml")):
        data = _read_yaml(path)
        _interpolate(data, env, str(path), ())
        for key, value in data.items():
            merged[key] = _deep_merge(merged.get(key), value)
            origin[key] = str(path)
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name == "KANAL_CONFIG_DIR" or name.startswith("KANAL_TEST"):
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


def _interpolate(node: Any, env: Mapping[str, str], source: str, path: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        for key, value in node.items():
            node[key] = _interpolate(value, env, source, (*path, str(key)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            node[index] = _interpolate(value, env, source, (*path, str(index)))
    elif isinstance(node, str):

        def substitute(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
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

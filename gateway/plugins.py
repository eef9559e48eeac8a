"""The plugin manager and the channel registry built from it.

Built-in adapters are ordinary plugins: registered by module name like a third-party package found
through the `kanal` entry-point group. A disabled channel type is blocked before anything loads.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import pluggy
from pydantic import ValidationError

from adapters.contract import Adapter, AdapterContext, TicketLookup, TicketStatus
from gateway import hookspecs
from gateway.settings import ChannelConfig, ConfigError, KanalSettings, describe_validation_error

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "kanal"
#: Entry-point name -> module, for the adapters that ship with Kanal.
BUILTIN_PLUGINS = {
    name: f"adapters.{name}"
    for name in (
        "api",
        "web_form",
        "twitter",
        "telegram",
        "whatsapp",
        "facebook",
        "instagram",
        "email",
        "sms",
        "jaki",
        "lapor",
        "news",
        "walk_in",
    )
}


def get_plugin_manager(*, disabled: Iterable[str] = ()) -> pluggy.PluginManager:
    """A fresh manager with the hookspecs, the built-ins and the installed plugins, minus `disabled`."""
    manager = pluggy.PluginManager("kanal")
    manager.add_hookspecs(hookspecs)
    for name in disabled:
        manager.set_blocked(name)
    for name, module in BUILTIN_PLUGINS.items():
        if not manager.is_blocked(name):
            manager.register(importlib.import_module(module), name=name)
    manager.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    manager.check_pending()
    return manager


def adapter_types(manager: pluggy.PluginManager, *, disabled: Iterable[str] = ()) -> dict[str, type[Adapter]]:  # type: ignore[type-arg]
    """Channel type -> adapter class, from every plugin; two plugins claiming one type is an error."""
    off = set(disabled)
    found: dict[str, type[Adapter]] = {}  # type: ignore[type-arg]
    owner: dict[str, str] = {}
    for impl in manager.hook.kanal_register_adapters.get_hookimpls():
        # pluggy types a hook implementation's result as `object`; the hookspec fixes it to this list.
        for cls in cast("list[type[Adapter]]", impl.function()):
            kind = cls.channel_type
            if kind in off:
                continue
            if kind in found and found[kind] is not cls:
                raise ConfigError(
                    f"channel type {kind!r} is provided by both plugin {owner[kind]!r} and {impl.plugin_name!r}; "
                    f"disable one with adapters.disabled in config"
                )
            found[kind] = cls
            owner[kind] = impl.plugin_name
    return found


@dataclass(frozen=True)
class Channel:
    """A configured, enabled channel instance and its adapter."""

    id: str
    config: ChannelConfig
    adapter: Adapter  # type: ignore[type-arg]


def build_channels(
    settings: KanalSettings, manager: pluggy.PluginManager, *, lookup_ticket: TicketLookup | None = None
) -> dict[str, Channel]:
    """Instantiate every enabled channel; errors name the channel key and what its adapter expected."""
    types = adapter_types(manager, disabled=settings.adapters.disabled)
    channels: dict[str, Channel] = {}
    for channel_id, config in settings.channels.items():
        if not config.enabled or config.type in settings.adapters.disabled:
            continue
        cls = types.get(config.type)
        if cls is None:
            known = ", ".join(sorted(types)) or "none"
            raise ConfigError(
                f"channels.{channel_id}.type: no adapter for channel type {config.type!r} "
                f"(installed and enabled: {known}); install its plugin or fix the type"
            )
        try:
            adapter_settings = cls.settings_model.model_validate(config.settings)
        except ValidationError as exc:
            raise ConfigError(
                describe_validation_error(
                    exc,
                    {},
                    prefix=f"channels.{channel_id}.settings",
                    source=settings.origins.get("channels", "configuration"),
                )
            ) from None
        context = AdapterContext(
            channel_id=channel_id,
            instance_secret=derive_secret(settings, f"channel:{channel_id}"),
            public_base_url=settings.public_base_url,
            lookup_ticket=lookup_ticket or _no_lookup,
        )
        resolved = resolve_channel_defaults(channel_id, config, cls)
        channels[channel_id] = Channel(channel_id, resolved, cls(settings=adapter_settings, context=context))
    for channel_id, channel in channels.items():
        missing = [via for via in channel.config.reply_via if via not in channels or via == channel_id]
        if missing:
            raise ConfigError(
                f"channels.{channel_id}.reply_via: {', '.join(missing)} is not another enabled channel; "
                f"name channels configured in `channels:` (enabled: {', '.join(sorted(channels))})"
            )
    return channels


async def _no_lookup(code: str) -> TicketStatus | None:
    return None


def resolve_channel_defaults(channel_id: str, config: ChannelConfig, cls: type[Adapter]) -> ChannelConfig:  # type: ignore[type-arg]
    """The channel's config with what it left unset taken from its type; `trusted` checked against the type."""
    if config.trusted and not cls.may_be_trusted:
        raise ConfigError(
            f"channels.{channel_id}.trusted: channel type {cls.channel_type!r} cannot be trusted (anyone can post "
            f"on it); remove `trusted: true` so its reports are reviewed"
        )
    return config.model_copy(
        update={
            "trusted": cls.trusted_by_default if config.trusted is None else config.trusted,
            "acknowledge_receipt": (
                cls.acknowledge_receipt if config.acknowledge_receipt is None else config.acknowledge_receipt
            ),
        }
    )


def derive_secret(settings: KanalSettings, purpose: str) -> bytes:
    """A key for one purpose, derived from the deployment's secret_key so one leak does not unlock all."""
    return hmac.new(settings.secret_key.get_secret_value().encode(), purpose.encode(), hashlib.sha256).digest()


async def close_adapters(channels: dict[str, Channel]) -> None:
    """Let every adapter release its connections; one that fails to close does not stop the others."""
    for channel in channels.values():
        try:
            await channel.adapter.aclose()
        except Exception:
            log.warning("channel %s: adapter did not close cleanly", channel.id, exc_info=True)

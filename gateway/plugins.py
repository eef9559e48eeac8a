"""The plugin manager and the channel registry built from it.

Built-in adapters are ordinary plugins: registered by module name like a third-party package found
through the `kanal` entry-point group. A disabled channel type is blocked before anything loads.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import cast

import pluggy
from pydantic import ValidationError

from adapters.contract import Adapter, AdapterContext
from gateway import hookspecs
from gateway.settings import ChannelConfig, ConfigError, KanalSettings, describe_validation_error

ENTRY_POINT_GROUP = "kanal"
#: Entry-point name -> module, for the adapters that ship with Kanal.
BUILTIN_PLUGINS = {"api": "adapters.api", "web_form": "adapters.web_form"}


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


def build_channels(settings: KanalSettings, manager: pluggy.PluginManager) -> dict[str, Channel]:
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
        )
        channels[channel_id] = Channel(channel_id, config, cls(settings=adapter_settings, context=context))
    return channels


def derive_secret(settings: KanalSettings, purpose: str) -> bytes:
    """A key for one purpose, derived from the deployment's secret_key so one leak does not unlock all."""
    return hmac.new(settings.secret_key.get_secret_value().encode(), purpose.encode(), hashlib.sha256).digest()

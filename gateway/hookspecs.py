"""The hooks a Kanal plugin may implement. Implementations are marked with `adapters.hookimpl`."""

from __future__ import annotations

import pluggy

from adapters.contract import Adapter

hookspec = pluggy.HookspecMarker("kanal")


@hookspec
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    """Return the adapter classes this plugin provides, one per channel type.

    Each class sets a unique `channel_type`; two plugins claiming the same type stop Kanal at start
    with both plugin names in the message.

    :returns: a list of `adapters.contract.Adapter` subclasses.
    """
    raise NotImplementedError

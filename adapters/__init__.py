"""Channel adapters: one module per channel type, each an ordinary Kanal plugin."""

import pluggy

#: Mark a function as an implementation of a Kanal hook (see `gateway.hookspecs`).
hookimpl = pluggy.HookimplMarker("kanal")

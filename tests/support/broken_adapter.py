"""A deliberately buggy adapter: shows that an adapter's own bug never becomes a 500 for the sender."""

from __future__ import annotations

from typing import ClassVar

from adapters import hookimpl
from adapters.contract import Adapter, AdapterResponse, ChannelSettings, InboundMessage, RawRequest


class BrokenAdapter(Adapter[ChannelSettings]):
    channel_type: ClassVar[str] = "broken"

    def verify(self, request: RawRequest) -> None:
        if request.header("x-break") == "verify":
            raise ValueError("bug in verify")

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        if request.header("x-break") == "parse":
            raise KeyError("bug in parse")
        return [InboundMessage(external_id="ok-1", text=request.body.decode())]

    def answer_get(self, request: RawRequest) -> AdapterResponse:
        raise RuntimeError("bug in answer_get")


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [BrokenAdapter]

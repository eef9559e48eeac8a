"""A push channel for tests whose deliveries are InboundMessage JSON as-is, `assembly` included.

It lets the assembler be tested without any platform's wire format: the body is one message object.
"""

from __future__ import annotations

from typing import ClassVar

from adapters import hookimpl
from adapters.contract import Adapter, ChannelSettings, InboundMessage, OutboundReply, RawRequest

#: Every reply any instance was asked to send, in order (tests clear it).
SENT: list[tuple[str, OutboundReply]] = []


class PartsAdapter(Adapter[ChannelSettings]):
    channel_type: ClassVar[str] = "test_parts"
    acknowledge_receipt: ClassVar[bool] = True

    def verify(self, request: RawRequest) -> None:
        """Unauthenticated: a test-only channel."""

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        return [InboundMessage.model_validate_json(request.body)]

    async def send(self, reply: OutboundReply) -> str:
        SENT.append((self.channel_id, reply))
        return f"sent-{len(SENT)}"


class PublicPartsAdapter(PartsAdapter):
    """The same, as a channel anyone may post on: it can never be trusted."""

    channel_type: ClassVar[str] = "test_public_parts"
    may_be_trusted: ClassVar[bool] = False


class AppPartsAdapter(PartsAdapter):
    """The same, as the city's own app: trusted unless its configuration says otherwise."""

    channel_type: ClassVar[str] = "test_app_parts"
    trusted_by_default: ClassVar[bool] = True


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [PartsAdapter, PublicPartsAdapter, AppPartsAdapter]

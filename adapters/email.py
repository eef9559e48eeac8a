"""`email`: a mailbox (dki@jakarta.go.id) read over IMAP on the scheduler, answered over SMTP.

Pulled, never pushed: each poll reads the mails after the cursor (see `adapters.email_imap`), turns each
into a message (`adapters.email_parsing.parse_mail`: subject and text, sender, thread, photos as
references), leaves out auto-replies, bounces and list mail, and hands mails that cannot be read to
quarantine once. Photos stay in the mailbox until the media worker asks `download_media` for them.
Replies go out over SMTP in the citizen's thread (`adapters.email_smtp`). IMAP IDLE is not used: a poll
a minute is as timely as the complaint process needs, and polling alone survives restarts and outages.
"""

from __future__ import annotations

import asyncio
import logging
from typing import ClassVar

from adapters import hookimpl
from adapters.contract import (
    Adapter,
    ChannelSettings,
    FetchResult,
    InboundMessage,
    MediaContent,
    MediaRef,
    OutboundReply,
    RawRequest,
)
from adapters.email_imap import download_part, original_headers, poll
from adapters.email_parsing import PartAddress, is_real_message_id, normalize_message_id
from adapters.email_settings import EmailSettings
from adapters.email_smtp import compose_reply, message_id_of, send
from adapters.errors import MediaUnavailable, PayloadRejected

log = logging.getLogger(__name__)


class EmailAdapter(Adapter[EmailSettings]):
    channel_type: ClassVar[str] = "email"
    settings_model: ClassVar[type[ChannelSettings]] = EmailSettings
    description: ClassVar[str] = "E-mail mailbox read over IMAP (polled); replies over SMTP in the citizen's thread"
    pulls = True
    acknowledge_receipt: ClassVar[bool] = True

    def verify(self, request: RawRequest) -> None:
        """Nothing is pushed to a mailbox channel; `parse` refuses whatever arrives on its route."""

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        raise PayloadRejected(
            "this channel reads a mailbox over IMAP and accepts no deliveries; send the mail to the mailbox",
            status_code=405,
        )

    async def fetch(self, cursor: str | None) -> FetchResult:
        return await asyncio.to_thread(poll, self.settings, cursor)

    async def send(self, reply: OutboundReply) -> str:
        """Mail the reply to the citizen in their thread; the new mail's Message-ID is the platform id."""
        if self.settings.smtp_host is None:
            raise NotImplementedError(f"channel {self.channel_id} has no smtp_host: set one to answer citizens by mail")
        subject, references = await self._original(reply.in_reply_to)
        message = compose_reply(self.settings, reply, original_subject=subject, original_references=references)
        await asyncio.to_thread(send, self.settings, message)
        return message_id_of(message)

    async def _original(self, in_reply_to: str | None) -> tuple[str | None, list[str]]:
        """The citizen's subject and References, read from the mailbox; best effort, a reply goes out anyway."""
        parent = normalize_message_id(in_reply_to) if is_real_message_id(in_reply_to) else None
        if parent is None:
            return None, []
        try:
            return await asyncio.to_thread(original_headers, self.settings, parent)
        except Exception as exc:  # only the subject and threading are at stake: the reply goes out anyway
            log.warning(
                "email %s: the mail replied to was not looked up (%s); replying without its subject",
                self.channel_id,
                exc,
            )
            return None, []

    async def download_media(self, ref: MediaRef, *, max_bytes: int) -> MediaContent:
        """A photo's bytes, read from its mail in the mailbox (the part the ref names), at most `max_bytes`."""
        address = PartAddress.from_url(ref.url)
        if address is None:
            raise MediaUnavailable(f"not downloaded: {ref.url[:100]!r} is not a part of this channel's mailbox")
        if ref.size is not None and ref.size > max_bytes:
            raise MediaUnavailable(f"too large: {ref.size} bytes, limit {max_bytes}")
        return await asyncio.to_thread(
            download_part,
            self.settings,
            address,
            message_id=ref.platform_id,
            expected_size=ref.size,
            content_type=ref.content_type or "application/octet-stream",
            max_bytes=max_bytes,
        )


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [EmailAdapter]

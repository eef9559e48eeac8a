"""`facebook`: a Facebook Page's visitor posts and comments (Page `feed` webhooks) and its Messenger chats.

Meta POSTs `{"object": "page", "entry": [{"id": <page id>, "time", "changes": [{"field": "feed",
"value": {...}}], "messaging": [...]}]}`, signed with X-Hub-Signature-256 (see `adapters.meta`).
A new visitor post or comment (`verb: add`) is a message, its post or comment id the external id; a
Messenger message is one too, its `mid` the external id, and a burst of them from one person is one
complaint. Edits, removals, hides, reactions, likes, receipts, echoes and everything the page itself
writes are ignored.

Replies go back where the citizen wrote, chosen by the `thread_id` parse gave the message:
`messenger:<PSID>` -> the Send API `POST /{page-id}/messages`; any other thread is the Graph id of what
to comment under (the visitor's post, or the top-level comment of the citizen's comment thread) ->
`POST /{id}/comments`.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from adapters import hookimpl
from adapters.contract import (
    Adapter,
    AdapterResponse,
    ChannelSettings,
    InboundMessage,
    MediaContent,
    MediaRef,
    OutboundReply,
    RawRequest,
    Sender,
)
from adapters.errors import ChannelUnavailable
from adapters.media_download import download
from adapters.meta import MEDIA_HOSTS, MetaSettings, answer_challenge, verify_signature
from adapters.meta_messaging import (
    Batch,
    Malformed,
    Skip,
    allowed_hosts,
    build_message,
    chat_message,
    dig,
    entry_changes,
    epoch,
    graph_id,
    is_meta_media,
    media_ref,
    messaging_events,
    own_entries,
    path_id,
    post_text,
    short,
    text_of,
    within_window,
)

#: The thread prefix of Messenger chats: `messenger:<PSID>`.
MESSENGER_THREAD = "messenger:"
#: Feed items a visitor writes: posts of every kind, and comments.
STORED_FEED_ITEMS = frozenset({"status", "post", "photo", "video", "share", "comment"})
#: Meta's limits: a Messenger text, and a comment.
MESSENGER_MAX_CHARS = 2000
COMMENT_MAX_CHARS = 8000


class FacebookSettings(MetaSettings):
    #: The Page's numeric id; deliveries for any other page are ignored.
    page_id: str = Field(pattern=r"^[0-9]{1,40}$")
    #: More than 24 hours after the citizen's last Messenger message, Meta accepts only tagged messages.
    #: True: a status update of the citizen's report goes out with the ACCOUNT_UPDATE tag (an update on
    #: something the person applied for); other texts are refused. False: nothing is sent after 24 hours.
    tag_status_updates: bool = True


class FacebookAdapter(Adapter[FacebookSettings]):
    channel_type: ClassVar[str] = "facebook"
    settings_model: ClassVar[type[ChannelSettings]] = FacebookSettings
    description: ClassVar[str] = "Facebook Page: visitor posts and comments (feed webhooks) and Messenger chats"
    media_hosts: ClassVar[frozenset[str]] = MEDIA_HOSTS
    may_be_trusted: ClassVar[bool] = False
    acknowledge_receipt: ClassVar[bool] = True

    def verify(self, request: RawRequest) -> None:
        verify_signature(request, self.settings.app_secret)

    def answer_get(self, request: RawRequest) -> AdapterResponse:
        return answer_challenge(request, self.settings.verify_token)

    # ------------------------------------------------------------------------------------------ parse

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        page = self.settings.page_id
        batch = Batch()
        entries = own_entries(request, batch, expected_object="page", label="Facebook Page", own_id=page, what="page")
        for entry in entries:
            for change in entry_changes(entry, batch):
                batch.add(self._feed_message, change, entry.get("time"))
            for event in messaging_events(entry):
                batch.add(chat_message, event, own_id=page, thread_prefix=MESSENGER_THREAD, assembly_prefix="facebook:")
        return batch.result()

    def _feed_message(self, change: Any, entry_time: Any) -> InboundMessage:
        if not isinstance(change, dict):
            raise Malformed("a change is not an object")
        field = change.get("field")
        if field != "feed":
            raise Skip(f"page field {str(field)[:40]!r} is not stored")
        value = change.get("value")
        if not isinstance(value, dict):
            raise Malformed("a feed change without a value object")
        item, verb = value.get("item"), value.get("verb")
        if not isinstance(item, str) or item not in STORED_FEED_ITEMS:
            raise Skip(f"feed {str(item)[:40]} (reactions, likes and the like are not complaints)")
        if verb != "add":
            raise Skip(f"feed {item} {str(verb)[:20]}: edits, removals and hides are not new complaints")
        author_id = graph_id(dig(value, "from", "id"))
        if author_id == self.settings.page_id:
            raise Skip("the page's own post or reply")
        external_id, thread_id = _feed_ids(item, value)
        text, media = _feed_content(item, value)
        if not text.strip() and not media:
            raise Skip(f"feed {item} with neither text nor photo")
        name = short(dig(value, "from", "name"))
        return build_message(
            external_id=external_id,
            text=text,
            sender=Sender(id=author_id, name=name) if author_id or name else None,
            media=media[:20],
            sent_at=epoch(value.get("created_time")) or epoch(entry_time),
            thread_id=thread_id,
        )

    # ------------------------------------------------------------------------------------------ replies

    async def send(self, reply: OutboundReply) -> str:
        thread = reply.thread_id or ""
        if thread.startswith(MESSENGER_THREAD):
            return await self._send_messenger(reply, thread.removeprefix(MESSENGER_THREAD) or reply.recipient.id)
        target = path_id(thread or reply.in_reply_to, "post or comment id")
        return await post_text(
            self.settings,
            f"{target}/comments",
            reply.text,
            lambda part: {"message": part},
            channel_id=self.channel_id,
            max_chars=COMMENT_MAX_CHARS,
        )

    async def _send_messenger(self, reply: OutboundReply, psid: str | None) -> str:
        recipient = path_id(psid, "Messenger recipient (PSID)")
        kind = self._messaging_type(reply)
        return await post_text(
            self.settings,
            f"{self.settings.page_id}/messages",
            reply.text,
            lambda part: {"recipient": {"id": recipient}, **kind, "message": {"text": part}},
            channel_id=self.channel_id,
            max_chars=MESSENGER_MAX_CHARS,
        )

    def _messaging_type(self, reply: OutboundReply) -> dict[str, str]:
        """RESPONSE inside the 24-hour window; after it, only a report's status update, tagged."""
        if within_window(reply.last_inbound_at):
            return {"messaging_type": "RESPONSE"}
        if reply.status is not None and self.settings.tag_status_updates:
            return {"messaging_type": "MESSAGE_TAG", "tag": "ACCOUNT_UPDATE"}
        why = (
            "and this is not a status update of their report (the only message Meta's ACCOUNT_UPDATE tag allows)"
            if self.settings.tag_status_updates
            else "and this channel sends no tagged messages (tag_status_updates: false)"
        )
        raise ChannelUnavailable(
            f"not sent: the citizen last wrote on Messenger more than 24 hours ago (or never), {why}; "
            "answer under their post or by another channel",
            retryable=False,
        )

    # -------------------------------------------------------------------------------------------- media

    def allowed_media_hosts(self) -> frozenset[str]:
        return allowed_hosts(self.settings)

    async def download_media(self, ref: MediaRef, *, max_bytes: int) -> MediaContent:
        """Attachment URLs are signed CDN links: fetched as they are, and the token never goes along."""
        return await download(ref.url, allowed_hosts=self.allowed_media_hosts(), max_bytes=max_bytes)


def _feed_ids(item: str, value: dict[str, Any]) -> tuple[str, str]:
    """The external id and thread of a feed item.

    A comment's thread is its top-level comment, not the post: under one of the page's own posts,
    many citizens comment about different problems, and one thread per post would make each of them a
    follow-up of the first. A reply under a citizen's comment joins that comment's thread.
    """
    post_id = graph_id(value.get("post_id"))
    if item == "comment":
        comment_id = graph_id(value.get("comment_id"))
        if comment_id is None:
            raise Malformed("a feed comment without comment_id")
        parent_id = graph_id(value.get("parent_id"))
        return comment_id, parent_id if parent_id and parent_id != post_id else comment_id
    if post_id is None:
        raise Malformed(f"a feed {item} without post_id")
    # Several photos or videos of one post may come one event each: each keeps its own id.
    part = graph_id(value.get("photo_id")) or graph_id(value.get("video_id"))
    return (f"{post_id}:{part}" if part and item in ("photo", "video") else post_id), post_id


def _feed_content(item: str, value: dict[str, Any]) -> tuple[str, list[MediaRef]]:
    """The text and photos of a feed item; a link elsewhere is kept in the text, not fetched."""
    text = text_of(value.get("message"))
    urls: list[Any] = [value.get("photo"), value.get("video")]
    photos = value.get("photos")
    if isinstance(photos, list):
        urls += photos
    link = value.get("link")
    if isinstance(link, str) and link.startswith(("https://", "http://")):
        if item in ("photo", "video") or is_meta_media(link):
            urls.append(link)
        elif link not in text:
            text = text_of(f"{text}\n[Tautan] {link}" if text else f"[Tautan] {link}")
    media = [ref for url in dict.fromkeys(u for u in urls if isinstance(u, str)) if (ref := media_ref(url))]
    return text, media


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [FacebookAdapter]

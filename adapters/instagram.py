"""`instagram`: comments on, @mentions of, and direct messages to an Instagram professional account.

Meta POSTs `{"object": "instagram", "entry": [{"id": <account id>, "time", "changes": [{"field", "value"}],
"messaging": [...]}]}`, signed with X-Hub-Signature-256 (see `adapters.meta`):
- `comments` / `live_comments`: `{"id", "text", "from": {"id", "username"}, "media": {"id"}, "parent_id"}`,
  a message with the comment id as external id;
- `mentions`: `{"media_id", "comment_id"}` and nothing else. The text is not in the webhook, and
  fetching it would make parsing depend on the network; the mention is stored anyway, with a text that
  says so and names the ids, so that it reaches an admin instead of vanishing (see the channel docs);
- `messaging[]`: Direct messages in the Messenger-platform shape, a burst of them one complaint.
Our own comments and echoes of our own messages are ignored, as are receipts, reactions and edits.

Replies go where the citizen wrote, chosen by the message's `thread_id`:
- `instagram-dm:<IGSID>` -> `POST /{ig-user-id}/messages` (`/{page-id}/messages` for a Page-linked account);
- `instagram-mention:<media id>[:<comment id>]` -> `POST /{ig-user-id}/mentions`;
- any other thread is the top-level comment to answer -> `POST /{comment-id}/replies`.
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
    messaging_events,
    own_entries,
    path_id,
    post_text,
    short,
    text_of,
    within_window,
)

DM_THREAD = "instagram-dm:"
MENTION_THREAD = "instagram-mention:"
#: Meta's limits: a Direct message's text (bytes), and a comment.
DM_MAX_BYTES = 1000
COMMENT_MAX_CHARS = 2200


class InstagramSettings(MetaSettings):
    #: The Instagram professional account's numeric id; deliveries for other accounts are ignored.
    ig_user_id: str = Field(pattern=r"^[0-9]{1,40}$")
    #: The account's @username, without the @: comments signed with it are our own replies, whatever id
    #: the webhook gives them.
    username: str | None = Field(default=None, max_length=30)
    #: Set up with Facebook Login (an account linked to a Page, graph.facebook.com): the Page's id, as
    #: Direct replies then go through the Page (`/{page-id}/messages`). Empty with Instagram Login
    #: (graph.instagram.com), where they go to `/{ig-user-id}/messages`.
    page_id: str | None = Field(default=None, pattern=r"^[0-9]{1,40}$")


class InstagramAdapter(Adapter[InstagramSettings]):
    channel_type: ClassVar[str] = "instagram"
    settings_model: ClassVar[type[ChannelSettings]] = InstagramSettings
    description: ClassVar[str] = "Instagram professional account: comments, @mentions and direct messages"
    media_hosts: ClassVar[frozenset[str]] = MEDIA_HOSTS
    may_be_trusted: ClassVar[bool] = False
    acknowledge_receipt: ClassVar[bool] = True

    def verify(self, request: RawRequest) -> None:
        verify_signature(request, self.settings.app_secret)

    def answer_get(self, request: RawRequest) -> AdapterResponse:
        return answer_challenge(request, self.settings.verify_token)

    # ------------------------------------------------------------------------------------------ parse

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        account = self.settings.ig_user_id
        batch = Batch()
        entries = own_entries(
            request, batch, expected_object="instagram", label="Instagram", own_id=account, what="account"
        )
        for entry in entries:
            for change in entry_changes(entry, batch):
                batch.add(self._change_message, change, entry.get("time"))
            for event in messaging_events(entry):
                batch.add(self._direct_message, event)
        return batch.result()

    def _change_message(self, change: Any, entry_time: Any) -> InboundMessage:
        if not isinstance(change, dict):
            raise Malformed("a change is not an object")
        field = change.get("field")
        value = change.get("value")
        if field not in ("comments", "live_comments", "mentions", "messages"):
            raise Skip(f"instagram field {str(field)[:40]!r} is not stored")
        if not isinstance(value, dict):
            raise Malformed(f"a {field} change without a value object")
        if field == "mentions":
            return _mention(value, entry_time)
        if field == "messages":
            # The same event as in `messaging[]`, as Meta's dashboard test and some app setups deliver it.
            return self._direct_message(value)
        return self._comment(value, entry_time)

    def _comment(self, value: dict[str, Any], entry_time: Any) -> InboundMessage:
        comment_id = graph_id(value.get("id"))
        if comment_id is None:
            raise Malformed("a comment without id")
        author_id = graph_id(dig(value, "from", "id"))
        username = short(dig(value, "from", "username"))
        if author_id == self.settings.ig_user_id or (
            username is not None
            and self.settings.username is not None
            and username.lower() == self.settings.username.lower()
        ):
            raise Skip("our own comment or reply")
        text = text_of(value.get("text"))
        if not text.strip():
            raise Skip(f"comment {comment_id[:40]} has no text")
        parent_id = graph_id(value.get("parent_id"))
        return build_message(
            external_id=comment_id,
            text=text,
            sender=Sender(id=author_id, handle=username) if author_id or username else None,
            sent_at=epoch(entry_time),
            # Instagram replies only under a top-level comment: a reply joins its parent's thread.
            thread_id=parent_id or comment_id,
        )

    def _direct_message(self, event: Any) -> InboundMessage:
        return chat_message(
            event, own_id=self.settings.ig_user_id, thread_prefix=DM_THREAD, assembly_prefix="instagram:"
        )

    # ------------------------------------------------------------------------------------------ replies

    async def send(self, reply: OutboundReply) -> str:
        thread = reply.thread_id or ""
        if thread.startswith(DM_THREAD):
            return await self._send_direct(reply, thread.removeprefix(DM_THREAD) or reply.recipient.id)
        if thread.startswith(MENTION_THREAD):
            return await self._send_mention_reply(reply, thread.removeprefix(MENTION_THREAD))
        target = path_id(thread or reply.in_reply_to, "comment id")
        return await post_text(
            self.settings,
            f"{target}/replies",
            reply.text,
            lambda part: {"message": part},
            channel_id=self.channel_id,
            max_chars=COMMENT_MAX_CHARS,
        )

    async def _send_direct(self, reply: OutboundReply, igsid: str | None) -> str:
        recipient = path_id(igsid, "Instagram recipient (IGSID)")
        if not within_window(reply.last_inbound_at):
            # Instagram has no tag for automatic updates (only HUMAN_AGENT, for a person typing an answer).
            raise ChannelUnavailable(
                "not sent: the citizen last wrote on Instagram Direct more than 24 hours ago (or never) and "
                "Instagram accepts no automatic message after that; answer them from the Instagram app",
                retryable=False,
            )
        return await post_text(
            self.settings,
            f"{self.settings.page_id or self.settings.ig_user_id}/messages",
            reply.text,
            lambda part: {"recipient": {"id": recipient}, "message": {"text": part}},
            channel_id=self.channel_id,
            max_chars=DM_MAX_BYTES,
            max_bytes=DM_MAX_BYTES,
        )

    async def _send_mention_reply(self, reply: OutboundReply, ids: str) -> str:
        media_text, _, comment_text = ids.partition(":")
        target: dict[str, str] = {"media_id": path_id(media_text, "mentioning media id")}
        if comment_text:
            target["comment_id"] = path_id(comment_text, "mentioning comment id")
        return await post_text(
            self.settings,
            f"{self.settings.ig_user_id}/mentions",
            reply.text,
            lambda part: {**target, "message": part},
            channel_id=self.channel_id,
            max_chars=COMMENT_MAX_CHARS,
        )

    # -------------------------------------------------------------------------------------------- media

    def allowed_media_hosts(self) -> frozenset[str]:
        return allowed_hosts(self.settings)

    async def download_media(self, ref: MediaRef, *, max_bytes: int) -> MediaContent:
        """Attachment URLs are signed CDN links: fetched as they are, and the token never goes along."""
        return await download(ref.url, allowed_hosts=self.allowed_media_hosts(), max_bytes=max_bytes)


def _mention(value: dict[str, Any], entry_time: Any) -> InboundMessage:
    """An @mention, stored with the ids Meta gives (the webhook carries no text and no author)."""
    media_id = graph_id(value.get("media_id"))
    if media_id is None:
        raise Malformed("a mention without media_id")
    comment_id = graph_id(value.get("comment_id"))
    if comment_id is not None:
        where = f"komentar {comment_id} pada media {media_id}"
        external_id, thread_id = f"mention:{comment_id}", f"{MENTION_THREAD}{media_id}:{comment_id}"
    else:
        where = f"keterangan (caption) media {media_id}"
        external_id, thread_id = f"mention:media:{media_id}", f"{MENTION_THREAD}{media_id}"
    return build_message(
        external_id=external_id,
        text=f"[Mention] {where}. Webhook Instagram hanya memuat id; baca isinya di aplikasi Instagram.",
        sent_at=epoch(entry_time),
        thread_id=thread_id,
    )


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [InstagramAdapter]

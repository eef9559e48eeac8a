"""`telegram`: a Telegram bot that takes complaints in a short conversation, with python-telegram-bot (PTB).

The bot asks for the problem, the place and a photo (see `adapters.telegram_conversation`). Each
message is one part of the chat's complaint (`Assembly(key="telegram:<chat id>")`), stored at once;
Kanal makes one report of the parts when a photo or /selesai completes them, or when the chat has been
quiet for `conversation_window_seconds`. The bot's next question is sent once a part is stored
(`after_delivery`), so the bot itself keeps no conversation state.

Updates arrive in one of two ways, per instance (`mode`):
- `webhook`: Telegram POSTs each Update to the channel's route with the `X-Telegram-Bot-Api-Secret-Token`
  header set to the `secret_token` given to setWebhook (`register_webhook`).
- `polling`: Kanal's scheduler calls getUpdates; the cursor is the next `offset`, and an update is
  confirmed to Telegram only by the poll after the one that stored it, so a crash refetches, never loses.

Replies (status changes) are sent with sendMessage to the chat the citizen wrote from.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ClassVar, Literal, TypeVar

import telegram
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from telegram import error as tg_error
from telegram.request import HTTPXRequest

from adapters import hookimpl
from adapters import telegram_conversation as conversation
from adapters.contract import (
    Adapter,
    AdapterContext,
    Assembly,
    ChannelSettings,
    FetchResult,
    InboundMessage,
    Location,
    MediaContent,
    MediaRef,
    OutboundReply,
    RawRequest,
    RejectedItem,
    Sender,
    StoredOutcome,
)
from adapters.errors import (
    AdapterError,
    ChannelUnavailable,
    MediaUnavailable,
    PayloadIgnored,
    PayloadRejected,
    SignatureInvalid,
)
from adapters.media_download import download, hosts_of

log = logging.getLogger(__name__)

SECRET_TOKEN_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 (a header name)
DEFAULT_API_BASE_URL = "https://api.telegram.org"
#: The only update type the bot uses; the others are not even sent (setWebhook and getUpdates say so).
ALLOWED_UPDATES = ["message"]
_BOT_TOKEN = re.compile(r"^(\d{1,20}):[A-Za-z0-9_-]{10,200}$")
#: What Telegram accepts as a webhook secret_token (setWebhook).
_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{16,256}$")
#: Answers remembered per process so a command fetched twice (a poll not stored) is answered once.
_REMEMBERED = 2000

T = TypeVar("T")


class TelegramSettings(ChannelSettings):
    #: The bot's token from @BotFather ("123456789:AA...").
    bot_token: SecretStr
    mode: Literal["webhook", "polling"] = "webhook"
    #: webhook mode: the secret_token given to setWebhook; Telegram sends it back in every delivery.
    webhook_secret_token: SecretStr | None = None
    #: The Bot API server (a local `telegram-bot-api` server or a test peer); files come from its /file/bot.
    api_base_url: str = DEFAULT_API_BASE_URL
    #: Ignore messages in groups, supergroups and channels: a complaint is a private conversation.
    private_chats_only: bool = True
    #: A complaint's parts are put together this long after the latest one when no photo or /selesai ends it.
    conversation_window_seconds: float = Field(default=1800.0, gt=0, le=86_400)
    #: polling mode: getUpdates waits this long for a new update (Telegram's long polling); 0 answers at once.
    poll_timeout_seconds: int = Field(default=0, ge=0, le=50)
    #: polling mode: updates per getUpdates (Telegram allows 1-100).
    poll_limit: int = Field(default=100, ge=1, le=100)
    #: Timeout for each Bot API call (connect, read, write).
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=120)

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        if not _BOT_TOKEN.match(value.get_secret_value()):
            raise ValueError("not a bot token: expected '<bot id>:<secret>' as @BotFather gives it")
        return value

    @field_validator("webhook_secret_token")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _WEBHOOK_SECRET.match(value.get_secret_value()):
            raise ValueError("use 16 to 256 characters of A-Z, a-z, 0-9, _ and - (what setWebhook accepts)")
        return value

    @field_validator("api_base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+(/[^\s]*)?$", value):
            raise ValueError("expected an http(s) URL such as https://api.telegram.org")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _webhook_needs_a_secret(self) -> TelegramSettings:
        if self.mode == "webhook" and self.webhook_secret_token is None:
            raise ValueError(
                "mode webhook needs webhook_secret_token (16+ characters of A-Z a-z 0-9 _ -), the secret_token "
                "given to setWebhook; or set mode: polling"
            )
        return self

    @property
    def bot_id(self) -> int:
        return int(self.bot_token.get_secret_value().split(":", 1)[0])


class _PushRefused(SignatureInvalid):
    """A delivery to a polling instance: refused like an unauthenticated one (only a preview is kept)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.status_code = 405


class TelegramAdapter(Adapter[TelegramSettings]):
    channel_type: ClassVar[str] = "telegram"
    settings_model = TelegramSettings
    description = "Telegram bot (python-telegram-bot): complaint conversation by webhook or long polling"
    secret_headers = frozenset({SECRET_TOKEN_HEADER})
    media_hosts = frozenset({"api.telegram.org"})
    # The bot answers in the conversation itself, with the ticket, as soon as the first message is stored.
    acknowledge_receipt = False

    def __init__(self, *, settings: TelegramSettings, context: AdapterContext) -> None:
        super().__init__(settings=settings, context=context)
        # Per instance: the scheduler reads `channel.adapter.pulls`, and one deployment may poll a bot
        # without a public URL while another takes a second bot's webhook.
        self.pulls = settings.mode == "polling"
        _redact_in_library_logs(settings.bot_token.get_secret_value())
        if settings.webhook_secret_token is not None:
            _redact_in_library_logs(settings.webhook_secret_token.get_secret_value())
        self._bots = _BotPerLoop(self._new_bot)
        # Polling mode: what each fetched message was to the conversation, until `after_delivery` answers it.
        self._fetched_turns: OrderedDict[str, conversation.Part] = OrderedDict()
        self._answered_updates: OrderedDict[int, None] = OrderedDict()

    # ------------------------------------------------------------------------------------- receiving

    def verify(self, request: RawRequest) -> None:
        if self.settings.mode == "polling":
            raise _PushRefused(
                f"channel {self.channel_id} polls Telegram (mode: polling) and takes no webhook deliveries; "
                "delete the webhook (deleteWebhook) or set mode: webhook with a webhook_secret_token"
            )
        expected = self.settings.webhook_secret_token
        assert expected is not None  # the settings refuse webhook mode without it
        given = request.header(SECRET_TOKEN_HEADER)
        if not given:
            raise SignatureInvalid(
                "missing X-Telegram-Bot-Api-Secret-Token: register the webhook with this channel's "
                "webhook_secret_token as secret_token (see docs/channels/telegram.md)"
            )
        if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
            raise SignatureInvalid(
                "wrong X-Telegram-Bot-Api-Secret-Token: call setWebhook again with this channel's webhook_secret_token"
            )

    def parse(self, request: RawRequest) -> list[InboundMessage]:
        turn = self._read(decode_update(request.body))
        if isinstance(turn, conversation.Part):
            return [self._inbound(turn)]
        raise PayloadIgnored(_why_ignored(turn))

    def _read(self, update: telegram.Update) -> conversation.Turn:
        try:
            return conversation.read_turn(
                update, bot_id=self.settings.bot_id, private_chats_only=self.settings.private_chats_only
            )
        except conversation.NotAMessage as exc:
            raise PayloadRejected(f"not a Telegram message: {exc}", status_code=422) from None
        except (AttributeError, TypeError, ValueError) as exc:
            # PTB keeps whatever types the JSON had; a field of the wrong type surfaces here.
            raise PayloadRejected(f"not a Telegram Update ({type(exc).__name__})", status_code=422) from None

    def _inbound(self, part: conversation.Part) -> InboundMessage:
        try:
            return inbound_message(part, window_seconds=self.settings.conversation_window_seconds)
        except ValidationError as exc:
            # Name the fields as a Telegram developer knows them: location.latitude is "location.lat" here.
            where = {"Location": "location", "MediaRef": "photo", "Sender": "from"}.get(exc.title, "message")
            problems = "; ".join(f"{'.'.join([where, *map(str, e['loc'])])}: {e['msg']}" for e in exc.errors())
            raise PayloadRejected(f"Telegram message out of range: {problems[:500]}", status_code=422) from None
        except (AttributeError, TypeError, ValueError) as exc:
            reason = f"Telegram message of unexpected shape ({type(exc).__name__})"
            raise PayloadRejected(reason, status_code=422) from None

    # ------------------------------------------------------------------------ the bot's side of the chat

    async def after_delivery(
        self, request: RawRequest | None, messages: list[InboundMessage], outcomes: list[StoredOutcome]
    ) -> None:
        """Ask the next question for each newly stored part; answer commands (delivered, never stored)."""
        try:
            if request is not None:
                await self._answer_delivery(request, messages, outcomes)
            else:
                for message, outcome in zip(messages, outcomes, strict=False):
                    part = self._fetched_turns.pop(message.external_id, None)
                    if part is not None and not outcome.duplicate:
                        await self._answer_part(part, outcome)
        except Exception as exc:
            # Best effort: the messages are stored whatever happens here; the citizen may ask again.
            log.warning("telegram %s: could not answer the citizen: %s", self.channel_id, _describe(exc))

    async def _answer_delivery(
        self, request: RawRequest, messages: list[InboundMessage], outcomes: list[StoredOutcome]
    ) -> None:
        try:
            turn = self._read(decode_update(request.body))
        except AdapterError:
            return
        if isinstance(turn, conversation.Part):
            if outcomes and not outcomes[0].duplicate:
                await self._answer_part(turn, outcomes[0])
        elif not messages:
            await self._answer_unstored(turn)

    async def _answer_part(self, part: conversation.Part, outcome: StoredOutcome) -> None:
        # The first message of a complaint is the one the report keeps, with its ticket; later answers
        # carry the ticket back from the question they reply to.
        ticket = outcome.ticket_code if part.step is conversation.Step.PROBLEM else part.ticket
        await self._say(part.message.chat.id, conversation.after_part(part.step, ticket=ticket))

    async def _answer_unstored(self, turn: conversation.Turn) -> None:
        if isinstance(turn, conversation.Unsupported):
            await self._say(turn.chat_id, conversation.unsupported(turn.what))
        elif isinstance(turn, conversation.Command):
            await self._say(turn.chat_id, await self._answer_command(turn))

    async def _answer_command(self, command: conversation.Command) -> conversation.BotMessage:
        if command.name == "start":
            return conversation.greeting(command.first_name)
        if command.name in ("bantuan", "help"):
            return conversation.help_text()
        if command.name == "status":
            code = command.argument.split()[0] if command.argument.split() else ""
            if not code:
                return conversation.status_usage()
            try:
                status = await self.context.lookup_ticket(code)
            except Exception as exc:
                log.warning("telegram %s: ticket lookup failed: %s", self.channel_id, type(exc).__name__)
                return conversation.status_unavailable()
            return conversation.status_answer(status) if status else conversation.status_not_found(code)
        return conversation.unknown_command(command.name)

    async def _say(self, chat_id: int, message: conversation.BotMessage) -> None:
        markup = telegram.ForceReply(input_field_placeholder=message.force_reply[:64]) if message.force_reply else None
        await self._call(
            "sendMessage", lambda bot: bot.send_message(chat_id=chat_id, text=message.text, reply_markup=markup)
        )

    # ------------------------------------------------------------------------------------------ polling

    async def fetch(self, cursor: str | None) -> FetchResult:
        """getUpdates from `cursor` (the next offset). Answers commands at once; returns the parts to store."""
        if not self.pulls:
            raise ChannelUnavailable(
                f"channel {self.channel_id} is in webhook mode; set mode: polling to fetch updates", retryable=False
            )
        offset = int(cursor) if cursor and cursor.lstrip("-").isdigit() else None
        messages: list[InboundMessage] = []
        rejected: list[RejectedItem] = []
        next_offset = offset
        for fetched in await self._get_updates(offset):
            next_offset = max(next_offset or 0, fetched.update_id + 1)
            try:
                if fetched.update is None:
                    raise PayloadRejected(fetched.problem)
                turn = self._read(fetched.update)
                if isinstance(turn, conversation.Part):
                    message = self._inbound(turn)
                    messages.append(message)
                    _remember(self._fetched_turns, message.external_id, turn)
                else:
                    await self._answer_once(fetched.update_id, turn)
            except PayloadRejected as exc:
                rejected.append(
                    RejectedItem(
                        external_id=f"update:{fetched.update_id}",
                        reason=exc.message,
                        body=json.dumps(fetched.raw, ensure_ascii=False, default=str).encode(),
                        content_type="application/json",
                    )
                )
        return FetchResult(
            messages=messages, cursor=str(next_offset) if next_offset is not None else cursor, rejected=rejected
        )

    async def _get_updates(self, offset: int | None) -> list[_Fetched]:
        kwargs: dict[str, Any] = {
            "offset": offset,
            "limit": self.settings.poll_limit,
            "timeout": self.settings.poll_timeout_seconds,
            "allowed_updates": ALLOWED_UPDATES,
        }
        try:
            updates = await self._call("getUpdates", lambda bot: bot.get_updates(**kwargs))
        except ChannelUnavailable:
            raise
        except Exception:
            # PTB reads a whole batch or nothing; one update it cannot read (a newer Bot API, a bad field)
            # would block the channel for good. Fetch the same batch as plain JSON and read each alone.
            log.warning("telegram %s: python-telegram-bot could not read a batch; reading each update", self.channel_id)
            return await self._get_raw_updates(kwargs)
        return [_Fetched(u.update_id, u, u.to_dict()) for u in updates if _is_update_id(u.update_id)]

    async def _get_raw_updates(self, kwargs: dict[str, Any]) -> list[_Fetched]:
        params = {k: v for k, v in kwargs.items() if v is not None}
        raw = await self._call("getUpdates", lambda bot: bot.do_api_request("getUpdates", api_kwargs=params))
        found = []
        for item in raw if isinstance(raw, list) else []:
            update_id = item.get("update_id") if isinstance(item, dict) else None
            if not isinstance(update_id, int) or isinstance(update_id, bool):
                continue  # nothing to name it by; the next offset passes it all the same
            try:
                found.append(_Fetched(update_id, decode_update(json.dumps(item).encode()), item))
            except PayloadRejected as exc:
                found.append(_Fetched(update_id, None, item, exc.message))
        return found

    async def _answer_once(self, update_id: int, turn: conversation.Turn) -> None:
        # A poll whose messages were not stored is fetched again; its commands must not be answered twice.
        if update_id in self._answered_updates:
            return
        _remember(self._answered_updates, update_id, None)
        try:
            await self._answer_unstored(turn)
        except ChannelUnavailable as exc:
            log.warning("telegram %s: could not answer a command: %s", self.channel_id, exc)

    # ------------------------------------------------------------------------------------------ replies

    async def send(self, reply: OutboundReply) -> str:
        """sendMessage to the chat the citizen wrote from, quoting their message when Kanal says which."""
        chat_id = _chat_id(reply)
        if chat_id is None:
            raise ChannelUnavailable(
                "no Telegram chat to answer: the reply has neither a telegram:<chat id> thread nor a numeric "
                "recipient id",
                retryable=False,
            )
        quoted = _quoted_message_id(reply.in_reply_to, chat_id)
        reply_parameters = (
            telegram.ReplyParameters(message_id=quoted, allow_sending_without_reply=True) if quoted else None
        )
        sent = await self._call(
            "sendMessage",
            lambda bot: bot.send_message(chat_id=chat_id, text=reply.text, reply_parameters=reply_parameters),
        )
        return str(sent.message_id)

    # -------------------------------------------------------------------------------------------- media

    def allowed_media_hosts(self) -> frozenset[str]:
        return hosts_of(self.settings.api_base_url)

    async def download_media(self, ref: MediaRef, *, max_bytes: int) -> MediaContent:
        """getFile for the file_id, then the file from the Bot API's file URL (which holds the token)."""
        file_id = ref.platform_id or (ref.url.removeprefix("telegram:") if ref.url.startswith("telegram:") else "")
        if not file_id:
            raise MediaUnavailable(f"not a Telegram file reference: {ref.url[:100]!r}")
        try:
            file = await self._call("getFile", lambda bot: bot.get_file(file_id))
        except ChannelUnavailable as exc:
            if exc.retryable:
                raise
            raise MediaUnavailable(f"Telegram will not give this file: {exc}") from None
        if isinstance(file.file_size, int) and file.file_size > max_bytes:
            raise MediaUnavailable(f"too large: {file.file_size} bytes, limit {max_bytes}")
        if not file.file_path:
            raise MediaUnavailable("Telegram gave no download path (bots cannot download files over 20 MB)")
        content = await download(
            file.file_path,
            allowed_hosts=self.allowed_media_hosts(),
            max_bytes=max_bytes,
            timeout=self.settings.request_timeout_seconds,
        )
        if content.content_type == "application/octet-stream" and ref.content_type:
            # The file server does not always say what a photo is; the message did.
            return MediaContent(content_type=ref.content_type, data=content.data)
        return content

    # ---------------------------------------------------------------------------------- webhook set-up

    async def register_webhook(self, *, drop_pending_updates: bool = False) -> str:
        """setWebhook to this channel's route with the secret token; returns the URL registered.

        Telegram then stops serving getUpdates for this bot. Call it once when setting up a webhook-mode
        channel (and after changing public_base_url or the secret); see docs/channels/telegram.md.
        """
        secret = self.settings.webhook_secret_token
        if self.settings.mode != "webhook" or secret is None:
            raise ChannelUnavailable("set mode: webhook and a webhook_secret_token before registering", retryable=False)
        url = self.context.inbound_url()
        await self._call(
            "setWebhook",
            lambda bot: bot.set_webhook(
                url=url,
                secret_token=secret.get_secret_value(),
                allowed_updates=ALLOWED_UPDATES,
                drop_pending_updates=drop_pending_updates,
            ),
        )
        return url

    async def unregister_webhook(self) -> None:
        """deleteWebhook, so that getUpdates (mode: polling) works for this bot again."""
        await self._call("deleteWebhook", lambda bot: bot.delete_webhook())

    async def aclose(self) -> None:
        """Close the bot's HTTP connections (those of the current event loop)."""
        await self._bots.close()

    # --------------------------------------------------------------------------------------- Bot API

    def _new_bot(self) -> telegram.Bot:
        base = self.settings.api_base_url
        timeout = self.settings.request_timeout_seconds

        def request(pool_size: int) -> HTTPXRequest:
            return HTTPXRequest(
                connection_pool_size=pool_size,
                read_timeout=timeout,
                write_timeout=timeout,
                connect_timeout=timeout,
                pool_timeout=timeout,
            )

        return telegram.Bot(
            self.settings.bot_token.get_secret_value(),
            base_url=f"{base}/bot",
            base_file_url=f"{base}/file/bot",
            request=request(16),
            get_updates_request=request(1),
        )

    async def _call(self, method: str, call: Callable[[telegram.Bot], Awaitable[T]]) -> T:
        """Run one Bot API call (initialising the bot first if needed); Telegram's errors as ours."""
        try:
            return await call(await self._bots.get())
        except tg_error.TelegramError as exc:
            raise unavailable(exc, method) from None


def unavailable(exc: tg_error.TelegramError, method: str) -> ChannelUnavailable:
    """The `ChannelUnavailable` for a failed Bot API call: retryable unless trying again cannot help."""
    if isinstance(exc, tg_error.RetryAfter):
        wait = exc.retry_after
        seconds = wait.total_seconds() if isinstance(wait, timedelta) else float(wait)
        return ChannelUnavailable(
            f"Telegram {method}: too many requests; retry after {seconds:g} s", retry_after=seconds
        )
    if isinstance(exc, tg_error.InvalidToken):
        # PTB's own text for this quotes the token: never pass it on.
        return ChannelUnavailable(
            f"Telegram {method}: the bot token was refused; set bot_token to the token @BotFather gives",
            retryable=False,
        )
    if isinstance(exc, tg_error.Forbidden):
        return ChannelUnavailable(
            f"Telegram {method}: forbidden ({_scrub(exc.message)}); the citizen blocked the bot or left the chat",
            retryable=False,
        )
    if isinstance(exc, tg_error.Conflict):
        webhook_set = "webhook" in exc.message.lower()
        advice = (
            "a webhook is set for this bot: delete it (deleteWebhook) to poll, or use mode: webhook"
            if webhook_set
            else "another process polls this bot; run one poller per bot"
        )
        return ChannelUnavailable(f"Telegram {method}: conflict; {advice}", retryable=not webhook_set)
    if isinstance(exc, tg_error.BadRequest):
        return ChannelUnavailable(f"Telegram {method} refused: {_scrub(exc.message)}", retryable=False)
    if isinstance(exc, tg_error.ChatMigrated):
        return ChannelUnavailable(
            f"Telegram {method}: the group became supergroup {exc.new_chat_id}; answer there", retryable=False
        )
    # TimedOut, NetworkError (5xx, connection errors) and whatever else Telegram may answer.
    return ChannelUnavailable(f"Telegram {method} failed ({type(exc).__name__}); will retry")


# --------------------------------------------------------------------------------------- parsing (pure)


def decode_update(body: bytes) -> telegram.Update:
    """The Update in a webhook body, read by PTB (which does no I/O). `PayloadRejected` if it is none."""
    if not body.strip():
        raise PayloadRejected("empty body; Telegram sends one Update as JSON")
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise PayloadRejected(f"body is not JSON ({type(exc).__name__}); Telegram sends one Update object") from None
    if not isinstance(document, dict):
        raise PayloadRejected("body must be one JSON object (a Telegram Update), not a list or a scalar")
    if not isinstance(document.get("update_id"), int) or isinstance(document.get("update_id"), bool):
        raise PayloadRejected("not a Telegram Update: update_id (an integer) is missing", status_code=422)
    try:
        update = telegram.Update.de_json(document, None)
    except Exception as exc:
        # PTB raises whatever the constructors raise for missing or mistyped fields.
        raise PayloadRejected(f"not a Telegram Update ({type(exc).__name__})", status_code=422) from None
    if update is None:
        raise PayloadRejected("not a Telegram Update", status_code=422)
    return update


def inbound_message(part: conversation.Part, *, window_seconds: float) -> InboundMessage:
    """The stored form of one part of a complaint."""
    message, step = part.message, part.step
    chat_id = message.chat.id
    words = message.text if isinstance(message.text, str) else message.caption
    text = words.strip() if isinstance(words, str) else ""
    location: Location | None = None
    media: list[MediaRef] = []
    if step is conversation.Step.LOCATION:
        location, text = _location(message, typed=text), ""
    elif step is conversation.Step.FINISH:
        text = ""
    elif step in (conversation.Step.PHOTO, conversation.Step.ALBUM_PHOTO):
        media = [_media(message)]
    user = message.from_user
    assert user is not None  # read_turn keeps no message without a sender
    full_name = " ".join(n for n in (user.first_name, user.last_name) if isinstance(n, str) and n.strip())
    return InboundMessage(
        external_id=f"{chat_id}:{message.message_id}",
        text=text,
        sender=Sender(
            id=str(user.id),
            handle=user.username if isinstance(user.username, str) else None,
            name=full_name[:200] or None,
        ),
        location=location,
        media=media,
        sent_at=message.date,
        thread_id=f"telegram:{chat_id}",
        assembly=Assembly(
            key=f"telegram:{chat_id}",
            complete=step in conversation.COMPLETING_STEPS,
            window_seconds=window_seconds,
        ),
    )


def _location(message: telegram.Message, *, typed: str) -> Location:
    venue = message.venue
    if venue is not None:
        place = venue.location
        address = ", ".join(p for p in (venue.title, venue.address) if isinstance(p, str) and p.strip())
        return Location(lat=place.latitude, lng=place.longitude, address=address[:1000] or None)
    if message.location is not None:
        return Location(lat=message.location.latitude, lng=message.location.longitude)
    return Location(address=typed[:1000])


def _media(message: telegram.Message) -> MediaRef:
    photo = conversation.largest_photo(message)
    if photo is not None:
        return MediaRef(
            url=f"telegram:{photo.file_id}", platform_id=photo.file_id, content_type="image/jpeg", size=photo.file_size
        )
    document = conversation.image_document(message)
    assert document is not None  # read_turn calls a message a photo only when it has one of the two
    return MediaRef(
        url=f"telegram:{document.file_id}",
        platform_id=document.file_id,
        content_type=document.mime_type,
        filename=document.file_name,
        size=document.file_size,
    )


def _why_ignored(turn: conversation.Turn) -> str:
    if isinstance(turn, conversation.Command):
        return f"command /{turn.name[:32]}: answered by the bot, nothing to store"
    if isinstance(turn, conversation.Unsupported):
        return f"unsupported content ({turn.what}): the bot asks for text, a location or a photo"
    assert isinstance(turn, conversation.Silent)
    return turn.reason


def _chat_id(reply: OutboundReply) -> int | None:
    """The chat the citizen wrote from (our thread id), else their user id (the same in a private chat)."""
    thread = reply.thread_id or ""
    candidates = [thread.removeprefix("telegram:")] if thread.startswith("telegram:") else []
    candidates.append(reply.recipient.id or "")
    for candidate in candidates:
        if re.fullmatch(r"-?\d{1,20}", candidate):
            return int(candidate)
    return None


def _quoted_message_id(in_reply_to: str | None, chat_id: int) -> int | None:
    chat, _, message_id = (in_reply_to or "").partition(":")
    return int(message_id) if chat == str(chat_id) and message_id.isdigit() else None


@dataclass(frozen=True)
class _Fetched:
    """One update from getUpdates: read by PTB, or (`update` None) the reason it could not be."""

    update_id: int
    update: telegram.Update | None
    raw: object
    problem: str = ""


def _is_update_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _remember(memory: OrderedDict[Any, Any], key: Any, value: Any) -> None:
    memory[key] = value
    while len(memory) > _REMEMBERED:
        memory.popitem(last=False)


# ----------------------------------------------------------------------------------- the PTB Bot object


class _BotPerLoop:
    """One initialised PTB `Bot` per event loop.

    A Bot holds an httpx connection pool, which belongs to the event loop that opened it. Kanal runs the
    adapter on one loop, but a tool or a test calling it from `asyncio.run` brings its own; each loop
    gets its own Bot, dropped with the loop. `initialize()` (getMe) is awaited once per Bot, on first use.
    """

    def __init__(self, factory: Callable[[], telegram.Bot]) -> None:
        self._factory = factory
        self._bots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[telegram.Bot, asyncio.Lock]] = (
            weakref.WeakKeyDictionary()
        )

    async def get(self) -> telegram.Bot:
        loop = asyncio.get_running_loop()
        found = self._bots.get(loop)
        if found is None:
            found = self._bots[loop] = (self._factory(), asyncio.Lock())
        bot, lock = found
        async with lock:
            await bot.initialize()  # returns at once when already initialised
        return bot

    async def close(self) -> None:
        """Shut down the current loop's Bot (the others' pools can only be closed from their loops)."""
        found = self._bots.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found[0].shutdown()


# -------------------------------------------------------------------- keeping credentials out of the logs


class _RedactSecrets(logging.Filter):
    """Replaces the bot tokens and webhook secrets this process knows in a library's log records.

    The bot token is part of every Bot API URL, and httpx logs each request's URL at INFO; PTB logs its
    base URLs and each call's parameters (setWebhook's secret_token among them) at DEBUG.
    """

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            text = record.getMessage()
        except Exception:
            return True
        redacted = text
        for secret in sorted(self.secrets, key=len, reverse=True):
            redacted = redacted.replace(secret, "***")
        if redacted != text:
            record.msg, record.args = redacted, None
        return True


_REDACTOR = _RedactSecrets()
#: The loggers that see Bot API URLs or parameters (filters apply to the logger a record is made on).
_LIBRARY_LOGGERS = ("httpx", "telegram.Bot", "telegram.request.BaseRequest", "telegram.request.HTTPXRequest")


def _redact_in_library_logs(secret: str) -> None:
    for name in _LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        if _REDACTOR not in logger.filters:
            logger.addFilter(_REDACTOR)
    _REDACTOR.secrets.add(secret)


def _scrub(text: str) -> str:
    for secret in _REDACTOR.secrets:
        text = text.replace(secret, "***")
    return text[:300]


def _describe(exc: BaseException) -> str:
    return _scrub(str(exc)) if isinstance(exc, AdapterError) else type(exc).__name__


@hookimpl
def kanal_register_adapters() -> list[type[Adapter]]:  # type: ignore[type-arg]
    return [TelegramAdapter]

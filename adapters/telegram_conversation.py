"""The Telegram bot's complaint conversation: what a citizen's message is to it, and what the bot says next.

The bot asks for the problem, then the place, then a photo. It keeps no state of its own: every
message is stored by Kanal at once as a part of the chat's group (`adapters.contract.Assembly`), and
the step a message is follows from the message itself. Where the content cannot tell (a typed
address is text, as the problem is), the bot's questions are sent with Telegram's ForceReply, so the
answer arrives as a reply to the question and the question it answers says what it is. Questions also
quote the ticket announced after the first message, so later answers carry it back.

Everything here is pure: no I/O, no clock. Texts are in Bahasa Indonesia, for Jakarta's citizens.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import StrEnum

import telegram

from adapters.contract import TicketStatus

# --------------------------------------------------------------------------------------- what a message is


class Step(StrEnum):
    """What a stored message contributes to the complaint."""

    PROBLEM = "problem"  # words that are not an answer to our location or photo question
    LOCATION = "location"  # a shared location or venue, or an address typed in answer to the location question
    DETAIL = "detail"  # words typed in answer to the photo question instead of a photo
    PHOTO = "photo"  # a photo (or an image sent as a file): completes the complaint
    ALBUM_PHOTO = "album_photo"  # one photo of an album: more may follow, so it does not complete it
    FINISH = "finish"  # /selesai: complete without (more) photos


#: Steps after which the group is complete and Kanal may make the report at once.
COMPLETING_STEPS = frozenset({Step.PHOTO, Step.FINISH})


@dataclass(frozen=True)
class Part:
    """A message to store as a part of the chat's complaint."""

    message: telegram.Message
    step: Step
    #: The ticket quoted by the question this message answers, when it answers one of ours.
    ticket: str | None = None


@dataclass(frozen=True)
class Command:
    """A command (/start, /status K7F3Q-9Q2MX, /bantuan...): answered, never stored."""

    chat_id: int
    name: str
    argument: str
    first_name: str | None


@dataclass(frozen=True)
class Unsupported:
    """A sticker, voice note, video...: the citizen is told what the bot can take; nothing is stored."""

    chat_id: int
    what: str


@dataclass(frozen=True)
class Silent:
    """Nothing to store and nobody to answer (an edit, a bot's message, a group chat, a service message)."""

    reason: str


Turn = Part | Command | Unsupported | Silent


class NotAMessage(ValueError):
    """The update has a message whose required fields are missing or of the wrong type."""


#: The command that completes a complaint without a photo; the only command that is stored.
FINISH_COMMAND = "selesai"

# Content the bot cannot use, by Message attribute, in the citizen's words.
_UNSUPPORTED_CONTENT = {
    "sticker": "stiker",
    "voice": "pesan suara",
    "audio": "audio",
    "video": "video",
    "video_note": "video bulat",
    "animation": "GIF",
    "contact": "kontak",
    "dice": "dadu",
    "poll": "polling",
    "game": "permainan",
    "story": "story",
    "paid_media": "media berbayar",
    "invoice": "tagihan",
    "document": "berkas",
    "checklist": "daftar periksa",
    "giveaway": "giveaway",
}


def read_turn(update: telegram.Update, *, bot_id: int, private_chats_only: bool) -> Turn:
    """What `update` is to the conversation. Raises `NotAMessage` for a message missing its basic fields."""
    message = update.message
    if message is None:
        return Silent(_other_update_kind(update))
    if not isinstance(message, telegram.Message):
        raise NotAMessage("`message` is not a Message object")
    chat = message.chat
    if not isinstance(chat, telegram.Chat) or not _is_int(chat.id):
        raise NotAMessage("message.chat.id must be an integer")
    if not _is_int(message.message_id):
        raise NotAMessage("message.message_id must be an integer")
    if not isinstance(message.date, datetime):
        raise NotAMessage("message.date must be a Unix time")
    sender = message.from_user
    if sender is None or not isinstance(sender, telegram.User) or not _is_int(sender.id):
        return Silent("message without a user as sender (a channel or an anonymous group admin)")
    if sender.is_bot is True:
        return Silent("message from a bot (our own echo, or another bot)")
    if private_chats_only and chat.type != telegram.constants.ChatType.PRIVATE:
        return Silent(f"message in a {chat.type} chat; this channel takes private chats only")

    if largest_photo(message) is not None or image_document(message) is not None:
        step = Step.ALBUM_PHOTO if message.media_group_id else Step.PHOTO
        return Part(message, step, _quoted_ticket(message, bot_id))
    if message.location is not None or message.venue is not None:
        return Part(message, Step.LOCATION, _quoted_ticket(message, bot_id))

    text = message.text
    if isinstance(text, str) and text.strip():
        command = _command(text)
        if command is None:
            question = _answered_question(message, bot_id)
            step = {"location": Step.LOCATION, "photo": Step.DETAIL}.get(question or "", Step.PROBLEM)
            return Part(message, step, _quoted_ticket(message, bot_id))
        name, argument = command
        if name == FINISH_COMMAND:
            return Part(message, Step.FINISH, _quoted_ticket(message, bot_id))
        first_name = sender.first_name if isinstance(sender.first_name, str) else None
        return Command(chat.id, name, argument, first_name)

    for attribute, label in _UNSUPPORTED_CONTENT.items():
        if getattr(message, attribute, None):
            return Unsupported(chat.id, label)
    return Silent("service message or content without text, location or photo")


def _other_update_kind(update: telegram.Update) -> str:
    for name in ("edited_message", "channel_post", "edited_channel_post", "my_chat_member", "callback_query"):
        if getattr(update, name, None) is not None:
            return f"{name} update: nothing to store"
    return "update without a new message: nothing to store"


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _command(text: str) -> tuple[str, str] | None:
    """(`status`, `K7F3Q-9Q2MX`) for "/status@KanalBot K7F3Q-9Q2MX"; None for text that is no command."""
    if not text.startswith("/") or len(text) < 2:
        return None
    head, _, argument = text[1:].partition(" ")
    name = head.split("@", 1)[0].lower()
    return (name, argument.strip()) if name else None


def largest_photo(message: telegram.Message) -> telegram.PhotoSize | None:
    """The biggest of the sizes Telegram offers for a photo (what a reviewer wants to see)."""
    sizes = [s for s in (message.photo or ()) if isinstance(s, telegram.PhotoSize) and isinstance(s.file_id, str)]
    if not sizes:
        return None

    def area(size: telegram.PhotoSize) -> int:
        width, height = size.width, size.height
        return width * height if _is_int(width) and _is_int(height) else 0

    return max(sizes, key=area)


def image_document(message: telegram.Message) -> telegram.Document | None:
    """A picture sent "as a file" (uncompressed): a photo as much as a compressed one is."""
    document = message.document
    if not isinstance(document, telegram.Document) or not isinstance(document.file_id, str):
        return None
    mime = document.mime_type
    return document if isinstance(mime, str) and mime.startswith("image/") else None


def _answered_question(message: telegram.Message, bot_id: int) -> str | None:
    """`location` or `photo` when `message` replies to that question of this bot, else None."""
    asked = message.reply_to_message
    if not isinstance(asked, telegram.Message) or not isinstance(asked.text, str):
        return None
    author = asked.from_user
    if not isinstance(author, telegram.User) or author.id != bot_id:
        return None
    if LOCATION_MARK in asked.text:
        return "location"
    if PHOTO_MARK in asked.text:
        return "photo"
    return None


_TICKET_IN_QUESTION = re.compile(r"\btiket ([A-Z0-9]+(?:-[A-Z0-9]+)*)")


def _quoted_ticket(message: telegram.Message, bot_id: int) -> str | None:
    if _answered_question(message, bot_id) is None:
        return None
    asked = message.reply_to_message
    assert asked is not None and isinstance(asked.text, str)
    found = _TICKET_IN_QUESTION.search(asked.text)
    return found.group(1) if found else None


# ----------------------------------------------------------------------------------------- what to say


@dataclass(frozen=True)
class BotMessage:
    """A message from the bot; `force_reply` is the input hint when the answer must come as a reply."""

    text: str
    force_reply: str | None = None


#: Marks the location question; a text replying to a message with it is an address.
LOCATION_MARK = "📍 Di mana lokasinya?"
#: Marks the photo question; a text replying to a message with it is more detail, not a new problem.
PHOTO_MARK = "📷"
EXAMPLE_TICKET = "K7F3Q-9Q2MX"

_LOCATION_QUESTION = (
    f"{LOCATION_MARK} Kirim lokasi lewat tombol 📎 › Lokasi, atau balas pesan ini dengan alamatnya "
    "(nama jalan, nomor, RT/RW, kelurahan)."
)
_PHOTO_QUESTION = f"{PHOTO_MARK} Kirim foto masalahnya, atau ketik /{FINISH_COMMAND} bila tidak ada foto."
_PHOTO_HINT = f"Kirim foto atau /{FINISH_COMMAND}"
_HOW_TO = (
    "Cara melapor:\n"
    "1. Tulis masalahnya: apa yang terjadi dan sejak kapan.\n"
    "2. Kirim lokasinya (📎 › Lokasi) atau ketik alamatnya.\n"
    f"3. Kirim foto, atau ketik /{FINISH_COMMAND} bila tidak ada foto.\n\n"
    "Perintah:\n"
    "/status <nomor tiket> – cek perkembangan laporan\n"
    "/start – mulai laporan baru\n"
    "/bantuan – tampilkan pesan ini"
)


def after_part(step: Step, *, ticket: str | None) -> BotMessage:
    """The bot's answer once a part is stored. `ticket`: the stored part's own ticket for a problem (the
    first part of a complaint, whose ticket the report keeps), otherwise the one the question quoted."""
    for_ticket = f" untuk tiket {ticket}" if ticket else ""
    if step is Step.PROBLEM:
        opening = f"Laporan Anda kami catat dengan nomor tiket {ticket}." if ticket else "Laporan Anda kami catat."
        return BotMessage(f"{opening}\n\n{_LOCATION_QUESTION}", force_reply="Alamat lokasi masalah")
    if step is Step.LOCATION:
        return BotMessage(f"Lokasi{for_ticket} kami terima.\n\n{_PHOTO_QUESTION}", force_reply=_PHOTO_HINT)
    if step is Step.DETAIL:
        return BotMessage(f"Keterangan tambahan{for_ticket} kami terima.\n\n{_PHOTO_QUESTION}", force_reply=_PHOTO_HINT)
    if step is Step.ALBUM_PHOTO:
        return BotMessage(
            f"{PHOTO_MARK} Foto{for_ticket} kami terima. Kirim foto lain, atau ketik /{FINISH_COMMAND} "
            "bila laporan sudah lengkap."
        )
    if ticket:
        return BotMessage(
            f"Terima kasih! Laporan Anda dengan nomor tiket {ticket} sudah lengkap dan akan diperiksa petugas.\n"
            f"Cek perkembangannya kapan saja dengan /status {ticket}"
        )
    if step is Step.FINISH:
        # Not an answer to our question: there may be no complaint under way at all.
        return BotMessage(
            "Baik. Jika Anda sedang membuat laporan, laporan itu sekarang kami proses; nomor tiketnya ada di "
            "pesan kami sebelumnya. Untuk laporan baru, ceritakan masalahnya."
        )
    return BotMessage(
        "Terima kasih! Laporan Anda sudah lengkap dan akan diperiksa petugas.\n"
        "Nomor tiketnya ada di pesan kami sebelumnya; cek perkembangannya dengan /status <nomor tiket>."
    )


def greeting(first_name: str | None) -> BotMessage:
    name = f", {first_name.strip()[:64]}" if first_name and first_name.strip() else ""
    return BotMessage(
        f"Halo{name}! Ini layanan pengaduan warga DKI Jakarta.\n\n"
        "Ceritakan masalah yang ingin Anda laporkan: apa yang terjadi, dan sejak kapan?"
    )


def help_text() -> BotMessage:
    return BotMessage(_HOW_TO)


def unknown_command(name: str) -> BotMessage:
    return BotMessage(f"Perintah /{name[:32]} tidak kami kenal.\n\n{_HOW_TO}")


def unsupported(what: str) -> BotMessage:
    return BotMessage(
        f"Maaf, {what} belum dapat kami terima. Kirim teks, lokasi, atau foto; ketik /bantuan untuk cara melapor."
    )


def status_usage() -> BotMessage:
    return BotMessage(f"Tulis nomor tiketnya setelah /status, misalnya: /status {EXAMPLE_TICKET}")


def status_not_found(code: str) -> BotMessage:
    return BotMessage(
        f"Tiket {code[:40]} tidak kami temukan. Periksa kembali nomornya (contoh: /status {EXAMPLE_TICKET})."
    )


def status_unavailable() -> BotMessage:
    return BotMessage("Maaf, status tiket sedang tidak dapat dicek. Silakan coba lagi beberapa saat lagi.")


_STATE_WORDS = {
    "received": "sudah kami terima dan sedang diproses",
    "pending_review": "menunggu pemeriksaan petugas",
    "approved": "disetujui dan sedang diteruskan ke instansi terkait",
    "rejected": "tidak dapat kami tindak lanjuti",
    "forwarded": "sudah diteruskan ke instansi terkait",
    "crm_failed": "sedang diteruskan ke instansi terkait",
    "in_progress": "sedang ditindaklanjuti",
    "resolved": "selesai ditangani",
}
_MONTHS = ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
           "November", "Desember")  # fmt: skip
#: Western Indonesia Time; Jakarta keeps no daylight saving, so a fixed offset is exact.
WIB = timezone(timedelta(hours=7), "WIB")


def status_answer(status: TicketStatus) -> BotMessage:
    updated = status.updated_at.astimezone(WIB)
    when = f"{updated.day} {_MONTHS[updated.month - 1]} {updated.year}, {updated:%H.%M} WIB"
    lines = [f"Tiket {status.ticket}: {_STATE_WORDS.get(status.state, status.state.replace('_', ' '))}."]
    if status.agency_unit:
        lines.append(f"Instansi: {status.agency_unit}")
    lines += [f"Diperbarui: {when}", f"Rincian: {status.status_url}"]
    return BotMessage("\n".join(lines))

"""The admin pages' words in Bahasa Indonesia (the default) and English.

Templates call `t("key", name=value)`; the text is autoescaped like any other value. Each page module
adds its own words at import with `register({...})`, so no module edits another's catalogue:

    register({"queue.title": {"id": "Antrean laporan", "en": "Report queue"}})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal, cast

from review_queue.tables import AdminUser

Lang = Literal["id", "en"]
LANGUAGES: tuple[Lang, ...] = ("id", "en")
DEFAULT_LANG: Lang = "id"
#: Each language's name written in itself, for the language switch.
LANGUAGE_NAMES: dict[Lang, str] = {"id": "Bahasa Indonesia", "en": "English"}

_catalogue: dict[str, dict[Lang, str]] = {}


class MissingTranslation(KeyError):
    """A template asked for a key no module registered; add it with `register`."""


def register(messages: Mapping[str, Mapping[str, str]]) -> None:
    """Add `key -> {"id": text, "en": text}` entries. Both languages are required; a key may not change.

    Placeholders are `str.format` fields: `{count}` in the text, `t("key", count=3)` in the template.
    """
    for key, texts in messages.items():
        missing = [lang for lang in LANGUAGES if not texts.get(lang)]
        if missing:
            raise ValueError(f"i18n key {key!r}: no text for {', '.join(missing)}; give both id and en")
        entry = {lang: texts[lang] for lang in LANGUAGES}
        if key in _catalogue and _catalogue[key] != entry:
            raise ValueError(f"i18n key {key!r} is already registered with other texts; pick another key")
        _catalogue[key] = entry


def translate(key: str, lang: Lang, **params: object) -> str:
    """The text of `key` in `lang`, with `params` filled in."""
    try:
        text = _catalogue[key][lang]
    except KeyError:
        raise MissingTranslation(
            f"no admin text {key!r}; register it with review_queue.web.i18n.register in the page's module"
        ) from None
    return text.format(**params) if params else text


def as_lang(value: object) -> Lang | None:
    """`value` if it names a supported language, else None."""
    return cast(Lang, value) if value in LANGUAGES else None


def language_of(admin: AdminUser | None) -> Lang:
    """The admin's chosen language; Bahasa Indonesia for nobody or an unknown value."""
    return (as_lang(admin.language) if admin is not None else None) or DEFAULT_LANG


register(
    {
        # navigation: the pages themselves come from their own modules
        "nav.label": {"id": "Menu utama", "en": "Main menu"},
        "nav.queue": {"id": "Antrean", "en": "Queue"},
        "nav.intake": {"id": "Input loket", "en": "Walk-in"},
        "nav.dashboard": {"id": "Dasbor", "en": "Dashboard"},
        "nav.audit": {"id": "Audit", "en": "Audit"},
        "app.name": {"id": "Kanal Admin", "en": "Kanal Admin"},
        # roles
        "role.superadmin": {"id": "Superadmin", "en": "Superadmin"},
        "role.reviewer": {"id": "Peninjau", "en": "Reviewer"},
        "role.viewer": {"id": "Pemantau (hanya baca)", "en": "Viewer (read only)"},
        "role.channel_admin": {"id": "Admin kanal", "en": "Channel admin"},
        "role.wilayah_admin": {"id": "Admin wilayah", "en": "Area admin"},
        "scope.label": {"id": "Cakupan", "en": "Scope"},
        # sign-in
        "login.title": {"id": "Masuk", "en": "Sign in"},
        "login.username": {"id": "Nama pengguna", "en": "Username"},
        "login.password": {"id": "Kata sandi", "en": "Password"},
        "login.submit": {"id": "Masuk", "en": "Sign in"},
        "login.failed": {
            "id": "Nama pengguna atau kata sandi salah, atau akun sedang dikunci sementara. Periksa lalu coba "
            "lagi; setelah beberapa kali gagal, tunggu {minutes} menit.",
            "en": "Wrong username or password, or the account is locked for a while. Check and try again; after "
            "several failures, wait {minutes} minutes.",
        },
        "login.throttled": {
            "id": "Terlalu banyak percobaan masuk yang gagal dari alamat ini. Tunggu beberapa menit lalu coba lagi.",
            "en": "Too many failed sign-ins from this address. Wait a few minutes and try again.",
        },
        "login.expired": {
            "id": "Sesi Anda berakhir. Silakan masuk lagi.",
            "en": "Your session has ended. Please sign in again.",
        },
        "logout.submit": {"id": "Keluar", "en": "Sign out"},
        "language.switch": {"id": "Bahasa", "en": "Language"},
        # error pages
        "error.back": {"id": "Kembali ke halaman utama", "en": "Back to the main page"},
        "error.csrf.title": {"id": "Formulir kedaluwarsa", "en": "Form expired"},
        "error.csrf.message": {
            "id": "Formulir ini tidak dapat diterima karena sudah kedaluwarsa atau dibuka di sesi lain. Muat "
            "ulang halaman lalu coba lagi.",
            "en": "This form could not be accepted: it has expired or belongs to another session. Reload the "
            "page and try again.",
        },
        "error.forbidden.title": {"id": "Tidak diizinkan", "en": "Not allowed"},
        "error.forbidden.message": {
            "id": "Peran Anda ({role}) hanya boleh melihat laporan, tidak mengubahnya. Minta superadmin jika "
            "Anda perlu memproses laporan.",
            "en": "Your role ({role}) may read reports but not act on them. Ask a superadmin if you need to.",
        },
        "error.too_large.title": {"id": "Kiriman terlalu besar", "en": "Upload too large"},
        "error.too_large.message": {
            "id": "Kiriman melebihi {megabytes} MB. Kurangi ukuran atau jumlah lampiran lalu kirim lagi.",
            "en": "The form is larger than {megabytes} MB. Send fewer or smaller attachments.",
        },
    }
)

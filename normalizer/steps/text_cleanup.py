"""Text cleanup: what a citizen wrote, without markup, e-mail quoting or signatures; and its analysis form.

`CleanText` sets three things on the draft:

- ``text``: readable and still the citizen's own words (no slang expanded, handles and links kept),
  minus what they did not write for us: HTML markup and entities, control characters, the quoted
  message they replied to, the signature block, "Sent from my iPhone" lines and a closing
  ("Salam,\\nBudi") that ends the message. The original stays in ``draft.original.text``.
- ``analysis_text``: `normalizer.textforms.analysis_form` of the cleaned text.
- ``ticket_refs``: Kanal ticket codes and CRM report numbers the message mentions, so a follow-up
  ("Melanjutkan laporan No. JK2305290094") can be joined to its report. They are looked for before
  the quoted reply is removed: a citizen answering our acknowledgement quotes the code we sent.

Removal is cautious, because losing a complaint's words is worse than keeping a signature: nothing is
removed when it would leave the message empty, a closing is removed only when it is at the end and
followed by nothing but a short name, and quoting is recognised only by the shapes mail clients write.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterator
from html.parser import HTMLParser

from gateway.ids import canonical_ticket_code
from normalizer.pipeline import Decision, Draft
from normalizer.textforms import explained_analysis_form

_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title"})
_LOOKS_LIKE_HTML = re.compile(r"<\s*(?:[a-zA-Z][a-zA-Z0-9]*)(?:\s[^<>]*)?/?\s*>")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS and self._skipping:
            self._skipping -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def tidy(text: str) -> str:
    """Unicode NFC, no control characters, single spaces, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n").replace("\r", "\n"))
    # The per-character filter is the slow part; isprintable() (in C) proves most texts need none.
    if not text.replace("\n", "").replace("\t", "").replace(" ", "").isprintable():
        text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    # Most texts have single spaces only: replacing each by itself would cost more than the check.
    if "  " in text or "\t" in text or "\u00a0" in text:
        text = _SPACES.sub(" ", text)
    if "\n" not in text:
        return text.strip()
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


# --- E-mail quoting and signatures -------------------------------------------------------------
# Lines are matched after `tidy`, so they carry no leading or trailing blanks ("-- " is now "--").

_QUOTED = re.compile(r">")
# "On Mon, 3 Jun 2024 at 10:15, Budi <budi@x.id> wrote:" / "Pada Sen, 3 Jun 2024 pukul 10.15 ... menulis:";
# Gmail wraps a long one over two or three lines, so the end may come on a later line.
_ATTRIBUTION_START = re.compile(r"(?:on|pada)\b", re.IGNORECASE)
_ATTRIBUTION_END = re.compile(r"(?:wrote|menulis)\s*:$", re.IGNORECASE)
_ORIGINAL_MESSAGE = re.compile(
    r"-{2,}\s*(?:original message|pesan asli|pesan awal|forwarded by .*)\s*-{2,}", re.IGNORECASE
)
_HEADER_FROM = re.compile(r"(?:from|dari)\s*:", re.IGNORECASE)
_HEADER_SENT = re.compile(r"(?:sent|date|dikirim|terkirim|tanggal)\s*:", re.IGNORECASE)
_HEADER_SENT_INLINE = re.compile(r"\b(?:sent|dikirim|terkirim)\s*:", re.IGNORECASE)
_UNDERSCORES = re.compile(r"_{10,}")
_SIGNATURE_DELIMITER = re.compile(r"--")
_SENT_FROM_DEVICE = re.compile(
    r"(?:sent from my\b|sent from (?:yahoo|outlook|mail|gmail|samsung)\b|sent via\b|get outlook for\b"
    r"|dikirim dari (?:iphone|ipad|android|samsung|galaxy|yahoo|outlook|gmail|ponsel|hp|perangkat|smartphone"
    r"|xiaomi|redmi|oppo|vivo|huawei|realme|mail)\b).{0,50}",
    re.IGNORECASE,
)
_CLOSING = re.compile(
    r"(?:salam(?: hormat| hangat| sejahtera)?|hormat (?:saya|kami)|wass?alam\S*|(?:best |kind |warm )?regards|tabik)"
    r"\b[,.!]*\s*(?P<rest>.*)",
    re.IGNORECASE,
)
# What may follow a closing: a name or a title, not an address or a phone number (those are kept).
_NAME_LIKE = re.compile(r"[^\d@:/]{0,60}")
_MAX_NAME_WORDS = 6
_MAX_SIGNATURE_LINES = 10


def _is_name_like(line: str) -> bool:
    return bool(_NAME_LIKE.fullmatch(line)) and len(line.split()) <= _MAX_NAME_WORDS


def _has_content(lines: list[str]) -> bool:
    return any(lines)


def _reply_cut(lines: list[str]) -> tuple[int, set[int]]:
    """Where the quoted message starts (cut from there), and attribution lines to drop in place.

    An attribution followed by '>' lines is bottom- or inline-quoting: drop the attribution and let
    the '>' rule remove the quote, so the citizen's text after it survives. Otherwise the message
    quoted below the attribution is unmarked (an HTML reply turned to text): cut from there.
    """
    drop: set[int] = set()
    for i, line in enumerate(lines):
        if _ORIGINAL_MESSAGE.fullmatch(line):
            return i, drop
        if _UNDERSCORES.fullmatch(line):
            following = next((x for x in lines[i + 1 :] if x), "")
            if _HEADER_FROM.match(following):
                return i, drop
        if _HEADER_FROM.match(line) and (
            _HEADER_SENT_INLINE.search(line) or any(_HEADER_SENT.match(x) for x in lines[i + 1 : i + 4])
        ):
            return i, drop
        if _ATTRIBUTION_START.match(line):
            for j in range(i, min(i + 3, len(lines))):
                if not lines[j] and j > i:
                    break
                if _ATTRIBUTION_END.search(lines[j]):
                    attribution = " ".join(lines[i : j + 1])
                    if len(attribution) > 300 or not any(ch.isdigit() for ch in attribution):
                        break
                    following = next((x for x in lines[j + 1 :] if x), "")
                    if following.startswith(">"):
                        drop.update(range(i, j + 1))
                        break
                    return i, drop
    return len(lines), drop


def remove_quoting_and_signatures(text: str) -> tuple[str, list[str]]:
    """The text without quoted replies, signature blocks, "Sent from" lines and a final closing."""
    if "\n" not in text:
        return text, []
    lines = text.split("\n")
    done: list[str] = []

    cut, drop = _reply_cut(lines)
    if cut < len(lines) and _has_content(lines[:cut]):
        lines = lines[:cut]
        done.append("removed the quoted message replied to")
    if drop:
        lines = [x for i, x in enumerate(lines) if i not in drop]
        done.append("removed the reply's attribution line")

    quoted = [x for x in lines if _QUOTED.match(x)]
    if quoted and len(quoted) < sum(1 for x in lines if x):
        lines = [x for x in lines if not _QUOTED.match(x)]
        done.append(f"removed {len(quoted)} quoted line{'s' if len(quoted) > 1 else ''}")

    for i in range(len(lines) - 1, 0, -1):
        if _SIGNATURE_DELIMITER.fullmatch(lines[i]):
            if len(lines) - i <= _MAX_SIGNATURE_LINES + 1 and _has_content(lines[:i]):
                lines = lines[:i]
                done.append("removed the signature block")
            break

    devices = [x for x in lines if _SENT_FROM_DEVICE.fullmatch(x)]
    if devices and len(devices) < sum(1 for x in lines if x):
        lines = [x for x in lines if not _SENT_FROM_DEVICE.fullmatch(x)]
        done.append(f"removed '{devices[0]}'")

    closing = _final_closing(lines)
    if closing is not None:
        lines = lines[:closing]
        done.append("removed the closing and name at the end")

    if not done:
        return text, []
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip(), done


def _final_closing(lines: list[str]) -> int | None:
    """Index of a closing line ("Salam,", "Hormat saya, Budi") followed only by a short name, if any."""
    filled = [i for i, x in enumerate(lines) if x]
    for position in range(len(filled) - 1, max(len(filled) - 5, 0), -1):
        i = filled[position]
        match = _CLOSING.fullmatch(lines[i])
        if match is None:
            continue
        after = [lines[j] for j in filled[position + 1 :]]
        if _is_name_like(match.group("rest")) and len(after) <= 3 and all(_is_name_like(x) for x in after):
            return i
        return None
    return None


# --- Ticket references ---------------------------------------------------------------------------

_KANAL_CODE = re.compile(r"(?<![0-9A-Za-z-])([0-9A-Za-z]{5})([- ])([0-9A-Za-z]{5})(?![0-9A-Za-z]|-[0-9A-Za-z])")
_CRM_NUMBER = re.compile(r"(?<![0-9A-Za-z])([A-Za-z]{2})(\d{10})(?![0-9A-Za-z])")
_CUE_WORDS = r"(?:laporan|lapor|aduan|pengaduan|tiket|ticket|kode|ref|referensi|no|nomor|nmr|nomer|id)"
# A cue somewhere shortly before on the same line ("laporan saya kemarin K7F3Q 9Q2MX") ...
_CUE_NEAR = re.compile(r"\b" + _CUE_WORDS + r"\b[^\n]{0,30}$|#\s?$", re.IGNORECASE)
# ... or right before it ("No. K7F3Q-9Q2MX", "tiket: K7F3Q-9Q2MX", "#K7F3Q-9Q2MX").
_CUE_ADJACENT = re.compile(r"(?:\b" + _CUE_WORDS + r"\b[\s.:#]{0,4}|#\s?)$", re.IGNORECASE)
# Words that announce a number, right before it ("no k7f3q 9q2mx", "tiket: ..."): after one of them even
# a code without a digit (2% of codes) is taken, if every letter is in the code alphabet.
_NUMBER_CUE_ADJACENT = re.compile(
    r"(?:\b(?:no|nomor|nmr|nomer|tiket|ticket|kode|ref)\b[\s.:#]{0,4}|#\s?)$", re.IGNORECASE
)
_STRICT_CROCKFORD = frozenset("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
# Two letters and ten digits that are a phone number or a measure, not a CRM report number.
_NOT_CRM_PREFIXES = frozenset({"HP", "WA", "TL", "TP", "RP", "RT", "RW", "KM", "NO", "ID"})


def _cue_before(text: str, start: int, pattern: re.Pattern[str]) -> bool:
    return pattern.search(text, max(0, start - 45), start) is not None


def _accept_kanal_code(text: str, match: re.Match[str]) -> str:
    first, separator, second = match.groups()
    code = first + second
    canonical = canonical_ticket_code(code)
    if not canonical:
        return ""
    if first[:2].upper() in ("RT", "RW") and first[2:].isdigit():
        return ""  # "RT005 RW003" is an address
    has_digit = any(ch.isdigit() for ch in code)
    has_letter = any(ch.isalpha() for ch in code)
    if not has_digit:
        # Two five-letter words ("jalan rusak") are far likelier than a code without a digit: only
        # right after a word announcing a number, and only in the code's own alphabet (no I, L, O, U:
        # "jalan" and "rusak" fail that).
        in_alphabet = set(code.upper()) <= _STRICT_CROCKFORD
        return canonical if in_alphabet and _cue_before(text, match.start(), _NUMBER_CUE_ADJACENT) else ""
    if separator == "-":
        return canonical if has_letter or _cue_before(text, match.start(), _CUE_NEAR) else ""
    # Space-separated: a post code and a town ("12950 DEPOK") look the same, unless the code comes right
    # after its cue, or both halves or one mixed half carry digits.
    if _cue_before(text, match.start(), _CUE_ADJACENT):
        return canonical
    if not _cue_before(text, match.start(), _CUE_NEAR):
        return ""
    both_have_digits = any(ch.isdigit() for ch in first) and any(ch.isdigit() for ch in second)
    mixed = any(any(ch.isdigit() for ch in g) and any(ch.isalpha() for ch in g) for g in (first, second))
    return canonical if both_have_digits or (code.isupper() and mixed) else ""


def _accept_crm_number(text: str, match: re.Match[str]) -> str:
    letters, digits = match.groups()
    if letters.upper() in _NOT_CRM_PREFIXES:
        return ""
    if letters.isupper() or _cue_before(text, match.start(), _CUE_NEAR):
        return letters.upper() + digits
    return ""


# Cheap signs that a code may be present: scanning for them first keeps the candidate regexes (slow,
# because they must be tried at every letter) off the ordinary message.
_DASHED_CODE_HINT = re.compile(r"-(?<=[0-9A-Za-z]{5}-)[0-9A-Za-z]{5}")
_DIGIT_RUN = re.compile(r"\d+")
_NUMBER_CUE_HINTS = ("no.", "no ", "no:", "nomor", "nmr", "nomer", "tiket", "ticket", "kode", "ref")
_CUE_HINTS = ("lapor", "aduan", "id ")
_HASH_CODE_HINT = re.compile(r"# ?[0-9A-Za-z]{5} [0-9A-Za-z]{5}")
_TEN_DIGITS = re.compile(r"\d{10}")


def _has_five_character_token_with_digit(text: str) -> bool:
    """Whether some digits sit in a token of exactly five letters and digits, as in half a ticket code."""
    for run in _DIGIT_RUN.finditer(text):
        if run.end() - run.start() > 5:
            continue
        start, end = run.start(), run.end()
        while start > 0 and end - start < 6 and text[start - 1].isalnum():
            start -= 1
        while end < len(text) and end - start < 6 and text[end].isalnum():
            end += 1
        if end - start == 5 and not (start and text[start - 1].isalnum()) and not text[end : end + 1].isalnum():
            return True
    return False


def _kanal_codes(text: str) -> Iterator[tuple[int, str]]:
    # Rejected candidates may overlap real ones ("tiket k7f3q 9q2mx" first offers "tiket k7f3q"), so
    # the search resumes one character on, not after the rejected match.
    lowered = text.lower()
    spaced = (
        any(cue in lowered for cue in _NUMBER_CUE_HINTS)
        or _HASH_CODE_HINT.search(text) is not None
        or (any(cue in lowered for cue in _CUE_HINTS) and _has_five_character_token_with_digit(text))
    )
    if not spaced and not _DASHED_CODE_HINT.search(text):
        return
    position = 0
    while (match := _KANAL_CODE.search(text, position)) is not None:
        code = _accept_kanal_code(text, match)
        if code:
            yield match.start(), code
        position = match.end() if code else match.start() + 1


def _crm_numbers(text: str) -> Iterator[tuple[int, str]]:
    if not _TEN_DIGITS.search(text):
        return
    for match in _CRM_NUMBER.finditer(text):
        code = _accept_crm_number(text, match)
        if code:
            yield match.start(), code


def find_ticket_refs(text: str) -> list[str]:
    """Kanal ticket codes (canonical `XXXXX-XXXXX`) and CRM numbers (`JK2305290094`), in text order."""
    found = sorted([*_kanal_codes(text), *_crm_numbers(text)])
    return list(dict.fromkeys(code for _, code in found))


# --- The step ------------------------------------------------------------------------------------


class CleanText:
    """Cleans the text for reading, derives its analysis form and finds the tickets it refers to."""

    name = "clean_text"

    def __call__(self, draft: Draft) -> None:
        text = draft.text
        reasons = []
        if _LOOKS_LIKE_HTML.search(text):
            text = html_to_text(text)
            reasons.append("removed HTML markup")
        elif "&" in text and html.unescape(text) != text:
            text = html.unescape(text)
            reasons.append("decoded HTML entities")
        text = tidy(text)
        refs = find_ticket_refs(text)
        text, removed = remove_quoting_and_signatures(text)
        reasons.extend(removed)
        if text != draft.text and not reasons:
            reasons.append("tidied whitespace and control characters")
        draft.text = text
        if reasons:
            draft.decide(Decision(step=self.name, field="text", value=None, reason="; ".join(reasons)))

        draft.analysis_text, notes = explained_analysis_form(text)
        if notes:
            draft.decide(Decision(step=self.name, field="analysis_text", value=None, reason="; ".join(notes)))

        if refs:
            draft.ticket_refs = refs
            draft.decide(
                Decision(
                    step=self.name,
                    field="ticket_refs",
                    value=refs,
                    reason="the message mentions ticket " + ", ".join(refs) + ": it may follow up an earlier report",
                )
            )

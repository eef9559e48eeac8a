"""Masking: personal data replaced by placeholders an admin understands, in what goes onward.

`mask_personal_data(text)` is pure and reusable (the report text, and any other free text sent to the
CRM, the feed or a status page); `MaskPersonalData` applies it to ``draft.text`` and fills
``draft.text_masked`` and ``draft.masked_kinds``.

What is masked, kind -> placeholder, in the order the detectors claim text (an earlier one wins an
overlap):

============  =====================  ===============================================================
kind          placeholder            recognised as
============  =====================  ===============================================================
email         [email]                an e-mail address
npwp          [NPWP]                 tax number 12.345.678.9-012.345, or 15/16 digits after "NPWP"
account       [rekening]             8-18 digits after "rek"/"rekening"/"norek" (+ an optional bank)
passport      [paspor]               a letter or two and 7-8 digits after "paspor"/"passport"
bpjs          [BPJS]                 11-13 digits after "BPJS"
kk            [KK]                   16 digits after "KK" / "kartu keluarga"
nik           [NIK]                  16 digits after "NIK"/"KTP", or 16 digits whose first two are a
                                     province code (11-19, 21, 31-36, 51-53, 61-65, 71-76, 81-82, 91-97)
card          [nomor kartu]          16 digits after a card word, or passing the Luhn check
id_number     [nomor identitas]      any other 16 digits
phone         [telepon]              +62 / 62 / 0 numbers, 9-13 digits in national form, in the
                                     groupings people write ("+62 812-3456-7890", "(021) 345 6789",
                                     "0812.3456.7890"); other "+" numbers of 8-15 digits
============  =====================  ===============================================================

Sixteen digits are always masked, whatever the province code says: a NIK with a typo, a KK, a card
or an account number identify a person just as well, while complaints have no other reason to carry
a 16-digit number. The province code and the cue words only choose the placeholder.

Never masked, because admins and agencies need them: dates (17-08-2024, 2024/08/17), times, RT/RW,
house and road numbers, km markers, years, money ("Rp 1.500.000"), Kanal ticket codes (K7F3Q-9Q2MX)
and CRM numbers (JK2305290094), vehicle plates (evidence in parking and traffic complaints) and
@handles (public by choice). A text without personal data comes back unchanged, byte for byte.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Final

from normalizer.pipeline import Decision, Draft

PLACEHOLDERS: Final[dict[str, str]] = {
    "email": "[email]",
    "npwp": "[NPWP]",
    "account": "[rekening]",
    "passport": "[paspor]",
    "bpjs": "[BPJS]",
    "kk": "[KK]",
    "nik": "[NIK]",
    "card": "[nomor kartu]",
    "id_number": "[nomor identitas]",
    "phone": "[telepon]",
}

# Kemendagri province codes, including the Papua provinces created in 2022.
PROVINCE_CODES: Final = frozenset(
    str(code)
    for code in (11, 12, 13, 14, 15, 16, 17, 18, 19, 21, 31, 32, 33, 34, 35, 36, 51, 52, 53, 61, 62, 63, 64, 65,
                 71, 72, 73, 74, 75, 76, 81, 82, 91, 92, 93, 94, 95, 96, 97)
)  # fmt: skip

_Span = tuple[int, int, str]

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,}(?![\w-])")
_NPWP_DOTTED = re.compile(r"(?<![\d.])\d{2}\.\d{3}\.\d{3}\.\d[-.]\d{3}\.\d{3}(?![\d])")
# Cue-led numbers: the cue is kept ("NPWP: [NPWP]"), only the number (group 1) is masked.
_CUE_TAIL = r"(?:\s*(?:no\.?|nomor|number|nr|kartu))?\s*[:.]?\s*"
_NPWP_CUED = re.compile(r"(?i:\bnpwp\b)" + _CUE_TAIL + r"(\d[\d .-]{13,22}\d)(?![\d])")
_ACCOUNT_CUED = re.compile(
    r"(?i:\b(?:no(?:mor)?\.?\s*)?(?:rekening|rek|norek|account|acc)\b\.?)(?:\s+(?:bank\s+)?[A-Za-z]{2,12}){0,2}"
    + _CUE_TAIL
    + r"(\d[\d .-]{6,22}\d)(?![\d])"
)
_PASSPORT_CUED = re.compile(r"(?i:\b(?:paspor|passport|pasport)\b)" + _CUE_TAIL + r"([A-Za-z]{1,2} ?\d{7,8})(?![\d])")
_BPJS_CUED = re.compile(
    r"(?i:\bbpjs\b(?:\s+(?:kesehatan|ketenagakerjaan|tk|kis))?)" + _CUE_TAIL + r"(\d[\d .-]{9,18}\d)(?![\d])"
)
# Sixteen digits, each optionally after one separator; not inside a longer number.
_SIXTEEN = re.compile(r"(?<![\w])(?<!\d[.,/-])[1-9](?:[ .-]?\d){15}(?!\d|[.,/-]\d)")
_SIXTEEN_CUES = re.compile(
    r"\b(?:(?P<kk>kk|kartu keluarga)|(?P<npwp>npwp)|(?P<account>rekening|rek|norek|account)"
    r"|(?P<card>kartu kredit|kartu debit|credit card|debit card|atm|visa|mastercard)"
    r"|(?P<nik>nik|ktp|e-?ktp|nomor induk))\b",
    re.IGNORECASE,
)
# A run that may hold a phone number; the Python below decides where (and whether) one is in it.
_PHONE_RUN = re.compile(r"(?<![\w+])(?:\( ?)?(?:\+ ?)?\d[\d() .-]*")
_DIGIT_GROUP = re.compile(r"\d+")
_PHONE_SEPARATOR = re.compile(r"\)? ?[-.]? ?\(?")
_NATIONAL_PHONE = re.compile(r"0[2-9]\d{7,11}")
_DATE = re.compile(r"(?<!\d)(?:\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d{2}|(?:19|20)\d{2}[./-]\d{1,2}[./-]\d{1,2})(?!\d)")
_MONEY_BEFORE = re.compile(r"(?i:rp|idr)\.? ?$")
_TICKET_SHAPE = re.compile(r"\d{5}-\d{5}")
_DIGITS = "0123456789"
_MIN_DIGITS = 7  # the shortest thing masked by digits: a passport's 7


def _digit_count(text: str) -> int:
    # Ten scans in C beat one Python loop over the characters by an order of magnitude.
    return sum(map(text.count, _DIGITS))


def _luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _emails(text: str) -> Iterator[_Span]:
    for m in _EMAIL.finditer(text):
        yield m.start(), m.end(), "email"


def _cued(pattern: re.Pattern[str], kind: str, low: int, high: int) -> Callable[[str], Iterator[_Span]]:
    def find(text: str) -> Iterator[_Span]:
        for m in pattern.finditer(text):
            digits = sum(ch.isdigit() for ch in m.group(1))
            if low <= digits <= high:
                yield m.start(1), m.end(1), kind

    return find


def _npwp_dotted(text: str) -> Iterator[_Span]:
    for m in _NPWP_DOTTED.finditer(text):
        yield m.start(), m.end(), "npwp"


def _line_before(text: str, start: int, width: int = 40) -> str:
    window = text[max(0, start - width) : start]
    return window[window.rfind("\n") + 1 :]


def _sixteen_digits(text: str) -> Iterator[_Span]:
    for m in _SIXTEEN.finditer(text):
        if _DATE.search(m.group()) or _MONEY_BEFORE.search(_line_before(text, m.start(), 6)):
            continue
        digits = "".join(ch for ch in m.group() if ch.isdigit())
        cues = list(_SIXTEEN_CUES.finditer(_line_before(text, m.start())))
        if cues and cues[-1].lastgroup:
            kind = cues[-1].lastgroup  # the nearest cue names it
        elif digits[:2] in PROVINCE_CODES:
            kind = "nik"
        elif _luhn_valid(digits):
            kind = "card"
        else:
            kind = "id_number"
        yield m.start(), m.end(), kind


def _national_form(digits: str, international: bool, first_group: str) -> str | None:
    """The number as dialled inside Indonesia ("0812..."), "" for a valid foreign number, None if no phone."""
    if digits.startswith("62") and (international or len(first_group) >= 2):
        national = "0" + digits[2:].lstrip("0")  # "+62 (0)812" is written too
    elif international:
        return "" if 8 <= len(digits) <= 15 else None
    elif digits.startswith("0") and len(first_group) >= 3:
        national = digits  # a first group of 3+ ("021", "0812"): "01.08.2024" is a date, not a phone
    else:
        return None
    if not _NATIONAL_PHONE.fullmatch(national) or (national.startswith("08") and len(national) < 10):
        return None
    return national


def _phone_in_run(run: str) -> tuple[int, int] | None:
    """Start and end, within `run`, of the longest phone number starting at its first digit group."""
    groups = list(_DIGIT_GROUP.finditer(run))
    international = "+" in run[: groups[0].start()]
    best: int | None = None
    digits = ""
    for k, group in enumerate(groups):
        if k:
            separator = run[groups[k - 1].end() : group.start()]
            if not _PHONE_SEPARATOR.fullmatch(separator):
                break
            # "0812 3456 7890 2 orang": once a number is whole, a short group after a space is the next word.
            if best is not None and separator == " " and len(group.group()) <= 2:
                break
        digits += group.group()
        if len(digits) > 15:
            break
        if _national_form(digits, international, groups[0].group()) is not None:
            best = k
    if best is None:
        return None
    end = groups[best].end()
    candidate = run[groups[0].start() : end]
    if _DATE.search(candidate) or _TICKET_SHAPE.fullmatch(candidate):
        return None
    return 0, end


def _phones(text: str) -> Iterator[_Span]:
    position = 0
    while (m := _PHONE_RUN.search(text, position)) is not None:
        found = None if _MONEY_BEFORE.search(_line_before(text, m.start(), 6)) else _phone_in_run(m.group())
        if found is not None:
            start, end = m.start() + found[0], m.start() + found[1]
            yield start, end, "phone"
            position = end
        else:
            # Try again from the next digit group: "2 0812 3456 7890" holds a phone after the 2.
            first = _DIGIT_GROUP.search(text, m.start())
            position = first.end() if first is not None else m.end()


# Each detector with the cheap check that must pass before it runs: a cue word in the lower-cased
# text, or a run of 9+ digits with the separators numbers are written with (every phone, NIK and
# NPWP has one). Ordinary messages then cost a few substring searches.
_DENSE_DIGITS = re.compile(r"\d(?:[ .()+-]{0,3}\d){8}")
_Detector = Callable[[str], Iterator[_Span]]
_CUED_DETECTORS: Final[tuple[tuple[tuple[str, ...], _Detector], ...]] = (
    (("npwp",), _cued(_NPWP_CUED, "npwp", 15, 16)),
    (("rek", "acc"), _cued(_ACCOUNT_CUED, "account", 8, 18)),
    (("pasp", "passp"), _cued(_PASSPORT_CUED, "passport", 7, 8)),
    (("bpjs",), _cued(_BPJS_CUED, "bpjs", 11, 13)),
)
_DENSE_DETECTORS: Final[tuple[_Detector, ...]] = (_npwp_dotted, _sixteen_digits, _phones)


def find_personal_data(text: str) -> list[_Span]:
    """(start, end, kind) of each piece of personal data in `text`, in text order, not overlapping."""
    detectors: list[_Detector] = []
    if "@" in text:
        detectors.append(_emails)
    if _digit_count(text) >= _MIN_DIGITS:
        lowered = text.lower()
        detectors.extend(detect for cues, detect in _CUED_DETECTORS if any(cue in lowered for cue in cues))
        if _DENSE_DIGITS.search(text):
            detectors.extend(_DENSE_DETECTORS)
    claimed: list[_Span] = []
    for detect in detectors:
        for start, end, kind in detect(text):
            if all(end <= s or start >= e for s, e, _ in claimed):
                claimed.append((start, end, kind))
    return sorted(claimed)


def mask_personal_data(text: str) -> tuple[str, list[str]]:
    """`text` with personal data replaced by placeholders, and the kinds masked (first appearance, once each).

    Without personal data the very same string comes back.
    """
    return _replace(text, find_personal_data(text))


def _replace(text: str, spans: list[_Span]) -> tuple[str, list[str]]:
    if not spans:
        return text, []
    parts: list[str] = []
    position = 0
    for start, end, kind in spans:
        parts.append(text[position:start])
        parts.append(PLACEHOLDERS[kind])
        position = end
    parts.append(text[position:])
    return "".join(parts), list(dict.fromkeys(kind for _, _, kind in spans))


class MaskPersonalData:
    """Fills `text_masked` and `masked_kinds`; the decision counts what was masked, never shows it."""

    name = "masking"

    def __call__(self, draft: Draft) -> None:
        spans = find_personal_data(draft.text)
        draft.text_masked, draft.masked_kinds = _replace(draft.text, spans)
        if draft.masked_kinds:
            counts = Counter(kind for _, _, kind in spans)
            draft.decide(
                Decision(
                    step=self.name,
                    field="text_masked",
                    value=list(draft.masked_kinds),
                    reason="masked " + ", ".join(f"{counts[k]} {k}" for k in draft.masked_kinds),
                )
            )

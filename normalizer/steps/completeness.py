"""Completeness: can an agency act on this report as it stands? A 0-100 score and what is missing.

``draft.missing`` holds stable reason codes, in this order, so the review queue can filter on them and
"ask the citizen" can send the matching request (`REASONS` has an English line for the admin and an
Indonesian one for the citizen):

- ``too_short``: fewer than `MIN_MEANINGFUL_WORDS` meaningful words (greetings, "tolong", "pak",
  @handles, links and little function words do not count).
- ``no_concrete_problem``: no problem word ("rusak", "banjir", "sampah", ...; see `PROBLEM_STEMS`,
  matched with Indonesian affixes) and the routing step did not pick a category with confidence.
- ``location_below_kelurahan``: the place step did not get to a kelurahan (precision below
  KELURAHAN). Coordinates inside Jakarta's bounding box count as located only while the place step
  has not judged the place (no evidence on it): the place step's polygon lookup is the real check,
  and it leaves coordinates outside Jakarta at precision NONE.
- ``no_photo``: no image among the media (by content type, or by file extension when the channel
  gives no type). A video alone does not count: agencies ask for a photo.

Points: description 20, concrete problem 20, location 40, photo 20.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from adapters.contract import MediaRef
from normalizer.pipeline import Decision, Draft, PlacePrecision
from normalizer.textforms import analysis_form


@dataclass(frozen=True)
class Reason:
    """One thing a report lacks: a stable code, a line for the admin, a request for the citizen."""

    code: str
    admin_text: str
    citizen_text: str


MIN_MEANINGFUL_WORDS: Final = 4
REASONS: Final[dict[str, Reason]] = {
    r.code: r
    for r in (
        Reason(
            "too_short",
            f"the description is too short (fewer than {MIN_MEANINGFUL_WORDS} meaningful words)",
            "Mohon jelaskan masalahnya lebih lengkap: apa yang terjadi dan sejak kapan.",
        ),
        Reason(
            "no_concrete_problem",
            "the message names no concrete problem",
            "Mohon sebutkan masalahnya, misalnya jalan berlubang, lampu jalan mati atau sampah menumpuk.",
        ),
        Reason(
            "location_below_kelurahan",
            "the location is not precise enough (no kelurahan, street or coordinates in Jakarta)",
            "Mohon lengkapi lokasinya: nama jalan, RT/RW dan kelurahan, atau kirimkan titik lokasi (share location).",
        ),
        Reason(
            "no_photo",
            "there is no photo",
            "Mohon kirimkan foto kondisi di lokasi.",
        ),
    )
}
POINTS: Final = {"too_short": 20, "no_concrete_problem": 20, "location_below_kelurahan": 40, "no_photo": 20}

#: Problem words, as stems: a word counts when it is a stem with the usual prefixes and suffixes
#: ("kerusakan", "berlubang", "tersumbat", "kebanjiran", "mematikan").
PROBLEM_STEMS: Final = (
    "rusak", "bolong", "lubang", "retak", "ambles", "amblas", "longsor", "jebol", "pecah", "patah", "putus",
    "mati", "padam", "gelap", "korslet", "korsleting", "menjuntai", "semrawut", "miring", "roboh", "runtuh",
    "ambruk", "tumbang", "copot", "lepas", "hilang", "dicuri", "curi", "banjir", "genang", "tergenang",
    "luap", "meluap", "rembes", "bocor", "mampet", "sumbat", "tersumbat", "tumpah", "sampah", "limbah",
    "bangkai", "kotor", "kumuh", "becek", "lumpur", "bau", "busuk", "asap", "polusi", "bising", "berisik",
    "macet", "parkir", "liar", "ilegal", "pungli", "pungut", "tilang", "ngetem", "mangkal", "menghalangi",
    "halang", "terhalang", "tutup", "blokir", "serobot", "bahaya", "rawan", "kecelakaan",
    "tabrak", "kebakaran", "bakar", "terbakar", "nyamuk", "jentik", "tikus", "kecoa", "ular", "gelandangan",
    "pengemis", "pedagang", "pkl", "tawuran", "begal", "copet", "maling", "pencurian", "kriminal", "mabuk",
    "judi", "narkoba", "rokok", "antre", "antri", "lambat", "telat", "terlambat", "ditolak",
    "tolak", "mahal", "kekurangan", "keruh", "kering", "mogok",
    "kasar", "tidak menyala", "tidak nyala", "tidak berfungsi", "tidak mengalir",
    "tidak diangkut", "tidak keluar",
)  # fmt: skip
_PREFIXES: Final = ("", "ke", "ber", "be", "ter", "te", "di", "me", "mem", "men", "meng", "meny", "pe", "pem", "pen",
                    "peng", "per", "se")  # fmt: skip
_SUFFIXES: Final = ("", "an", "kan", "i", "nya", "annya", "kannya", "lah")
# Every affixed form, built once (about 15,000 strings): a set lookup per word is far cheaper than a
# regex alternation of stems tried at every word start.
_PROBLEM_FORMS: Final = frozenset(
    p + stem + s for stem in PROBLEM_STEMS if " " not in stem for p in _PREFIXES for s in _SUFFIXES
)
_PROBLEM_PHRASES = re.compile(r"\b(?:" + "|".join(stem for stem in PROBLEM_STEMS if " " in stem) + r")\b")
_LOWER_WORD = re.compile(r"[a-z]+")
# Words that carry no description: greetings, politeness, forms of address, small function words.
_FILLER: Final = frozenset(
    (
        "tolong", "mohon", "pak", "bu", "bapak", "ibu", "kak", "kakak", "min", "admin", "mimin", "gan", "sis", "bro",
        "halo", "hai", "hallo", "selamat", "pagi", "siang", "sore", "malam", "assalamualaikum", "terima", "kasih",
        "makasih", "trims", "thanks", "thx", "please", "pls", "dong", "deh", "sih", "nih", "ya", "yah", "lho", "kok",
        "di", "ke", "dari", "yang", "dan", "atau", "ini", "itu", "ada", "sudah", "udah", "juga", "dengan", "untuk",
        "pada", "nya", "aja", "saja", "yg", "dgn", "utk", "sdh", "lagi", "lg", "sangat", "banget", "bgt", "sekali",
        "segera", "cepat", "kami", "saya", "kita", "aku", "gue", "gw", "tuh",
    )
)  # fmt: skip
_IMAGE_EXTENSIONS: Final = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif", ".gif", ".bmp")
# Jakarta's bounding box, Kepulauan Seribu included: a coarse check for when no place step has run.
_JAKARTA_LAT = (-6.38, -5.19)
_JAKARTA_LNG = (106.38, 106.98)


def meaningful_words(analysis_text: str) -> list[str]:
    """The words of an analysis form that describe something: no fillers, no one-letter words.

    Counted on the analysis form, so links and handles are already gone and "tlg" is the filler
    "tolong"; an expanded abbreviation counts as what it stands for ("PJU" is three words).
    """
    return [w for w in _LOWER_WORD.findall(analysis_text) if len(w) > 1 and w not in _FILLER]


def names_a_problem(draft: Draft, analysis_text: str) -> bool:
    routing = draft.routing
    if routing.category_code is not None and not routing.needs_choice:
        return True  # the classifier is confident, so the text describes something it knows
    if not _PROBLEM_FORMS.isdisjoint(_LOWER_WORD.findall(analysis_text)):
        return True
    return "tidak" in analysis_text and _PROBLEM_PHRASES.search(analysis_text) is not None


def is_located(draft: Draft) -> bool:
    if draft.place.precision.rank >= PlacePrecision.KELURAHAN.rank:
        return True
    location = draft.location
    if location is None or location.lat is None or location.lng is None:
        return False
    if draft.place.evidence:
        return False  # the place step looked at this place and could not put it in a kelurahan
    return _JAKARTA_LAT[0] <= location.lat <= _JAKARTA_LAT[1] and _JAKARTA_LNG[0] <= location.lng <= _JAKARTA_LNG[1]


def is_image(media: MediaRef) -> bool:
    if media.content_type:
        return media.content_type.lower().startswith("image/")
    name = (media.filename or media.url.split("?", 1)[0]).lower()
    return name.endswith(_IMAGE_EXTENSIONS)


class ScoreCompleteness:
    """Scores 0-100 and lists what is missing as stable codes; the decision says it in plain English."""

    name = "completeness"

    def __call__(self, draft: Draft) -> None:
        # A draft built by hand (tests, replays) may have no analysis form yet.
        analysis_text = draft.analysis_text or analysis_form(draft.text)
        words = len(meaningful_words(analysis_text))
        missing = []
        if words < MIN_MEANINGFUL_WORDS:
            missing.append("too_short")
        if not names_a_problem(draft, analysis_text):
            missing.append("no_concrete_problem")
        if not is_located(draft):
            missing.append("location_below_kelurahan")
        if not any(is_image(m) for m in draft.media):
            missing.append("no_photo")
        score = 100 - sum(POINTS[code] for code in missing)
        draft.completeness = score
        draft.missing = missing
        if missing:
            details = [REASONS[code].admin_text for code in missing]
            if "too_short" in missing:
                details[0] = (
                    f"the description is too short ({words} meaningful word{'' if words == 1 else 's'},"
                    f" {MIN_MEANINGFUL_WORDS} needed)"
                )
            reason = f"{score}/100; missing: " + "; ".join(details)
        else:
            reason = "complete: a description naming a problem, a location to kelurahan level and a photo"
        draft.decide(Decision(step=self.name, field="completeness", value=score, reason=reason))

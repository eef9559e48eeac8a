"""Place: where in Jakarta the problem is, from the words, the address field and the coordinates.

What the step reads:
- the message (`draft.analysis_text`, or `draft.text` lower-cased when the analysis form is empty)
  and the channel's free-text address (`draft.location.address`);
- the original `draft.text` / address, only to see capitals and to spell a street as written;
- the coordinates (`draft.location.lat/lng`), mapped to a kelurahan by its polygon.

How names are trusted (the rule an admin can check against the evidence):
1. Names are matched whole, as word sequences (1-4 words), longest first; a word of a name is never
   a match by itself ("Pulau", "Rawa", "Kali" alone are nothing).
2. A name may carry one typo (one letter inserted, dropped, changed or two swapped) only if it
   has 6 letters or more, and the mistyped word is not itself an ordinary word.
3. Words inside a street name ("Jl. Kramat Raya") never count as a kelurahan or kecamatan: streets
   cross boundaries, and taking the area from the street would invent a place.
4. Risky names, those made only of ordinary words ("Pasar Baru", "Gunung", "Tengah") or listed in
   `gazetteer.RISKY_NAMES` ("Menteng", "Senen", "Pluit", "Makasar"), count only with a place cue
   right before them ("di", "ke", "kel.", "kec.", "daerah", "wilayah", "sekitar", a street or RT/RW
   just before, ...), with every word capitalised in the original text (not as the first word of a
   sentence, not in text that capitalises everything), next to another place mention they belong
   to ("menteng jakpus"), or when they come from the address field.
5. A name that means several regions (Gambir the kelurahan and the kecamatan; "Gandaria" for
   Gandaria Selatan and Utara) is narrowed by an explicit "kel."/"kec." cue, then by the other
   mentions and the coordinates; what stays ambiguous is cut back to the levels all readings share.
6. Coordinates inside a Jakarta kelurahan win over the text, and a disagreement is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from normalizer.gazetteer import COMMON_WORDS, PROVINCE_CODE, Gazetteer, NameKey, Region, load_gazetteer, word_set
from normalizer.pipeline import Decision, Draft, Place, PlacePrecision
from normalizer.textforms import analysis_form

_SPLIT = re.compile(r"([^a-z0-9]+)")
_ORIGINAL_WORD = re.compile(r"[^\W_]+")

# Punctuation that ends a phrase: a name never spans it. A full stop ends one too, except after an
# abbreviation ("Kep. Seribu", "Jl. Kramat").
_HARD_BREAK = re.compile(r"[,;:!?()\[\]{}\n\"'|]")
_ABBREVIATIONS = word_set("jl jln gg kel kec kab kep kota no kav dr ir h hj kh prof st adm")

_KELURAHAN_CUES = word_set("kel kelurahan kelurahaan lurah desa")
_KECAMATAN_CUES = word_set("kec kecamatan kecamatn camat")
_KOTA_CUES = word_set("kota kotamadya kodya kab kabupaten")
# Words after which a name is meant as a place.
_PLACE_CUES = (
    word_set(
        """
    di ke dari daerah wilayah sekitar sekitaran seputar kawasan area dekat warga lokasi alamat tinggal menuju arah
    stasiun terminal halte kampung perumahan komplek kompleks
    """
    )
    | _KELURAHAN_CUES
    | _KECAMATAN_CUES
    | _KOTA_CUES
)

_STREET_MARKERS = {"jl": "Jl.", "jln": "Jl.", "jalan": "Jl.", "jlan": "Jl.", "gg": "Gg.", "gang": "Gg."}
_HOUSE_NUMBER = word_set("no nomor nmr nomer")
_KILOMETRE = word_set("km kilometer")
# Words that end a street name: cues, positions, function words, and what people say about roads.
_STREET_END = (
    word_set(
        """
        rt rw blok kav di dekat depan belakang samping seberang sebelah arah menuju dari ke dan atau yang sudah
        belum tidak gak ga nggak ada ini itu tersebut sejak mohon tolong pak bu sangat banyak rusak berlubang
        bolong licin macet banjir tergenang gelap sempit mati ditutup diperbaiki tepatnya persis sekitar arah
        jakarta jkt jakut jaksel jakpus jakbar jaktim dki kep pulau kepulauan nya kaki tikus pintas alternatif
        keluar masuk pulang pergi terus lagi santai sama bareng pelan cepat lurus belok buntu tembus tiap setiap
        sering selalu juga saja aja kok kenapa mengapa karena utk untuk buat sampai hingga jadi bikin
        """
    )
    | _HOUSE_NUMBER
    | _KILOMETRE
    | _KELURAHAN_CUES
    | _KECAMATAN_CUES
    | _KOTA_CUES
    | frozenset(_STREET_MARKERS)
)
# Streets are named; "jalan raya", "jalan utama", "jalan tol" alone describe a road, not name one.
_GENERIC_STREET_WORDS = word_set("raya utama besar kecil tol umum setapak lingkungan protokol baru lama layang")

_RT_RW_PAIR = re.compile(r"(?<![a-z])rt\s*[./]\s*rw\.?\s*:?\s*(\d{1,3})\s*[/.\-]\s*(\d{1,3})(?!\d)")
_RT = re.compile(r"(?<![a-z])rt\s*[.:]?\s*(\d{1,3})(?!\d)")
_RW = re.compile(r"(?<![a-z])rw\s*[.:]?\s*(\d{1,3})(?!\d)")

_PRECISION_OF_LEVEL = {
    "kota": PlacePrecision.KOTA,
    "kecamatan": PlacePrecision.KECAMATAN,
    "kelurahan": PlacePrecision.KELURAHAN,
}

# Confidence of the decision, by how the place was found.
CONFIDENCE_POINT = 0.95
CONFIDENCE_POINT_DISPUTED = 0.85
CONFIDENCE_EXACT = 0.9
CONFIDENCE_CAPITALS_ONLY = 0.8
CONFIDENCE_TYPO = 0.75
CONFIDENCE_AMBIGUOUS = 0.6
CONFIDENCE_CONFLICT = 0.5
CONFIDENCE_NO_PLACE = 0.8
CONFIDENCE_STREET_ONLY = 0.4


@dataclass
class _Segment:
    """One text the step reads: the message or the address field."""

    source: str  # "message" or "address"
    words: list[str]
    #: breaks[i]: a phrase boundary lies just before words[i].
    breaks: list[bool]
    #: dots[i]: a full stop or colon lies just before words[i] (allowed between a cue and its name).
    dots: list[bool]
    original: str


@dataclass
class _Mention:
    segment: _Segment
    start: int
    end: int
    key: NameKey
    typo: bool
    cue_level: str | None
    cued: bool
    capitalised: bool
    risky: bool = False
    candidates: list[str] = field(default_factory=list)
    accepted: bool = False
    node: str = PROVINCE_CODE
    note: str = ""

    @property
    def written(self) -> str:
        return " ".join(self.segment.words[self.start : self.end])


@dataclass
class _Street:
    display: str
    written: str


class FindPlace:
    """Fills `draft.place` with the codes, names, street and RT/RW the message gives, and explains them."""

    name = "place"

    def __init__(self, gazetteer: Gazetteer | None = None) -> None:
        self.gazetteer = gazetteer or load_gazetteer()

    def __call__(self, draft: Draft) -> None:
        g = self.gazetteer
        segments = []
        location = draft.location
        if location is not None and location.address and location.address.strip():
            segments.append(_segment("address", analysis_form(location.address), location.address))
        segments.append(_segment("message", draft.analysis_text or draft.text.lower(), draft.text))

        evidence: list[str] = []
        street: _Street | None = None
        rt = rw = None
        mentions: list[_Mention] = []
        for segment in segments:
            excluded, cue_after, found = _find_streets(segment, g)
            if street is None and found:
                street = found[0]
            if rt is None:
                rt, rw, rt_written = _find_rt_rw(segment.original.lower())
                if rt is not None:
                    evidence.append(f"{_rt_rw_text(rt, rw)} from '{rt_written}' in the {segment.source}")
            mentions += self._find_names(segment, excluded, cue_after)
        if street is not None:
            evidence.append(f"street '{street.display}' from '{street.written}'")

        point_region = None
        point_text = None
        if location is not None and location.lat is not None and location.lng is not None:
            point_text = f"({round(location.lat, 5)}, {round(location.lng, 5)})"
            point_region = g.kelurahan_at(location.lat, location.lng)
            if point_region is None:
                evidence.append(f"coordinates {point_text} are outside Jakarta (no kelurahan contains them)")

        notes: list[str] = []
        text_code, confidence = self._resolve(mentions, point_region, evidence, notes)
        code = text_code
        if point_region is not None:
            confidence = CONFIDENCE_POINT
            evidence.append(f"coordinates {point_text} inside kelurahan {point_region.name}")
            if text_code is not None and not g.contains(text_code, point_region.code):
                described = _describe(g.region(text_code))
                evidence.append(
                    f"the text points to {described}, but the coordinates are inside kelurahan "
                    f"{point_region.name}; used the coordinates"
                )
                confidence = CONFIDENCE_POINT_DISPUTED
            code = point_region.code

        place = self._place(code, point=point_region is not None, street=street, rt=rt, rw=rw, evidence=evidence)
        draft.place = place
        if place.precision is PlacePrecision.NONE:
            has_street = street is not None or rt is not None
            reason = "only a street or RT/RW, no kelurahan, kecamatan or kota" if has_street else "no place found"
            if evidence or notes:
                reason += ": " + "; ".join(evidence + notes)
            value = None
            if has_street:
                confidence = CONFIDENCE_STREET_ONLY
        else:
            value = place.kelurahan_code or place.kecamatan_code or place.kota_code
            reason = f"{place.precision.value} precision: " + "; ".join(evidence + notes)
        draft.decide(Decision(step=self.name, field="place", value=value, reason=reason, confidence=confidence))

    # -- names ---------------------------------------------------------------------------------------

    def _find_names(self, segment: _Segment, excluded: set[int], cue_after: set[int]) -> list[_Mention]:
        g = self.gazetteer
        words = segment.words
        found: list[_Mention] = []
        next_free = 0
        name_starts = g.name_starts
        split_heads = g.split_heads
        # Most words start no name: find the few that may, then read from there.
        candidates = [k for k, word in enumerate(words) if name_starts(word) or word in split_heads]
        for i in candidates:
            if i < next_free or i in excluded:
                continue
            match = self._match_at(segment, i, excluded)
            if match is None:
                continue
            key, length, typo = match
            cue_level, cued = _cue_before(segment, i)
            mention = _Mention(
                segment=segment,
                start=i,
                end=i + length,
                key=key,
                typo=typo,
                cue_level=cue_level,
                cued=cued or i in cue_after,
                capitalised=False,
                candidates=list(key.codes),
            )
            # "kali baru" for Kalibaru: a name written apart into ordinary words is as risky as they are.
            split_into_words = length != len(key.tokens) and all(w in COMMON_WORDS for w in words[i : i + length])
            risky = key.risky or split_into_words
            if risky and not mention.cued and segment.source != "address":
                mention.capitalised = _capitalised(segment, words[i : i + length])
            mention.risky = risky
            mention.accepted = not risky or mention.cued or mention.capitalised or segment.source == "address"
            found.append(mention)
            next_free = i + length
        # A risky name right beside a trusted mention it belongs to ("menteng jakpus") is trusted too.
        for k, mention in enumerate(found):
            if mention.accepted:
                continue
            for other in found[max(0, k - 1) : k + 2]:
                if other is mention or not other.accepted:
                    continue
                gap = other.start - mention.end if other.start >= mention.end else mention.start - other.end
                if gap <= 1 and any(
                    g.contains(a, b) or g.contains(b, a) for a in mention.key.codes for b in other.key.codes
                ):
                    mention.accepted = True
                    mention.cued = True
        return found

    def _match_at(self, segment: _Segment, i: int, excluded: set[int]) -> tuple[NameKey, int, bool] | None:
        """The longest name starting at word i, preferring an exact spelling over one with a typo."""
        g = self.gazetteer
        words = segment.words
        first = words[i]
        best: tuple[NameKey, int, bool] | None = None
        for start, typo_in_first in g.name_starts(first):
            for key in g.by_first.get(start, ()):
                length = len(key.tokens)
                if best is not None and (length < best[1] or (length == best[1] and not best[2])):
                    break
                if not self._fits(segment, i, key, typo_in_first, excluded):
                    continue
                typo = typo_in_first or any(words[i + j] != key.tokens[j] for j in range(1, length))
                candidate = (key, length, typo)
                if best is None or length > best[1] or (length == best[1] and best[2] and not typo):
                    best = candidate
        # "kramat jati", "pulo gadung": a one-word name written as two words.
        if i + 1 < len(words) and not segment.breaks[i + 1] and i + 1 not in excluded:
            joined = g.keys.get((first + words[i + 1],))
            if joined is not None and (best is None or best[1] < 2 or (best[1] == 2 and best[2])):
                best = (joined, 2, False)
        return best

    def _fits(self, segment: _Segment, i: int, key: NameKey, typo_in_first: bool, excluded: set[int]) -> bool:
        g = self.gazetteer
        words = segment.words
        length = len(key.tokens)
        if i + length > len(words):
            return False
        typos = 1 if typo_in_first else 0
        for j in range(1, length):
            if segment.breaks[i + j] or (i + j) in excluded:
                return False
            word = words[i + j]
            if word == key.tokens[j]:
                continue
            typos += 1
            if typos > 1 or not g.may_be_typo(word) or key.tokens[j] not in g.typo_candidates(word):
                return False
        return typos == 0 or key.letters >= 6

    # -- resolution ----------------------------------------------------------------------------------

    def _resolve(
        self, mentions: list[_Mention], point: Region | None, evidence: list[str], notes: list[str]
    ) -> tuple[str | None, float]:
        """The deepest code the text supports with certainty, and the decision's confidence.

        Evidence for the place goes to `evidence`; names set aside as ordinary words go to `notes`
        (the decision's reason), so an admin reading the place is not shown words that led nowhere.
        """
        g = self.gazetteer
        used = [m for m in mentions if m.accepted]
        for m in mentions:
            if not m.accepted:
                notes.append(
                    f"'{m.written}' could be {_describe_codes(g, m.key.codes)}, but reads as ordinary words here "
                    "(no place cue, no capitals); not used"
                )
        if not used:
            return None, CONFIDENCE_NO_PLACE
        confidence = CONFIDENCE_EXACT

        # 1. An explicit "kel."/"kec."/"kota" before a name chooses among its readings.
        for m in used:
            if m.cue_level is not None and len(m.candidates) > 1:
                at_level = [c for c in m.candidates if g.region(c).level == m.cue_level]
                if at_level:
                    m.candidates = at_level
                    m.note = f"'{m.cue_level}' cue"
        # 2. The other mentions and the coordinates choose among what is left.
        for m in used:
            if len(m.candidates) < 2:
                continue
            others = [o for o in used if o is not m]

            def support(code: str, others: list[_Mention] = others) -> int:
                related = sum(
                    1 for o in others if any(g.contains(code, c) or g.contains(c, code) for c in o.candidates)
                )
                if point is not None and g.contains(code, point.code):
                    related += 2
                return related

            scores = {c: support(c) for c in m.candidates}
            best = max(scores.values())
            if best > 0:
                kept = [c for c in m.candidates if scores[c] == best]
                if len(kept) < len(m.candidates):
                    m.candidates = kept
                    m.note = "other place mentions" if point is None else "other mentions and the coordinates"
        # 3. Each mention stands for what all its remaining readings share.
        for m in used:
            m.node = g.common_ancestor(m.candidates)
            how = " with one typo" if m.typo else ""
            cue = f" (chosen by the {m.note})" if m.note else ""
            if len(m.candidates) == 1:
                evidence.append(f"'{m.written}' matched {_describe(g.region(m.node))}{how}{cue}")
            elif m.node == PROVINCE_CODE:
                evidence.append(
                    f"'{m.written}' could be {_describe_codes(g, m.candidates)}{how}, which share no kota; not used"
                )
            else:
                evidence.append(
                    f"'{m.written}' could be {_describe_codes(g, m.candidates)}{how}; "
                    f"kept only {_describe(g.region(m.node))}, which they share"
                )
                confidence = min(confidence, CONFIDENCE_AMBIGUOUS)
            if m.typo:
                confidence = min(confidence, CONFIDENCE_TYPO)
        used = [m for m in used if m.node != PROVINCE_CODE]
        if not used:
            return None, CONFIDENCE_AMBIGUOUS
        if all(m.risky and not m.cued and m.segment.source != "address" for m in used):
            # Only capitals vouch for these names: likely a place, but ordinary words are capitalised too.
            confidence = min(confidence, CONFIDENCE_CAPITALS_ONLY)

        # 4. Combine: the deepest mention agreeing with the most others.
        def agreeing(m: _Mention) -> list[_Mention]:
            return [o for o in used if g.contains(o.node, m.node) or g.contains(m.node, o.node)]

        ranked = sorted(
            used,
            key=lambda m: (-len(agreeing(m)), -g.region(m.node).depth, not m.cued, m.typo, m.segment.source, m.start),
        )
        top = ranked[0]
        chosen = top.node
        top_score = (len(agreeing(top)), g.region(top.node).depth)
        rivals = [
            m
            for m in ranked[1:]
            if (len(agreeing(m)), g.region(m.node).depth) == top_score
            and m.node != top.node
            and not (g.contains(m.node, top.node) or g.contains(top.node, m.node))
        ]
        if rivals:
            chosen = g.common_ancestor([top.node, *(m.node for m in rivals)])
            names = ", ".join(_describe(g.region(m.node)) for m in [top, *rivals])
            if chosen == PROVINCE_CODE:
                evidence.append(f"the text names places that disagree ({names}); none kept")
                return None, CONFIDENCE_CONFLICT
            evidence.append(f"the text names places that disagree ({names}); kept {_describe(g.region(chosen))}")
            return chosen, min(confidence, CONFIDENCE_CONFLICT)
        for m in used:
            if m not in agreeing(top):
                evidence.append(f"'{m.written}' ({_describe(g.region(m.node))}) disagrees with the rest; not used")
                confidence = min(confidence, CONFIDENCE_CONFLICT)
        return chosen, confidence

    # -- output --------------------------------------------------------------------------------------

    def _place(
        self,
        code: str | None,
        *,
        point: bool,
        street: _Street | None,
        rt: str | None,
        rw: str | None,
        evidence: list[str],
    ) -> Place:
        place = Place(street=street.display if street else None, rt=rt, rw=rw, evidence=evidence)
        level = None
        if code is not None:
            for region in self.gazetteer.lineage(code):
                setattr(place, f"{region.level}_code", region.code)
                setattr(place, f"{region.level}_name", region.name)
            level = self.gazetteer.region(code).level
        if point:
            place.precision = PlacePrecision.POINT
        elif level == "kelurahan" and (street is not None or rt is not None):
            place.precision = PlacePrecision.STREET
        elif level is not None:
            place.precision = _PRECISION_OF_LEVEL[level]
        parts = []
        if street is not None:
            parts.append(street.display)
        if rt is not None:
            parts.append(_rt_rw_text(rt, rw))
        if place.kelurahan_name:
            parts.append(f"Kel. {place.kelurahan_name}")
        if place.kecamatan_name:
            parts.append(f"Kec. {place.kecamatan_name}")
        if place.kota_code:
            parts.append(self.gazetteer.region(place.kota_code).short_name)
        place.address_text = ", ".join(parts) or None
        return place


# -- helpers -----------------------------------------------------------------------------------------


def _segment(source: str, analysis: str, original: str) -> _Segment:
    parts = _SPLIT.split(analysis.lower())
    # parts alternates word, separator, word, ...; the first and last may be empty.
    if not parts[0]:
        parts = parts[1:]
    words = parts[0::2]
    separators = parts[1::2]
    if words and not words[-1]:
        words.pop()
    breaks = [True]
    dots = [False]
    for k in range(1, len(words)):
        separator = separators[k - 1]
        if separator == " ":  # by far the most common: no break, no dot
            breaks.append(False)
            dots.append(False)
            continue
        dot = "." in separator
        dots.append(dot or ":" in separator)
        breaks.append(_HARD_BREAK.search(separator) is not None or (dot and words[k - 1] not in _ABBREVIATIONS))
    return _Segment(source=source, words=words, breaks=breaks[: len(words)], dots=dots[: len(words)], original=original)


def _cue_before(segment: _Segment, i: int) -> tuple[str | None, bool]:
    """The level named just before word i ("kel.", "kecamatan", "kota"), and whether any place cue is there."""
    if i == 0 or (segment.breaks[i] and not segment.dots[i]):
        return None, False
    previous = segment.words[i - 1]
    if previous in _KELURAHAN_CUES:
        return "kelurahan", True
    if previous in _KECAMATAN_CUES:
        return "kecamatan", True
    if previous in _KOTA_CUES:
        return "kota", True
    return None, previous in _PLACE_CUES


def _capitalised(segment: _Segment, tokens: list[str]) -> bool:
    """Every word capitalised in the original, not opening a sentence, in text that does not capitalise all."""
    text = segment.original
    matches = list(_ORIGINAL_WORD.finditer(text))
    lowered = [m.group().lower() for m in matches]
    # "KH", "H." count as capitalised; a longer word in capitals is shouting, not a name.
    capital = [m.group()[0].isupper() and (len(m.group()) <= 3 or not m.group().isupper()) for m in matches]
    if len(matches) >= 5 and sum(capital) / len(matches) > 0.6:
        return False  # Title Case Everywhere says nothing about names
    n = len(tokens)
    for j in range(len(matches) - n + 1):
        if lowered[j : j + n] != tokens or not all(capital[j : j + n]):
            continue
        before = text[: matches[j].start()].rstrip()
        opens_sentence = not before or before[-1] in "!?\n"
        if before.endswith(".") and not (j > 0 and lowered[j - 1] in _ABBREVIATIONS):
            opens_sentence = True  # a full stop, unless it closes "Jl." or "Kel."
        if n == 1 and opens_sentence:
            continue
        return True
    return False


def _find_streets(segment: _Segment, g: Gazetteer) -> tuple[set[int], set[int], list[_Street]]:
    """Street mentions: the word indices they cover, the index just after each, and how to write them."""
    words = segment.words
    excluded: set[int] = set()
    after: set[int] = set()
    streets: list[_Street] = []
    next_free = 0
    for i in [k for k, word in enumerate(words) if word in _STREET_MARKERS]:
        if i < next_free:
            continue
        marker = _STREET_MARKERS[words[i]]
        j = i + 1
        name: list[str] = []
        while j < len(words) and len(name) < 5:
            word = words[j]
            if (segment.breaks[j] and not (name == [] or _is_abbreviation(name[-1]))) or word in _STREET_END:
                break
            if word.isdigit() or not word.isalnum():
                break
            name.append(word)
            j += 1
            if word == "raya" and len(name) > 1:
                break
        number = None
        if name and j < len(words) and not (segment.breaks[j] and not segment.dots[j]):
            word = words[j]
            if word in _HOUSE_NUMBER and j + 1 < len(words) and words[j + 1][:1].isdigit():
                number, j = f"No. {words[j + 1].upper()}", j + 2
            elif word in _KILOMETRE and j + 1 < len(words) and words[j + 1].isdigit():
                number, j = f"Km {words[j + 1]}", j + 2
            elif word.isdigit() and len(word) <= 4:
                number, j = f"No. {word}", j + 1
        if not name or not _is_street_name(segment, g, name, number):
            continue
        display = f"{marker} {' '.join(_as_written(segment.original, name))}" + (f" {number}" if number else "")
        streets.append(_Street(display=display, written=" ".join(words[i:j])))
        excluded.update(range(i, j))
        after.add(j)
        next_free = j
    return excluded, after, streets


def _is_abbreviation(word: str) -> bool:
    return len(word) <= 3 and word.isalpha()


def _is_street_name(segment: _Segment, g: Gazetteer, name: list[str], number: str | None) -> bool:
    """ "jalan rusak" is a road; "Jalan Kramat Raya", "jln kebon sirih no 12" name one."""
    if all(w in _GENERIC_STREET_WORDS for w in name):
        return False
    if number is not None or "raya" in name or _abbreviated(segment.original, name):
        return True
    # A lower-case "jalan kebon sirih" is a street when its words are a Jakarta name.
    return _capitalised(segment, name[:1]) or tuple(name) in g.keys


def _abbreviated(original: str, name: list[str]) -> bool:
    """Whether the writer put "Jl."/"Jln"/"Gg." before the name: people abbreviate street names, not roads.

    Read from the original because the analysis form may already have expanded "jl." to "jalan".
    """
    lowered = [w.lower() for w in _ORIGINAL_WORD.findall(original)]
    n = len(name)
    return any(
        lowered[j] in ("jl", "jln", "gg") and lowered[j + 1 : j + 1 + n] == name for j in range(len(lowered) - n)
    )


def _as_written(original: str, name: list[str]) -> list[str]:
    """The street's words with the writer's capitals when they used some, else capitalised."""
    matches = _ORIGINAL_WORD.findall(original)
    lowered = [m.lower() for m in matches]
    n = len(name)
    for j in range(len(matches) - n + 1):
        if lowered[j : j + n] == name:
            out = []
            for word in matches[j : j + n]:
                keep = word != word.lower() and not (word.isupper() and len(word) > 3)
                out.append(word if keep else word.capitalize())
            return out
    return [w.upper() if len(w) <= 2 and w not in ("di",) else w.capitalize() for w in name]


def _find_rt_rw(text: str) -> tuple[str | None, str | None, str]:
    pair = _RT_RW_PAIR.search(text)
    if pair:
        rt, rw = _three(pair.group(1)), _three(pair.group(2))
        if rt and rw:
            return rt, rw, pair.group(0)
    rt_match = _RT.search(text)
    rw_match = _RW.search(text)
    rt = _three(rt_match.group(1)) if rt_match else None
    rw = _three(rw_match.group(1)) if rw_match else None
    if rt is None:
        return None, None, ""
    assert rt_match is not None  # rt is set only from a match
    written = rt_match.group(0)
    if rw_match is not None and rw is not None and rw_match.start() > rt_match.start():
        written = text[rt_match.start() : rw_match.end()]
    return rt, rw, written.strip()


def _three(number: str) -> str | None:
    value = int(number)
    return f"{value:03d}" if value > 0 else None


def _rt_rw_text(rt: str, rw: str | None) -> str:
    return f"RT {rt}/RW {rw}" if rw else f"RT {rt}"


def _describe(region: Region) -> str:
    if region.level == "kota":
        return region.name
    return f"{region.level} {region.name} ({region.code})"


def _describe_codes(g: Gazetteer, codes: list[str] | tuple[str, ...]) -> str:
    described = [_describe(g.region(c)) for c in codes]
    return " or ".join(described)

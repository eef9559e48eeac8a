"""The analysis form of a text: what the matching steps (place, routing, duplicates) read.

Lower case, slang and abbreviations expanded, repeated letters folded, so that "jln rusak parah gk
diperbaiki2" and "Jalan rusak parah, tidak diperbaiki" look alike to every step after cleanup.
`analysis_form` is the only function that makes this form: the pipeline and the routing model's
training both call it, so what a model learned from is what it is later shown.

What it does, in order (each rule is tested in tests/normalizer/test_text_cleanup.py):

1. Links and handles go: URLs, e-mail addresses and @handles carry no complaint words and would
   only feed the matchers noise (a handle like @humasjaksel is an addressee, not a place).
2. Hashtags become words: ``#JalanRusak`` -> ``jalan rusak`` (split on CamelCase, ``_`` and a
   letters-then-digits boundary); an all-lower-case tag cannot be split and stays one word.
3. Lower case.
4. Letters repeated 3 or more times fold to one ("parahhhh" -> "parah", "tolooong" -> "tolong").
   Runs of two are never touched ("saat", "maaf", "tinggi"). When folding to one would break a word
   whose spelling has a double letter, the double is kept if the word is in `DOUBLE_LETTER_WORDS`
   ("maaaaf" -> "maaf", "tungggu" -> "tunggu"). Roman numerals ("gang kenari iii") are not folded.
5. Reduplication written with a 2: "bolong2" -> "bolong-bolong", "anak2nya" -> "anak-anaknya";
   on a word with a verbal prefix the 2 is dropped ("diperbaiki2" -> "diperbaiki"), because the
   base form is what matchers know and rebuilding "diperbaiki-perbaiki" needs a morphology we do
   not have. Words usually followed by a number ("lantai2", "blok2") are left alone.
6. Slang and abbreviations from ``data/slang_id.tsv``, whole words only ("jln" -> "jalan", "gk" ->
   "tidak", "TL" -> "tindak lanjut"); an abbreviation's dot goes with it ("Jl. Sudirman" ->
   "jalan sudirman").
7. Blanks: single spaces, lines kept (an address on its own line stays on its own line).
"""

from __future__ import annotations

import re
from importlib import resources
from typing import Final

SLANG_TABLE: Final = "slang_id.tsv"
_KEY = re.compile(r"[a-z]+")


def load_slang(table: str, *, source: str = SLANG_TABLE) -> dict[str, str]:
    """Parse a slang table (`slang<TAB>expansion` lines, '#' comments); errors name the line."""
    slang: dict[str, str] = {}
    for number, raw in enumerate(table.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2:
            raise ValueError(f"{source}:{number}: expected 'slang<TAB>expansion', got {raw!r}")
        key, expansion = parts[0].strip(), " ".join(parts[1].split())
        if not _KEY.fullmatch(key):
            raise ValueError(f"{source}:{number}: key {key!r} must be lower-case letters a-z only")
        if not expansion:
            raise ValueError(f"{source}:{number}: key {key!r} has an empty expansion")
        if key in slang:
            raise ValueError(f"{source}:{number}: key {key!r} is listed twice")
        slang[key] = expansion
    return slang


SLANG: Final[dict[str, str]] = load_slang(
    resources.files("normalizer").joinpath("data", SLANG_TABLE).read_text(encoding="utf-8")
)

#: Words spelled with a double letter that folding a 3+ run to one letter would break.
DOUBLE_LETTER_WORDS: Final = frozenset(
    {
        "maaf", "saat", "taat", "manfaat", "bermanfaat", "alloh", "allah", "tinggi", "tunggu", "minggu",
        "anggota", "tanggal", "pinggir", "ganggu", "gangguan", "mengganggu", "terganggu", "tanggung",
        "tanggap", "sanggup", "panggil", "tenggelam", "langgar", "melanggar", "pelanggaran", "tangga",
        "tetangga", "linggis", "punggung", "singgah", "unggah", "sungguh", "tinggal", "ditinggal",
    }
)  # fmt: skip

# Step 1: links and handles. Patterns start with a literal or a small character set (checks that
# must look behind come after it), so the regex engine can skip ahead instead of trying every position.
_URL = re.compile(r"(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)[^\s<>\"]+")
_SHORT_HOSTS = ("t.co/", "pic.twitter.com/", "bit.ly/", "s.id/", "wa.me/")
_SHORT_URL = re.compile(r"(?<![\w.])(?:t\.co|pic\.twitter\.com|bit\.ly|s\.id|wa\.me)/[^\s<>\"]*")
_EMAIL_DOMAIN = re.compile(r"@[\w-]+\.[A-Za-z]")
_EMAIL = re.compile(r"[\w.+-]+@(?:[\w-]+\.)+[A-Za-z]{2,}")
# An @ not preceded by a word character, a dot or another @ (an e-mail's @ is gone by then anyway).
_MENTION = re.compile(r"@(?<![\w.@]@)\w+")
_LEADING_MENTIONS = re.compile(r"\A(?:[ \t]*(?:cc:?[ \t]*)?@\w+[,:]?)+")
_HASHTAG = re.compile(r"#(?<![\w&#]#)([A-Za-z][A-Za-z0-9_]*)")
_HASHTAG_SPLIT = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z][A-Za-z])(?=\d)|_+")
# Step 4.
_RUN = re.compile(r"([a-z])\1\1+")
_ROMAN = re.compile(r"[ivxlcdm]+")
_LETTERS = re.compile(r"[a-z]*")
# Step 5: a 2 glued to two or more letters, with an optional suffix, not followed by more of a word.
_REDUPLICATION = re.compile(r"2(?<=[a-z][a-z]2)(nya|an|kan|lah|kah)?(?!\w)")
_VOWELS = frozenset("aeiou")
_VERBAL_PREFIXES = ("di", "ter", "ber", "me", "ke", "se", "pe")
#: Words that are followed by a number, not doubled, when a 2 is glued on: "lantai2" is floor 2.
_NUMBERED_WORDS = frozenset(
    {"lantai", "lt", "tahap", "blok", "gang", "gg", "no", "nomor", "rt", "rw", "km", "jalur", "koridor", "gedung",
     "pintu", "tol", "kav", "ruang", "kelas", "tower", "unit", "jam", "ke", "sesi", "periode", "tipe", "type"}
)  # fmt: skip


def remove_links_and_handles(text: str) -> str:
    """`text` without URLs, e-mail addresses and @handles (each replaced by a space)."""
    return _Analyser(None).remove_links_and_handles(text)


# Step 6: the text split into letter runs and what lies between them; a run is a word when nothing
# glued to it is a digit, an underscore or another letter ("jl2", "café" are not "jl", "caf").
_NON_LETTERS = re.compile(r"([^a-z]+)")
_ABBREVIATION_DOT = re.compile(r"\.[ \t]*")
_LINE_EDGE_BLANKS = re.compile(r"[ \t]*\n[ \t]*")
_BLANK_RUNS = re.compile(r"[ \t]{2,}")


def _split_hashtag(match: re.Match[str]) -> str:
    return " " + _HASHTAG_SPLIT.sub(" ", match.group(1)) + " "


def _collapse_doubles(word: str) -> str:
    return "".join(ch for i, ch in enumerate(word) if i == 0 or word[i - 1] != ch)


# "maf" -> "maaf": where folding a run to one letter lands on a word whose spelling has a double.
_DOUBLE_BY_FOLDED: Final = {_collapse_doubles(word): word for word in DOUBLE_LETTER_WORDS}


def _first_letter(run: re.Match[str]) -> str:
    return run.group(1)


def _fold_word(word: str) -> str:
    folded = _RUN.sub(_first_letter, word)
    return _DOUBLE_BY_FOLDED.get(folded, folded)


def _reduplicate(word: str, suffix: str) -> str | None:
    """The spelled-out form of `word` + 2 (+ suffix), or None when the 2 is not a reduplication."""
    if word in _NUMBERED_WORDS or not _VOWELS.intersection(word):
        return None
    if not suffix and len(word) >= 5 and word.startswith(_VERBAL_PREFIXES):
        return word
    return f"{word}-{word}{suffix}"


class _Analyser:
    """One pass of `analysis_form`; with `notes`, also says what it changed (for the admin's trace)."""

    def __init__(self, notes: list[str] | None) -> None:
        self.notes = notes
        self.expanded: dict[str, str] = {}
        self.folded: dict[str, str] = {}
        self.doubled: dict[str, str] = {}

    def run(self, text: str) -> str:
        text = self.remove_links_and_handles(text)
        if "#" in text:
            text, n = _HASHTAG.subn(_split_hashtag, text)
            self._count(n, "hashtag", verb="split")
        text = text.lower()
        if _RUN.search(text):
            text = self._fold_runs(text)
        if "2" in text:
            text = self._spell_out_reduplication(text)
        text = self._expand_slang(text)
        if "\n" in text:
            text = _LINE_EDGE_BLANKS.sub("\n", text)
        if "  " in text or "\t" in text:
            text = _BLANK_RUNS.sub(" ", text)
        text = text.strip()
        if self.notes is not None:
            for label, changes in (
                ("folded repeated letters", self.folded),
                ("spelled out reduplication", self.doubled),
                ("expanded", self.expanded),
            ):
                if changes:
                    self.notes.append(f"{label}: " + ", ".join(f"{a}→{b}" for a, b in list(changes.items())[:8]))
        return text

    def remove_links_and_handles(self, text: str) -> str:
        if "://" in text or "www." in text.lower():
            text, n = _URL.subn(" ", text)
            self._count(n, "link")
        if "/" in text and any(host in text for host in _SHORT_HOSTS):
            text, n = _SHORT_URL.subn(" ", text)
            self._count(n, "link")
        if "@" in text:
            if _EMAIL_DOMAIN.search(text):
                text, n = _EMAIL.subn(" ", text)
                self._count(n, "e-mail address")
            text, n = _LEADING_MENTIONS.subn(" ", text)
            if n and self.notes is not None:
                self.notes.append("removed the leading @mentions (a reply's addressees)")
            text, n = _MENTION.subn(" ", text)
            self._count(n, "@mention")
        return text

    def _count(self, n: int, what: str, verb: str = "removed") -> None:
        if n and self.notes is not None:
            self.notes.append(f"{verb} {n} {what}" + ("s" if n > 1 else ""))

    def _fold_runs(self, text: str) -> str:
        parts: list[str] = []
        position = 0
        for run in _RUN.finditer(text):
            if run.start() < position:
                continue  # in a word already folded
            start = run.start()
            while start > position and "a" <= text[start - 1] <= "z":
                start -= 1
            end = _LETTERS.match(text, run.end()).end()  # type: ignore[union-attr]
            word = text[start:end]
            folded = word if _ROMAN.fullmatch(word) else _fold_word(word)
            if self.notes is not None and folded != word:
                self.folded.setdefault(word, folded)
            parts.append(text[position:start])
            parts.append(folded)
            position = end
        parts.append(text[position:])
        return "".join(parts)

    def _spell_out_reduplication(self, text: str) -> str:
        parts: list[str] = []
        position = 0
        for two in _REDUPLICATION.finditer(text):
            start = two.start()
            while start > position and "a" <= text[start - 1] <= "z":
                start -= 1
            if start and (text[start - 1].isalnum() or text[start - 1] in "_-"):
                continue  # part of a longer token: "b2b", "covid-2", "x12"
            word, suffix = text[start : two.start()], two.group(1) or ""
            spelled = _reduplicate(word, suffix)
            if spelled is None:
                continue
            if self.notes is not None:
                self.doubled.setdefault(text[start : two.end()], spelled)
            parts.append(text[position:start])
            parts.append(spelled)
            position = two.end()
        parts.append(text[position:])
        return "".join(parts)

    def _expand_slang(self, text: str) -> str:
        # Splitting once and looking words up in a dict is cheaper than a regex tried at every word start.
        parts = _NON_LETTERS.split(text)
        words = parts[::2]
        if SLANG.keys().isdisjoint(words):
            return text
        last = len(parts) - 1
        for i in [2 * k for k, word in enumerate(words) if word in SLANG]:
            expansion = SLANG[parts[i]]
            before = parts[i - 1][-1:] if i else ""
            after = parts[i + 1][:1] if i < last else ""
            if before.isalnum() or before == "_" or after.isalnum() or after == "_":
                continue
            if self.notes is not None:
                self.expanded.setdefault(parts[i], expansion)
            parts[i] = expansion
            if after == ".":
                # An abbreviation's dot goes with it when more follows on the line ("jl. sudirman",
                # "no. 5"), and stays at the end of a sentence ("... gk.").
                separator = parts[i + 1]
                rest = separator[_ABBREVIATION_DOT.match(separator).end() :]  # type: ignore[union-attr]
                if rest[:1].isdigit() or (not rest and i + 2 <= last and parts[i + 2]):
                    parts[i + 1] = " " + rest
        return "".join(parts)


def analysis_form(text: str) -> str:
    """The text as the matching steps read it (see the module docstring for the rules, in order)."""
    return _Analyser(None).run(text)


def explained_analysis_form(text: str) -> tuple[str, list[str]]:
    """`analysis_form(text)` and a short note per kind of change, for the cleanup step's decision."""
    notes: list[str] = []
    return _Analyser(notes).run(text), notes

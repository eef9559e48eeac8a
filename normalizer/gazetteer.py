"""Jakarta's wilayah as shipped with Kanal: codes, names, parent links, kelurahan polygons, name indexes.

The data (`normalizer/data/wilayah.csv`, `normalizer/data/kelurahan.geojson`, see NOTICE-wilayah.md)
is read once per process by `load_gazetteer()`. Everything a caller gets is immutable, so one
gazetteer is shared by every pipeline and thread.

Codes follow Kemendagri: provinsi `31` > kota/kabupaten `31.71` > kecamatan `31.71.01` > kelurahan
`31.71.01.1001`. Polygons are GeoJSON, so [lng, lat]; lookups take (lat, lng) like people write them.

Name lookups work on *keys*: a name lower-cased and split into word tokens ("kebayoran baru" ->
("kebayoran", "baru")). One key may name several regions (Gambir is a kelurahan and a kecamatan):
the caller resolves that with the hierarchy, the gazetteer only reports it.
"""

from __future__ import annotations

import csv
import json
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Literal, cast

Level = Literal["provinsi", "kota", "kecamatan", "kelurahan"]
LEVEL_DEPTH: dict[str, int] = {"provinsi": 0, "kota": 1, "kecamatan": 2, "kelurahan": 3}
PROVINCE_CODE = "31"
# Words remembered by the per-word caches; a message vocabulary repeats, so this rarely fills.
_CACHE_SIZE = 65536

_WORD = re.compile(r"[a-z0-9]+")
_COMPASS = ("utara", "selatan", "barat", "timur")


def word_set(text: str) -> frozenset[str]:
    """A set of words written as one whitespace-separated block, easier to read and edit than a list."""
    return frozenset(text.split())


# Words of everyday Indonesian that are also (parts of) Jakarta place names. A name made only of
# such words ("Pasar Baru", "Tanah Tinggi", "Kebon Jeruk", "Gunung") reads as ordinary language as
# often as a place, so the place step asks for a place cue or capitalisation before trusting it.
# The list also stops the typo matcher from "correcting" an ordinary word into a name token.
COMMON_WORDS: frozenset[str] = word_set(
    """
    ada agung air aja akan aku alam alur amat ampar anak angin anyar apa apus arus atas atau bada badak bahwa baik
    bali balik bambu banjir banyak bapak barat baru batu bawah bawang bayar beberapa belakang belum benar bendungan
    besar besi bisa buaya budi bukan bukit bulan bunga buruk cepat cina dalam dan dari datang dekat depan desa di
    dia dua dukuh duren duri dusun empat gading galur gang gardu gedong gedung gelap gelora got guntur gunung hari
    harapan hilang hilir hitam ibu ini indah itu jadi jalan jam jati jawa jaya jembatan jeruk juga kacang kakak
    kali kalau kami kampung kamu kapuk karang karena karet kartini kayu ke keagungan kebon kecil kelapa kemarin
    kenari kepala kerja kosong kota kramat kuning lagi lahan lain lalu lama lampu lewat lima lubang luar lurah
    mall malam mampang manis manggis mas masih mati melati melayu menteng minggu muara mulia nama naik namun oleh
    pagi pak pala panjang parit pasar pecah pela pelayanan pinang pohon pondok pos pulau pulo pusat putih raya rawa
    rt rumah rusak rw saja sakit sama sampah sangat sari saluran sawah sekali sekolah selatan sudah sumur sungai
    taman tanah tangki tanjung tapi tebing tempat tengah terang teras tidak tiga timur tinggal tinggi tolong tugu
    tukang turun udara ujung untuk utama utara wetan wijaya kusuma yang
    """
)

# Names that are not ordinary words but are risky all the same: everyday nouns of regional
# speech, people's names, or the names of places outside Jakarta that citizens also write
# ("Makassar", "Sukabumi", "Bintaro" in Tangerang Selatan, "Cibubur" in Depok).
RISKY_NAMES: frozenset[str] = word_set(
    """
    bangka bintaro bungur cibubur rambutan cikini gambir joglo kamal kuningan makasar menteng pancoran paseban pejagalan
    pekayon penggilingan pesanggrahan pluit selong senen serdang setu susukan tambora sukabumi semper
    """
)

# Names made of ordinary words that nobody writes except to mean the place, so they need no cue.
DISTINCTIVE_NAMES: frozenset[str] = word_set(
    """
    bambuapus batuampar bendunganhilir kampungbali kampungmelayu kapukmuara kelapagading kelapagadingbarat
    kelapagadingtimur kotabambu kotabambuselatan kotabambuutara lubangbuaya pondokbambu pondokkelapa pondokpinang
    rawabadak rawabadakselatan rawabadakutara rawabuaya sungaibambu tanjungduren tanjungdurenselatan
    tanjungdurenutara
    """
)


@dataclass(frozen=True, slots=True)
class Region:
    """One wilayah: its Kemendagri code, its official name, its level and its parent's code."""

    code: str
    name: str
    level: Level
    parent: str | None

    @property
    def depth(self) -> int:
        return LEVEL_DEPTH[self.level]

    @property
    def short_name(self) -> str:
        """The name as people write it: "Jakarta Pusat", not "Kota Administrasi Jakarta Pusat"."""
        for prefix in ("Kota Administrasi ", "Kabupaten Administrasi "):
            if self.name.startswith(prefix):
                return self.name[len(prefix) :]
        return self.name


@dataclass(frozen=True, slots=True)
class NameKey:
    """A name people may write, and every region it can mean."""

    tokens: tuple[str, ...]
    codes: tuple[str, ...]
    #: Made of ordinary words (or listed in RISKY_NAMES): trust it only with a cue or a capital.
    risky: bool
    #: Letters in the name, spaces excluded: typos are only forgiven in names of 6 letters or more.
    letters: int


@dataclass(frozen=True, slots=True)
class _Polygon:
    """One polygon of a kelurahan: outer ring then holes, each a tuple of (lng, lat) points."""

    rings: tuple[tuple[tuple[float, float], ...], ...]
    bbox: tuple[float, float, float, float]  # min lng, min lat, max lng, max lat


@dataclass(frozen=True, slots=True)
class _Area:
    code: str
    bbox: tuple[float, float, float, float]
    polygons: tuple[_Polygon, ...]


def normalise_name(text: str) -> tuple[str, ...]:
    """Lower-case word tokens of a name; punctuation and spacing do not matter."""
    return tuple(_WORD.findall(text.lower()))


class Gazetteer:
    """Read-only index of Jakarta's wilayah. Build it with `load_gazetteer()`, not directly."""

    def __init__(self, regions: Iterable[Region], areas: Iterable[_Area], centroids: dict[str, tuple[float, float]]):
        self.regions: dict[str, Region] = {r.code: r for r in regions}
        self._areas = tuple(areas)
        self.centroids = centroids
        lngs = [a.bbox[0] for a in self._areas] + [a.bbox[2] for a in self._areas]
        lats = [a.bbox[1] for a in self._areas] + [a.bbox[3] for a in self._areas]
        self._bbox = (min(lngs), min(lats), max(lngs), max(lats))
        self.keys: dict[tuple[str, ...], NameKey] = _build_keys(self.regions.values())
        #: First token -> the keys starting with it, longest first, so a matcher tries long names first.
        self.by_first: dict[str, tuple[NameKey, ...]] = {}
        grouped: dict[str, list[NameKey]] = defaultdict(list)
        for key in self.keys.values():
            grouped[key.tokens[0]].append(key)
        for first, keys in grouped.items():
            self.by_first[first] = tuple(sorted(keys, key=lambda k: (-len(k.tokens), k.tokens)))
        #: Every token that occurs in some name: such a token is never "corrected" as a typo.
        self.vocabulary: frozenset[str] = frozenset(t for k in self.keys for t in k)
        self._deletions: dict[str, tuple[str, ...]] = _deletion_index(
            t for t in self.vocabulary if len(t) >= 4 and not t.isdigit()
        )
        self._starts_cache: dict[str, tuple[tuple[str, bool], ...]] = {}
        #: Beginnings of one-word names: only such a word can start a name written apart ("kramat jati").
        self.split_heads: frozenset[str] = frozenset(
            k[0][:n] for k in self.keys if len(k) == 1 and len(k[0]) >= 6 for n in range(2, len(k[0]) - 1)
        )

    # -- hierarchy -------------------------------------------------------------------------------

    def region(self, code: str) -> Region:
        return self.regions[code]

    def lineage(self, code: str) -> list[Region]:
        """The region and its ancestors up to (excluding) the provinsi, deepest first."""
        out = []
        current: str | None = code
        while current is not None and current != PROVINCE_CODE:
            region = self.regions[current]
            out.append(region)
            current = region.parent
        return out

    @staticmethod
    def contains(ancestor: str, code: str) -> bool:
        """True if `code` is `ancestor` or lies inside it (codes nest by prefix)."""
        return code == ancestor or code.startswith(ancestor + ".")

    def common_ancestor(self, codes: Iterable[str]) -> str:
        """The deepest region containing all `codes`; the provinsi code when they share no kota."""
        parts: list[str] | None = None
        for code in codes:
            pieces = code.split(".")
            if parts is None:
                parts = pieces
                continue
            n = 0
            while n < len(parts) and n < len(pieces) and parts[n] == pieces[n]:
                n += 1
            parts = parts[:n]
        if not parts:
            return PROVINCE_CODE
        return ".".join(parts)

    # -- names -----------------------------------------------------------------------------------

    def may_be_typo(self, word: str) -> bool:
        """Only unknown, alphabetic, non-ordinary words of 3+ letters are read as possible typos."""
        return len(word) >= 3 and word.isalpha() and word not in self.vocabulary and word not in COMMON_WORDS

    def name_starts(self, word: str) -> tuple[tuple[str, bool], ...]:
        """The first tokens of names that `word` may begin, each with whether reading it so needs a typo.

        Cached per word (bounded): most words of a message start no name, and this answers that in
        one dictionary probe.
        """
        found = self._starts_cache.get(word)
        if found is None:
            if len(self._starts_cache) >= _CACHE_SIZE:
                self._starts_cache.clear()
            found = self._starts_cache[word] = self._compute_name_starts(word)
        return found

    def _compute_name_starts(self, word: str) -> tuple[tuple[str, bool], ...]:
        starts = [(word, False)] if word in self.by_first else []
        if self.may_be_typo(word):
            starts += [(c, True) for c in self.typo_candidates(word) if c in self.by_first]
        return tuple(starts)

    def typo_candidates(self, token: str) -> tuple[str, ...]:
        """Name tokens one edit (insert, delete, substitute, swap neighbours) away from `token`.

        Uses the deletion neighbourhood (SymSpell-style): a name token and a written token within
        one edit share a string obtained by deleting at most one letter from each, so a lookup costs
        len(token) dictionary probes instead of a scan over the vocabulary. The probe results are
        then checked with a true edit distance, because deletions alone also admit distance 2.
        """
        return _typo_candidates(self, token)

    # -- coordinates -----------------------------------------------------------------------------

    def kelurahan_at(self, lat: float, lng: float) -> Region | None:
        """The kelurahan whose polygon holds the point, or None outside every Jakarta kelurahan."""
        x, y = lng, lat
        min_x, min_y, max_x, max_y = self._bbox
        if not (min_x <= x <= max_x and min_y <= y <= max_y):
            return None
        for area in self._areas:
            ax0, ay0, ax1, ay1 = area.bbox
            if not (ax0 <= x <= ax1 and ay0 <= y <= ay1):
                continue
            for polygon in area.polygons:
                px0, py0, px1, py1 = polygon.bbox
                if px0 <= x <= px1 and py0 <= y <= py1 and _in_polygon(x, y, polygon.rings):
                    return self.regions[area.code]
        return None


def _in_ring(x: float, y: float, ring: tuple[tuple[float, float], ...]) -> bool:
    """Even-odd ray casting: count the ring's edges crossed by a ray from the point towards +x."""
    inside = False
    x0, y0 = ring[-1]
    for x1, y1 in ring:
        if (y1 > y) != (y0 > y) and x < x0 + (y - y0) * (x1 - x0) / (y1 - y0):
            inside = not inside
        x0, y0 = x1, y1
    return inside


def _in_polygon(x: float, y: float, rings: tuple[tuple[tuple[float, float], ...], ...]) -> bool:
    """Inside the outer ring and outside every hole."""
    return _in_ring(x, y, rings[0]) and not any(_in_ring(x, y, hole) for hole in rings[1:])


def _deletions(token: str) -> Iterator[str]:
    yield token
    for i in range(len(token)):
        yield token[:i] + token[i + 1 :]


def _deletion_index(tokens: Iterable[str]) -> dict[str, tuple[str, ...]]:
    index: dict[str, set[str]] = defaultdict(set)
    for token in tokens:
        for variant in _deletions(token):
            index[variant].add(token)
    return {variant: tuple(sorted(found)) for variant, found in index.items()}


def within_one_edit(a: str, b: str) -> bool:
    """Damerau (optimal string alignment) distance <= 1, without building the full matrix."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    if la == lb:
        diffs = [i for i in range(la) if a[i] != b[i]]
        if len(diffs) == 1:
            return True
        return (
            len(diffs) == 2 and diffs[1] == diffs[0] + 1 and a[diffs[0]] == b[diffs[1]] and a[diffs[1]] == b[diffs[0]]
        )
    if la > lb:
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i:] == b[i + 1 :]


@lru_cache(maxsize=_CACHE_SIZE)
def _typo_candidates(gazetteer: Gazetteer, token: str) -> tuple[str, ...]:
    # Cached per token: message vocabularies repeat heavily, and a gazetteer lives for the process.
    index = gazetteer._deletions
    hits = [c for i in range(len(token)) for c in index.get(token[:i] + token[i + 1 :], ())]
    hits += index.get(token, ())
    if not hits:
        return ()
    return tuple(sorted({c for c in hits if c != token and within_one_edit(token, c)}))


def _kota_aliases(region: Region) -> list[tuple[str, ...]]:
    """How people write a kota: "Jakarta Utara", "Jkt Utara", "Jakut", "Kep. Seribu", ..."""
    short = normalise_name(region.short_name)
    aliases = [short]
    if short[0] == "jakarta":
        direction = short[1]
        aliases += [("jkt", direction), ("jak", direction)]
        contraction = {"utara": "jakut", "selatan": "jaksel", "pusat": "jakpus", "barat": "jakbar", "timur": "jaktim"}
        aliases.append((contraction[direction],))
    elif short == ("kepulauan", "seribu"):
        aliases += [("kep", "seribu"), ("pulau", "seribu"), ("pulau", "pulau", "seribu")]
    return aliases


def _build_keys(regions: Iterable[Region]) -> dict[tuple[str, ...], NameKey]:
    """Every way of writing a name that the matcher accepts, merged by key."""
    codes_by_key: dict[tuple[str, ...], set[str]] = defaultdict(set)
    regions = [r for r in regions if r.level != "provinsi"]
    for region in regions:
        tokens = normalise_name(region.name)
        written = [tokens]
        if region.level == "kota":
            written += _kota_aliases(region)
        elif tokens[0] == "kepulauan":
            # Kecamatan "Kepulauan Seribu Utara": also "Kep. Seribu Utara", "Pulau Seribu Utara".
            written += [("kep", *tokens[1:]), ("pulau", *tokens[1:])]
        for key in written:
            codes_by_key[key].add(region.code)
            joined = "".join(key)
            # "Kebonjeruk", "Pulogadung", "Setiabudi": spacing varies, in the data as in messages.
            if len(key) > 1 and len(joined) >= 6:
                codes_by_key[(joined,)].add(region.code)
    # A kelurahan named "<base> Utara/Selatan/Barat/Timur" is often written as the bare base
    # ("Gandaria", "Kuningan"); the base then means any of those kelurahan, unless it already is a name.
    by_base: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for region in regions:
        tokens = normalise_name(region.name)
        if region.level == "kelurahan" and len(tokens) > 1 and tokens[-1] in _COMPASS:
            by_base[tokens[:-1]].add(region.code)
    for base, codes in by_base.items():
        # One kelurahan alone ("Rawa Barat", "Tanjung Barat") has no bare form people use for it.
        if len(codes) > 1 and base not in codes_by_key:
            codes_by_key[base] = codes
    keys = {}
    for tokens, codes in codes_by_key.items():
        joined = "".join(tokens)
        risky = (all(t in COMMON_WORDS for t in tokens) and joined not in DISTINCTIVE_NAMES) or joined in RISKY_NAMES
        keys[tokens] = NameKey(tokens=tokens, codes=tuple(sorted(codes)), risky=risky, letters=len(joined))
    return keys


def _read_regions(text: str) -> list[Region]:
    out = []
    for row in csv.DictReader(text.splitlines()):
        level = row["level"]
        if level not in LEVEL_DEPTH:
            raise ValueError(f"wilayah.csv: unknown level {level!r} for {row['kode']}")
        out.append(Region(code=row["kode"], name=row["nama"], level=cast(Level, level), parent=row["parent"] or None))
    return out


def _bbox(points: Iterable[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = zip(*points, strict=True)
    return (min(xs), min(ys), max(xs), max(ys))


def _read_areas(text: str) -> tuple[list[_Area], dict[str, tuple[float, float]]]:
    areas = []
    centroids = {}
    for feature in json.loads(text)["features"]:
        props = feature["properties"]
        geometry = feature["geometry"]
        raw = geometry["coordinates"] if geometry["type"] == "MultiPolygon" else [geometry["coordinates"]]
        polygons = []
        for rings in raw:
            frozen = tuple(tuple((float(p[0]), float(p[1])) for p in ring) for ring in rings)
            polygons.append(_Polygon(rings=frozen, bbox=_bbox(frozen[0])))
        bbox = _bbox(pt for poly in polygons for pt in poly.rings[0])
        areas.append(_Area(code=props["kode"], bbox=bbox, polygons=tuple(polygons)))
        centroids[props["kode"]] = (float(props["lat"]), float(props["lng"]))
    return areas, centroids


@cache
def load_gazetteer() -> Gazetteer:
    """The gazetteer of the data shipped in `normalizer/data`, built once per process."""
    data = resources.files("normalizer") / "data"
    regions = _read_regions((data / "wilayah.csv").read_text(encoding="utf-8"))
    areas, centroids = _read_areas((data / "kelurahan.geojson").read_text(encoding="utf-8"))
    return Gazetteer(regions, areas, centroids)

"""The complaint taxonomy: categories, the agencies that handle them, and how to name an agency's unit.

Read from `config/taxonomy.yaml` (the key `taxonomy`) and validated once: a broken file stops start-up
with one line per problem naming the file, the key and what was expected, e.g.
``config/taxonomy.yaml: taxonomy.categories[3].agency: unknown agency 'dinas_x'; known: bina_marga, ...``.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

#: The file a deployment edits; it sits in the repository's config folder beside kanal.yaml.
DEFAULT_TAXONOMY_PATH = Path(__file__).resolve().parent.parent / "config" / "taxonomy.yaml"
#: The copy shipped inside the package, used when the package is installed without the repository's config
#: folder. tests/normalizer/test_routing.py keeps it identical to the config file.
PACKAGED_TAXONOMY_PATH = Path(__file__).resolve().parent / "data" / "taxonomy.yaml"
#: Placeholders a unit template may use; anything else is a typo caught at load time.
UNIT_PLACEHOLDERS = frozenset({"kota", "kota_full", "kecamatan", "kelurahan"})

_WORD = re.compile(r"\w+")


class TaxonomyError(Exception):
    """The taxonomy cannot be used; the message names the file, the key and what was expected."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def phrase_key(phrase: str) -> str:
    """A phrase as the matcher compares it: lower-case words joined by one space, punctuation dropped.

    "Umbul-umbul" and "umbul umbul" are the same phrase, as the text's words are split the same way.
    """
    return " ".join(_WORD.findall(phrase.lower()))


class RoutingSettings(_Strict):
    #: Below this the admin chooses the category (`Routing.needs_choice`).
    confidence_threshold: float = Field(default=0.55, ge=0, le=1)
    #: What one point of phrase weight is worth against the model's log-probability.
    rule_weight: float = Field(default=0.6, ge=0)
    #: Extra weight for the category named by the channel's service code (a hint, not a verdict).
    service_code_hint_weight: float = Field(default=3.0, ge=0)
    max_alternatives: int = Field(default=3, ge=0)
    max_model_terms: int = Field(default=4, ge=0)


class Kota(_Strict):
    #: As it reads inside a unit's name: "Jakarta Pusat" in "Suku Dinas Bina Marga Jakarta Pusat".
    name: str = Field(min_length=1)
    #: The administrative name: "Kota Administrasi Jakarta Pusat".
    full_name: str = Field(min_length=1)


class Agency(_Strict):
    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    #: Templates for the unit in charge, tried in order; empty: the agency has no regional units.
    units: list[str] = Field(default_factory=list)

    @field_validator("units")
    @classmethod
    def _known_placeholders(cls, units: list[str]) -> list[str]:
        for template in units:
            names = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
            unknown = names - UNIT_PLACEHOLDERS
            if unknown:
                raise ValueError(
                    f"unknown placeholder {{{sorted(unknown)[0]}}} in {template!r}; "
                    f"expected some of {', '.join('{' + p + '}' for p in sorted(UNIT_PLACEHOLDERS))}"
                )
        return units


class AgencyRule(_Strict):
    """Sends a category's report to another agency when one of `when` appears in the text."""

    agency: str = Field(min_length=1)
    when: list[str] = Field(min_length=1)
    #: Shown to the admin as the reason for the choice.
    why: str = Field(min_length=1)


class Category(_Strict):
    code: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str = ""
    #: The agency in charge unless an agency rule matches.
    agency: str = Field(min_length=1)
    #: Phrase -> weight: evidence for this category when the phrase appears in the text.
    phrases: dict[str, float] = Field(default_factory=dict)
    agency_rules: list[AgencyRule] = Field(default_factory=list)


class Taxonomy(_Strict):
    settings: RoutingSettings = Field(default_factory=RoutingSettings)
    #: Kemendagri kota/kabupaten code ("31.71") -> its names.
    kota: dict[str, Kota] = Field(default_factory=dict)
    agencies: list[Agency] = Field(min_length=1)
    categories: list[Category] = Field(min_length=1)

    def category(self, code: str) -> Category:
        for category in self.categories:
            if category.code == code:
                return category
        raise KeyError(code)

    def agency(self, code: str) -> Agency:
        for agency in self.agencies:
            if agency.code == code:
                return agency
        raise KeyError(code)


def load_taxonomy(path: Path | str | None = None) -> Taxonomy:
    """Read and validate a taxonomy file; raise `TaxonomyError` naming the file and key on any problem.

    Without `path`: the repository's config/taxonomy.yaml, or the copy shipped in the package when the
    config folder is not there (an installed wheel).
    """
    if path is None:
        path = DEFAULT_TAXONOMY_PATH if DEFAULT_TAXONOMY_PATH.is_file() else PACKAGED_TAXONOMY_PATH
    path = Path(path)
    shown = _shown(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TaxonomyError(f"{shown}: cannot read the taxonomy: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise TaxonomyError(f"{shown}: not valid YAML: {exc}".replace("\n", " ")) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("taxonomy"), dict):
        raise TaxonomyError(f"{shown}: taxonomy: expected a mapping under the top-level key 'taxonomy'")
    try:
        taxonomy = Taxonomy.model_validate(raw["taxonomy"])
    except ValidationError as exc:
        lines = [f"{shown}: {_dotted(('taxonomy', *err['loc']))}: {err['msg']}" for err in exc.errors()]
        raise TaxonomyError("\n".join(lines)) from None
    problems = check_references(taxonomy)
    if problems:
        raise TaxonomyError("\n".join(f"{shown}: {key}: {message}" for key, message in problems))
    return taxonomy


def check_references(taxonomy: Taxonomy) -> list[tuple[str, str]]:
    """What pydantic cannot see field by field: references between entries, uniqueness, usable rules."""
    problems: list[tuple[str, str]] = []
    agency_codes = [a.code for a in taxonomy.agencies]
    known = ", ".join(agency_codes)
    seen: set[str] = set()
    for i, agency in enumerate(taxonomy.agencies):
        if agency.code in seen:
            problems.append((f"taxonomy.agencies[{i}].code", f"duplicate agency code {agency.code!r}"))
        seen.add(agency.code)
    seen = set()
    for i, category in enumerate(taxonomy.categories):
        where = f"taxonomy.categories[{i}]"
        if category.code in seen:
            problems.append((f"{where}.code", f"duplicate category code {category.code!r}"))
        seen.add(category.code)
        if category.agency not in agency_codes:
            problems.append((f"{where}.agency", f"unknown agency {category.agency!r}; known: {known}"))
        if not category.phrases:
            problems.append((f"{where}.phrases", f"category {category.code!r} needs at least one phrase rule"))
        for phrase, weight in category.phrases.items():
            if not phrase_key(phrase):
                problems.append((f"{where}.phrases", f"phrase {phrase!r} has no words to match"))
            if weight == 0:
                problems.append((f"{where}.phrases.{phrase}", "weight 0 has no effect; expected a non-zero number"))
        for j, rule in enumerate(category.agency_rules):
            if rule.agency not in agency_codes:
                problems.append(
                    (f"{where}.agency_rules[{j}].agency", f"unknown agency {rule.agency!r}; known: {known}")
                )
            for phrase in rule.when:
                if not phrase_key(phrase):
                    problems.append((f"{where}.agency_rules[{j}].when", f"phrase {phrase!r} has no words to match"))
    for code in taxonomy.kota:
        if not re.fullmatch(r"\d{2}\.\d{2}", code):
            problems.append((f"taxonomy.kota.{code}", "expected a Kemendagri kota code like '31.71'"))
    return problems


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _shown(path: Path) -> str:
    """The path as an operator would type it: relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)

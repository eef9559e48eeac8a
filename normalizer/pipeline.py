"""The normalizer: an ordered list of small steps turning one inbound message into a draft report.

Each step reads the draft, changes what it is responsible for, and records a `Decision` saying what
it decided and why, so an admin can trust or correct it. Steps are pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field

from adapters.contract import InboundMessage, Location, MediaRef, Sender

if TYPE_CHECKING:
    from normalizer.taxonomy import Taxonomy


class Decision(BaseModel):
    """One explained decision of one step."""

    model_config = ConfigDict(extra="forbid")

    step: str
    field: str
    value: str | int | float | bool | list[str] | None
    reason: str
    confidence: float = Field(default=1.0, ge=0, le=1)


class PlacePrecision(StrEnum):
    """How exactly a report is located, coarsest first; comparisons follow this order."""

    NONE = "none"
    KOTA = "kota"
    KECAMATAN = "kecamatan"
    KELURAHAN = "kelurahan"
    STREET = "street"  # a street (or RT/RW) inside a known kelurahan
    POINT = "point"  # coordinates inside a kelurahan polygon

    @property
    def rank(self) -> int:
        return list(PlacePrecision).index(self)


class Place(BaseModel):
    """Where the problem is, as far as the message tells: Kemendagri codes per level, and why."""

    model_config = ConfigDict(extra="forbid")

    kota_code: str | None = None
    kota_name: str | None = None
    kecamatan_code: str | None = None
    kecamatan_name: str | None = None
    kelurahan_code: str | None = None
    kelurahan_name: str | None = None
    street: str | None = None
    rt: str | None = None
    rw: str | None = None
    #: The address as an admin or an agency would write it, built from what was found.
    address_text: str | None = None
    precision: PlacePrecision = PlacePrecision.NONE
    #: Each piece of evidence: the words or coordinates that led to a level, in plain words.
    evidence: list[str] = Field(default_factory=list)


class Routing(BaseModel):
    """Which category a complaint is and who handles it, with the confidence and the top reasons."""

    model_config = ConfigDict(extra="forbid")

    category_code: str | None = None
    category_name: str | None = None
    agency_code: str | None = None
    agency_name: str | None = None
    #: The agency's unit for the report's kota, e.g. "Suku Dinas Bina Marga Jakarta Pusat".
    agency_unit: str | None = None
    confidence: float = Field(default=0.0, ge=0, le=1)
    #: Below the configured threshold: the admin chooses among `alternatives`.
    needs_choice: bool = True
    reasons: list[str] = Field(default_factory=list)
    #: Other likely categories, best first: (category code, confidence).
    alternatives: list[tuple[str, float]] = Field(default_factory=list)


class Draft(BaseModel):
    """A report being built by the pipeline; the original message is kept beside the results."""

    model_config = ConfigDict(extra="forbid")

    channel_id: str
    original: InboundMessage
    #: What the citizen wrote, cleaned for reading (markup, quoting, signatures removed); not masked.
    text: str
    #: Lower-case, slang and abbreviations expanded, repeated letters folded: what the matching steps read.
    analysis_text: str = ""
    #: `text` with personal data (NIK, phone numbers, emails, ...) replaced by placeholders: what
    #: admins see by default and what goes onward (CRM, feed, status page).
    text_masked: str = ""
    #: Kinds of personal data masked, e.g. ["nik", "phone"], in order of appearance.
    masked_kinds: list[str] = Field(default_factory=list)
    #: Ticket codes the message refers to ("Melanjutkan laporan No. ..."): it may be a follow-up.
    ticket_refs: list[str] = Field(default_factory=list)
    place: Place = Field(default_factory=Place)
    routing: Routing = Field(default_factory=Routing)
    sender: Sender | None = None
    location: Location | None = None
    media: list[MediaRef] = Field(default_factory=list)
    service_code: str | None = None
    completeness: int = 0
    missing: list[str] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)

    def decide(self, decision: Decision) -> None:
        self.decisions.append(decision)


class Step(Protocol):
    """A pipeline step: a name for the decisions it records, and a function of the draft."""

    name: str

    def __call__(self, draft: Draft) -> None: ...


class Pipeline:
    """Runs its steps in order over a fresh draft of each message."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)

    def run(self, message: InboundMessage, *, channel_id: str, service_code: str | None = None) -> Draft:
        draft = Draft(
            channel_id=channel_id,
            original=message,
            text=message.text,
            analysis_text=message.text.lower(),
            text_masked=message.text,
            sender=message.sender,
            location=message.location,
            media=list(message.media),
            service_code=service_code,
        )
        for step in self.steps:
            step(draft)
        return draft


def default_pipeline(taxonomy: Taxonomy | None = None) -> Pipeline:
    """The steps Kanal runs unless a deployment says otherwise, in order.

    Cleanup first (every later step reads its analysis form), then masking, place, routing (the unit
    depends on the place's kota) and completeness (which reads place and routing). Without a taxonomy,
    the shipped one; the routing model is trained once per process and taxonomy.
    """
    from normalizer.classifier import classifier_for
    from normalizer.steps.completeness import ScoreCompleteness
    from normalizer.steps.masking import MaskPersonalData
    from normalizer.steps.place import FindPlace
    from normalizer.steps.routing import RouteComplaint
    from normalizer.steps.text_cleanup import CleanText

    return Pipeline(
        [
            CleanText(),
            MaskPersonalData(),
            FindPlace(),
            RouteComplaint(classifier_for(taxonomy)),
            ScoreCompleteness(),
        ]
    )

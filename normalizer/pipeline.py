"""The normalizer: an ordered list of small steps turning one inbound message into a draft report.

Each step reads the draft, changes what it is responsible for, and records a `Decision` saying what
it decided and why, so an admin can trust or correct it. Steps are pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from adapters.contract import InboundMessage, Location, MediaRef, Sender


class Decision(BaseModel):
    """One explained decision of one step."""

    model_config = ConfigDict(extra="forbid")

    step: str
    field: str
    value: str | int | float | bool | list[str] | None
    reason: str
    confidence: float = Field(default=1.0, ge=0, le=1)


class Draft(BaseModel):
    """A report being built by the pipeline; the original message is kept beside the results."""

    model_config = ConfigDict(extra="forbid")

    channel_id: str
    original: InboundMessage
    text: str
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
            sender=message.sender,
            location=message.location,
            media=list(message.media),
            service_code=service_code,
        )
        for step in self.steps:
            step(draft)
        return draft


def default_pipeline() -> Pipeline:
    """The steps Kanal runs unless a deployment says otherwise, in order."""
    from normalizer.steps.completeness import ScoreCompleteness
    from normalizer.steps.text_cleanup import CleanText

    return Pipeline([CleanText(), ScoreCompleteness()])

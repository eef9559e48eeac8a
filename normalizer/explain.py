"""What the normalizer made of a message, for people: a JSON-able summary and a plain-text rendering."""

from __future__ import annotations

from typing import Any

from normalizer.pipeline import Draft


def draft_summary(draft: Draft) -> dict[str, Any]:
    """The normalized report as `kanal normalize --json` prints it: masked text, place, routing, reasons."""
    return {
        "text": draft.text_masked,
        "masked": draft.masked_kinds,
        "place": draft.place.model_dump(mode="json"),
        "routing": draft.routing.model_dump(mode="json"),
        "completeness": draft.completeness,
        "missing": draft.missing,
        "ticket_refs": draft.ticket_refs,
        "decisions": [d.model_dump(mode="json") for d in draft.decisions],
    }


def render_text(draft: Draft) -> str:
    """The same, laid out for reading in a terminal."""
    place, routing = draft.place, draft.routing
    lines = [f"text:         {draft.text_masked}"]
    if draft.masked_kinds:
        lines.append(f"masked:       {', '.join(draft.masked_kinds)}")
    levels = [
        f"{name} {code}" if code else None
        for name, code in (
            (place.kelurahan_name, place.kelurahan_code),
            (place.kecamatan_name, place.kecamatan_code),
            (place.kota_name, place.kota_code),
        )
    ]
    found = [level for level in levels if level]
    lines.append(f"place:        {place.address_text or '(none found)'}  [precision: {place.precision.value}]")
    if found:
        lines.append(f"wilayah:      {' / '.join(found)}")
    for evidence in place.evidence:
        lines.append(f"  because     {evidence}")
    category = f"{routing.category_name} ({routing.category_code})" if routing.category_code else "(undecided)"
    lines.append(f"category:     {category}  confidence {routing.confidence:.2f}")
    lines.append(f"agency:       {routing.agency_name or '-'}; unit: {routing.agency_unit or '-'}")
    if routing.needs_choice:
        others = ", ".join(f"{code} {confidence:.2f}" for code, confidence in routing.alternatives) or "none"
        lines.append(f"  admin must choose; alternatives: {others}")
    for reason in routing.reasons:
        lines.append(f"  because     {reason}")
    lines.append(
        f"completeness: {draft.completeness}/100" + (f"; missing: {', '.join(draft.missing)}" if draft.missing else "")
    )
    if draft.ticket_refs:
        lines.append(f"refers to:    {', '.join(draft.ticket_refs)} (a follow-up of that report)")
    return "\n".join(lines)

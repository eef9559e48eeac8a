"""Completeness: can an agency act on this report as it stands? A score with the reasons for it."""

from __future__ import annotations

from normalizer.pipeline import Decision, Draft

# What an admin checks before forwarding (DESIGN.md): a description, an address, a photo.
DESCRIPTION_POINTS = 40
LOCATION_POINTS = 40
PHOTO_POINTS = 20
MIN_DESCRIPTION_WORDS = 4


class ScoreCompleteness:
    """Scores 0-100 and lists what is missing, in words an admin can pass on to the citizen."""

    name = "completeness"

    def __call__(self, draft: Draft) -> None:
        score = 0
        missing = []
        words = [w for w in draft.text.split() if any(ch.isalpha() for ch in w)]
        if len(words) >= MIN_DESCRIPTION_WORDS:
            score += DESCRIPTION_POINTS
        else:
            missing.append(f"description (only {len(words)} words; at least {MIN_DESCRIPTION_WORDS} needed)")
        location = draft.location
        has_coordinates = location is not None and location.lat is not None and location.lng is not None
        has_address = location is not None and bool((location.address or "").strip())
        if has_coordinates or has_address:
            score += LOCATION_POINTS
        else:
            missing.append("location (no coordinates and no address)")
        if any((m.content_type or "").startswith("image/") or m.content_type is None for m in draft.media):
            score += PHOTO_POINTS
        else:
            missing.append("photo")
        draft.completeness = score
        draft.missing = missing
        draft.decide(
            Decision(
                step=self.name,
                field="completeness",
                value=score,
                reason="complete" if not missing else "missing: " + ", ".join(missing),
            )
        )

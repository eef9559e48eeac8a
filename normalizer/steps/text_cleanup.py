"""Text cleanup: what a citizen wrote, without markup, entities, control characters or runs of blanks."""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser

from normalizer.pipeline import Decision, Draft

_BLOCK_TAGS = frozenset({"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote"})
_SKIPPED_TAGS = frozenset({"script", "style", "head", "title"})
_LOOKS_LIKE_HTML = re.compile(r"<\s*(?:[a-zA-Z][a-zA-Z0-9]*)(?:\s[^<>]*)?/?\s*>")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIPPED_TAGS and self._skipping:
            self._skipping -= 1
        elif tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def tidy(text: str) -> str:
    """Unicode NFC, no control characters, single spaces, at most one blank line between paragraphs."""
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch)[0] != "C")
    text = _SPACES.sub(" ", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = "\n".join(line.strip() for line in text.split("\n"))
    return _BLANK_LINES.sub("\n\n", text).strip()


class CleanText:
    """Turns markup into text and tidies whitespace; the original stays on the draft untouched."""

    name = "clean_text"

    def __call__(self, draft: Draft) -> None:
        text = draft.text
        reasons = []
        if _LOOKS_LIKE_HTML.search(text):
            text = html_to_text(text)
            reasons.append("removed HTML markup")
        elif "&" in text and html.unescape(text) != text:
            text = html.unescape(text)
            reasons.append("decoded HTML entities")
        cleaned = tidy(text)
        if cleaned != draft.text and not reasons:
            reasons.append("tidied whitespace and control characters")
        draft.text = cleaned
        if reasons:
            draft.decide(Decision(step=self.name, field="text", value=None, reason="; ".join(reasons)))

"""Charts and maps drawn on the server as SVG strings: no tiles, no CDN, no script in the browser.

Every piece of text that reaches an SVG goes through `text` (or `attr`), because labels come from data
(channel ids, agency names, region names). Every drawing is a complete ``<svg>`` element sized by its
``viewBox`` only, so the page decides how wide it is, and it carries ``role="img"``, an
``aria-label`` and a ``<title>`` for screen readers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from xml.sax.saxutils import escape

__all__ = ["attr", "coord", "document", "number", "text"]

# Characters XML 1.0 does not allow at all (even escaped): one of them in a label would make the whole
# SVG unreadable to a parser, so they are dropped rather than escaped.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_ATTR_ENTITIES = {'"': "&quot;", "'": "&apos;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}


def text(value: object) -> str:
    """`value` as XML character data: escaped, and without characters XML cannot carry."""
    return escape(_NOT_XML.sub("", str(value)))


def attr(value: object) -> str:
    """`value` escaped for use inside a double-quoted XML attribute (the quotes are not included)."""
    return escape(_NOT_XML.sub("", str(value)), _ATTR_ENTITIES)


def number(value: float) -> str:
    """A count or figure the Indonesian way: 12.345 (a dot groups thousands), 1,5 (a comma for decimals)."""
    if float(value).is_integer():
        return f"{int(value):,}".replace(",", ".")
    return f"{value:,.1f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def coord(value: float) -> str:
    """A coordinate to one decimal, as short as it can be written ("12", "-3.5", ".5")."""
    rounded = round(value, 1)
    if rounded == int(rounded):
        return str(int(rounded))
    out = f"{rounded:.1f}"
    return out.replace("0.", ".", 1) if out.startswith("0.") else out.replace("-0.", "-.", 1)


def document(
    *, width: float, height: float, title: str, body: Iterable[str], description: str | None = None, css_class: str = ""
) -> str:
    """A complete ``<svg>`` element: viewBox, role, aria-label, ``<title>``, optional ``<desc>``, then `body`."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {coord(width)} {coord(height)}" role="img"'
        f' aria-label="{attr(title)}"'
        + (f' class="{attr(css_class)}"' if css_class else "")
        + ' font-family="system-ui, -apple-system, \'Segoe UI\', Roboto, sans-serif" font-size="12">',
        f"<title>{text(title)}</title>",
    ]
    if description:
        parts.append(f"<desc>{text(description)}</desc>")
    parts.extend(body)
    parts.append("</svg>")
    return "".join(parts)

"""Twilio's request signature (`X-Twilio-Signature`), as its helper libraries compute and check it.

The signed string is the URL Twilio was configured with (scheme, host, path and query string, exactly
as typed in the console), followed by every POST parameter as name + value with no separator: names
sorted, and the values of a repeated name sorted too. The signature is the base64 HMAC-SHA1 of that
string keyed with the account's auth token.

Twilio is not consistent about the port: it may sign `https://host/path` or `https://host:443/path`
for the same webhook, so both spellings are accepted (as twilio-python's `RequestValidator` does).
Behind a proxy the URL Kanal sees is not the one Twilio called, which is why the caller passes the
public URL in rather than taking it from the request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections import defaultdict
from collections.abc import Iterable, Sequence
from urllib.parse import parse_qsl, urlsplit, urlunsplit

SIGNATURE_HEADER = "x-twilio-signature"
#: More fields than any Twilio webhook carries (a 10-photo MMS has about 40); a body past this is not Twilio's.
MAX_FORM_FIELDS = 1000


def form_params(body: bytes) -> list[tuple[str, str]]:
    """The POST parameters of a form-encoded body, blanks kept, as Twilio signs them.

    Raises `ValueError` for a body with more than `MAX_FORM_FIELDS` fields.
    """
    text = body.decode("utf-8", errors="replace")
    return parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)


def signed_string(url: str, params: Iterable[tuple[str, str]]) -> str:
    """`url`, then each parameter name + value: names sorted, a repeated name's values sorted."""
    values: dict[str, list[str]] = defaultdict(list)
    for name, value in params:
        values[name].append(value)
    return url + "".join(name + value for name in sorted(values) for value in sorted(values[name]))


def compute(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The `X-Twilio-Signature` value Twilio sends for `params` posted to `url`."""
    digest = hmac.new(auth_token.encode(), signed_string(url, params).encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def url_spellings(url: str) -> list[str]:
    """`url` without and with its scheme's default port (Twilio signs either)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal keeps its brackets in the netloc
        host = f"[{host}]"
    userinfo = parts.netloc.rpartition("@")[0]
    prefix = f"{userinfo}@" if userinfo else ""
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    bare = urlunsplit(parts._replace(netloc=f"{prefix}{host}" if port == default_port else f"{prefix}{host}:{port}"))
    with_port = urlunsplit(parts._replace(netloc=f"{prefix}{host}:{port}"))
    return [bare] if bare == with_port else [bare, with_port]


def matches(signature: str, url: str, params: Sequence[tuple[str, str]], auth_tokens: Iterable[str]) -> bool:
    """Whether `signature` is Twilio's for `params` at `url` (either port spelling) with one of `auth_tokens`.

    Every candidate is compared, in constant time, so the timing tells nothing about which one matched.
    """
    offered = signature.strip().encode()
    matched = False
    for token in auth_tokens:
        for spelling in url_spellings(url):
            matched |= hmac.compare_digest(compute(token, spelling, params).encode(), offered)
    return matched

"""Downloading a citizen's photo from a platform: only from the platform's own hosts, and never too much.

A media URL comes from a stranger's payload. Fetching whatever it names would let anyone make Kanal
reach into the city's network (or read a file of any size), so every hop of the download, redirects
included, must be on a host the channel type allows, over HTTPS (plain HTTP only to loopback, where
the tests' peers live), and the body is cut off at the size cap whatever Content-Length claims.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from urllib.parse import urljoin, urlsplit

import httpx

from adapters.contract import MediaContent
from adapters.errors import ChannelUnavailable, MediaUnavailable

MAX_REDIRECTS = 3
DEFAULT_TIMEOUT_SECONDS = 30.0


def host_allowed(url: str, allowed_hosts: frozenset[str]) -> bool:
    """Whether `url` is HTTPS (or HTTP to loopback) on an allowed host or one of its subdomains."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if not host:
        return False
    if parts.scheme == "http":
        if not _is_loopback(host):
            return False
    elif parts.scheme != "https":
        return False
    return any(host == allowed or host.endswith("." + allowed) for allowed in (h.lower() for h in allowed_hosts))


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def hosts_of(*urls: str) -> frozenset[str]:
    """The host names of configured API base URLs, to add to an adapter's allowed media hosts."""
    return frozenset(h for h in ((urlsplit(u).hostname or "").lower() for u in urls) if h)


async def download(
    url: str,
    *,
    allowed_hosts: frozenset[str],
    max_bytes: int,
    headers: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    client: httpx.AsyncClient | None = None,
) -> MediaContent:
    """GET `url`, following at most MAX_REDIRECTS redirects on allowed hosts, reading at most `max_bytes`.

    Raises `MediaUnavailable` for what will not change (foreign host, 404/410, larger than the cap) and
    `ChannelUnavailable` for what may (timeouts, 5xx, 429).
    """
    owned = client is None
    http = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
    try:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            if not host_allowed(current, allowed_hosts):
                host = urlsplit(current).hostname or current
                raise MediaUnavailable(f"not downloaded: {host!r} is not an allowed host")
            try:
                async with http.stream("GET", current, headers=dict(headers or {})) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise MediaUnavailable("the platform redirected without a Location")
                        current = urljoin(current, location)
                        # A token meant for the API must not follow a redirect to a CDN or anywhere else.
                        headers = None
                        continue
                    _check_status(response)
                    declared = response.headers.get("content-length")
                    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
                        raise MediaUnavailable(f"too large: {declared} bytes, limit {max_bytes}")
                    data = bytearray()
                    async for chunk in response.aiter_bytes():
                        data.extend(chunk)
                        if len(data) > max_bytes:
                            raise MediaUnavailable(f"too large: more than {max_bytes} bytes")
                    content_type = response.headers.get("content-type", "application/octet-stream").split(";")[0]
                    content_type = content_type.strip() or "application/octet-stream"
                    return MediaContent(content_type=content_type, data=bytes(data))
            except httpx.HTTPError as exc:
                raise ChannelUnavailable(f"media download failed ({type(exc).__name__}); will retry") from None
        raise MediaUnavailable(f"more than {MAX_REDIRECTS} redirects")
    finally:
        if owned:
            await http.aclose()


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if status in (404, 410):
        raise MediaUnavailable(f"the platform no longer has the file ({status})")
    if status == 429 or status >= 500:
        raise ChannelUnavailable(f"the platform answered {status}; will retry")
    if status >= 400:
        raise MediaUnavailable(f"the platform refused the download ({status})")

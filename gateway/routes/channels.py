"""The push route every channel instance gets: `POST` deliveries and `GET` challenges or pages.

It is answered by a plain ASGI middleware in front of the FastAPI app rather than by a FastAPI
operation: a delivery needs the raw bytes and nothing else, and on the busiest path of the gateway
FastAPI's routing, dependency and exception layers cost more than the work itself (bench/ingest.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from adapters.contract import AdapterResponse, RawRequest
from gateway.db import utcnow
from gateway.runtime import Runtime

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger(__name__)

INBOUND_PATH = re.compile(r"^/channels/([^/]+)/inbound/?$")
_UNKNOWN = AdapterResponse.json({"detail": "no such channel; check the channel id in the URL"}, 404)
_UNANSWERABLE = AdapterResponse.json({"detail": "this request could not be answered; check its parameters"}, 400)
_WRONG_METHOD = AdapterResponse.json({"detail": "use GET or POST on a channel's inbound route"}, 405)


class ChannelInbound:
    """ASGI middleware: serves `/channels/{channel_id}/inbound`, hands every other request on."""

    def __init__(self, app: ASGIApp, *, runtime: Runtime) -> None:
        self.app = app
        self.runtime = runtime

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = INBOUND_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            await self.app(scope, receive, send)
            return
        await _send(send, await self._answer(scope, receive, match.group(1)))

    async def _answer(self, scope: Scope, receive: Receive, channel_id: str) -> AdapterResponse:
        received_at = utcnow()
        channel = self.runtime.channels.get(channel_id)
        if channel is None:
            return _UNKNOWN
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if scope["method"] in ("GET", "HEAD"):
            try:
                return channel.adapter.answer_get(_raw(scope, headers, b"", received_at))
            except Exception:
                log.exception("channel %s: adapter failed to answer a GET", channel_id)
                return _UNANSWERABLE
        if scope["method"] != "POST":
            return _WRONG_METHOD
        limit = channel.adapter.max_body_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raw = _raw(scope, headers, b"", received_at)
            return await self.runtime.ingestor.reject_oversized(channel, raw, int(declared))
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return AdapterResponse.json({"detail": "client went away"}, 400)
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                # Stop reading: a sender that lies about (or omits) Content-Length cannot make us buffer more.
                raw = _raw(scope, headers, bytes(body[:limit]), received_at)
                return await self.runtime.ingestor.reject_oversized(channel, raw, len(body))
        return await self.runtime.ingestor.deliver(channel, _raw(scope, headers, bytes(body), received_at))


def _raw(scope: Scope, headers: dict[str, str], body: bytes, received_at: Any) -> RawRequest:
    query_string = scope.get("query_string", b"").decode("latin-1")
    host = headers.get("host", "")
    url = f"{scope.get('scheme', 'http')}://{host}{scope.get('root_path', '')}{scope['path']}"
    client = scope.get("client")
    return RawRequest(
        method=scope["method"],
        url=f"{url}?{query_string}" if query_string else url,
        headers=headers,
        query=dict(parse_qsl(query_string, keep_blank_values=True)),
        body=body,
        client_ip=client[0] if client else "",
        received_at=received_at,
    )


async def _send(send: Send, answer: AdapterResponse) -> None:
    headers = [
        (b"content-type", answer.content_type.encode("latin-1")),
        (b"content-length", str(len(answer.body)).encode()),
    ]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]
    await send({"type": "http.response.start", "status": answer.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})

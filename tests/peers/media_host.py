"""A platform's media host on 127.0.0.1: serves files by path, and fails, stalls or floods on demand.

`MediaHost.add("/p/1.jpg", data)` publishes a file. Per path (or for every path) the host can answer
an error status a number of times before it recovers (`fail`), wait before answering (`delay`), send
a file with no Content-Length at all (chunked, so only counting the bytes finds its size), or declare
a size it then does not send (`declared_length`). Every request is recorded with its arrival time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

#: The smallest valid PNG (1x1, transparent): what a citizen's photo looks like to the tests.
TINY_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)
TINY_JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


@dataclass
class Served:
    data: bytes
    content_type: str = "image/jpeg"
    #: Send the body in chunks with no Content-Length.
    chunked: bool = False
    #: Content-Length to announce instead of the real one (the body is not sent when it lies upwards).
    declared_length: int | None = None


@dataclass
class Failure:
    status: int
    #: How many requests still get `status`; None: until told otherwise.
    remaining: int | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    at: float
    path: str
    status: int
    headers: dict[str, str]


class MediaHost:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.files: dict[str, Served] = {}
        self._failures: dict[str | None, Failure] = {}
        #: Seconds to wait before answering, per path (None: every path).
        self.delay: dict[str | None, float] = {}
        self.requests: list[Request] = []
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (the http.server API)
                host._answer(self)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="test-media-host", daemon=True)

    def add(self, path: str, data: bytes, content_type: str = "image/jpeg", **options: Any) -> str:
        """Publish `data` at `path`; returns its URL."""
        with self._lock:
            self.files[path] = Served(data, content_type, **options)
        return self.base_url + path

    def fail(
        self, status: int, *, path: str | None = None, times: int | None = None, headers: dict[str, str] | None = None
    ) -> None:
        """Answer `status` (to `path`, or to every path) `times` times, or until `recover`."""
        with self._lock:
            self._failures[path] = Failure(status, times, dict(headers or {}))

    def recover(self, path: str | None = None) -> None:
        with self._lock:
            self._failures.pop(path, None)

    def requests_for(self, path: str) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _failure(self, path: str) -> Failure | None:
        with self._lock:
            for key in (path, None):
                failure = self._failures.get(key)
                if failure is None:
                    continue
                if failure.remaining is not None:
                    if failure.remaining <= 0:
                        del self._failures[key]
                        continue
                    failure.remaining -= 1
                return failure
        return None

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = urlsplit(handler.path).path
        headers = {k.lower(): v for k, v in handler.headers.items()}
        delay = self.delay.get(path, self.delay.get(None, 0.0))
        if delay:
            time.sleep(delay)
        failure = self._failure(path)
        with self._lock:
            served = self.files.get(path)
        status = failure.status if failure else (200 if served else 404)
        with self._lock:
            self.requests.append(Request(time.monotonic(), path, status, headers))
        try:
            if status != 200 or served is None:
                body = b'{"error": "not available"}'
                handler.send_response(status)
                for name, value in (failure.headers if failure else {}).items():
                    handler.send_header(name, value)
                handler.send_header("Content-Type", "application/json")
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)
                return
            handler.send_response(200)
            handler.send_header("Content-Type", served.content_type)
            if served.chunked:
                handler.send_header("Transfer-Encoding", "chunked")
                handler.end_headers()
                for start in range(0, len(served.data), 16 * 1024):
                    chunk = served.data[start : start + 16 * 1024]
                    handler.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                handler.wfile.write(b"0\r\n\r\n")
                return
            declared = served.declared_length if served.declared_length is not None else len(served.data)
            handler.send_header("Content-Length", str(declared))
            handler.end_headers()
            if declared <= len(served.data):
                handler.wfile.write(served.data[:declared])
            else:
                handler.close_connection = True  # announced more than there is: a client must not wait for it
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (the size cap): what a real host sees too

    def __enter__(self) -> MediaHost:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

"""A Telegram Bot API server on 127.0.0.1 for tests, speaking the documented protocol (core.telegram.org/bots/api).

`POST /bot<token>/<method>` with JSON or form parameters answers `{"ok": true, "result": ...}` or
`{"ok": false, "error_code": ..., "description": ...}` (with `parameters.retry_after` on a 429);
`GET /file/bot<token>/<file_path>` serves a file's bytes. Methods: getMe, getUpdates (offset confirms,
timeout long-polls, 409 while a webhook is set), sendMessage, getFile, setWebhook, deleteWebhook,
getWebhookInfo; method names are case-insensitive, as Telegram's are. A wrong token answers 401.

It records every call, can fail on demand (`fail_next`, `failing`, `blocked_chats`, `delay`), and plays
the citizen's side: `Citizen` builds the Updates a Telegram user's actions produce, which the test
queues for getUpdates (`queue`) or delivers to the registered webhook as Telegram does (`deliver`).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import httpx

BOT_FIRST_NAME = "Kanal Jakarta"
BOT_USERNAME = "kanal_jakarta_bot"


@dataclass(frozen=True)
class ApiCall:
    """One Bot API request as the peer understood it."""

    method: str
    params: dict[str, Any]
    at: float


@dataclass
class _Failure:
    status: int
    times: int
    method: str | None
    retry_after: int | None
    description: str | None


@dataclass
class _File:
    data: bytes
    path: str
    content_type: str
    unique_id: str
    redirect_to: str | None = None


class TelegramBotApi:
    """The fake Bot API; use as a context manager. `url` is the base to configure as `api_base_url`."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self._lock = threading.Condition()
        self.calls: list[ApiCall] = []
        #: Messages sendMessage accepted, as returned, plus `_sent_reply_markup` / `_sent_reply_parameters`.
        self._sent: list[dict[str, Any]] = []
        #: Updates not yet confirmed by a getUpdates with a higher offset, oldest first.
        self._pending: list[dict[str, Any]] = []
        self._next_update_id = 650_000_001
        self._next_message_id: dict[int, int] = {}
        self._files: dict[str, _File] = {}
        self._failures: list[_Failure] = []
        #: Every call answers 503 while set (a Telegram outage).
        self.failing = False
        #: Chats whose user blocked the bot: sendMessage answers 403.
        self.blocked_chats: set[int] = set()
        #: Seconds each answer waits.
        self.delay = 0.0
        #: The registered webhook: {"url", "secret_token", "allowed_updates", ...} or None.
        self.webhook: dict[str, Any] | None = None
        self.downloads: list[str] = []
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the http.server API)
                peer._handle(self, "POST")

            def do_GET(self) -> None:  # noqa: N802
                peer._handle(self, "GET")

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="telegram-peer", daemon=True)

    def __enter__(self) -> TelegramBotApi:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    # ----------------------------------------------------------------------------------- test controls

    def queue(self, update: dict[str, Any]) -> dict[str, Any]:
        """Make `update` available to getUpdates (an update_id is given if it has none)."""
        with self._lock:
            update = self._numbered(update)
            self._pending.append(update)
            self._lock.notify_all()
        return update

    def deliver(self, update: dict[str, Any], *, secret_token: str | None = None) -> httpx.Response:
        """POST `update` to the registered webhook as Telegram does, with the secret_token it was given."""
        with self._lock:
            if self.webhook is None:
                raise AssertionError("no webhook is registered: call setWebhook first")
            hook = dict(self.webhook)
            update = self._numbered(update)
        secret = secret_token if secret_token is not None else hook.get("secret_token")
        headers = {"Content-Type": "application/json"}
        if secret:
            headers["X-Telegram-Bot-Api-Secret-Token"] = secret
        return httpx.post(hook["url"], content=json.dumps(update).encode(), headers=headers, timeout=30)

    def add_file(
        self, file_id: str, data: bytes, *, content_type: str = "image/jpeg", redirect_to: str | None = None
    ) -> str:
        """A file getFile knows; returns its file_path. `redirect_to`: the download answers 302 there."""
        with self._lock:
            path = f"photos/file_{len(self._files)}.jpg"
            self._files[file_id] = _File(data, path, content_type, f"uniq{len(self._files)}", redirect_to)
        return path

    def fail_next(
        self,
        status: int = 503,
        *,
        times: int = 1,
        method: str | None = None,
        retry_after: int | None = None,
        description: str | None = None,
    ) -> None:
        """Answer the next `times` calls (of `method`, or any) with `status`."""
        with self._lock:
            self._failures.append(_Failure(status, times, method.lower() if method else None, retry_after, description))

    def calls_to(self, method: str) -> list[dict[str, Any]]:
        with self._lock:
            return [c.params for c in self.calls if c.method == method.lower()]

    def sent_messages(self, chat_id: int | None = None) -> list[dict[str, Any]]:
        """sendMessage calls that succeeded, as the result Telegram returned (with the request's params)."""
        with self._lock:
            return [m for m in self._sent if chat_id is None or m["chat"]["id"] == chat_id]

    def pending_update_ids(self) -> list[int]:
        with self._lock:
            return [u["update_id"] for u in self._pending]

    # ------------------------------------------------------------------------------------------ serving

    def _numbered(self, update: dict[str, Any]) -> dict[str, Any]:
        if "update_id" not in update:
            update = {"update_id": self._next_update_id, **update}
        if isinstance(update.get("update_id"), int):
            self._next_update_id = max(self._next_update_id, update["update_id"] + 1)
        return update

    def message_id(self, chat_id: int) -> int:
        """The next message id in a chat: both sides of a private chat share one sequence, as on Telegram."""
        with self._lock:
            self._next_message_id[chat_id] = self._next_message_id.get(chat_id, 1364) + 1
            return self._next_message_id[chat_id]

    def _handle(self, handler: BaseHTTPRequestHandler, verb: str) -> None:
        if self.delay:
            time.sleep(self.delay)
        path = handler.path.split("?", 1)[0]
        if verb == "GET" and path.startswith("/file/bot"):
            self._serve_file(handler, path.removeprefix("/file/bot"))
            return
        if not path.startswith("/bot") or path.count("/") != 2:
            _answer(handler, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        token, method = path.removeprefix("/bot").split("/", 1)
        if token != self.token:
            _answer(handler, 401, {"ok": False, "error_code": 401, "description": "Unauthorized"})
            return
        try:
            params = _read_params(handler)
        except ValueError as exc:
            _answer(handler, 400, {"ok": False, "error_code": 400, "description": f"Bad Request: {exc}"})
            return
        method = method.lower()
        with self._lock:
            self.calls.append(ApiCall(method, params, time.monotonic()))
            failure = self._take_failure(method)
        if failure is not None:
            _answer(handler, failure.status, _error_body(failure), _retry_header(failure))
            return
        answer = getattr(self, f"_api_{method}", None)
        if answer is None:
            _answer(handler, 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"})
            return
        status, body = answer(params)
        _answer(handler, status, body)

    def _take_failure(self, method: str) -> _Failure | None:
        if self.failing:
            return _Failure(503, 1, None, None, "Service Unavailable")
        for failure in self._failures:
            if failure.method in (None, method):
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None

    def _serve_file(self, handler: BaseHTTPRequestHandler, rest: str) -> None:
        token, _, file_path = rest.partition("/")
        with self._lock:
            found = next((f for f in self._files.values() if f.path == file_path), None)
            if token == self.token and found is not None:
                self.downloads.append(file_path)
        if token != self.token or found is None:
            _answer(handler, 404, {"ok": False, "error_code": 404, "description": "Not Found"})
            return
        if found.redirect_to is not None:
            handler.send_response(302)
            handler.send_header("Location", found.redirect_to)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        handler.send_response(200)
        handler.send_header("Content-Type", found.content_type)
        handler.send_header("Content-Length", str(len(found.data)))
        handler.end_headers()
        handler.wfile.write(found.data)

    # ------------------------------------------------------------------------------------------ methods

    def _bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": BOT_FIRST_NAME, "username": BOT_USERNAME}

    def _api_getme(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        user = {**self._bot_user(), "can_join_groups": True, "can_read_all_group_messages": False}
        return 200, {"ok": True, "result": {**user, "supports_inline_queries": False}}

    def _api_getupdates(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        offset = _int(params.get("offset"))
        limit = min(max(_int(params.get("limit")) or 100, 1), 100)
        deadline = time.monotonic() + min(_int(params.get("timeout")) or 0, 5)
        with self._lock:
            if self.webhook is not None:
                description = "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"  # noqa: E501
                return 409, {"ok": False, "error_code": 409, "description": description}
            while True:
                if offset is not None and offset > 0:
                    # Calling with an offset confirms every update before it: Telegram forgets them.
                    self._pending = [u for u in self._pending if u["update_id"] >= offset]
                batch = self._pending[offset:] if offset is not None and offset < 0 else self._pending
                if batch or time.monotonic() >= deadline:
                    return 200, {"ok": True, "result": batch[:limit]}
                self._lock.wait(timeout=max(0.0, deadline - time.monotonic()))

    def _api_sendmessage(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        chat_id = _int(params.get("chat_id"))
        text = params.get("text")
        if chat_id is None:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"}
        if not isinstance(text, str) or not text.strip():
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message text is empty"}
        if len(text) > 4096:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}
        if chat_id in self.blocked_chats:
            return 403, {"ok": False, "error_code": 403, "description": "Forbidden: bot was blocked by the user"}
        message: dict[str, Any] = {
            "message_id": self.message_id(chat_id),
            "from": self._bot_user(),
            "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
            "date": int(time.time()),
            "text": text,
        }
        for key in ("reply_markup", "reply_parameters"):
            if key in params:
                message[f"_sent_{key}"] = params[key]
        with self._lock:
            self._sent.append(message)
        return 200, {"ok": True, "result": {k: v for k, v in message.items() if not k.startswith("_sent_")}}

    def _api_getfile(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            found = self._files.get(str(params.get("file_id", "")))
        if found is None:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: invalid file_id"}
        result = {
            "file_id": params["file_id"],
            "file_unique_id": found.unique_id,
            "file_size": len(found.data),
            "file_path": found.path,
        }
        return 200, {"ok": True, "result": result}

    def _api_setwebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if not params.get("url"):
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: bad webhook: URL is empty"}
        with self._lock:
            self.webhook = dict(params)
            if params.get("drop_pending_updates") in (True, "true", "True"):
                self._pending.clear()
        return 200, {"ok": True, "result": True, "description": "Webhook was set"}

    def _api_deletewebhook(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.webhook = None
        return 200, {"ok": True, "result": True, "description": "Webhook was deleted"}

    def _api_getwebhookinfo(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            url = self.webhook["url"] if self.webhook else ""
            pending = len(self._pending)
        return 200, {
            "ok": True,
            "result": {"url": url, "has_custom_certificate": False, "pending_update_count": pending},
        }


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _read_params(handler: BaseHTTPRequestHandler) -> dict[str, Any]:
    """Parameters as the Bot API takes them: a query string, a JSON object, or form fields."""
    length = int(handler.headers.get("Content-Length") or 0)
    body = handler.rfile.read(length) if length else b""
    content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip().lower()
    params: dict[str, Any] = {k: v[-1] for k, v in parse_qs(handler.path.partition("?")[2]).items()}
    if not body:
        return params
    if content_type == "application/json":
        document = json.loads(body)
        if not isinstance(document, dict):
            raise ValueError("parameters must be a JSON object")
        return {**params, **document}
    if content_type == "application/x-www-form-urlencoded":
        for key, values in parse_qs(body.decode(), keep_blank_values=True).items():
            params[key] = _maybe_json(values[-1])
        return params
    raise ValueError(f"unsupported content type {content_type!r}")


def _maybe_json(value: str) -> Any:
    # Form fields carry objects (reply_markup) and arrays (allowed_updates) JSON-serialised.
    if value[:1] in ("{", "[") or value in ("true", "false"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _error_body(failure: _Failure) -> dict[str, Any]:
    descriptions = {
        429: "Too Many Requests",
        500: "Internal Server Error",
        502: "Bad Gateway",
        503: "Service Unavailable",
    }
    description = failure.description or descriptions.get(failure.status, "Error")
    body: dict[str, Any] = {"ok": False, "error_code": failure.status, "description": description}
    if failure.retry_after is not None:
        body["description"] = f"{description}: retry after {failure.retry_after}"
        body["parameters"] = {"retry_after": failure.retry_after}
    return body


def _retry_header(failure: _Failure) -> dict[str, str]:
    return {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}


def _answer(
    handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
) -> None:
    data = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(data)


# --------------------------------------------------------------------------------- the citizen's side


@dataclass
class Citizen:
    """A Telegram user writing to the bot in a private chat: each action returns the Update it produces."""

    peer: TelegramBotApi
    user_id: int = 1111111
    first_name: str = "Siti"
    last_name: str | None = "Rahayu"
    username: str | None = "sitirahayu"
    sent: list[dict[str, Any]] = field(default_factory=list)

    @property
    def chat_id(self) -> int:
        return self.user_id

    def says(self, text: str, *, reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._message({"text": text}, reply_to)

    def shares_location(self, lat: float, lng: float, *, reply_to: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._message({"location": {"latitude": lat, "longitude": lng}}, reply_to)

    def sends_photo(
        self,
        file_id: str,
        *,
        caption: str | None = None,
        reply_to: dict[str, Any] | None = None,
        media_group_id: str | None = None,
    ) -> dict[str, Any]:
        """A photo as Telegram offers it: several sizes of one picture, smallest first."""
        sizes = [
            {
                "file_id": f"{file_id}-s",
                "file_unique_id": f"{file_id}-us",
                "file_size": 1400,
                "width": 90,
                "height": 67,
            },
            {
                "file_id": f"{file_id}-m",
                "file_unique_id": f"{file_id}-um",
                "file_size": 21000,
                "width": 320,
                "height": 240,
            },
            {"file_id": file_id, "file_unique_id": f"{file_id}-ul", "file_size": 91000, "width": 1280, "height": 960},
        ]
        content: dict[str, Any] = {"photo": sizes}
        if caption is not None:
            content["caption"] = caption
        if media_group_id is not None:
            content["media_group_id"] = media_group_id
        return self._message(content, reply_to)

    def last_question(self) -> dict[str, Any]:
        """The bot's latest message in this chat, as a reply would quote it (what ForceReply answers)."""
        sent = self.peer.sent_messages(self.chat_id)
        if not sent:
            raise AssertionError("the bot has not written to this chat")
        return {k: v for k, v in sent[-1].items() if not k.startswith("_sent_")}

    def _message(self, content: dict[str, Any], reply_to: dict[str, Any] | None) -> dict[str, Any]:
        user: dict[str, Any] = {
            "id": self.user_id,
            "is_bot": False,
            "first_name": self.first_name,
            "language_code": "id",
        }
        chat: dict[str, Any] = {"id": self.chat_id, "first_name": self.first_name, "type": "private"}
        if self.last_name:
            user["last_name"] = chat["last_name"] = self.last_name
        if self.username:
            user["username"] = chat["username"] = self.username
        message: dict[str, Any] = {
            "message_id": self.peer.message_id(self.chat_id),
            "from": user,
            "chat": chat,
            "date": int(time.time()),
            **content,
        }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        update = {"message": message}
        self.sent.append(update)
        return update

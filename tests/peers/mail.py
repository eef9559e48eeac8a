"""A mail provider on loopback for the `email` channel: an IMAP server (pymap), and an SMTP server (aiosmtpd).

`MailPeer` starts pymap's in-memory backend as a child process with one account, puts a small TCP relay
in front of it that can refuse connections on demand (an outage) or answer slowly, and runs an aiosmtpd
server that records every mail handed to it and can refuse on demand. Tests put mail in the mailbox the
way a mail server delivers it, with IMAP APPEND, and rebuild the mailbox (new UIDVALIDITY) by renaming
INBOX away, which RFC 3501 6.3.5 defines as moving its mails and leaving a new, empty INBOX.
"""

from __future__ import annotations

import contextlib
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from imapclient import IMAPClient

from kanal_testing.server import free_port, wait_until

MAILBOX_USER = "dki@jakarta.go.id"
MAILBOX_PASSWORD = "imap-password-do-not-show-0123"  # noqa: S105 (a test account on loopback)
SMTP_USER = "kanal-relay"
SMTP_PASSWORD = "smtp-password-do-not-show-4567"  # noqa: S105 (a test account on loopback)
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class SentMail:
    """One mail the SMTP server accepted: the envelope and the message as it arrived."""

    mail_from: str
    rcpt_tos: list[str]
    raw: bytes
    authenticated_as: str | None

    @property
    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed


class _Relay(socketserver.ThreadingTCPServer):
    """Passes connections through to the IMAP server, unless told to refuse them or to be slow."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.refusing = False
        self.delay = 0.0
        self.connections = 0
        self.refused = 0
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _RelayHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _RelayHandler(socketserver.BaseRequestHandler):
    server: _Relay

    def handle(self) -> None:
        relay = self.server
        with relay.lock:
            relay.connections += 1
            refusing = relay.refusing
            if refusing:
                relay.refused += 1
        client: socket.socket = self.request
        if refusing:
            # What a provider under maintenance says before hanging up (RFC 3501 7.1.5).
            with contextlib.suppress(OSError):
                client.sendall(b"* BYE [UNAVAILABLE] mailbox server under maintenance\r\n")
            return
        time.sleep(relay.delay)
        with socket.create_connection(("127.0.0.1", relay.upstream_port), timeout=30) as upstream:
            pump = threading.Thread(target=_copy, args=(upstream, client), daemon=True)
            pump.start()
            _copy(client, upstream)
            pump.join(timeout=5)


def _copy(source: socket.socket, target: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            target.sendall(chunk)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)


class _SmtpRecorder:
    """aiosmtpd handler: refuses unknown recipients and, on demand, everything; records the rest."""

    def __init__(self, peer: MailPeer) -> None:
        self._peer = peer

    async def handle_RCPT(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTPServer, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address.lower() in self._peer.unknown_recipients:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTPServer, session: Session, envelope: Envelope
    ) -> str:
        if self._peer.smtp_fail_code is not None:
            code = self._peer.smtp_fail_code
            return f"{code} {'4.3.0 Try again later' if code < 500 else '5.7.1 Message refused'}"
        login = session.auth_data if session.authenticated else None
        content = envelope.original_content or b""
        with self._peer.lock:
            self._peer.sent.append(
                SentMail(
                    mail_from=str(envelope.mail_from),
                    rcpt_tos=list(envelope.rcpt_tos),
                    raw=content if isinstance(content, bytes) else content.encode(),
                    authenticated_as=str(login) if login is not None else None,
                )
            )
        return "250 2.0.0 Message accepted"


def _authenticator(
    server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    ok = (
        isinstance(auth_data, LoginPassword)
        and auth_data.login == SMTP_USER.encode()
        and auth_data.password == SMTP_PASSWORD.encode()
    )
    return AuthResult(success=ok, handled=False, auth_data=SMTP_USER if ok else None)


class MailPeer:
    """pymap (through a relay that can fail) and aiosmtpd on 127.0.0.1; use as a context manager."""

    def __init__(self) -> None:
        self._imap_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._relay: _Relay | None = None
        self._relay_thread: threading.Thread | None = None
        self._smtp: Controller | None = None
        self.lock = threading.Lock()
        self.sent: list[SentMail] = []
        #: Answer DATA with this code (451: try later, 554: refused); None: accept.
        self.smtp_fail_code: int | None = None
        #: RCPT TO these (lower-case) addresses is answered 550.
        self.unknown_recipients: set[str] = set()
        self.smtp_port = free_port()
        self._archived = 0

    # --- lifecycle ---

    def __enter__(self) -> MailPeer:
        try:
            self._start_imap()
            self._start_smtp()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._smtp is not None:
            self._smtp.stop()
            self._smtp = None
        if self._relay is not None:
            self._relay.shutdown()
            self._relay.server_close()
            self._relay = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
            self._process = None

    def _start_imap(self) -> None:
        pymap = Path(sys.executable).with_name("pymap")
        self._process = subprocess.Popen(  # noqa: S603 (a fixed command line: the venv's pymap on loopback)
            [
                str(pymap),
                "--host",
                "127.0.0.1",
                "--port",
                str(self._imap_port),
                "--no-tls",
                "dict",
                "--demo-user",
                MAILBOX_USER,
                "--demo-password",
                MAILBOX_PASSWORD,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        wait_until(self._imap_ready, timeout=START_TIMEOUT, interval=0.1, what=f"pymap on port {self._imap_port}")
        self._relay = _Relay(self._imap_port)
        self._relay_thread = threading.Thread(target=self._relay.serve_forever, name="imap-relay", daemon=True)
        self._relay_thread.start()

    def _imap_ready(self) -> bool:
        assert self._process is not None
        if self._process.poll() is not None:
            raise RuntimeError(f"pymap exited with {self._process.returncode}; run it by hand to see why")
        try:
            with socket.create_connection(("127.0.0.1", self._imap_port), timeout=2) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    def _start_smtp(self) -> None:
        self._smtp = Controller(
            _SmtpRecorder(self),
            hostname="127.0.0.1",
            port=self.smtp_port,
            authenticator=_authenticator,
            auth_require_tls=False,
            ready_timeout=START_TIMEOUT,
        )
        self._smtp.start()

    # --- IMAP side ---

    @property
    def imap_port(self) -> int:
        """The port the adapter connects to (the relay's)."""
        assert self._relay is not None
        return self._relay.port

    @property
    def failing(self) -> bool:
        assert self._relay is not None
        return self._relay.refusing

    @failing.setter
    def failing(self, value: bool) -> None:
        assert self._relay is not None
        self._relay.refusing = value

    @property
    def imap_connections(self) -> int:
        assert self._relay is not None
        return self._relay.connections

    def client(self) -> IMAPClient:
        """A client logged in to the mailbox, straight to pymap (past the relay, so it works while failing)."""
        client = IMAPClient("127.0.0.1", port=self._imap_port, ssl=False, timeout=30)
        client.login(MAILBOX_USER, MAILBOX_PASSWORD)
        return client

    def deliver(self, raw: bytes | EmailMessage, mailbox: str = "INBOX", *, received_at: datetime | None = None) -> int:
        """Put a mail in the mailbox, as the provider's delivery agent would; its UID. `received_at` sets the
        server's INTERNALDATE (default: now), for mail that arrived long ago."""
        data = raw.as_bytes(policy=policy.SMTP) if isinstance(raw, EmailMessage) else raw
        with self.client() as client:
            answer = client.append(mailbox, data, msg_time=received_at)
        found = re.search(rb"APPENDUID \d+ (\d+)", answer)
        assert found is not None, f"pymap gave no APPENDUID: {answer!r}"
        return int(found[1])

    def uidvalidity(self, mailbox: str = "INBOX") -> int:
        with self.client() as client:
            return int(client.folder_status(mailbox, ["UIDVALIDITY"])[b"UIDVALIDITY"])

    def uids(self, mailbox: str = "INBOX") -> list[int]:
        with self.client() as client:
            client.select_folder(mailbox, readonly=True)
            return sorted(client.search(["ALL"]))

    def raw_mails(self, mailbox: str = "INBOX") -> list[bytes]:
        with self.client() as client:
            client.select_folder(mailbox, readonly=True)
            uids = sorted(client.search(["ALL"]))
            fetched = client.fetch(uids, ["BODY.PEEK[]"]) if uids else {}
            return [fetched[uid][b"BODY[]"] for uid in uids]

    def expunge(self, uid: int, mailbox: str = "INBOX") -> None:
        """Delete one mail for good, as a member of staff cleaning the mailbox would."""
        with self.client() as client:
            client.select_folder(mailbox)
            client.delete_messages([uid])
            client.expunge()

    def rebuild_inbox(self) -> str:
        """Move every mail out of INBOX into a new folder, leaving an empty INBOX with a new UIDVALIDITY."""
        self._archived += 1
        archive = f"Arsip-{self._archived}"
        before = self.uidvalidity()
        with self.client() as client:
            client.rename_folder("INBOX", archive)
        assert self.uidvalidity() != before, "renaming INBOX away did not change its UIDVALIDITY"
        return archive

    def settings(self, **overrides: Any) -> dict[str, Any]:
        """The `email` channel's settings pointing at this peer (plain IMAP and SMTP on loopback)."""
        return {
            "imap_host": "127.0.0.1",
            "imap_port": self.imap_port,
            "imap_ssl": False,
            "username": MAILBOX_USER,
            "password": MAILBOX_PASSWORD,
            "smtp_host": "127.0.0.1",
            "smtp_port": self.smtp_port,
            "smtp_starttls": False,
            "smtp_username": SMTP_USER,
            "smtp_password": SMTP_PASSWORD,
            "from_address": MAILBOX_USER,
            "from_name": "Pengaduan Pemprov DKI Jakarta",
            "timeout_seconds": 10,
            **overrides,
        }

    def sent_mails(self) -> list[SentMail]:
        with self.lock:
            return list(self.sent)


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "email"


def fixture_mail(name: str, **replace: str) -> bytes:
    """A fixture mail with CRLF line ends, as IMAP carries mail; `replace` swaps header values (`Message_ID=`)."""
    text = (FIXTURES / name).read_text(encoding="utf-8")
    for header, value in replace.items():
        name_in_mail = header.replace("_", "-")
        text, count = re.subn(rf"(?im)^{re.escape(name_in_mail)}:.*$", f"{name_in_mail}: {value}", text, count=1)
        assert count == 1, f"{name} has no {name_in_mail} header to replace"
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")

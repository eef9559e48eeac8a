"""Settings of an `email` channel: the mailbox read over IMAP and the SMTP server replies leave through."""

from __future__ import annotations

import ipaddress
from email.utils import parseaddr

from pydantic import Field, SecretStr, field_validator, model_validator

from adapters.contract import ChannelSettings


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class EmailSettings(ChannelSettings):
    # --- reading (IMAP) ---
    imap_host: str = Field(min_length=1, max_length=255)
    #: None: 993 with `imap_ssl`, else 143.
    imap_port: int | None = Field(default=None, ge=1, le=65535)
    #: Implicit TLS (IMAPS). Turn off only for a server on this machine, or together with `imap_starttls`.
    imap_ssl: bool = True
    imap_starttls: bool = False
    username: str = Field(min_length=1, max_length=320)
    password: SecretStr
    mailbox: str = Field(default="INBOX", min_length=1, max_length=200)
    #: On the first poll, and whenever the mailbox's UIDVALIDITY changes (it was rebuilt), the mails received
    #: in this many days (and since the last successful poll) are read again; those already stored are
    #: recognised by Message-ID.
    rescan_days: int = Field(default=7, ge=0, le=3650)
    max_messages_per_poll: int = Field(default=50, ge=1, le=1000)
    #: Larger mails are not read: their headers go to quarantine with the reason, for a person to handle.
    max_message_bytes: int = Field(default=50 * 1024 * 1024, ge=64 * 1024)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)

    # --- replying (SMTP) ---
    #: None: this channel cannot answer citizens (Kanal records each reply as not sent).
    smtp_host: str | None = Field(default=None, max_length=255)
    #: None: 465 with `smtp_ssl`, 587 with `smtp_starttls`, else 25.
    smtp_port: int | None = Field(default=None, ge=1, le=65535)
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    #: None: no SMTP AUTH (a relay that trusts Kanal's address).
    smtp_username: str | None = Field(default=None, max_length=320)
    smtp_password: SecretStr | None = None
    #: The address replies come from; None: `username` when it is an address.
    from_address: str | None = Field(default=None, max_length=320)
    from_name: str | None = Field(default=None, max_length=200)

    @field_validator("from_address")
    @classmethod
    def _one_address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        address = parseaddr(value)[1]
        if "@" not in address or address != value.strip():
            raise ValueError("from_address must be one bare address such as dki@jakarta.go.id (no display name)")
        return address

    @model_validator(mode="after")
    def _consistent(self) -> EmailSettings:
        if self.imap_ssl and self.imap_starttls:
            raise ValueError("set imap_ssl (port 993) or imap_starttls (port 143), not both")
        if not (self.imap_ssl or self.imap_starttls or is_loopback(self.imap_host)):
            raise ValueError(
                f"IMAP to {self.imap_host} without TLS would send the password in clear: "
                "set imap_ssl: true (port 993) or imap_starttls: true"
            )
        if self.smtp_ssl and self.smtp_starttls:
            raise ValueError("set smtp_ssl (port 465) or smtp_starttls (port 587), not both")
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("set both smtp_username and smtp_password, or neither (a relay without AUTH)")
        if self.smtp_host is not None:
            if self.sender_address is None:
                raise ValueError("set from_address: the address replies come from (username is not an address)")
            if self.smtp_username and not (self.smtp_ssl or self.smtp_starttls or is_loopback(self.smtp_host)):
                raise ValueError(
                    f"SMTP AUTH to {self.smtp_host} without TLS would send the password in clear: "
                    "set smtp_starttls: true (port 587) or smtp_ssl: true (port 465)"
                )
        return self

    @property
    def sender_address(self) -> str | None:
        if self.from_address:
            return self.from_address
        address = parseaddr(self.username)[1]
        return address if "@" in address and address == self.username.strip() else None

    @property
    def own_addresses(self) -> frozenset[str]:
        """Mail from these is ours (a copy of a reply, a test): never a citizen's."""
        return frozenset(a.lower() for a in (self.sender_address, self.username) if a and "@" in a)

    @property
    def imap_port_or_default(self) -> int:
        return self.imap_port or (993 if self.imap_ssl else 143)

    @property
    def smtp_port_or_default(self) -> int:
        return self.smtp_port or (465 if self.smtp_ssl else 587 if self.smtp_starttls else 25)

"""Who may do what to which reports: roles that may act, and each admin's scope.

The rule, applied in SQL (`Scope.report_clause`) and in Python (`Scope.allows`) alike:

- a superadmin sees every report;
- anyone else sees a report when it matches the channel part of their scope (if they have one)
  AND the wilayah part (if they have one);
- the channel part lists channel ids ("twitter:dkijakarta"), channel types ("twitter:*": every
  channel whose id starts with "twitter:") or "*" (every channel: the same as no channel part);
- the wilayah part lists codes of any level below the provinsi ("31.71" kota, "31.71.01"
  kecamatan, "31.71.01.1001" kelurahan); a report matches when its code at that level is the same;
- an empty scope sees nothing;
- a report without a place (no kota code) matches no wilayah part, so it is seen by superadmins and
  by admins whose scope has channels but no wilayah. Superadmins see everything, so no report is
  ever invisible to everyone.

Roles: superadmin, reviewer, channel_admin and wilayah_admin may act on the reports they see
(approve, reject, edit, ask for information, merge, reassign, open personal data); a viewer reads only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, and_, false, func, or_
from sqlmodel import Session, col

from normalizer.gazetteer import load_gazetteer
from review_queue import service
from review_queue.tables import AdminRole, AdminUser, Report

#: The channel part that means every channel.
ALL_CHANNELS = "*"
#: Roles that may change reports (and open personal data); any other role reads only.
ACTING_ROLES: frozenset[str] = frozenset(
    {AdminRole.SUPERADMIN, AdminRole.REVIEWER, AdminRole.CHANNEL_ADMIN, AdminRole.WILAYAH_ADMIN}
)
LANGUAGES = ("id", "en")

# "type:name" or "type:*"; the type is an adapter's name (lower case, digits, underscores).
_CHANNEL = re.compile(r"^[a-z0-9_]+:(\*|[^\s*]+)$")
# The Report column holding the code of each wilayah level (the normalizer fills every level above the one found).
_LEVEL_COLUMN = {"kota": Report.kota_code, "kecamatan": Report.kecamatan_code, "kelurahan": Report.kelurahan_code}
_LEVEL_OF_PARTS = {2: "kota", 3: "kecamatan", 4: "kelurahan"}


class AccountError(ValueError):
    """The account cannot be created or changed as asked; the message says why and what to do.

    `key` and `params`, when given, let the admin pages say the same in the admin's language (the
    message itself is English and may name command-line flags).
    """

    def __init__(self, message: str, *, key: str | None = None, **params: object) -> None:
        super().__init__(message)
        self.key = key
        self.params = params


def can_act(admin: AdminUser) -> bool:
    """Whether `admin` may change reports (within their scope) and open personal data."""
    return not admin.disabled and admin.role in ACTING_ROLES


@dataclass(frozen=True)
class Scope:
    """The reports one admin sees. Build it with `scope_of`; see the module docstring for the rule."""

    #: Every report, with or without a place: a superadmin, or "*" with no wilayah part.
    everything: bool
    #: Exact channel ids.
    channels: frozenset[str] = frozenset()
    #: Channel types: a channel id "twitter:dkijakarta" has type "twitter".
    channel_types: frozenset[str] = frozenset()
    #: Wilayah codes of level kota, kecamatan or kelurahan.
    wilayah: frozenset[str] = frozenset()

    @property
    def is_empty(self) -> bool:
        """Sees nothing at all: a non-superadmin with no channel and no wilayah."""
        return not self.everything and not (self.channels or self.channel_types or self.wilayah)

    def report_clause(self) -> ColumnElement[bool] | None:
        """A WHERE clause on `report` selecting what this scope sees; None: no filter at all.

        Built on indexed columns (channel_id and the three wilayah code columns) with equality tests,
        except channel types, which are a prefix match on channel_id.
        """
        if self.everything:
            return None
        if self.is_empty:
            return false()
        parts: list[ColumnElement[bool]] = []
        channel = self._channel_clause()
        if channel is not None:
            parts.append(channel)
        if self.wilayah:
            by_level = _codes_by_level(self.wilayah)
            if not by_level:
                return false()
            parts.append(or_(*(col(_LEVEL_COLUMN[level]).in_(sorted(codes)) for level, codes in by_level.items())))
        return and_(*parts)

    def _channel_clause(self) -> ColumnElement[bool] | None:
        if not (self.channels or self.channel_types):
            return None
        tests: list[ColumnElement[bool]] = []
        if self.channels:
            tests.append(col(Report.channel_id).in_(sorted(self.channels)))
        for kind in sorted(self.channel_types):
            prefix = f"{kind}:"
            # LIKE finds the candidates (and may use an index); substr keeps it case-sensitive on SQLite too,
            # where LIKE ignores case, so the SQL rule and `allows` never disagree.
            tests.append(
                and_(
                    col(Report.channel_id).startswith(prefix, autoescape=True),
                    func.substr(col(Report.channel_id), 1, len(prefix)) == prefix,
                )
            )
        return or_(*tests)

    def allows(self, report: Report) -> bool:
        """Whether this scope sees `report`: the same rule as `report_clause`, in Python."""
        if self.everything:
            return True
        if self.is_empty:
            return False
        if self.channels or self.channel_types:
            kind, colon, _name = report.channel_id.partition(":")
            if report.channel_id not in self.channels and not (colon and kind in self.channel_types):
                return False
        if self.wilayah:
            by_level = _codes_by_level(self.wilayah)
            if not any(getattr(report, f"{level}_code") in codes for level, codes in by_level.items()):
                return False
        return True

    def describe(self, lang: Literal["id", "en"] | str) -> str:
        """One line for the admin pages: what this scope covers, in `lang` ("id" or "en")."""
        english = lang == "en"
        if self.everything:
            return "All reports" if english else "Semua laporan"
        if self.is_empty:
            return (
                "Nothing: this account has no channel and no wilayah yet; ask a superadmin to set its scope."
                if english
                else "Tidak ada: akun ini belum diberi kanal maupun wilayah; minta superadmin mengatur cakupannya."
            )
        pieces = []
        channels = sorted(self.channels) + [f"{kind}:*" for kind in sorted(self.channel_types)]
        if channels:
            pieces.append(("Channels: " if english else "Kanal: ") + ", ".join(channels))
        if self.wilayah:
            gazetteer = load_gazetteer()
            names = [
                f"{gazetteer.regions[c].short_name} ({c})" if c in gazetteer.regions else c
                for c in sorted(self.wilayah)
            ]
            pieces.append(("Wilayah: " if not english else "Areas: ") + ", ".join(names))
            if not channels:
                pieces.append("all channels" if english else "semua kanal")
        return "; ".join(pieces)


EVERYTHING = Scope(everything=True)


def scope_of(admin: AdminUser) -> Scope:
    """The reports `admin` sees. A disabled account sees nothing."""
    if admin.disabled:
        return Scope(everything=False)
    if admin.role == AdminRole.SUPERADMIN:
        return EVERYTHING
    channels = set(admin.scope_channels or ())
    wilayah = frozenset(admin.scope_wilayah or ())
    if ALL_CHANNELS in channels:
        # Every channel is the same as no channel part; without a wilayah part that is everything.
        if not wilayah:
            return EVERYTHING
        return Scope(everything=False, wilayah=wilayah)
    types = frozenset(c[:-2] for c in channels if c.endswith(":*"))
    exact = frozenset(c for c in channels if not c.endswith(":*"))
    return Scope(everything=False, channels=exact, channel_types=types, wilayah=wilayah)


def get_report_in_scope(session: Session, key: str, scope: Scope, *, for_update: bool = False) -> Report:
    """The report with id or ticket code `key`, if `scope` sees it.

    Raises `service.ReportNotFound`, exactly as for a missing report, when it exists outside the scope:
    an admin cannot tell another area's report from one that does not exist.
    """
    report = service.get_report(session, key, for_update=for_update)
    if not scope.allows(report):
        raise service.ReportNotFound(key)
    return report


def validate_account(
    *,
    role: AdminRole | str,
    scope_channels: Sequence[str] | None,
    scope_wilayah: Sequence[str] | None,
    language: str = "id",
) -> tuple[list[str], list[str]]:
    """Check a new account's scope and language; return the scope as stored (sorted, without repeats).

    `None` for both scope parts gives a reviewer or viewer every channel ("*", the whole city, as before
    scopes existed); a channel_admin must name channels and a wilayah_admin wilayah codes. A superadmin
    sees everything whatever is stored. Raises `AccountError` naming the first problem.
    """
    try:
        role = AdminRole(role)
    except ValueError:
        raise AccountError(
            f"unknown role {role!r}; use one of: {', '.join(r.value for r in AdminRole)}",
            key="accounts.err.role",
            role=role,
        ) from None
    if language not in LANGUAGES:
        raise AccountError(
            f"unknown language {language!r}; use id (Bahasa Indonesia) or en (English)",
            key="accounts.err.language",
            language=language,
        )
    if scope_channels is None and scope_wilayah is None and role in (AdminRole.REVIEWER, AdminRole.VIEWER):
        scope_channels = [ALL_CHANNELS]
    channels = sorted({c.strip() for c in scope_channels or ()})
    wilayah = sorted({c.strip() for c in scope_wilayah or ()})
    for channel in channels:
        if channel != ALL_CHANNELS and not _CHANNEL.match(channel):
            raise AccountError(
                f"scope channel {channel!r} is not a channel id: write type:name (twitter:dkijakarta), "
                "type:* (every twitter channel) or * (every channel)",
                key="accounts.err.channel_id",
                channel=channel,
            )
    check_wilayah_codes(wilayah)
    if role == AdminRole.CHANNEL_ADMIN and not channels:
        raise AccountError(
            "a channel_admin needs at least one scope channel (--scope-channel twitter:*)",
            key="accounts.err.channel_admin_scope",
        )
    if role == AdminRole.WILAYAH_ADMIN and not wilayah:
        raise AccountError(
            "a wilayah_admin needs at least one wilayah code (--scope-wilayah 31.71.01.1001)",
            key="accounts.err.wilayah_admin_scope",
        )
    return channels, wilayah


def check_wilayah_codes(codes: Iterable[str]) -> None:
    """Raise `AccountError` naming the first code that is not a kota, kecamatan or kelurahan of wilayah.csv."""
    regions = load_gazetteer().regions
    for code in codes:
        region = regions.get(code)
        if region is None:
            raise AccountError(
                f"unknown wilayah code {code!r}; use a Kemendagri code from normalizer/data/wilayah.csv, "
                "e.g. 31.71 (kota), 31.71.01 (kecamatan) or 31.71.01.1001 (kelurahan)",
                key="accounts.err.wilayah_unknown",
                code=code,
            )
        if region.level not in _LEVEL_COLUMN:
            raise AccountError(
                f"wilayah code {code!r} is the whole provinsi; give its kota codes instead, or no wilayah "
                "at all to see every report (also those without a place)",
                key="accounts.err.wilayah_provinsi",
                code=code,
            )


def _codes_by_level(codes: Iterable[str]) -> dict[str, set[str]]:
    grouped: dict[str, set[str]] = {}
    for code in codes:
        level = _LEVEL_OF_PARTS.get(code.count(".") + 1)
        if level is not None:  # checked on creation; a stray value matches nothing rather than everything
            grouped.setdefault(level, set()).add(code)
    return grouped

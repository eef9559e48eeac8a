"""Duplicates and follow-ups: the pure part (keys, terms, scores); the lookups are in `review_queue.matching`.

Two messages are about the same problem when they fall in the same block (same kelurahan and category,
inside a time window) and their details agree (street, RT/RW, coordinates, words). A message is a
follow-up of an earlier report when it quotes its ticket, replies in its thread, or comes from the same
sender soon after without a new problem of its own. Blocking keys are what make the lookup cheap: a new
message reads only the reports that share one of its keys, never the whole history.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from adapters.contract import Sender
from normalizer.pipeline import Draft

#: Reports about the same place and problem further apart than this are separate reports.
DUPLICATE_WINDOW = timedelta(days=14)
#: A same-sender message without a problem of its own within this time adds to the sender's last report.
FOLLOW_UP_WINDOW = timedelta(hours=48)
#: Score from which a report is grouped with an earlier one (see `duplicate_score`).
DUPLICATE_THRESHOLD = 0.6
#: At most this many earlier reports are compared per key: the newest in the window.
CANDIDATES_PER_KEY = 50
MAX_MATCH_TERMS = 40
#: The pseudo-key of a candidate found because the message quotes its ticket (or a follow-up's ticket).
TICKET_KEY = "ticket"

# Words that say nothing about which problem it is: function words, politeness, the channel's chatter.
_STOP_WORDS_TEXT = """
    yang dan di ke dari ini itu ada tidak sudah belum akan untuk dengan pada dalam juga saja atau tapi
    karena kami saya kita mereka dia anda bapak ibu pak bu mas mbak admin tolong mohon segera terima
    kasih sangat sekali banyak sudah lagi masih bisa dapat agar supaya hari minggu bulan tahun jam
    sejak sampai kalau jika sebagai oleh para semua setiap warga kota jakarta dki pemprov gubernur
    the and for with this that please thanks rt rw jalan jl kelurahan kecamatan nomor no
"""
_STOP_WORDS = frozenset(_STOP_WORDS_TEXT.split())
_WORD = re.compile(r"[a-z]{3,}")
_SPACE = re.compile(r"\s+")


def match_terms(analysis_text: str) -> list[str]:
    """The distinct content words of a message, sorted: what two reports' texts are compared on."""
    words = {w for w in _WORD.findall(analysis_text) if w not in _STOP_WORDS}
    return sorted(words)[:MAX_MATCH_TERMS] if len(words) > MAX_MATCH_TERMS else sorted(words)


def _digest(value: str) -> str:
    # Keys are hashed so the index never holds a phone number or an email address in clear.
    return hashlib.blake2b(value.encode(), digest_size=8).hexdigest()


def normalized_phone(phone: str) -> str | None:
    """+62 812-3456-7890, 0812 3456 7890 and 6281234567890 are one number: 6281234567890."""
    digits = re.sub(r"\D", "", phone)
    if digits.startswith("0"):
        digits = "62" + digits[1:]
    return digits if len(digits) >= 8 else None


def sender_keys(channel_id: str, sender: Sender | None) -> list[str]:
    """Keys that recognise one citizen: a phone or email across channels, an account within its channel."""
    if sender is None:
        return []
    keys = []
    if sender.phone and (phone := normalized_phone(sender.phone)):
        keys.append("sender:phone:" + _digest(phone))
    if sender.email:
        keys.append("sender:email:" + _digest(sender.email.strip().lower()))
    account = sender.id or sender.handle
    if account:
        keys.append("sender:account:" + _digest(f"{channel_id}\x00{account.strip().lower()}"))
    return keys


def thread_key(channel_id: str, thread_id: str | None) -> str | None:
    return "thread:" + _digest(f"{channel_id}\x00{thread_id}") if thread_id else None


def place_key(draft: Draft) -> str | None:
    """The duplicate block: same kelurahan and category. None when either is unknown."""
    if draft.place.kelurahan_code and draft.routing.category_code:
        return f"place:{draft.place.kelurahan_code}:{draft.routing.category_code}"
    return None


def key_window(key: str) -> timedelta:
    """How far back a key reaches: a problem's block for days, a sender's or thread's chat for hours."""
    return DUPLICATE_WINDOW if key.startswith("place:") else FOLLOW_UP_WINDOW


def draft_keys(draft: Draft) -> list[str]:
    """Every blocking key of a draft, the ones a later message can find it by."""
    keys = [k for k in (place_key(draft), thread_key(draft.channel_id, draft.original.thread_id)) if k]
    return keys + sender_keys(draft.channel_id, draft.sender)


@dataclass
class Candidate:
    """An earlier report as the matcher sees it."""

    report_id: str
    ticket_code: str
    channel_id: str
    received_at: datetime
    kelurahan_code: str | None
    category_code: str | None
    street: str | None
    rt: str | None
    rw: str | None
    lat: float | None
    lng: float | None
    terms: frozenset[str]
    duplicate_of: str | None
    crm_service_request_id: str | None = None
    #: Which of the new message's keys found it.
    matched_keys: set[str] = field(default_factory=set)

    @property
    def group_id(self) -> str:
        """The first report of its duplicate group."""
        return self.duplicate_of or self.report_id


@dataclass(frozen=True)
class Verdict:
    """What the matcher decided for a new message: attach it, group it, or neither; and why."""

    follow_up_of: Candidate | None = None
    duplicate_of: Candidate | None = None
    score: float | None = None
    reason: str = "no earlier report matches"


def _normalized_street(street: str | None) -> str | None:
    if not street:
        return None
    street = re.sub(r"^(jalan|jln|jl)\b\.?\s*", "", street.strip().lower())
    street = re.sub(r"\b(no|nomor)\b.*$", "", street)  # house numbers differ between two reporters
    return _SPACE.sub(" ", street).strip() or None


def _distance_m(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    # Equirectangular is within centimetres of haversine at Jakarta's scale, and cheaper.
    x = math.radians(lng2 - lng1) * math.cos(math.radians((lat1 + lat2) / 2))
    y = math.radians(lat2 - lat1)
    return 6_371_000 * math.hypot(x, y)


def duplicate_score(draft: Draft, terms: frozenset[str], candidate: Candidate) -> tuple[float, list[str]]:
    """How sure we are that `draft` reports the same problem as `candidate` (same block assumed), and why.

    Same kelurahan and category is the start; agreeing details add, disagreeing ones subtract, so two
    different potholes on two streets of one kelurahan stay apart.
    """
    score, reasons = 0.4, [f"same kelurahan {candidate.kelurahan_code} and category {candidate.category_code}"]
    mine, theirs = _normalized_street(draft.place.street), _normalized_street(candidate.street)
    if mine and theirs:
        if mine == theirs:
            score += 0.3
            reasons.append(f"same street '{mine}'")
        else:
            # Decisive on its own: identical wording about two streets is two problems (or a template).
            score -= 0.6
            reasons.append(f"different streets ('{mine}' vs '{theirs}')")
    if draft.place.rt and candidate.rt and draft.place.rw and candidate.rw:
        if (draft.place.rt, draft.place.rw) == (candidate.rt, candidate.rw):
            score += 0.1
            reasons.append(f"same RT {candidate.rt}/RW {candidate.rw}")
        else:
            score -= 0.2
            reasons.append("different RT/RW")
    location = draft.location
    if location and location.lat is not None and location.lng is not None and candidate.lat is not None:
        assert candidate.lng is not None
        metres = _distance_m(location.lat, location.lng, candidate.lat, candidate.lng)
        if metres <= 150:
            score += 0.3
            reasons.append(f"{metres:.0f} m apart")
        elif metres > 500:
            score -= 0.5
            reasons.append(f"{metres:.0f} m apart")
    if terms and candidate.terms:
        overlap = len(terms & candidate.terms) / len(terms | candidate.terms)
        score += 0.6 * overlap
        reasons.append(f"text similarity {overlap:.2f}")
    return round(score, 3), reasons


def _quotes(draft: Draft, candidate: Candidate) -> bool:
    """The message names this report's ticket (Kanal's or the CRM's), or the ticket of one of its follow-ups."""
    own = {candidate.ticket_code, candidate.crm_service_request_id}
    return TICKET_KEY in candidate.matched_keys or any(ref in own for ref in draft.ticket_refs)


def follow_up_reason(draft: Draft, candidate: Candidate, *, has_own_problem: bool) -> str | None:
    """Why `draft` continues `candidate` rather than starting a report, or None if it does not."""
    if _quotes(draft, candidate):
        return f"quotes ticket {', '.join(draft.ticket_refs)} (report {candidate.ticket_code})"
    key = thread_key(draft.channel_id, draft.original.thread_id)
    if key and key in candidate.matched_keys:
        return "reply in the same conversation thread"
    if set(sender_keys(draft.channel_id, draft.sender)) & candidate.matched_keys:
        same_problem = (
            draft.routing.category_code is not None
            and draft.routing.category_code == candidate.category_code
            and draft.place.kelurahan_code in (None, candidate.kelurahan_code)
        )
        if not has_own_problem:
            return "same sender, no new problem of its own"
        if same_problem:
            return "same sender, same problem and place"
    return None


def judge(draft: Draft, candidates: list[Candidate], *, has_own_problem: bool) -> Verdict:
    """Pick what `draft` is: a follow-up (first by ticket, then thread, then sender), a duplicate, or new."""
    ordered = sorted(candidates, key=lambda c: (c.received_at, c.report_id), reverse=True)
    quoted = [c for c in ordered if _quotes(draft, c)]
    for candidate in quoted + ordered:
        if reason := follow_up_reason(draft, candidate, has_own_problem=has_own_problem):
            return Verdict(follow_up_of=candidate, reason=reason)
    block = place_key(draft)
    if block is None:
        return Verdict()
    terms = frozenset(match_terms(draft.analysis_text))
    best: tuple[float, list[str], Candidate] | None = None
    for candidate in ordered:
        if block not in candidate.matched_keys:
            continue
        score, reasons = duplicate_score(draft, terms, candidate)
        if best is None or score > best[0]:
            best = (score, reasons, candidate)
    if best is None:
        return Verdict()
    score, reasons, candidate = best
    if score < DUPLICATE_THRESHOLD:
        return Verdict(
            score=score,
            reason=f"closest earlier report {candidate.ticket_code} scored {score:.2f}: " + "; ".join(reasons),
        )
    return Verdict(duplicate_of=candidate, score=score, reason="; ".join(reasons))

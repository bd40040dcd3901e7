"""`check_reply`: run every detector over a reply and return an explainable `Verdict`.

Pure and deterministic: the same arguments always give the same verdict; nothing is read or stored.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Sequence

from engine.compliance import contacts, detectors
from engine.compliance.contacts import Hit
from engine.compliance.rules import RULE_BY_ID, SP_API_ATTACHMENT_ONLY_TYPES, SP_API_TEXT_LIMITS
from engine.compliance.textfold import fold
from engine.compliance.verdict import Verdict, Violation
from engine.errors import InputError

Detector = Callable[[str], Iterable[Hit]]

DETECTORS: tuple[Detector, ...] = (
    contacts.find_links,
    contacts.find_emails,
    contacts.find_phones,
    detectors.find_messengers,
    detectors.find_off_amazon,
    detectors.find_marketing,
    detectors.find_review_manipulation,
    detectors.find_html,
    detectors.find_placeholders,
    detectors.find_emoji,
    detectors.find_thanks_only,
)

_DOMAIN_ENTRY = re.compile(r"(?:[a-z0-9-]+\.)+[a-z]{2,}", re.IGNORECASE)


def check_reply(
    text: str,
    *,
    buyer_language: str | None = None,
    reply_language: str | None = None,
    allow_list: Sequence[str] = (),
    message_type: str | None = None,
) -> Verdict:
    """Check a reply against Amazon's buyer-messaging rules.

    `reply_language` is detected by the caller (the gate stays pure). `allow_list` holds per-store strings
    (a warranty hotline, a carrier's tracking site): a match fully inside one of them is no violation; an
    entry that is a bare domain also allows links to that host. `message_type` (an SP-API messaging type)
    adds its text-length limit.
    """
    folded = fold(text)
    hits = [hit for detector in DETECTORS for hit in detector(folded)]
    hits = _drop_links_inside_emails(hits)
    hits = [hit for hit in hits if not _allowed(hit, folded, allow_list)]
    violations = [_violation(hit.rule, hit.start, hit.end, text) for hit in _merge(hits)]
    violations.extend(_language_mismatch(text, buyer_language, reply_language))
    violations.extend(_length_limit(text, message_type))
    violations.sort(key=lambda v: (v.start, v.end, v.rule))
    return Verdict(tuple(violations))


def _violation(rule: str, start: int, end: int, text: str, explanation: str | None = None) -> Violation:
    info = RULE_BY_ID[rule]
    return Violation(rule, info.severity, start, end, text[start:end], explanation or info.description)


def _drop_links_inside_emails(hits: list[Hit]) -> list[Hit]:
    emails = [hit for hit in hits if hit.rule == "email"]
    return [
        hit for hit in hits if hit.rule != "link" or not any(e.start <= hit.start and hit.end <= e.end for e in emails)
    ]


def _merge(hits: Iterable[Hit]) -> Iterator[Hit]:
    """Overlapping hits of the same rule become one."""
    by_rule: dict[str, list[Hit]] = {}
    for hit in hits:
        by_rule.setdefault(hit.rule, []).append(hit)
    for rule, found in by_rule.items():
        found.sort()
        current = found[0]
        for hit in found[1:]:
            if hit.start < current.end:
                current = Hit(rule, current.start, max(current.end, hit.end))
            else:
                yield current
                current = hit
        yield current


# --- allow-list --------------------------------------------------------------------------------------


def _allowed(hit: Hit, folded: str, allow_list: Sequence[str]) -> bool:
    if not allow_list:
        return False
    haystack = folded.lower()
    if len(haystack) != len(folded):  # a few characters change length when lowered: match case-sensitively
        haystack = folded
    for entry in allow_list:
        needle = fold(entry).strip()
        if not needle:
            continue
        if _inside_occurrence(hit, haystack, needle.lower() if haystack is not folded else needle):
            return True
        if hit.rule == "phone" and _same_number(folded[hit.start : hit.end], needle):
            return True
        if hit.rule == "link" and _DOMAIN_ENTRY.fullmatch(needle) and _on_host(folded[hit.start : hit.end], needle):
            return True
    return False


def _inside_occurrence(hit: Hit, haystack: str, needle: str) -> bool:
    start = haystack.find(needle)
    while start != -1:
        if start <= hit.start and hit.end <= start + len(needle):
            return True
        start = haystack.find(needle, start + 1)
    return False


def _same_number(found: str, entry: str) -> bool:
    """+49 800 1234567, 0800 123 4567 and 0800-1234567 are one number: compare the national digits."""
    found_digits = re.sub(r"\D", "", found).lstrip("0")
    entry_digits = re.sub(r"\D", "", entry).lstrip("0")
    if len(found_digits) < 7 or len(entry_digits) < 7:
        return False
    shorter, longer = sorted((found_digits, entry_digits), key=len)
    return longer.endswith(shorter) and len(longer) - len(shorter) <= 3


def _on_host(link: str, domain: str) -> bool:
    host = contacts.link_host(link)
    domain = domain.lower().removeprefix("www.")
    return host == domain or host.endswith("." + domain)


# --- whole-text rules --------------------------------------------------------------------------------


def _primary_language(tag: str | None) -> str | None:
    if not tag:
        return None
    primary = tag.strip().replace("_", "-").split("-")[0].lower()
    return None if primary in ("", "und", "unknown") else primary


def _language_mismatch(text: str, buyer_language: str | None, reply_language: str | None) -> list[Violation]:
    buyer, reply = _primary_language(buyer_language), _primary_language(reply_language)
    if buyer is None or reply is None or buyer == reply or not text.strip():
        return []
    explanation = (
        f"The buyer wrote in '{buyer}' but this reply reads as '{reply}'; Amazon asks sellers to write in "
        "the buyer's language: translate the reply or check the detected language."
    )
    return [_violation("language_mismatch", 0, len(text), text, explanation)]


def _length_limit(text: str, message_type: str | None) -> list[Violation]:
    if message_type is None:
        return []
    if message_type in SP_API_ATTACHMENT_ONLY_TYPES:
        if not text:
            return []
        explanation = f"The SP-API message type {message_type} carries attachments only: send the text another way."
        return [_violation("length_limit", 0, len(text), text, explanation)]
    limit = SP_API_TEXT_LIMITS.get(message_type)
    if limit is None:
        known = ", ".join(sorted([*SP_API_TEXT_LIMITS, *SP_API_ATTACHMENT_ONLY_TYPES]))
        raise InputError(f"Unknown SP-API message type {message_type!r}; use one of: {known}.")
    if not text.strip():
        explanation = f"The SP-API message type {message_type} needs a text of 1 to {limit} characters: write one."
        return [_violation("length_limit", 0, len(text), text, explanation)]
    if len(text) <= limit:
        return []
    explanation = (
        f"The SP-API message type {message_type} accepts at most {limit} characters and this text has "
        f"{len(text)}: shorten it by {len(text) - limit} (the part past the limit is marked)."
    )
    return [_violation("length_limit", limit, len(text), text, explanation)]

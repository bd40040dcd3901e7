"""`check_reply` and `check_outgoing`: run every detector over a reply and return an explainable `Verdict`.

Pure and deterministic: the same arguments always give the same verdict; nothing is read or stored.
The reply is normalised first (see `normalize`); detectors read the normalised text, the keyword
detectors also its squeezed form, and every violation is mapped back to the original text.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from engine.compliance import contacts, detectors, phones
from engine.compliance.disguise import disguise_in, explain, invisible_violations
from engine.compliance.links import Hit
from engine.compliance.normalize import Normalized, View, normalize
from engine.compliance.rules import RULE_BY_ID, SP_API_ATTACHMENT_ONLY_TYPES, SP_API_TEXT_LIMITS
from engine.compliance.textfold import fold
from engine.compliance.verdict import Verdict, Violation
from engine.errors import InputError

Detector = Callable[[str], Iterable[Hit]]

DETECTORS: tuple[Detector, ...] = (
    contacts.find_links,
    contacts.find_emails,
    phones.find_phones,
    detectors.find_messengers,
    detectors.find_off_amazon,
    detectors.find_marketing,
    detectors.find_review_manipulation,
    detectors.find_html,
    detectors.find_placeholders,
    detectors.find_emoji,
    detectors.find_thanks_only,
)
# Detectors that also read the squeezed text ("W e C h a t", "P.a.y.P.a.l", "加我微 信").
SQUEEZED_DETECTORS: tuple[Detector, ...] = (
    contacts.find_links,
    detectors.find_messengers,
    detectors.find_off_amazon,
    detectors.find_marketing,
    detectors.find_review_manipulation,
)
SUBJECT_FIELD = "subject"
_SQUEEZED_MARGIN = 160  # characters read either side of a joined spot: longer than any phrase
_DOMAIN_ENTRY = re.compile(r"(?:[a-z0-9-]+\.)+[a-z]{2,}", re.IGNORECASE)


def check_reply(
    text: str,
    *,
    buyer_language: str | None = None,
    reply_language: str | None = None,
    allow_list: Sequence[str] = (),
    message_type: str | None = None,
) -> Verdict:
    """Check a reply body against Amazon's buyer-messaging rules.

    `reply_language` is detected by the caller (the gate stays pure). `allow_list` holds per-store strings
    (a warranty hotline, a carrier's tracking site): a match fully inside one of them is no violation; an
    entry that is a bare domain also allows links to that host. `message_type` (an SP-API messaging type)
    adds its text-length limit.
    """
    violations = _content_violations(text, allow_list, whole_reply=True)
    violations.extend(_language_mismatch(text, buyer_language, reply_language))
    violations.extend(_length_limit(text, message_type))
    violations.sort(key=lambda v: (v.start, v.end, v.rule))
    return Verdict(tuple(violations))


def check_outgoing(
    body: str,
    *,
    subject: str | None = None,
    buyer_language: str | None = None,
    reply_language: str | None = None,
    allow_list: Sequence[str] = (),
    message_type: str | None = None,
    fields: Mapping[str, str] | None = None,
) -> Verdict:
    """Check everything a reply sends: the body as `check_reply` does, the subject line (usually
    "Re: <the buyer's subject>") and any other field the buyer sees (`fields`, by name: an SP-API
    attachment's file name). Their violations carry `field` ("subject", ...) and offsets into it."""
    verdict = check_reply(
        body,
        buyer_language=buyer_language,
        reply_language=reply_language,
        allow_list=allow_list,
        message_type=message_type,
    )
    named = {SUBJECT_FIELD: subject or "", **(fields or {})}
    found = [
        Violation(v.rule, v.severity, v.start, v.end, v.text, f"In the {name}: {v.explanation}", name)
        for name, value in named.items()
        if value
        for v in _content_violations(value, allow_list, whole_reply=False)
    ]
    return Verdict(verdict.violations + tuple(found))


def gated_subject(subject: str, *, allow_list: Sequence[str] = (), fallback: str = "Re: Your message") -> str:
    """The reply's subject line with whatever the gate blocks in it cut out (the buyer wrote it, the
    reply must not repeat it); `fallback` when nothing acceptable is left."""
    blocked = _blocking(subject, allow_list)
    if not blocked:
        return subject
    kept: list[str] = []
    last = 0
    for violation in sorted(blocked, key=lambda v: v.start):
        kept.append(subject[last : max(last, violation.start)])
        last = max(last, violation.end)
    kept.append(subject[last:])
    cleaned = " ".join("".join(kept).split()).strip(" :;,-")
    if len(cleaned) <= len("Re:") or _blocking(cleaned, allow_list):
        return fallback
    return cleaned


def _blocking(text: str, allow_list: Sequence[str]) -> list[Violation]:
    return [v for v in _content_violations(text, allow_list, whole_reply=False) if v.severity == "block"]


def _content_violations(text: str, allow_list: Sequence[str], *, whole_reply: bool) -> list[Violation]:
    normalized = normalize(text)
    entries = _allow_entries(allow_list)
    found: list[tuple[Hit, View | None]] = []  # with the squeezed view it was found in
    view = normalized.view.text
    for detector in DETECTORS:
        if not whole_reply and detector is detectors.find_thanks_only:
            continue
        found.extend((hit, None) for hit in detector(view) if not _allowed(hit, view, entries))
    for squeezed in (normalized.squeezed, normalized.squeezed_short):
        if squeezed is normalized.squeezed_short and squeezed.text == normalized.squeezed.text:
            continue
        for window_start, window_end in _squeezed_windows(squeezed):
            window = squeezed.text[window_start:window_end]
            for detector in SQUEEZED_DETECTORS:
                for hit in detector(window):
                    moved = Hit(hit.rule, hit.start + window_start, hit.end + window_start)
                    if not _allowed(moved, squeezed.text, entries):
                        found.append((moved, squeezed))
    hits = [_to_original(normalized, hit, was_squeezed) for hit, was_squeezed in found]
    plain = [hit for hit, (_, was_squeezed) in zip(hits, found, strict=True) if was_squeezed is None]
    hits = _drop_links_inside_emails(hits)
    violations = [_violation(normalized, hit, plain) for hit in _merge(hits)]
    blocking = [(v.start, v.end, v.rule) for v in violations if v.severity == "block"]
    violations.extend(invisible_violations(normalized, blocking))
    return violations


def _squeezed_windows(squeezed: View) -> list[tuple[int, int]]:
    """Where the squeezed text differs from the normalised one, with room for a phrase either side:
    elsewhere it reads the same, so the detectors need not read it twice."""
    windows: list[tuple[int, int]] = []
    for cut in squeezed.cuts():
        start, end = max(0, cut - _SQUEEZED_MARGIN), cut + _SQUEEZED_MARGIN
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], end)
        else:
            windows.append((start, end))
    return windows


def _to_original(normalized: Normalized, hit: Hit, squeezed: View | None) -> Hit:
    start, end = normalized.original_span(hit.start, hit.end, squeezed=squeezed)
    return Hit(hit.rule, start, end)


def _violation(normalized: Normalized, hit: Hit, plain: list[Hit]) -> Violation:
    """`plain`: the hits found without squeezing; a hit none of them overlaps was found only by it."""
    info = RULE_BY_ID[hit.rule]
    text = normalized.original
    squeezed = len(plain) < 1000 and not any(
        p.rule == hit.rule and p.start < hit.end and hit.start < p.end for p in plain
    )
    disguise = disguise_in(normalized, hit.start, hit.end, squeezed=squeezed)
    explanation = explain(hit.rule, disguise, info.description)
    return Violation(hit.rule, info.severity, hit.start, hit.end, text[hit.start : hit.end], explanation)


def _drop_links_inside_emails(hits: list[Hit]) -> list[Hit]:
    emails = list(_merge(hit for hit in hits if hit.rule == "email"))  # sorted, disjoint
    starts = [email.start for email in emails]

    def inside_an_email(hit: Hit) -> bool:
        index = bisect_right(starts, hit.start) - 1
        return index >= 0 and hit.end <= emails[index].end

    return [hit for hit in hits if hit.rule != "link" or not inside_an_email(hit)]


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


def _allow_entries(allow_list: Sequence[str]) -> list[str]:
    return [entry for entry in (normalize(fold(e)).view.text.strip() for e in allow_list) if entry]


def _allowed(hit: Hit, text: str, entries: Sequence[str]) -> bool:
    if not entries:
        return False
    haystack = text.lower()
    if len(haystack) != len(text):  # a few characters change length when lowered: match case-sensitively
        haystack = text
    for needle in entries:
        if _inside_occurrence(hit, haystack, needle.lower() if haystack is not text else needle):
            return True
        if hit.rule == "phone" and _same_number(text[hit.start : hit.end], needle):
            return True
        if hit.rule == "link" and _DOMAIN_ENTRY.fullmatch(needle) and _on_host(text[hit.start : hit.end], needle):
            return True
    return False


def _inside_occurrence(hit: Hit, haystack: str, needle: str) -> bool:
    start = haystack.find(needle, max(0, hit.end - len(needle)))
    while start != -1 and start <= hit.start:
        if hit.end <= start + len(needle):
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
    return [_whole_text_violation("language_mismatch", 0, len(text), text, explanation)]


def _length_limit(text: str, message_type: str | None) -> list[Violation]:
    if message_type is None:
        return []
    if message_type in SP_API_ATTACHMENT_ONLY_TYPES:
        if not text:
            return []
        explanation = f"The SP-API message type {message_type} carries attachments only: send the text another way."
        return [_whole_text_violation("length_limit", 0, len(text), text, explanation)]
    limit = SP_API_TEXT_LIMITS.get(message_type)
    if limit is None:
        known = ", ".join(sorted([*SP_API_TEXT_LIMITS, *SP_API_ATTACHMENT_ONLY_TYPES]))
        raise InputError(f"Unknown SP-API message type {message_type!r}; use one of: {known}.")
    if not text.strip():
        explanation = f"The SP-API message type {message_type} needs a text of 1 to {limit} characters: write one."
        return [_whole_text_violation("length_limit", 0, len(text), text, explanation)]
    if len(text) <= limit:
        return []
    explanation = (
        f"The SP-API message type {message_type} accepts at most {limit} characters and this text has "
        f"{len(text)}: shorten it by {len(text) - limit} (the part past the limit is marked)."
    )
    return [_whole_text_violation("length_limit", limit, len(text), text, explanation)]


def _whole_text_violation(rule: str, start: int, end: int, text: str, explanation: str) -> Violation:
    info = RULE_BY_ID[rule]
    return Violation(rule, info.severity, start, end, text[start:end], explanation)

"""Signs that a mail is not what it claims to be: a pure function over a few header facts.

A mail is `suspicious` when any sign is present; each sign is a short sentence for a human (stored with
the message, shown on it). Only failures count: a forged `Authentication-Results: pass` proves nothing,
but a failure recorded by the receiving server cannot be removed by the sender.

- `dmarc=fail` in Authentication-Results (the From domain is forged), whoever the sender claims to be;
- `dkim`/`spf` failures when the mail claims to come from Amazon (its address, name, relay alias or
  Seller Central notification header);
- a relay alias in Reply-To while From is not an Amazon address (replies would reach a buyer alias on
  behalf of someone else);
- a sender name that says Amazon on a non-Amazon address, or a host that only looks like Amazon's;
- a Seller Central notification header on mail that does not come from Amazon;
- more than one From, Reply-To or Sender header;
- a Date far outside any plausible range.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import re2
from confusable_homoglyphs import confusables

from engine.mail.markers import is_amazon_host, is_relay_host

_AUTH_RESULT = re2.compile(r"(?i)\b(dkim|spf|dmarc)[ \t]*=[ \t]*(fail|softfail|permerror)\b")
# Characters that stand in for others in lookalike hosts (amaz0n, arnazon, amazonǃ).
_LOOKALIKE = str.maketrans({"0": "o", "1": "l", "3": "e", "4": "a", "5": "s", "@": "a", "|": "l"})
_AMAZON_SERVICE_HOST = re2.compile(r"(?i)(?:^|\.)amazonses\.com$")


@dataclass(frozen=True)
class SenderFacts:
    from_address: str
    from_name: str | None
    from_count: int  # how many From headers
    reply_to: tuple[str, ...]  # Reply-To addresses
    reply_to_count: int
    sender_count: int
    authentication_results: tuple[str, ...]
    notification_type: str | None
    date_out_of_range: bool


def _host(address: str) -> str:
    return address.rpartition("@")[2].strip().rstrip(".").lower()


def looks_like_amazon(host: str) -> bool:
    """A host that reads "amazon" once decoded and de-disguised, yet is none of Amazon's hosts."""
    if not host or is_amazon_host(host) or ("amazonses" in host and _AMAZON_SERVICE_HOST.search(host)):
        return False
    try:
        readable = host.encode("ascii").decode("idna") if "xn--" in host else host
    except UnicodeError:
        readable = host
    skeleton = _latin_skeleton(readable[:255]).casefold()
    skeleton = skeleton.translate(_LOOKALIKE).replace("rn", "m").replace("vv", "w")
    return "amazon" in skeleton or "amzn" in skeleton


def _latin_skeleton(text: str) -> str:
    """Each non-ASCII letter replaced by the Latin letter it is confusable with (Unicode UTS #39 data)."""
    if text.isascii():
        return text
    found = confusables.is_confusable(text, greedy=True, preferred_aliases=["latin"]) or []
    swaps = {item["character"]: item["homoglyphs"][0]["c"] for item in found if item.get("homoglyphs")}
    readable = "".join(swaps.get(ch, ch) for ch in text)
    return unicodedata.normalize("NFKD", readable).encode("ascii", "ignore").decode("ascii")


def suspicion_reasons(facts: SenderFacts) -> tuple[str, ...]:
    """Every sign of spoofing found, in a fixed order; empty for a mail that looks genuine."""
    reasons: list[str] = []
    from_host = _host(facts.from_address)
    from_amazon = is_amazon_host(from_host)
    relay_reply_to = [a for a in facts.reply_to if is_relay_host(_host(a))]
    name_says_amazon = "amazon" in (facts.from_name or "").casefold()
    claims_amazon = from_amazon or bool(relay_reply_to) or bool(facts.notification_type) or name_says_amazon

    failures: list[tuple[str, str]] = []
    for value in facts.authentication_results:
        if "fail" not in value.lower() and "permerror" not in value.lower():
            continue
        failures.extend((m.group(1).lower(), m.group(2).lower()) for m in _AUTH_RESULT.finditer(value[:4000]))
    for method, result in dict.fromkeys(failures):
        if method == "dmarc" or claims_amazon:
            reasons.append(f"The receiving server recorded {method}={result}: the sender may be forged.")
    if relay_reply_to and not from_amazon:
        reasons.append(
            f"Reply-To is an Amazon relay address but From ({facts.from_address or 'none'}) is not an Amazon address."
        )
    if name_says_amazon and not from_amazon and from_host:
        reasons.append(f"The sender's name says Amazon but the address ({facts.from_address}) is not Amazon's.")
    if looks_like_amazon(from_host):
        reasons.append(f"The sender's host ({from_host}) only looks like an Amazon host.")
    if facts.notification_type and not from_amazon:
        reasons.append("A Seller Central notification header on mail that does not come from an Amazon address.")
    for header, count in (
        ("From", facts.from_count),
        ("Reply-To", facts.reply_to_count),
        ("Sender", facts.sender_count),
    ):
        if count > 1:
            reasons.append(f"The mail has {count} {header} headers.")
    if facts.date_out_of_range:
        reasons.append("The Date header is far outside any plausible date.")
    return tuple(reasons)

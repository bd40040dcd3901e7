"""The compliance gate: a pure, deterministic and explainable check of a reply against Amazon's
buyer-messaging rules, run on every draft, every edit and again at send time.

    verdict = check_outgoing(body, subject=subject, buyer_language="de", reply_language="de",
                             allow_list=store.allow_list)
    if not verdict.allowed: ...   # verdict.blocking explains each problem with its exact span

`check_outgoing` gates a whole outgoing reply (subject and body); `check_reply` a body alone.
"""

from engine.compliance.disguise import reveal
from engine.compliance.gate import check_outgoing, check_reply, gated_subject
from engine.compliance.rules import RULES, SP_API_ATTACHMENT_ONLY_TYPES, SP_API_TEXT_LIMITS
from engine.compliance.verdict import RuleInfo, Severity, Verdict, Violation, blocked_message

__all__ = [
    "RULES",
    "SP_API_ATTACHMENT_ONLY_TYPES",
    "SP_API_TEXT_LIMITS",
    "RuleInfo",
    "Severity",
    "Verdict",
    "Violation",
    "blocked_message",
    "check_outgoing",
    "check_reply",
    "gated_subject",
    "reveal",
]

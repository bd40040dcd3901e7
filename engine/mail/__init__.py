"""Relay-mail parsing and mail sources: bytes in, `ParsedMail` out; files, mbox and Maildir in."""

from engine.mail.parser import (
    BODY_LIMIT,
    TRUNCATION_NOTE,
    Attachment,
    MailKind,
    MailLimits,
    ParsedMail,
    parse_mail,
    thread_key,
    to_cli_record,
)
from engine.mail.sources import RawMail, check_paths, iter_raw_mails

__all__ = [
    "BODY_LIMIT",
    "TRUNCATION_NOTE",
    "Attachment",
    "MailKind",
    "MailLimits",
    "ParsedMail",
    "RawMail",
    "check_paths",
    "iter_raw_mails",
    "parse_mail",
    "thread_key",
    "to_cli_record",
]

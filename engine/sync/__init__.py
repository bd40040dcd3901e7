"""Mailbox sync: IMAP sources (real and fake) and the runner that stores mail batch by batch."""

from engine.sync.fake import FakeMailServer, FakeSource
from engine.sync.imap import FetchedMail, FolderState, ImapConfig, ImapSource, MessageSource

__all__ = [
    "FakeMailServer",
    "FakeSource",
    "FetchedMail",
    "FolderState",
    "ImapConfig",
    "ImapSource",
    "MessageSource",
]

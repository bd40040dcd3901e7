"""An in-memory `MessageSource` for unit tests: folders of mails, UIDVALIDITY, injectable failures."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from types import TracebackType
from typing import Self

from engine.errors import MailboxError
from engine.sync.imap import CONNECTION_LOST, FOLDER_MISSING, FetchedMail, FolderState, MailSize

__all__ = ["FakeFolder", "FakeMailServer", "FakeSource"]


@dataclass
class FakeFolder:
    uidvalidity: int
    next_uid: int = 1
    mails: dict[int, tuple[bytes, datetime | None]] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)


@dataclass
class FakeMailServer:
    """The state behind `FakeSource` sessions: folders of mails, plus failures to inject."""

    folders: dict[str, FakeFolder] = field(default_factory=dict)
    login_error: MailboxError | None = None  # raised by `open`
    fail_fetch_after: int | None = None  # fetch calls that succeed before the connection "drops"
    fetch_calls: int = 0
    opened: int = 0
    _validity: int = 1000

    def folder(self, name: str) -> FakeFolder:
        if name not in self.folders:
            self._validity += 1
            self.folders[name] = FakeFolder(uidvalidity=self._validity)
        return self.folders[name]

    def add(self, folder: str, raw: bytes, internal_date: datetime | None = None) -> int:
        box = self.folder(folder)
        uid, box.next_uid = box.next_uid, box.next_uid + 1
        box.mails[uid] = (raw, internal_date)
        return uid

    def recreate(self, folder: str) -> None:
        """Delete and recreate the folder with the same mails: new UIDVALIDITY, UIDs from 1 again."""
        old = self.folders.pop(folder)
        for raw, when in (old.mails[uid] for uid in sorted(old.mails)):
            self.add(folder, raw, when)


class FakeSource:
    """`MessageSource` over a `FakeMailServer`, for unit tests without a server."""

    def __init__(self, server: FakeMailServer) -> None:
        self.server = server
        self._folder: FakeFolder | None = None

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def open(self) -> None:
        if self.server.login_error is not None:
            raise self.server.login_error
        self.server.opened += 1

    def close(self) -> None:
        self._folder = None

    def select_folder(self, folder: str) -> FolderState:
        if folder not in self.server.folders:
            raise MailboxError(f"The folder {folder!r} does not exist.", code=FOLDER_MISSING)
        self._folder = self.server.folders[folder]
        return FolderState(self._folder.uidvalidity, self._folder.next_uid, len(self._folder.mails))

    def search_uids(self, *, after_uid: int, since: date | None) -> list[int]:
        assert self._folder is not None, "select a folder first"
        return sorted(
            uid
            for uid, (_, when) in self._folder.mails.items()
            if uid > after_uid and (since is None or when is None or when.date() >= since)
        )

    def fetch(self, uids: Sequence[int]) -> list[FetchedMail]:
        assert self._folder is not None, "select a folder first"
        server = self.server
        if server.fail_fetch_after is not None and server.fetch_calls >= server.fail_fetch_after:
            raise MailboxError("The connection was lost during the sync.", code=CONNECTION_LOST)
        server.fetch_calls += 1
        mails = self._folder.mails
        return [
            FetchedMail(uid, mails[uid][0], mails[uid][1], len(mails[uid][0])) for uid in sorted(uids) if uid in mails
        ]

    def fetch_sizes(self, uids: Sequence[int]) -> list[MailSize]:
        assert self._folder is not None, "select a folder first"
        mails = self._folder.mails
        return [MailSize(uid, len(mails[uid][0]), mails[uid][1]) for uid in sorted(uids) if uid in mails]

    def fetch_truncated(self, uid: int, *, header_bytes: int, text_bytes: int) -> FetchedMail | None:
        assert self._folder is not None, "select a folder first"
        if uid not in self._folder.mails:
            return None
        raw, when = self._folder.mails[uid]
        end = raw.find(b"\r\n\r\n")
        header, text = (raw[: end + 4], raw[end + 4 :]) if end >= 0 else (raw, b"")
        return FetchedMail(uid, header[:header_bytes] + text[:text_bytes], when, len(raw), truncated=True)

    def contains_message_id(self, folder: str, message_id: str) -> bool:
        if folder not in self.server.folders:
            raise MailboxError(f"The folder {folder!r} does not exist.", code=FOLDER_MISSING)
        needle = f"<{message_id.strip('<>')}>".encode()
        return any(needle in raw for raw, _ in self.server.folders[folder].mails.values())

    def append(self, folder: str, raw: bytes) -> None:
        uid = self.server.add(folder, raw)
        self.server.folders[folder].seen.add(uid)

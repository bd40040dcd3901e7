"""Raw mails from the file system: .eml files, folders, mbox files and Maildir folders.

Streaming: an mbox is read line by line, so a 1 GB archive never sits in memory at once. Order is
stable (sorted paths; mbox in file order), so imports are repeatable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError

__all__ = ["RawMail", "iter_raw_mails"]

_MBOX_ESCAPED_FROM = re.compile(rb"^>+From ")
_MAILDIR_SUBDIRS = ("new", "cur")


@dataclass(frozen=True)
class RawMail:
    source: str  # file path; inside an mbox "path#N" (1-based position)
    raw: bytes


def iter_raw_mails(paths: Iterable[str | Path]) -> Iterator[RawMail]:
    """Every mail under the given paths. A missing path raises `InputError` naming it."""
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise InputError(f"{path} does not exist: give the path of an .eml file, an mbox file or a folder.")
        if path.is_dir():
            yield from _iter_folder(path)
        else:
            yield from _iter_file(path)


def _is_maildir(folder: Path) -> bool:
    return all((folder / sub).is_dir() for sub in ("cur", "new"))


def _iter_folder(folder: Path) -> Iterator[RawMail]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        here = Path(root)
        in_maildir = here.name in _MAILDIR_SUBDIRS and _is_maildir(here.parent)
        for name in sorted(files):
            if name.startswith("."):
                continue
            file = here / name
            if in_maildir:
                yield RawMail(str(file), file.read_bytes())
            elif name.lower().endswith((".eml", ".mbox")):
                yield from _iter_file(file)


def _iter_file(file: Path) -> Iterator[RawMail]:
    with file.open("rb") as handle:
        looks_like_mbox = handle.read(5) == b"From "
    if looks_like_mbox:
        yield from _iter_mbox(file)
    else:
        yield RawMail(str(file), file.read_bytes())


def _iter_mbox(file: Path) -> Iterator[RawMail]:
    """Split on "From " lines at the start or after a blank line; undo mboxrd ">From " quoting."""
    position = 0
    lines: list[bytes] = []
    previous_blank = True
    with file.open("rb") as handle:
        for line in handle:
            if line.startswith(b"From ") and previous_blank:
                if position:
                    yield _mbox_mail(file, position, lines)
                position += 1
                lines = []
            elif position:
                lines.append(line[1:] if _MBOX_ESCAPED_FROM.match(line) else line)
            previous_blank = not line.strip()
    if position:
        yield _mbox_mail(file, position, lines)


def _mbox_mail(file: Path, position: int, lines: list[bytes]) -> RawMail:
    if lines and not lines[-1].strip():
        lines = lines[:-1]  # the blank separator line belongs to the mbox, not to the mail
    return RawMail(f"{file}#{position}", b"".join(lines))

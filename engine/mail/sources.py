"""Raw mails from the file system: .eml files, folders, mbox files and Maildir folders.

Streaming: an mbox is read line by line, so a 1 GB archive never sits in memory at once. Order is
stable (sorted paths; mbox in file order), so imports are repeatable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError

__all__ = ["RawMail", "check_paths", "iter_raw_mails"]

_MBOX_ESCAPED_FROM = re.compile(rb"^>+From ")
_MAILDIR_SUBDIRS = ("new", "cur")


@dataclass(frozen=True)
class RawMail:
    source: str  # file path; inside an mbox "path#N" (1-based position)
    raw: bytes


# Called with (source, message) for a file that cannot be read; the mails after it are still read.
OnError = Callable[[str, str], None]


def check_paths(paths: Iterable[str | Path]) -> None:
    """Raise `InputError` naming every given path that does not exist (before any mail is read)."""
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise InputError(
            f"{', '.join(missing)} does not exist: give the path of an .eml file, an mbox file or a folder."
        )


def iter_raw_mails(paths: Iterable[str | Path], on_error: OnError | None = None) -> Iterator[RawMail]:
    """Every mail under the given paths. A missing path raises `InputError` naming it.

    With `on_error`, a file that cannot be read (permissions, a vanished file) is reported to it and
    skipped; without, the `OSError` propagates.
    """
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise InputError(f"{path} does not exist: give the path of an .eml file, an mbox file or a folder.")
        if path.is_dir():
            yield from _iter_folder(path, on_error)
        else:
            yield from _guarded(path, _iter_file, on_error)


def _guarded(file: Path, read: Callable[[Path], Iterator[RawMail]], on_error: OnError | None) -> Iterator[RawMail]:
    try:
        yield from read(file)
    except OSError as exc:
        if on_error is None:
            raise
        on_error(str(file), f"cannot be read ({exc.strerror or exc}); check that it exists and is readable")


def _is_maildir(folder: Path) -> bool:
    return all((folder / sub).is_dir() for sub in ("cur", "new"))


def _iter_folder(folder: Path, on_error: OnError | None) -> Iterator[RawMail]:
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        here = Path(root)
        in_maildir = here.name in _MAILDIR_SUBDIRS and _is_maildir(here.parent)
        for name in sorted(files):
            if name.startswith("."):
                continue
            file = here / name
            if in_maildir:
                yield from _guarded(file, _read_whole, on_error)
            elif name.lower().endswith((".eml", ".mbox")):
                yield from _guarded(file, _iter_file, on_error)


def _read_whole(file: Path) -> Iterator[RawMail]:
    yield RawMail(str(file), file.read_bytes())


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

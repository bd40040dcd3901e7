"""Raw mails from .eml files, folders, mbox files and Maildir folders."""

from __future__ import annotations

import mailbox
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.mail import RawMail, iter_raw_mails, parse_mail

DEMO = Path(__file__).resolve().parent.parent / "knowledge" / "demo"


def raw_mail(n: int, body: str = "hello") -> bytes:
    return (
        f"From: buyer{n}@marketplace.amazon.de\nTo: service@shop.example\nSubject: mail {n}\n"
        f"Message-ID: <m{n}@x>\n\n{body}\n"
    ).encode()


def test_single_eml_file(tmp_path: Path) -> None:
    path = tmp_path / "one.eml"
    path.write_bytes(raw_mail(1))
    assert list(iter_raw_mails([path])) == [RawMail(str(path), raw_mail(1))]


def test_folder_is_walked_recursively_in_sorted_order(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "2.eml").write_bytes(raw_mail(2))
    (tmp_path / "1.eml").write_bytes(raw_mail(1))
    (tmp_path / "notes.txt").write_text("not a mail")
    (tmp_path / ".hidden.eml").write_bytes(raw_mail(9))
    sources = [m.source for m in iter_raw_mails([str(tmp_path)])]
    assert sources == [str(tmp_path / "1.eml"), str(tmp_path / "b" / "2.eml")]


def test_demo_inbox_folder_yields_every_mail() -> None:
    mails = list(iter_raw_mails([DEMO]))
    assert len(mails) == len(list(DEMO.glob("*.eml"))) >= 35
    assert all(parse_mail(m.raw).message_id for m in mails)


def test_mbox_positions_and_from_quoting(tmp_path: Path) -> None:
    path = tmp_path / "archive"  # no extension: detected by its first line
    box = mailbox.mbox(str(path))
    for n in (1, 2, 3):
        box.add(raw_mail(n, body="From the start, this line needs quoting in an mbox." if n == 2 else "x"))
    box.flush()
    box.close()
    mails = list(iter_raw_mails([path]))
    assert [m.source for m in mails] == [f"{path}#1", f"{path}#2", f"{path}#3"]
    assert [parse_mail(m.raw).subject for m in mails] == ["mail 1", "mail 2", "mail 3"]
    assert parse_mail(mails[1].raw).body == "From the start, this line needs quoting in an mbox."
    assert not mails[0].raw.startswith(b"From ")


def test_mbox_inside_a_folder_by_extension(tmp_path: Path) -> None:
    box = mailbox.mbox(str(tmp_path / "old.mbox"))
    box.add(raw_mail(1))
    box.add(raw_mail(2))
    box.flush()
    box.close()
    assert [m.source.rsplit("#", 1)[1] for m in iter_raw_mails([tmp_path])] == ["1", "2"]


def test_mbox_is_read_in_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "big.mbox"
    with path.open("wb") as handle:
        for n in range(1, 2001):
            handle.write(b"From sender@x Mon Nov  9 08:41:17 2026\n" + raw_mail(n) + b"\n")
    stream = iter_raw_mails([path])
    first = next(stream)  # a generator: the first mail comes before the file has been read to the end
    assert first.source == f"{path}#1"
    assert sum(1 for _ in stream) == 1999


def test_maildir_folder(tmp_path: Path) -> None:
    box = mailbox.Maildir(str(tmp_path / "Inbox"))
    box.add(raw_mail(1))
    seen = mailbox.MaildirMessage(raw_mail(2))
    seen.set_subdir("cur")
    box.add(seen)
    mails = list(iter_raw_mails([tmp_path / "Inbox"]))
    assert sorted(parse_mail(m.raw).subject for m in mails) == ["mail 1", "mail 2"]
    assert {Path(m.source).parent.name for m in mails} == {"new", "cur"}
    assert all(Path(m.source).is_file() for m in mails)


def test_several_paths_in_order(tmp_path: Path) -> None:
    one, two = tmp_path / "1.eml", tmp_path / "2.eml"
    one.write_bytes(raw_mail(1))
    two.write_bytes(raw_mail(2))
    assert [m.source for m in iter_raw_mails([two, one])] == [str(two), str(one)]


def test_missing_path_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "inbox.mbox"
    with pytest.raises(InputError, match=r"nope/inbox\.mbox does not exist"):
        list(iter_raw_mails([missing]))

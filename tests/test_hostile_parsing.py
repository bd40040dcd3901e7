"""Hostile mail cannot hurt the parser: generated corpus, linear time, structure limits, storable values,
spoofing signs, and `import` / `parse-email` going on past bad mail."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.db import Database
from engine.db.models import Conversation, Message, Store
from engine.errors import MailParseError
from engine.mail import BODY_LIMIT, TRUNCATION_NOTE, MailKind, MailLimits, ParsedMail, RawMail, parse_mail
from engine.mail import sanitize as clean
from engine.mail.mime import split_parts
from engine.services import importing
from evals.databases import BACKENDS
from evals.hostile_mail import KINDS, generate_corpus, iter_corpus
from tests.test_cli import lines, run_cli

ALIAS = "a7k2m9q4x8w1z5r@marketplace.amazon.de"
CONTROL = {chr(c) for c in (*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0), 0x2028, 0x2029)}
SECONDS_PER_MAIL = 3.0  # generous: the point is minutes before (and forever for some), not a benchmark


def mail(
    body: str,
    *,
    subject: str = "Inquiry from Amazon customer Lena (Order: 302-5561237-7781920)",
    sender: str = f'"Lena - Amazon Marketplace" <{ALIAS}>',
    headers: dict[str, str] | None = None,
    content_type: str = "text/plain; charset=utf-8",
    date: str = "Mon, 09 Nov 2026 08:41:17 -0500",
    message_id: str = "<hostile.test@relay.test>",
) -> bytes:
    lines_ = [f"From: {sender}", "To: service@northwind-gear.example", f"Subject: {subject}", f"Date: {date}"]
    lines_ += [f"Message-ID: {message_id}", *(f"{k}: {v}" for k, v in (headers or {}).items())]
    lines_ += ["MIME-Version: 1.0", f"Content-Type: {content_type}", "Content-Transfer-Encoding: 8bit"]
    return ("\n".join(lines_) + "\n\n" + body).encode("utf-8", "surrogateescape")


def frame(text: str) -> str:
    return (
        "You have received a message.\n\nOrder ID: 302-5561237-7781920\n"
        "Item: Stirnlampe [ASIN: B0D4K7N2QX]\n\n"
        f"------------- Message: -------------\n\n{text}\n\n------------- End of message -------------\n"
    )


def assert_storable(parsed: ParsedMail) -> None:
    """Every value fits its column and holds no character a database or a mail header refuses."""
    one_line = [parsed.subject, parsed.from_address, parsed.from_name, parsed.buyer_address, parsed.buyer_name,
                parsed.product_title, parsed.topic, parsed.notification_type, parsed.message_id,
                parsed.comm_token, parsed.in_reply_to, parsed.related_message_id, parsed.order_id, parsed.asin,
                *parsed.to_addresses, *parsed.references,
                *(a.filename for a in parsed.attachments), *(a.content_type for a in parsed.attachments)]  # fmt: skip
    for value in one_line:
        if value is not None:
            assert not CONTROL & set(value), repr(value[:80])
            value.encode("utf-8")  # no lone surrogates
    assert not (CONTROL - {"\n", "\t"}) & set(parsed.body)
    parsed.body.encode("utf-8")
    assert len(parsed.dedupe_key) <= 400
    for value, limit in [
        (parsed.message_id, 400), (parsed.related_message_id, 400), (parsed.notification_type, 80),
        (parsed.from_address, 320), (parsed.buyer_address, 320), (parsed.buyer_name, 200),
        (parsed.comm_token, 200), (parsed.order_id, 20), (parsed.asin, 16), (parsed.subject, clean.SUBJECT_LIMIT),
    ]:  # fmt: skip
        assert value is None or len(value) <= limit, (limit, value[:80])
    if parsed.received_at is not None:
        assert clean.EARLIEST_DATE <= parsed.received_at <= clean.LATEST_DATE


# ---- the generated corpus -----------------------------------------------------------------------


def test_corpus_is_deterministic_large_and_spread_evenly() -> None:
    corpus = generate_corpus(1000)
    assert len(corpus) >= 1000
    counts = Counter(m.kind for m in corpus)
    assert set(counts) == set(KINDS)
    assert max(counts.values()) - min(counts.values()) <= 1
    assert generate_corpus(40, seed=3) == generate_corpus(40, seed=3)
    assert generate_corpus(40, seed=3) != generate_corpus(40, seed=4)
    assert list(iter_corpus(40, seed=3)) == generate_corpus(40, seed=3)


def test_every_corpus_mail_parses_or_is_unparsed_with_a_reason_in_bounded_time() -> None:
    slowest: tuple[float, str] = (0.0, "")
    outcomes: Counter[str] = Counter()
    for item in generate_corpus(1000):
        started = time.perf_counter()
        try:
            parsed = parse_mail(item.raw)
        except MailParseError as exc:
            assert str(exc).strip(), item.kind
            outcomes["unparsed"] += 1
        else:
            assert_storable(parsed)
            outcomes["parsed"] += 1
        slowest = max(slowest, (time.perf_counter() - started, item.kind))
    assert slowest[0] < SECONDS_PER_MAIL, slowest
    assert outcomes["parsed"] > 900  # only bytes that are no mail at all (binary garbage) are unparsed


def test_spoofed_kinds_of_the_corpus_are_all_suspicious_and_normal_ones_are_not() -> None:
    by_kind: dict[str, list[bool]] = {}
    for item in generate_corpus(300):
        if item.kind in ("spoofed_relay", "spoofed_notification", "normal_relay"):
            by_kind.setdefault(item.kind, []).append(parse_mail(item.raw).suspicious)
    assert all(by_kind["spoofed_relay"]) and all(by_kind["spoofed_notification"])
    assert not any(by_kind["normal_relay"])


# ---- linear time ----------------------------------------------------------------------------------


def _parse_seconds(raw: bytes) -> float:
    """Seconds per parse: the best of four rounds, each repeated until it lasts 50 ms (timer noise and a
    busy machine's jitter stay small against that)."""

    def round_of(repeats: int) -> float:
        started = time.perf_counter()
        for _ in range(repeats):
            with contextlib.suppress(MailParseError):
                parse_mail(raw)
        return time.perf_counter() - started

    repeats = 1
    while (elapsed := round_of(repeats)) < 0.05:
        repeats *= 2
    return min(elapsed, *(round_of(repeats) for _ in range(3))) / repeats


def _html(markup: str) -> bytes:
    return mail(markup, content_type="text/html; charset=utf-8")


# Each builder makes a mail of about `n` hostile characters, aimed at a pattern that used to be quadratic.
LINEAR_CASES: dict[str, Callable[[int], bytes]] = {
    "html comments": lambda n: _html("<html><body>" + "<!--" * (n // 4)),
    "html unclosed script": lambda n: _html("<script>a" * (n // 9)),
    "html unclosed tags": lambda n: _html("<p a" * (n // 4)),
    "html pre without end": lambda n: _html("<pre>a" * (n // 6)),
    "html line breaks without end": lambda n: _html("<br" * (n // 3)),
    "html nested blocks": lambda n: _html("<div>" * (n // 5)),
    "marker line then dashes": lambda n: mail("------------- Message: -------------\n" + "-" * n),
    "marker start then dashes": lambda n: mail("-----x" + "-" * n + "\nhello"),
    "product line blanks": lambda n: mail("1 of x" + " " * n + "[ASIN: B0D4"),
    "item line blanks": lambda n: mail("Item: x" + "\t" * n + "[ASIN:"),
    "comm token without end": lambda n: mail(frame("hi") + ("[commMgrTok:" + "a" * 40) * (n // 52)),
    "original message-id blanks": lambda n: mail("failed" + "\n" * n + "x", sender="MAILER-DAEMON@mx.example"),
    "display name blanks": lambda n: mail("hi", sender='"x' + " " * n + '-" <' + ALIAS + ">"),
    "subject prefixes": lambda n: mail("hi", subject="Re:  " * (n // 5) + "x"),
    "subject order suffix": lambda n: mail("hi", subject="(" + "1" * n),
    "encoded words": lambda n: mail("hi", subject="=?utf-8?q?a?=" * (n // 13)),
    "long body": lambda n: mail(frame("word " * (n // 5))),
}


@pytest.mark.parametrize("name", list(LINEAR_CASES))
def test_parse_time_grows_linearly(name: str) -> None:
    build = LINEAR_CASES[name]
    size = 150_000  # twice this is still within the text the parser reads (300,000 characters)
    ratios = []
    for _attempt in range(2):  # a second measurement only when a busy machine spoiled the first
        ratios.append(_parse_seconds(build(2 * size)) / _parse_seconds(build(size)))
        if ratios[-1] < 3.0:
            break
    assert ratios[-1] < 3.0, (name, ratios)  # quadratic growth gives a ratio near 4, every time


# ---- structure limits -------------------------------------------------------------------------------


def _nested(depth: int, text: str) -> bytes:
    opening = "".join(f"--b{i}\nContent-Type: multipart/mixed; boundary=b{i + 1}\n\n" for i in range(depth))
    inner = f"--b{depth}\nContent-Type: text/plain\n\n{text}\n--b{depth}--\n"
    closing = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    return mail(opening + inner + closing, content_type="multipart/mixed; boundary=b0")


@pytest.mark.parametrize(
    ("body", "parts", "cut"),
    [
        ("preamble\n--b\nA\n--b\nB\n--b--\nepilogue", ["A", "B"], False),
        ("--b\r\nA\r\n--b\r\nB\r\n--b--\r\n", ["A", "B"], False),
        ("--b\nA\n--bb\nstill A\n--b--\n", ["A\n--bb\nstill A"], False),  # a longer boundary is text
        ("--b\nA\nx--b\nstill A\n--b\nB", ["A\nx--b\nstill A", "B"], False),  # not at a line start
        ("--b\nA\n--b\nB\n--b\nC\n--b--\n", ["A", "B"], True),
        ("no delimiter at all", [], False),
    ],
)
def test_split_parts(body: str, parts: list[str], cut: bool) -> None:
    assert split_parts(body, "b", max_parts=2) == (parts, cut)


@pytest.mark.parametrize(
    ("value", "limit", "expected"),
    [
        ("a\r\nb\u2028c\x00d\x85e\tf", 100, "a b c d e f"),
        ("x" * 50, 10, "x" * 10),
        ("\udcff broken", 100, "\ufffd broken"),
        ("  ", 10, ""),
    ],
)
def test_one_line_values(value: str, limit: int, expected: str) -> None:
    assert clean.one_line(value, limit) == expected


def test_text_blocks_keep_lines_and_tabs_only() -> None:
    assert clean.text_block("a\r\nb\rc\x00d\u2028e\tf\x1b[31m") == "a\nb\ncd\ne\tf[31m"


def test_nesting_within_the_limit_is_read() -> None:
    parsed = parse_mail(_nested(20, frame("deep but fine")))
    assert parsed.body == "deep but fine"
    assert parsed.parse_warnings == ()


def test_a_thousand_nesting_levels_do_not_recurse_and_say_what_was_left() -> None:
    parsed = parse_mail(_nested(1000, frame("too deep")))
    assert parsed.kind is MailKind.BUYER_MESSAGE and parsed.buyer_address == ALIAS
    assert any("nested deeper than 30" in w for w in parsed.parse_warnings)
    assert "too deep" not in parsed.body


def test_depth_limit_comes_from_settings() -> None:
    from engine.settings import Settings

    limits = MailLimits.from_settings(Settings.from_env({"REPLYDESK_MAIL_MAX_DEPTH": "5"}))
    assert limits.max_depth == 5
    assert parse_mail(_nested(4, frame("four")), limits).body == "four"
    assert parse_mail(_nested(6, frame("six")), limits).body == ""


@pytest.mark.parametrize(
    "raw",
    [
        # 8-bit text inside a multipart (no charset on the multipart itself)
        "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n\n"
        "Grüße, 注文 {}\n--b--\n",
        # a line in the header block that is no header starts the body, 8-bit bytes and all
        "Content-Type: text/plain; charset=utf-8\nthis is no header: Grüße, 注文 {}\n",
    ],
)
def test_8bit_text_survives_the_mime_walk(raw: str) -> None:
    head = f"From: <{ALIAS}>\nSubject: x\nAuthentication-Results: mx; dkim=pass header.i=@Köln.example\n"
    parsed = parse_mail((head + raw.format("ok")).encode("utf-8"))
    assert "Grüße, 注文 ok" in parsed.body and not parsed.suspicious


def test_ten_thousand_parts_are_read_up_to_the_limit() -> None:
    parts = "".join(f'--p\nContent-Type: application/pdf\nContent-Disposition: attachment; filename="f{i}.pdf"\n\nx\n'
                    for i in range(10_000))  # fmt: skip
    raw = mail(f"--p\nContent-Type: text/plain\n\n{frame('see attached')}\n{parts}--p--\n",
               content_type="multipart/mixed; boundary=p")  # fmt: skip
    parsed = parse_mail(raw)
    assert parsed.body == "see attached"
    assert 0 < len(parsed.attachments) < 200
    assert [a.filename for a in parsed.attachments[:2]] == ["f0.pdf", "f1.pdf"]
    assert any("first 200 MIME parts" in w for w in parsed.parse_warnings)


def test_a_text_beyond_the_limit_is_cut_before_the_patterns_and_the_body_says_so() -> None:
    endless = "------------- Message: -------------\n\n" + "Wo ist mein Paket? " * 300_000  # 5.7 MB, no end
    parsed = parse_mail(mail(endless))
    assert parsed.body.endswith(TRUNCATION_NOTE) and len(parsed.body) == BODY_LIMIT + len(TRUNCATION_NOTE)
    assert any("longer than the parser reads" in w for w in parsed.parse_warnings)
    parts = [frame("short question"), "x" * 400_000]
    body = "".join(f"--p\nContent-Type: text/plain\n\n{part}\n" for part in parts) + "--p--\n"
    raw = mail(body, content_type="multipart/mixed; boundary=p")
    assert parse_mail(raw).body == "short question"  # cut elsewhere: this body is whole


@pytest.mark.parametrize(
    "date", ["Fri, 31 Dec 9999 23:59:59 -1200", "Fri, 31 Dec 9999 23:59:59 +1400", "Tue, 01 Jan 1901 00:00:00 +1400"]
)
def test_dates_out_of_range_are_clamped_and_flagged(date: str) -> None:
    parsed = parse_mail(mail(frame("when?"), date=date))
    assert parsed.received_at in (clean.EARLIEST_DATE, clean.LATEST_DATE)
    assert any("Date" in r for r in parsed.suspicious_reasons)
    ordinary = parse_mail(mail(frame("when?")))
    assert ordinary.received_at == datetime(2026, 11, 9, 13, 41, 17, tzinfo=UTC) and not ordinary.suspicious


def test_nul_bytes_in_headers_and_body_are_removed() -> None:
    raw = mail(frame("nul\x00inside"), subject="Inquiry \x00from Amazon customer Lena")
    parsed = parse_mail(raw)
    assert parsed.body == "nulinside"
    assert "\x00" not in parsed.subject and parsed.buyer_address == ALIAS
    qp = mail("", content_type="text/plain; charset=utf-8").replace(b"8bit", b"quoted-printable") + b"a=00b=01c\n"
    assert parse_mail(qp).body == "abc"


def test_nested_comments_in_an_address_do_not_recurse() -> None:
    parsed = parse_mail(mail(frame("hi"), sender='"x" ' + "(" * 3000 + f" <{ALIAS}>"))
    assert (parsed.from_address, parsed.buyer_address) == (ALIAS, ALIAS)


def test_long_header_values_fit_their_columns() -> None:
    long_id = "m" * 600 + "@relay.test"
    raw = mail(
        frame("long"),
        subject="Inquiry from Amazon customer " + "A" * 10_000,
        sender='"' + "B" * 10_000 + f' - Amazon Marketplace" <{ALIAS}>',
        message_id=f"<{long_id}>",
        headers={"X-Space-Notification-Type": "RETURN_REQUEST" * 700, "In-Reply-To": f"<{long_id}>"},
    )
    parsed = parse_mail(raw)
    assert_storable(parsed)
    assert parsed.message_id is not None and parsed.message_id.startswith("mmmm")
    other = parse_mail(raw.replace(long_id.encode(), ("m" * 599 + "n@relay.test").encode()))
    assert other.message_id != parsed.message_id  # cut identifiers keep a digest of the whole
    assert len(parsed.notification_type or "") == 80 and parsed.kind is not MailKind.RETURN_REQUEST


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("=?utf-8?q?Hello=0D=0ABcc:_victim@example.com?=", "Hello Bcc: victim@example.com"),
        ("=?utf-8?b?SGlcdTIwMjg=?= =?utf-8?b?4oCoQmNjOiB4?=", "Hi\\u2028 Bcc: x"),
        ("=?utf-8?q?a?= \\u2028Bcc: x@example.com", "a \\u2028Bcc: x@example.com"),
        ("=?utf-8?q?=C2=85next?=", "next"),
    ],
)
def test_subjects_never_carry_line_breaks_and_escapes_stay_text(subject: str, expected: str) -> None:
    assert parse_mail(mail("hi", subject=subject)).subject == expected


@pytest.mark.parametrize("charset", ["zlib", "base64", "rot13", "idna", "undefined", "unicode-escape", "x-nope"])
def test_charsets_that_are_no_text_encodings_read_as_text(charset: str) -> None:
    parsed = parse_mail(mail(frame("Grüße \\u2028"), content_type=f"text/plain; charset={charset}"))
    assert parsed.body == "Grüße \\u2028"


# ---- authenticity ---------------------------------------------------------------------------------

DMARC_FAIL = "mx.northwind-gear.example; dkim=none; spf=pass smtp.mailfrom=gmail.com; dmarc=fail header.from=gmail.com"


@pytest.mark.parametrize(
    ("sender", "headers", "reason"),
    [
        ("someone@gmail.com", {"Reply-To": f"<{ALIAS}>", "Authentication-Results": DMARC_FAIL}, "dmarc=fail"),
        ("someone@gmail.com", {"Reply-To": f"<{ALIAS}>"}, "Reply-To is an Amazon relay address"),
        ("someone@gmail.com", {"Authentication-Results": DMARC_FAIL}, "dmarc=fail"),
        ('"Amazon Seller Central" <notices@gmail.com>', {}, "name says Amazon"),
        ("<donotreply@amazon-seller-support.com>", {}, "only looks like an Amazon host"),
        ("<donotreply@marketplace.amazon.de.verify.example>", {}, "only looks like an Amazon host"),
        ("<donotreply@xn--amazn-mye.com>", {}, "only looks like an Amazon host"),
        ("<donotreply@arnaz0n.de>", {}, "only looks like an Amazon host"),
        ("<billing@shop.example>", {"X-Space-Notification-Type": "RETURN_REQUEST"}, "notification header"),
        (f"<{ALIAS}>", {"From": "<other@marketplace.amazon.de>"}, "2 From headers"),
        (f"<{ALIAS}>", {"Authentication-Results": "mx; dkim=fail header.d=amazon.de"}, "dkim=fail"),
    ],
)
def test_spoofing_signs_make_a_mail_suspicious(sender: str, headers: dict[str, str], reason: str) -> None:
    parsed = parse_mail(mail(frame("pay here instead"), sender=sender, headers=headers))
    assert parsed.suspicious
    assert any(reason in r for r in parsed.suspicious_reasons), parsed.suspicious_reasons


def test_spoofed_relay_mail_is_a_suspicious_buyer_message() -> None:
    headers = {"Reply-To": f'"Lena - Amazon Marketplace" <{ALIAS}>', "Authentication-Results": DMARC_FAIL}
    parsed = parse_mail(mail(frame("pay here"), sender="someone@gmail.com", headers=headers))
    assert (parsed.kind, parsed.buyer_address, parsed.suspicious) == (MailKind.BUYER_MESSAGE, ALIAS, True)


@pytest.mark.parametrize(
    ("sender", "headers"),
    [
        (f'"Lena - Amazon Marketplace" <{ALIAS}>', {"Authentication-Results": "mx; dkim=pass; spf=pass; dmarc=pass"}),
        ('"Amazon" <donotreply@amazon.co.uk>', {"X-Space-Notification-Type": "REFUND_ISSUED"}),
        ("someone@gmail.com", {"Authentication-Results": "mx; spf=softfail smtp.mailfrom=gmail.com"}),
        ("<orders@amazonses.com>", {}),
    ],
)
def test_genuine_mail_is_not_suspicious(sender: str, headers: dict[str, str]) -> None:
    assert parse_mail(mail(frame("hi"), sender=sender, headers=headers)).suspicious_reasons == ()


# ---- limits mirror the columns ------------------------------------------------------------------------


def _length(column: Any) -> int:
    return int(column.type.length)


def test_value_limits_match_the_database_columns() -> None:
    message, conversation = Message.__table__.c, Conversation.__table__.c
    assert clean.MESSAGE_ID_LIMIT + len("mid:") <= _length(message.dedupe_key)
    assert clean.MESSAGE_ID_LIMIT <= _length(message.message_id) == _length(message.related_message_id)
    assert _length(message.notification_type) == clean.NOTIFICATION_TYPE_LIMIT
    assert _length(message.from_address) == _length(conversation.buyer_address) == clean.ADDRESS_LIMIT
    assert _length(conversation.buyer_name) == clean.NAME_LIMIT
    assert _length(message.comm_token) >= 200  # the token pattern reads at most 200 characters


# ---- import and parse-email go on past bad mail -----------------------------------------------------


def _hostile_sample() -> list[RawMail]:
    """One mail of each corpus kind, normal ones first and last."""
    corpus = generate_corpus(len(KINDS))
    normal = [m for m in generate_corpus(len(KINDS) * 3) if m.kind == "normal_relay"]
    picked = [normal[0], *corpus, normal[1]]
    return [RawMail(f"sample/{i}-{m.kind}.eml", m.raw) for i, m in enumerate(picked)]


@pytest.mark.parametrize("fresh_database", BACKENDS, indirect=True)
def test_import_stores_every_hostile_mail_on_both_databases(
    fresh_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    with fresh_database.transaction() as session:
        store = Store(name="Northwind Gear")
        session.add(store)
        session.flush()
        store_id = store.id
    sample = _hostile_sample()
    # A batch the database refuses (whatever the reason) is stored again one mail at a time.
    real_store_prepared = importing.store_prepared
    refused = {"count": 0}

    def refuse_batches_with_garbage(session: Any, store: Any, prepared: list[Any], **kwargs: Any) -> Any:
        if len(prepared) > 1 and any("binary_garbage" in p.mail.source for p in prepared):
            refused["count"] += 1
            raise RuntimeError("value too long for type character varying(80)")
        return real_store_prepared(session, store, prepared, **kwargs)

    monkeypatch.setattr(importing, "store_prepared", refuse_batches_with_garbage)
    summary = importing.import_raw_mails(fresh_database, store_id, sample, batch_size=8)
    assert refused["count"] >= 1
    assert summary.fetched == len(sample) and summary.failed == 0
    assert summary.new + summary.duplicates + summary.unparsed == len(sample)
    with fresh_database.transaction() as session:
        rows = session.scalars(select(Message).where(Message.store_id == store_id)).all()
        kinds = Counter(r.kind for r in rows)
        last = session.scalar(select(func.max(Message.id)))
        newest = session.get_one(Message, last)
        assert "could not be stored" not in " ".join(r.parse_error or "" for r in rows)  # stored as parsed
    assert kinds["unparsed"] == summary.unparsed <= 1  # only bytes that are no mail at all
    assert newest.source == f"file:{sample[-1].source}"  # the mails after the bad ones were imported


def _write(folder: Path, name: str, raw: bytes) -> Path:
    path = folder / name
    path.write_bytes(raw)
    return path


def test_parse_email_writes_an_error_line_for_a_bad_mail_and_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "mails"
    folder.mkdir()
    good = (Path(__file__).parent.parent / "knowledge" / "demo" / "de-order_status-older-template.eml").read_bytes()
    paths = [
        _write(folder, "1-deep.eml", _nested(1000, frame("deep"))),
        _write(folder, "2-garbage.eml", b"\x89PNG\r\n\x1a\n\x00\x00binary"),
        _write(folder, "3-year-9999.eml", mail(frame("late"), date="Fri, 31 Dec 9999 23:59:59 -1200")),
        _write(folder, "4-good.eml", good),
    ]
    result = run_cli(["parse-email", *map(str, paths)], tmp_path)
    assert "Traceback" not in result.stderr
    records = lines(result.stdout)
    assert [Path(str(r["source"])).name for r in records] == [p.name for p in paths]
    assert "error" in records[1] and "not a mail" in str(records[1]["error"])
    assert [("error" in r) for r in records] == [False, True, False, False]
    assert records[2]["received_at"] == "2100-01-01T00:00:00Z"
    assert records[3]["order_id"] == "302-5561237-7781920"
    assert result.returncode == 1  # non-zero, but only after every input was processed


def test_import_command_keeps_going_and_fails_only_at_the_end(tmp_path: Path) -> None:
    assert run_cli(["migrate"], tmp_path).returncode == 0
    folder = tmp_path / "mails"
    folder.mkdir()
    demo = Path(__file__).parent.parent / "knowledge" / "demo"
    _write(folder, "1-good.eml", (demo / "de-order_status-older-template.eml").read_bytes())
    _write(folder, "2-garbage.eml", b"\x00\x01 no mail at all \xff")
    _write(folder, "3-deep.eml", _nested(1000, frame("deep")))
    (folder / "3b-vanished.eml").symlink_to(folder / "nowhere.eml")  # listed, but cannot be read
    _write(folder, "4-good.eml", (demo / "fr-change_order-older-template.eml").read_bytes())
    result = run_cli(["import", str(folder), "--store", "Northwind Gear"], tmp_path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 1
    assert "4 read, 3 new" in result.stdout and "1 unparsed" in result.stdout and "1 failed" in result.stdout
    assert "2-garbage.eml" in result.stderr and "3b-vanished.eml: cannot be read" in result.stderr
    db = Database(f"sqlite:///{tmp_path / 'data' / 'replydesk.db'}")
    try:
        with db.transaction() as session:
            rows = session.scalars(select(Message).order_by(Message.id)).all()
            assert [r.kind for r in rows] == ["buyer_message", "unparsed", "buyer_message", "buyer_message"]
            assert rows[1].parse_error and rows[1].raw_sha256  # kept raw with the reason
    finally:
        db.dispose()
    again = run_cli(["import", str(folder / "1-good.eml"), "--store", "Northwind Gear"], tmp_path)
    assert again.returncode == 0 and "1 already stored" in again.stdout

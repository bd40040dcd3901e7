"""Tolerant decoding: charsets, RFC 2047 headers, MIME parts, HTML to text.

Nothing here raises on bad input: a bogus charset label or a broken encoded word degrades to the
best readable text, because the raw bytes are stored anyway and an agent can still read most of it.
"""

from __future__ import annotations

import codecs
import html
import re
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import decode_header
from email.message import Message
from email.parser import HeaderParser

# Labels mail clients write that Python does not know, or supersets that decode more real mail.
_CHARSET_ALIASES: dict[str, str] = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "ks_c_5601-1987": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-unknown": "utf-8",
    "unknown-8bit": "utf-8",
    "utf8": "utf-8",
}


_MULTIBYTE_CODECS = frozenset(
    {"cp932", "shift_jis", "euc_jp", "iso2022_jp", "iso2022_jp_ext", "gb18030", "big5", "cp949", "euc_kr"}
)


def _codec_for(label: str | None) -> str | None:
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text from bytes in a declared charset, falling back sensibly when the label lies or is unknown."""
    codec = _codec_for(charset)
    if codec is not None:
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if b"\x1b$" in data:  # ISO-2022-JP escape sequences mislabelled or unlabelled
        try:
            return data.decode("iso2022_jp_ext")
        except UnicodeDecodeError:
            pass
    if codec is not None and codec in _MULTIBYTE_CODECS:
        return data.decode(codec, errors="replace")
    # single-byte Western text is by far the most common mislabelled case; cp1252 maps almost every byte
    return data.decode("cp1252", errors="replace")


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]+", " ", value).strip()


def decode_header_value(raw: str) -> str:
    """An RFC 2047 header value as text; 8-bit raw bytes (kept as surrogates by the parser) included."""
    # Most header values are plain ASCII: skip the per-character scan for smuggled 8-bit bytes then.
    if not raw.isascii() and any("\udc80" <= ch <= "\udcff" for ch in raw):
        raw = decode_bytes(raw.encode("utf-8", "surrogateescape"), None)
    raw = _unfold(raw)
    if "=?" not in raw:
        return raw
    try:
        chunks = decode_header(raw)
    except (HeaderParseError, ValueError, AssertionError, LookupError):  # broken encoded words
        return raw
    out: list[str] = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            out.append(chunk)
        elif charset is None:
            # decode_header returns the unencoded stretches this way when encoded words are present
            out.append(chunk.decode("raw-unicode-escape", errors="replace"))
        else:
            out.append(decode_bytes(chunk, charset))
    return "".join(out).strip()


def raw_header(msg: Message, name: str) -> list[str]:
    """Every raw value of a header, undecoded (compat32 keeps them as written)."""
    wanted = name.lower()
    return [str(value) for key, value in msg.raw_items() if key.lower() == wanted]


def header_text(msg: Message, name: str) -> str | None:
    values = raw_header(msg, name)
    return decode_header_value(values[0]) if values else None


# ---- HTML ---------------------------------------------------------------------------------------

_INVISIBLE = re.compile(r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_LINE_BREAK_TAG = re.compile(r"<\s*/?\s*(?:br|p|div|tr|li|h[1-6]|table|pre|hr)\b[^>]*>", re.IGNORECASE)
_ANY_TAG = re.compile(r"<[^>]*>")
_SPACES = re.compile(r"[ \t\u00a0]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body: tags dropped, entities resolved, blank runs squeezed.

    Regular expressions rather than an HTML parser: several times faster on multi-megabyte mails, and
    relay HTML is simple (Amazon strips the buyer's own markup).
    """
    text = _COMMENT.sub("", markup)
    text = _INVISIBLE.sub("", text)
    text = _LINE_BREAK_TAG.sub("\n", text.replace("\r", "").replace("\n", " "))
    text = html.unescape(_ANY_TAG.sub("", text))
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()


_PRE_BLOCK = re.compile(r"<pre\b[^>]*>(?P<body>.*?)</pre\s*>", re.IGNORECASE | re.DOTALL)


def pre_blocks(markup: str) -> list[str]:
    """The text of each `<pre>` block (where Amazon's HTML mails put the buyer text)."""
    return [html_to_text(m.group("body").replace("\n", "<br>")) for m in _PRE_BLOCK.finditer(markup)]


# ---- MIME parts ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartInfo:
    filename: str | None
    content_type: str
    size: int


@dataclass
class MailParts:
    """The useful pieces of a MIME tree: body texts, attachments, enclosed (bounced) headers."""

    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[PartInfo] = field(default_factory=list)
    enclosed_headers: list[Message] = field(default_factory=list)
    report_texts: list[str] = field(default_factory=list)


def part_text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        return decode_bytes(payload, part.get_content_charset())
    raw = part.get_payload()
    return raw if isinstance(raw, str) else ""


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError, TypeError):
        return None
    return decode_header_value(name) if name else None


def _is_attachment(part: Message, maintype: str) -> bool:
    disposition = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment" or _filename(part) is not None:
        return True
    return maintype not in ("text", "multipart", "message")


def collect_parts(msg: Message) -> MailParts:
    """Walk the MIME tree once; enclosed messages (bounces) are not opened for body text."""
    found = MailParts()
    stack: list[Message] = [msg]
    while stack:
        part = stack.pop(0)
        ctype = part.get_content_type()
        maintype = part.get_content_maintype()
        if part.is_multipart() and maintype == "multipart":
            children = part.get_payload()
            if isinstance(children, list):
                stack[0:0] = [c for c in children if isinstance(c, Message)]
            continue
        if ctype == "message/rfc822":
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                found.enclosed_headers.append(inner[0])
                if _is_attachment(part, "message"):  # a forwarded mail attached by the buyer
                    found.attachments.append(PartInfo(_filename(part), ctype, len(inner[0].as_bytes())))
            continue
        if ctype == "text/rfc822-headers":
            found.enclosed_headers.append(HeaderParser().parsestr(part_text(part)))
            continue
        if ctype == "message/delivery-status":
            found.report_texts.append(_flatten(part))
            continue
        if _is_attachment(part, maintype):
            payload = part.get_payload(decode=True)
            size = len(payload) if isinstance(payload, bytes) else len(str(part.get_payload()))
            found.attachments.append(PartInfo(_filename(part), ctype, size))
            continue
        if ctype == "text/html":
            found.html.append(part_text(part))
        elif maintype == "text" or part is msg:
            found.plain.append(part_text(part))
    return found


def _flatten(part: Message) -> str:
    payload = part.get_payload()
    if isinstance(payload, list):
        return "\n".join(str(p) for p in payload)
    return str(payload)

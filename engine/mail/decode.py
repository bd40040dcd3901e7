"""Tolerant decoding: charsets, RFC 2047 headers, MIME parts, HTML to text.

Nothing here raises on bad input: a bogus charset label or a broken encoded word degrades to the
best readable text, because the raw bytes are stored anyway and an agent can still read most of it.
Everything is bounded: header values and texts are capped before any work, patterns are RE2 (linear
time), HTML goes through a real parser (lexbor) after a linear nesting check.
"""

from __future__ import annotations

import base64
import binascii
import codecs
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser

import re2
from selectolax.lexbor import LexborHTMLParser

from engine.mail.mime import DEFAULT_LIMITS, MailLimits, load_message, raw_body, walk

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
# Text codecs a sender must not choose: they interpret escapes, raise on any input or are no charsets.
_REFUSED_CODECS = frozenset({"undefined", "unicode_escape", "raw_unicode_escape", "idna", "punycode", "mbcs"})

_MULTIBYTE_CODECS = frozenset(
    {"cp932", "shift_jis", "euc_jp", "iso2022_jp", "iso2022_jp_ext", "gb18030", "big5", "cp949", "euc_kr"}
)
HEADER_VALUE_LIMIT = 16_000  # characters of one raw header value that are read


def _codec_for(label: str | None) -> str | None:
    if not label:
        return None
    name = label.strip().strip("\"'").lower()[:64]
    name = _CHARSET_ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError):
        return None
    # Only real text encodings: "zlib", "base64" or "rot13" are codecs too, but no charsets.
    if not getattr(info, "_is_text_encoding", True) or info.name.replace("-", "_") in _REFUSED_CODECS:
        return None
    return info.name


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Text from bytes in a declared charset, falling back sensibly when the label lies or is unknown."""
    codec = _codec_for(charset)
    if codec is not None:
        try:
            return data.decode(codec)
        except (UnicodeError, LookupError, ValueError):
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


# ---- headers ------------------------------------------------------------------------------------

# An RFC 2047 encoded word (with an optional RFC 2231 language tag): =?charset*lang?B|Q?text?=
_ENCODED_WORD = re2.compile(r"=\?([^?\s*]{1,64})(?:\*[^?\s]{0,40})?\?([bBqQ])\?([^?\s]*)\?=")


def _unfold(value: str) -> str:
    """A folded header value on one line: each line break followed by blanks becomes one space."""
    if "\n" not in value:
        return value.strip()
    lines = value.split("\n")
    out = [lines[0]]
    for line in lines[1:]:
        if line[:1] in (" ", "\t"):
            out[-1] = out[-1].removesuffix("\r")
            out.append(" " + line.lstrip(" \t"))
        else:
            out.append("\n" + line)
    return "".join(out).strip()


def _word_bytes(encoding: str, text: str) -> bytes | None:
    data = text.encode("ascii", "replace")
    try:
        if encoding in "bB":
            return base64.b64decode(data + b"=" * (-len(data) % 4))
        return binascii.a2b_qp(data, header=True)
    except (binascii.Error, ValueError):
        return None


def decode_header_value(raw: str) -> str:
    """An RFC 2047 header value as text; 8-bit raw bytes (kept as surrogates by the parser) included.

    Encoded words are decoded one by one (adjacent words in one charset together, since senders split
    multibyte characters across them); text between them is left exactly as written, escapes included.
    """
    raw = raw[:HEADER_VALUE_LIMIT]
    # Most header values are plain ASCII: skip the per-character scan for smuggled 8-bit bytes then.
    if not raw.isascii() and any("\udc80" <= ch <= "\udcff" for ch in raw):
        raw = decode_bytes(raw.encode("utf-8", "surrogateescape"), None)
    raw = _unfold(raw)
    if "=?" not in raw:
        return raw
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    last = 0

    def flush() -> None:
        nonlocal pending_charset
        if pending_charset is not None:
            out.append(decode_bytes(bytes(pending), pending_charset))
            pending.clear()
            pending_charset = None

    for match in _ENCODED_WORD.finditer(raw):
        between = raw[last : match.start()]
        data = _word_bytes(match.group(2), match.group(3))
        last = match.end()
        if data is None:  # not decodable: shown as written
            flush()
            out.append(between + match.group(0))
            continue
        charset = match.group(1).lower()
        if pending_charset is not None and not between.strip() and charset == pending_charset:
            pending.extend(data)  # adjacent words: the blank between them is not text (RFC 2047 6.2)
            continue
        if pending_charset is None or between.strip():
            flush()
            out.append(between)
        else:
            flush()
        pending_charset = charset
        pending.extend(data)
    flush()
    out.append(raw[last:])
    return "".join(out).strip()


def raw_header(msg: Message, name: str) -> list[str]:
    """Every raw value of a header, undecoded (compat32 keeps them as written), each capped in length."""
    wanted = name.lower()
    return [str(value)[:HEADER_VALUE_LIMIT] for key, value in msg.raw_items() if key.lower() == wanted]


def header_text(msg: Message, name: str) -> str | None:
    values = raw_header(msg, name)
    return decode_header_value(values[0]) if values else None


# ---- HTML ---------------------------------------------------------------------------------------

_INVISIBLE_TAGS = ("script", "style", "head", "title")
_BREAK_TAGS = frozenset({"br", "p", "div", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "pre", "hr"})
_VOID_TAGS = frozenset(
    {"br", "hr", "img", "meta", "link", "input", "wbr", "area", "base", "col", "embed", "param", "source", "track"}
)
# Openers of what does not nest: void elements, comments, doctype (lower case, as counted).
_NOT_NESTING = ("<br", "<hr", "<img", "<meta", "<link", "<input", "<wbr", "<!")
_MAX_NESTING = 300  # the HTML parser's cost grows with the square of the nesting of block elements
_END_MARK = "\ue000"  # stands for the end of a block element until the text is assembled


def _tag_name(piece: str) -> str:
    """The lower-case name of the tag that `piece` (text after a "<") starts with, "/" kept; "" if none."""
    end = 1 if piece.startswith("/") else 0
    start = end
    while end < len(piece) and end - start < 12 and piece[end].isascii() and piece[end].isalnum():
        end += 1
    return piece[:end].lower() if end > start else ""


def _nesting_bound(markup: str) -> int:
    """An upper bound of how deep the elements nest, from tag counts per slice (string methods, linear)."""
    lowered = markup.lower()
    depth = deepest = 0
    for start in range(0, len(lowered), 4096):
        chunk = lowered[start : start + 4096]
        closes = chunk.count("</")
        opens = chunk.count("<") - closes - sum(chunk.count(opener) for opener in _NOT_NESTING)
        deepest = max(deepest, depth + opens)
        depth = max(0, depth - closes) + max(0, opens)
    return deepest


def _flatten_if_deep(markup: str) -> str:
    """Markup nested deeper than `_MAX_NESTING` loses its structural tags: line-break tags become `<br>`,
    invisible elements and the first `<pre>` block stay. Mail HTML is never that deep, so only hostile
    markup (or very sloppy markup, whose text stays the same) goes this way."""
    if markup.count("<") <= _MAX_NESTING or _nesting_bound(markup) <= _MAX_NESTING:
        return markup
    pieces = markup.split("<")
    out = [pieces[0]]
    pre_state = "before"  # the first <pre> block is kept: Amazon's HTML mails put the buyer text there
    for piece in pieces[1:]:
        name = _tag_name(piece)
        bare = name.lstrip("/")
        if not name or bare in _INVISIBLE_TAGS:
            out.append("<" + piece)
            continue
        if bare == "pre" and (pre_state, name) in {("before", "pre"), ("open", "/pre")}:
            pre_state = "open" if name == "pre" else "done"
            out.append("<" + piece)
            continue
        close = piece.find(">")
        rest = piece[close + 1 :] if close >= 0 else ""
        out.append("<br>" + rest if bare in _BREAK_TAGS else rest)
    return "".join(out)


def _parse_html(markup: str) -> LexborHTMLParser:
    tree = LexborHTMLParser(_flatten_if_deep(markup.replace(_END_MARK, "")))
    tree.strip_tags(list(_INVISIBLE_TAGS))
    return tree


def _squeeze(text: str) -> str:
    """Blank runs within a line become one space; more than one empty line in a row becomes one.

    String methods rather than a pattern: linear, and far faster on long texts than per-match calls.
    """
    lines: list[str] = []
    for line in text.replace("\t", " ").replace("\xa0", " ").split("\n"):
        squeezed = " ".join(word for word in line.split(" ") if word)
        if squeezed or (lines and lines[-1]):
            lines.append(squeezed)
    return "\n".join(lines).strip()


def _text_of(node: object, *, keep_newlines: bool) -> str:
    """Text under a node: block elements start and end lines, `<br>` breaks one, source newlines are blanks
    (inside `<pre>`, where `keep_newlines`, they are line breaks)."""
    out: list[str] = []
    for child in node.traverse(include_text=True):  # type: ignore[attr-defined]
        tag = child.tag
        if tag == "-text":
            text = child.text_content or ""
            if not keep_newlines:
                text = text.replace("\r", " ").replace("\n", " ")
            out.append(text.replace(_END_MARK, "\n"))
        elif tag in _BREAK_TAGS:
            out.append("\n")
    return "".join(out)


def _mark_block_ends(tree: LexborHTMLParser) -> None:
    for node in tree.css("p, div, tr, li, h1, h2, h3, h4, h5, h6, table, pre"):
        node.insert_after(_END_MARK)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body: invisible elements dropped, entities resolved, blank runs squeezed."""
    if not markup.strip():
        return ""
    tree = _parse_html(markup)
    _mark_block_ends(tree)
    root = tree.root
    return _squeeze(_text_of(root, keep_newlines=False)) if root is not None else ""


def pre_blocks(markup: str) -> list[str]:
    """The text of each `<pre>` block (where Amazon's HTML mails put the buyer text)."""
    if "<pre" not in markup.lower():
        return []
    tree = _parse_html(markup)
    _mark_block_ends(tree)
    return [_squeeze(_text_of(node, keep_newlines=True)) for node in tree.css("pre")]


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
    warnings: list[str] = field(default_factory=list)  # what was not read, and why
    text_cut: bool = False  # a text was longer than the limit and was cut


def _payload_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except (ValueError, LookupError, TypeError, binascii.Error):
        payload = None
    if isinstance(payload, bytes):
        return payload
    return raw_body(part).encode("utf-8", "surrogateescape")  # ASCII and escaped bytes come back as they were


def part_text(part: Message, limit: int = DEFAULT_LIMITS.max_markup_chars) -> str:
    """A text part's decoded text, newlines normalised, at most `limit` characters."""
    data = _payload_bytes(part)[: limit * 4]  # no charset needs more than 4 bytes per character
    try:
        charset = part.get_content_charset()
    except (ValueError, LookupError, TypeError):
        charset = None
    text = decode_bytes(data, charset)[:limit]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _encoded_size(part: Message) -> int:
    """Decoded size of an attachment; large base64 payloads are measured without decoding them."""
    raw = raw_body(part)
    if len(raw) > 1_000_000 and str(part.get("Content-Transfer-Encoding", "")).strip().lower() == "base64":
        letters = len(raw) - sum(raw.count(c) for c in "\r\n \t")
        return letters * 3 // 4 - raw.rstrip().count("=")
    return len(_payload_bytes(part))


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, LookupError, TypeError, AttributeError):
        return None
    return decode_header_value(name) if name else None


def _is_attachment(part: Message, maintype: str) -> bool:
    disposition = str(part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    if disposition == "attachment" or _filename(part) is not None:
        return True
    return maintype not in ("text", "multipart", "message")


def collect_parts(msg: Message, limits: MailLimits = DEFAULT_LIMITS) -> MailParts:
    """Walk the MIME tree once, within the limits; enclosed messages (bounces) are not opened for body text."""
    found = MailParts()
    tree = walk(msg, limits)
    found.warnings.extend(tree.warnings)
    text_left, markup_left = limits.max_text_chars, limits.max_markup_chars
    for leaf in tree.leaves:
        part = leaf.part
        ctype = "text/plain" if leaf.unsplit_multipart else part.get_content_type()
        maintype = ctype.partition("/")[0]
        if ctype == "message/rfc822":
            inner_text = raw_body(part)
            found.enclosed_headers.append(_enclosed(inner_text, limits))
            if _is_attachment(part, "message"):  # a forwarded mail attached by the buyer
                found.attachments.append(PartInfo(_filename(part), ctype, len(inner_text)))
            continue
        if ctype == "text/rfc822-headers":
            found.enclosed_headers.append(_enclosed(part_text(part, 64_000), limits))
            continue
        if ctype == "message/delivery-status":
            found.report_texts.append(part_text(part, 64_000))
            continue
        if _is_attachment(part, maintype) and not leaf.unsplit_multipart:
            found.attachments.append(PartInfo(_filename(part), ctype, _encoded_size(part)))
            continue
        if ctype == "text/html":
            markup = part_text(part, max(markup_left, 0) + 1)
            found.text_cut |= len(markup) > markup_left
            found.html.append(markup[: max(markup_left, 0)])
            markup_left -= len(markup)
        elif maintype == "text" or leaf.is_root:
            text = part_text(part, max(text_left, 0) + 1)
            found.text_cut |= len(text) > text_left
            found.plain.append(text[: max(text_left, 0)])
            text_left -= len(text)
    if found.text_cut:
        found.warnings.append("The text was longer than the parser reads; the rest is in the raw mail.")
    return found


def _enclosed(text: str, limits: MailLimits) -> Message:
    head = text[: limits.max_header_bytes]
    return load_message(head, limits)[0] if head.strip() else HeaderParser().parsestr("")

"""Links and web addresses: URLs with any scheme (defanged `hxxp`, `[:]` included), scheme-less and
scheme-relative domains checked against the whole Public Suffix List (the `publicsuffixlist` package's
bundled snapshot, offline), defanged dots (`[.]`, `(dot)`, `[punkt]`) and spelled-out dots in the
13 interface languages, IDN and punycode hosts, IPv4 and IPv6 literals, and invitations to scan a QR
code. Amazon's own marketplace domains may be named: the return flow lives there.

Every function takes normalised text (see `normalize`) and yields `Hit`s in its offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from typing import NamedTuple

from publicsuffixlist import PublicSuffixList

from engine.compliance import lexicon
from engine.compliance.matcher import compile_re2, is_letter


class Hit(NamedTuple):
    rule: str
    start: int
    end: int


# Dot words: en, de, fr, it, es, ja, zh, pt, nl, pl, sv, tr, ar.
DOT_WORDS = (
    "dot",
    "punkt",
    "point",
    "punto",
    "ドット",
    "点",
    "點",
    "ponto",
    "punt",
    "kropka",
    "prick",
    "nokta",
    "نقطة",
)
AT_WORDS = (
    "at", "ät", "arobase", "chiocciola", "arroba", "アットマーク", "アット", "艾特", "apenstaartje", "małpa", "malpa",
    "snabel-a", "kuyruklu a", "آت",
)  # fmt: skip
_DOT_ALTS = "|".join(DOT_WORDS)
_LABEL_CHAR = r"[a-z0-9\x{c0}-\x{24f}]"
_LABEL = rf"{_LABEL_CHAR}(?:[a-z0-9\x{{c0}}-\x{{24f}}-]*{_LABEL_CHAR})?"  # unbounded: RE2 stays linear
# ".", defanged "[.]" "(.)" "{.}" "[dot]" "(punkt)", " dot ", " . ", and CJK dot words without spaces
_DOT_SEPARATOR = (
    rf"\.|\s*[\[\(\{{]\s*(?:\.|{_DOT_ALTS})\s*[\]\)\}}]\s*|\s+(?:dot)\s+|[ \t]+\.[ \t]+|\s*(?:ドット|点|點)\s*"
)
_URL_CHARS = r"[^\s<>\"'{}|\\^`]"
_TAIL = rf"(?:[/?#]{_URL_CHARS}*|:\d{{2,5}}(?:[/?#]{_URL_CHARS}*)?)?"
_DOMAIN = compile_re2(rf"{_LABEL}(?:(?:{_DOT_SEPARATOR}){_LABEL})+{_TAIL}", ignore_case=True)
_SCHEME_URL = compile_re2(
    rf"(?:h[tx]{{2}}ps?|ftp|sftp|file)\s*(?::|\[:\]|\(:\))\s*//{_URL_CHARS}+|\bwww\d?(?:\.|\[\.\]|\(\.\)){_URL_CHARS}+",
    ignore_case=True,
)
# Spelled-out dots of the other languages are ordinary words ("un point de vue"): only before a common
# top-level domain that ends the phrase.
_SPOKEN_DOMAIN = compile_re2(
    rf"({_LABEL})\s+(?:punkt|point|punto|ponto|punt|kropka|prick|nokta|نقطة)\s+({_LABEL})", ignore_case=True
)
_IPV4 = compile_re2(r"(?:\d{1,3}(?:\.|\[\.\])){3}\d{1,3}(?::\d{2,5})?(?:/[^\s<>\"']*)?")
_IPV6 = compile_re2(r"\[[0-9a-f:.]{2,45}\](?::\d{2,5})?(?:/[^\s<>\"']*)?|[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}")
_SEPARATOR_SPLIT = re.compile(rf"\s*[\[\(\{{]\s*(?:\.|{_DOT_ALTS})\s*[\]\)\}}]\s*|\s+(?:{_DOT_ALTS})\s+|[ \t]+\.[ \t]+|"
                              r"\s*(?:ドット|点|點)\s*|\.", re.IGNORECASE)  # fmt: skip
_VERSION_WORDS = re.compile(r"(?:version|versión|versione|firmware|v|ver\.?)\s*$", re.IGNORECASE)
TRAILING_PUNCTUATION = ".,;:!?)'\"»」』）。、]"

# Top-level domains that are links in any letter case; any other suffix counts in lower or upper case
# only, so "the item.Best regards" (a missing space) is no link.
_COMMON_TLD_NAMES = (
    "com net org info biz io co me shop store online site app xyz eu de at ch fr be it es nl pl se dk no fi pt ie "
    "uk us ca mx br au jp cn hk tw kr in tr ru ly gl gd to link page club top vip cc tv ws cz hu ro gr ae sa sg "
    "nz za ar cl lu li ai dev"
)
COMMON_TLDS = frozenset(_COMMON_TLD_NAMES.split())
# Suffixes that are also file extensions: "firmware.zip" names a file unless it reads as a web address.
_FILE_EXTENSIONS = frozenset({"zip", "mov", "md", "py", "sh", "pdf", "exe", "apk"})

_AMAZON_TLDS = (
    "com|ca|com\\.mx|com\\.br|co\\.uk|de|fr|it|es|nl|se|pl|com\\.tr|com\\.be|ie|ae|sa|eg|in|co\\.jp|com\\.au|sg|cn"
)
_AMAZON_HOST = re.compile(rf"(?:[a-z0-9-]+\.)*amazon\.(?:{_AMAZON_TLDS})\.?", re.IGNORECASE)


@cache
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList(accept_unknown=False)


def host_of(link: str) -> str:
    """The host a link goes to, lower case, defanged dots read as dots."""
    rest = re.sub(r"^[a-z]+\s*(?::|\[:\]|\(:\))\s*//|^//", "", link[:2048], flags=re.IGNORECASE)
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    authority = authority.rpartition("@")[2]  # https://amazon.de@evil.example goes to evil.example
    authority = re.sub(r":\d+$", "", authority)
    labels = [label for label in _SEPARATOR_SPLIT.split(authority) if label]
    return ".".join(labels).lower().strip(".")


def is_amazon_link(link: str) -> bool:
    return _AMAZON_HOST.fullmatch(host_of(link)) is not None


def registrable(host: str) -> bool:
    """True when `host` ends in a public suffix and has a name in front of it (mystore.ai, shop.co.uk)."""
    host = host.strip(".").lower()
    if not host or len(host) > 253 or "." not in host:
        return False
    try:
        return _suffixes().privatesuffix(host) is not None
    except (ValueError, UnicodeError):
        return False


def _trim(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1] in TRAILING_PUNCTUATION:
        if text[end - 1] == ")" and "(" in text[start:end]:
            break
        end -= 1
    return end


def _is_web_address(text: str, start: int, end: int) -> bool:
    candidate = text[start:end]
    head = re.split(r"[/?#]|:\d", candidate, maxsplit=1)[0]
    labels = [label for label in _SEPARATOR_SPLIT.split(head) if label]
    if len(labels) < 2 or not registrable(".".join(labels)):
        return False
    tld = labels[-1]
    has_path = len(head) < len(candidate)
    plain = "." in head and _SEPARATOR_SPLIT.sub(".", head) == head  # written with plain dots only
    if tld.lower() in _FILE_EXTENSIONS and plain and not has_path and len(labels) == 2:
        return False
    if tld.lower() in COMMON_TLDS or has_path or not plain:
        return True
    # a missing space after a full stop ("received.Please") reads as a domain with a capitalised suffix
    return tld.islower() or tld.isupper()


def find_links(text: str) -> Iterator[Hit]:
    for match in _SCHEME_URL.finditer(text):
        start, end = match.span()
        end = _trim(text, start, end)
        if end > start and not is_amazon_link(text[start:end]):
            yield Hit("link", start, end)
    for match in _DOMAIN.finditer(text):
        start, end = match.span()
        end = _trim(text, start, end)
        if start > 0 and text[start - 1] == "@":
            continue  # the domain of an e-mail address: the e-mail rule reports it
        if end > start and _is_web_address(text, start, end) and not is_amazon_link(text[start:end]):
            yield Hit("link", start, end)
    yield from _spoken_domains(text)
    yield from _ip_literals(text)
    for start, end in lexicon.QR_INVITATION.finditer(text):
        yield Hit("link", start, end)


def _spoken_domains(text: str) -> Iterator[Hit]:
    for match in _SPOKEN_DOMAIN.finditer(text):
        label, tld = match.group(1), match.group(2)
        if tld.lower() not in COMMON_TLDS or len(label) < 3 or label.lower() in _FUNCTION_WORDS:
            continue
        rest = text[match.end() : match.end() + 3].lstrip(" \t")
        if rest[:1].isalpha() and rest[:1].islower():
            continue  # the phrase goes on: "point de vue", "punto de venta"
        yield Hit("link", match.start(), match.end())


_FUNCTION_WORD_NAMES = (
    "the and one this that our your une ein eine der die das den dem des les une cet cette ce del una uno los las "
    "dal nel sul dei este esta esse essa het een ten jeden jedna jedno bir bu şu"
)
_FUNCTION_WORDS = frozenset(_FUNCTION_WORD_NAMES.split())


def _ip_literals(text: str) -> Iterator[Hit]:
    for match in _IPV4.finditer(text):
        start, end = match.span()
        if is_letter(text, start - 1) or (start > 0 and text[start - 1] in ".,-"):
            continue
        if is_letter(text, end) or (end < len(text) and text[end] == "." and is_letter(text, end + 1)):
            continue
        octets = re.split(r"\[\.\]|\.", re.split(r"[:/]", text[start:end], maxsplit=1)[0])
        if len(octets) != 4 or any(int(octet) > 255 for octet in octets):
            continue
        if _VERSION_WORDS.search(text[max(0, start - 20) : start]):
            continue
        yield Hit("link", start, _trim(text, start, end))
    for match in _IPV6.finditer(text):
        start, end = match.span()
        literal = text[start:end]
        if is_letter(text, start - 1) or is_letter(text, end) or (start > 0 and text[start - 1] in ":."):
            continue
        bracketed = literal.startswith("[")
        groups = literal.strip("[]").split("]")[0].split(":")
        if not bracketed and "::" not in literal and len(groups) < 8:
            continue  # "10:30:00" is a time
        if sum(1 for group in groups if group) < 2 or not all(len(g) <= 4 for g in groups if "." not in g):
            continue
        yield Hit("link", start, _trim(text, start, end))

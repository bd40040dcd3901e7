"""Edit distance between draft and sent reply, and the word diff shown to reviewers."""

from __future__ import annotations

import random
import time

import pytest

from engine.workflow.textdiff import (
    edit_distance,
    normalized_edit_distance,
    tokenize,
    two_row_edit_distance,
    word_diff,
)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("", "", 0),
        ("", "abc", 3),
        ("abc", "", 3),
        ("abc", "abc", 0),
        ("kitten", "sitting", 3),
        ("sitting", "kitten", 3),
        ("flaw", "lawn", 2),
        ("intention", "execution", 5),
        ("abc", "acb", 2),  # a transposition is two edits in plain Levenshtein
        ("a", "b", 1),
        ("ab", "ba", 2),
        ("Hello", "hello", 1),
        ("straße", "strasse", 2),
        ("ご注文ありがとうございます", "ご注文ありがとうございました", 2),
        ("😀 thanks", "thanks", 2),  # characters, not bytes
        ("aaaa", "aaaaaaaa", 4),
        ("abcdef", "azced", 3),
        ("x" * 70 + "a" + "y" * 70, "x" * 70 + "b" + "y" * 70, 1),  # longer than a machine word
    ],
)
def test_edit_distance(a: str, b: str, expected: int) -> None:
    assert edit_distance(a, b) == expected
    assert two_row_edit_distance(a, b) == expected


def test_bit_parallel_matches_reference_dp() -> None:
    rng = random.Random(20260328)
    for _ in range(400):
        alphabet = rng.choice(["ab", "abcd", "abcdefghij äö漢"])
        a = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 150)))
        b = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 150)))
        assert edit_distance(a, b) == two_row_edit_distance(a, b), (a, b)


def test_edit_distance_is_fast_on_long_replies() -> None:
    rng = random.Random(7)
    words = ["order", "delivery", "refund", "thank", "you", "please", "the", "parcel", "we", "will"]
    a = " ".join(rng.choice(words) for _ in range(700))
    b = " ".join(rng.choice(words) for _ in range(700))
    started = time.perf_counter()
    distance = edit_distance(a, b)
    elapsed = time.perf_counter() - started
    assert 0 < distance <= max(len(a), len(b))
    assert elapsed < 0.5, f"edit distance of {len(a)} x {len(b)} chars took {elapsed:.2f} s"


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("", "", 0.0),
        ("same", "same", 0.0),
        ("", "abc", 1.0),
        ("abc", "xyz", 1.0),
        ("kitten", "sitting", 3 / 7),
        ("abcd", "abce", 0.25),
    ],
)
def test_normalized_edit_distance(a: str, b: str, expected: float) -> None:
    assert normalized_edit_distance(a, b) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("", "", []),
        ("same text", "same text", [("equal", "same text")]),
        ("", "new", [("insert", "new")]),
        ("old", "", [("delete", "old")]),
        (
            "Dear buyer, your order ships today.",
            "Dear Anna, your order shipped today!",
            [
                ("equal", "Dear "),
                ("delete", "buyer"),
                ("insert", "Anna"),
                ("equal", ", your order "),
                ("delete", "ships"),
                ("insert", "shipped"),
                ("equal", " today"),
                ("delete", "."),
                ("insert", "!"),
            ],
        ),
        (
            "We will refund you.",
            "We will refund you in full within 3 days.",
            [("equal", "We will refund you"), ("insert", " in full within 3 days"), ("equal", ".")],
        ),
        (
            "您的订单已发货。",
            "您的订单今天已发货。",
            [("equal", "您的订单"), ("insert", "今天"), ("equal", "已发货。")],
        ),
    ],
)
def test_word_diff(a: str, b: str, expected: list[tuple[str, str]]) -> None:
    assert word_diff(a, b) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Hello  world,\nthanks!", "Hello world, thanks a lot!"),
        ("Ihre Bestellung 123-1234567-1234567 ist unterwegs.", "Ihre Bestellung ist heute unterwegs."),
        ("word " * 300, ("word " * 150) + "changed " + ("word " * 149)),
    ],
)
def test_word_diff_rebuilds_both_texts(a: str, b: str) -> None:
    ops = word_diff(a, b)
    assert "".join(text for op, text in ops if op != "insert") == a
    assert "".join(text for op, text in ops if op != "delete") == b
    assert all(ops[i][0] != ops[i + 1][0] for i in range(len(ops) - 1))  # neighbours merged


def test_word_diff_on_long_repetitive_text_finds_the_single_change() -> None:
    a = "word " * 300
    b = ("word " * 150) + "changed " + ("word " * 149)
    assert [op for op, _ in word_diff(a, b)] == ["equal", "delete", "insert", "equal"]


def test_tokenize_keeps_every_character() -> None:
    text = "Hi Anna,\n\tthe parcel (DHL) arrives 3/4 — 谢谢！ ok?"
    assert "".join(tokenize(text)) == text
    assert "谢" in tokenize(text)

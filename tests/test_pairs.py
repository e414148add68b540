"""Minimal pairs: the BLiMP-format reader and its one-line errors, the built-in suites' shape and
minimality, and the accuracy's arithmetic on hand-made scores."""

import json
from collections import Counter

import pytest

from masklab.errors import UserError
from masklab.evaluate.pairs import BUILTIN_SUITES, MinimalPair, load_pairs, minimal_pair_accuracy
from masklab.evaluate.pairs.english import english_pairs
from masklab.evaluate.pairs.persian import persian_pairs

ARABIC_YEH, ARABIC_KAF, ZWNJ = "\u064a", "\u0643", "\u200c"


def write(tmp_path, lines, name="suite.jsonl"):
    path = tmp_path / name
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_reads_blimp_lines_with_the_phenomenon_fallbacks(tmp_path):
    rows = [
        {"sentence_good": "a b.", "sentence_bad": "b a.", "phenomenon": "mine", "linguistics_term": "x", "UID": "y"},
        {"sentence_good": "c d.", "sentence_bad": "d c.", "linguistics_term": "anaphor_agreement", "UID": "y"},
        {"sentence_good": "e f.", "sentence_bad": "f e.", "UID": "anaphor_gender_agreement", "pairID": "0"},
        {"sentence_good": "g h.", "sentence_bad": "h g.", "phenomenon": ""},
    ]
    path = write(tmp_path, [json.dumps(rows[0]), "", "   ", *map(json.dumps, rows[1:])], name="island.jsonl")
    assert load_pairs(str(path)) == [
        MinimalPair("a b.", "b a.", "mine"),
        MinimalPair("c d.", "d c.", "anaphor_agreement"),
        MinimalPair("e f.", "f e.", "anaphor_gender_agreement"),
        MinimalPair("g h.", "h g.", "island"),
    ]  # an empty name falls back to the stem


GOOD = '{"sentence_good": "the nation is strong.", "sentence_bad": "the nation are strong."}'


@pytest.mark.parametrize(
    "lines, expected",
    [
        (["not json"], ["line 1", "not valid JSON"]),
        ([GOOD, "", "{broken"], ["line 3", "not valid JSON"]),  # blank lines still count
        (['["a", "b"]'], ["line 1", "array, not an object"]),
        (['"a sentence"'], ["line 1", "string, not an object"]),
        ([GOOD, '{"sentence_good": "a b"}'], ["line 2", "'sentence_bad'"]),
        (['{"sentence_bad": "a b"}'], ["line 1", "'sentence_good'"]),
        (['{"sentence_good": 3, "sentence_bad": "a b"}'], ["line 1", "'sentence_good' is a JSON number"]),
        (['{"sentence_good": "a b", "sentence_bad": null}'], ["line 1", "'sentence_bad' is a JSON null"]),
        (['{"sentence_good": "  ", "sentence_bad": "a b"}'], ["line 1", "'sentence_good' is empty"]),
        (['{"sentence_good": "a b", "sentence_bad": "a b"}'], ["line 1", "the same sentence"]),
        (["", "  "], ["holds no minimal pairs"]),
    ],
)
def test_malformed_lines_raise_one_line_user_errors(tmp_path, lines, expected):
    path = write(tmp_path, lines)
    with pytest.raises(UserError) as info:
        load_pairs(str(path))
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    for part in expected:
        assert part in message, message


def test_unreadable_files_and_unknown_suites_raise_user_errors(tmp_path):
    latin1 = tmp_path / "latin1.jsonl"
    latin1.write_bytes((GOOD + "\n").encode() + '{"sentence_good": "café"}\n'.encode("latin-1"))
    cases = [
        (str(tmp_path / "missing.jsonl"), "does not exist"),
        (str(tmp_path), "is a directory"),
        (str(latin1), "line 2: not UTF-8"),
        ("builtin:de", "builtin:en, builtin:fa"),
    ]
    for spec, expected in cases:
        with pytest.raises(UserError) as info:
            load_pairs(spec)
        assert expected in str(info.value) and "\n" not in str(info.value), str(info.value)


def test_builtin_suites_load_by_name_and_are_deterministic():
    assert set(BUILTIN_SUITES) == {"en", "fa"}
    assert load_pairs("builtin:en") == english_pairs() == english_pairs()
    assert load_pairs("builtin:fa") == persian_pairs() == persian_pairs()


def differs_minimally(pair: MinimalPair) -> bool:
    """One word substituted, or (word_order, object_marker) two adjacent words swapped."""
    good, bad = pair.good.rstrip(".").split(), pair.bad.rstrip(".").split()
    if len(good) != len(bad):
        return False
    diff = [i for i, (g, b) in enumerate(zip(good, bad)) if g != b]
    if pair.phenomenon in ("word_order", "object_marker"):
        return (
            Counter(good) == Counter(bad)
            and len(diff) == 2
            and diff[1] == diff[0] + 1
            and good[diff[0]] == bad[diff[1]]
        )
    return len(diff) == 1


@pytest.mark.parametrize(
    "pairs, min_pairs, min_phenomena, min_each",
    [
        (english_pairs(), 1000, 5, 150),
        (persian_pairs(), 200, 3, 60),
    ],
)
def test_builtin_suites_are_large_unique_and_minimal(pairs, min_pairs, min_phenomena, min_each):
    counts = Counter(p.phenomenon for p in pairs)
    assert len(pairs) >= min_pairs and len(counts) >= min_phenomena
    assert min(counts.values()) >= min_each and max(counts.values()) <= 400, counts
    assert len({(p.good, p.bad) for p in pairs}) == len(pairs)
    for pair in pairs:
        assert pair.good != pair.bad and pair.good.endswith(".") and pair.bad.endswith(".")
        assert differs_minimally(pair), pair


def test_english_sentences_start_with_a_capital():
    for pair in english_pairs():
        assert pair.good[0].isupper() and pair.bad[0].isupper(), pair


def test_persian_uses_persian_letters_and_the_zero_width_non_joiner():
    pairs = persian_pairs()
    text = "".join(p.good + p.bad for p in pairs)
    assert ARABIC_YEH not in text and ARABIC_KAF not in text
    assert "\u06cc" in text and "\u06a9" in text  # Persian yeh and keheh are there instead
    present = [p for p in pairs if p.phenomenon == "present_agreement"]
    assert present and all(p.good.split()[-1].startswith("می" + ZWNJ) for p in present)
    assert "می " not in text  # the prefix is never split off by a space


def test_minimal_pair_accuracy_on_hand_made_scores():
    pairs = [MinimalPair(f"g{i}", f"b{i}", name) for i, name in enumerate("aabbb")]
    good = [1.0, 0.0, 2.0, -1.0, 3.0]
    bad = [0.5, 0.0, 1.0, -0.5, 5.0]  # a: win, tie; b: win, loss, loss
    assert minimal_pair_accuracy(pairs, good, bad) == {
        "minimal_pair_accuracy": pytest.approx((1 + 0 + 1) / 5),
        "pairs": 5,
        "ties": 1,
        "by_phenomenon": {
            "a": {"accuracy": pytest.approx(0.5), "pairs": 2},
            "b": {"accuracy": pytest.approx(1 / 3), "pairs": 3},
        },
    }


def test_ties_count_as_wrong_and_lengths_must_match():
    pairs = [MinimalPair("g", "b", "x")] * 4
    constant = minimal_pair_accuracy(pairs, [-2.0] * 4, [-2.0] * 4)  # a model that tells nothing apart
    assert constant["minimal_pair_accuracy"] == 0.0 and constant["ties"] == 4
    assert minimal_pair_accuracy(pairs, [1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0])["minimal_pair_accuracy"] == 0.5
    with pytest.raises(ValueError, match="4 pairs but 3 good"):
        minimal_pair_accuracy(pairs, [1.0] * 3, [0.0] * 4)

"""The cleaning filters (data.filters) on small corpora each test builds: what each drops, repairs or only counts,
how their settings key the preparation cache, and what a run's summary.json records."""

import json
import random

import pytest

from conftest import masklab, tiny_overrides
from masklab.config import build_config
from masklab.data import prepare
from masklab.data.filters.near_dup import shingles
from masklab.data.prepare import prepare_corpus
from masklab.errors import UserError

ENGLISH = (
    "the of and to in is was for on that with as by at from his her they have this which one you were all we when "
    "there can an your their said if do will each about how up out them then she many some so these would other into "
    "has more two time like him see could people than first water been call who now find long down day did get come "
    "made may part over new sound take only little work know place year live back give most very after thing our "
    "just name good man think say great where help through much before line right too mean old any same tell boy "
    "follow came want show also around form three small set put end does another well large must big even such "
    "because turn here why ask went men read need land different home move try kind hand picture again change off "
    "play spell air away animal house point page letter mother answer found study still learn should world"
).split()
PERSIAN = ["زبان فارسی با خط عربی نوشته می‌شود و آ و ی و ک دارد.", "امروز هوا خیلی خوب است و ما به پارک می‌رویم."]
OTHER = [
    "Der schnelle braune Fuchs springt über den faulen Hund und läuft in den Wald.",
    "Le renard brun rapide saute par-dessus le chien paresseux dans la forêt.",
    "هل يمكن ان نلتقي على الساعة الثانية عشرة ظهرا في المكتبة؟",  # Arabic: Persian's script, not Persian
]
ALL_OFF = [f"data.filters.{name}=off" for name in ("mojibake", "length", "char_share", "repetition", "near_dup")]


def english_docs(n: int, words: int = 40, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(ENGLISH) for _ in range(words)) for _ in range(n)]


def write(tmp_path, docs: list[str], name: str = "c.txt"):
    path = tmp_path / name
    path.write_text("\n\n".join(docs) + "\n", encoding="utf-8")
    return path


def prepared(path, *sets):
    cfg = build_config({}, [f"data.corpus={path}", "data.min_chars=1", "data.val_fraction=0", *ALL_OFF, *sets])
    corpus = prepare_corpus(cfg.data)
    return corpus, list(corpus.documents("train"))


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a, 5), shingles(b, 5)
    return len(sa & sb) / len(sa | sb)


def edited(doc: str, positions: list[int], seed: int = 1) -> str:
    """`doc` with the words at `positions` replaced by words that occur nowhere in the corpus."""
    words = doc.split()
    for i in positions:
        words[i] = f"zq{seed}x{i}"
    return " ".join(words)


@pytest.mark.parametrize(
    "positions, low, high, dropped",
    [
        ([50], 0.88, 0.92, True),  # one word changed in 100 breaks 5 of 96 shingles: J = 91/101
        ([20, 70], 0.80, 0.84, True),  # two: J = 86/106, just above the 0.8 threshold
        ([10, 25, 40, 55, 70, 85], 0.50, 0.55, False),  # six: J = 66/126, near-duplicate no longer
        (list(range(0, 100, 7)), 0.1, 0.3, False),  # every seventh word: a different document
    ],
)
def test_near_duplicates_above_the_threshold_are_dropped_and_below_it_kept(tmp_path, positions, low, high, dropped):
    base = english_docs(30, words=100)
    copy = edited(base[0], positions)
    assert low <= jaccard(base[0], copy) <= high  # the planted similarity is the one intended
    corpus, docs = prepared(write(tmp_path, [*base, copy]), "data.filters.near_dup=on")
    assert (copy not in docs) == dropped and base[0] in docs  # the first occurrence is the one kept
    stats = corpus.stats["filters"]["near_dup"]
    assert stats["dropped"] == int(dropped) and stats["kept"] == 30 + (not dropped) and stats["checked"] == 31
    assert stats["share"] == pytest.approx(int(dropped) / 31, abs=1e-6)


def test_near_dup_threshold_is_the_setting(tmp_path):
    base = english_docs(30, words=100)
    copy = edited(base[0], [10, 25, 40, 55, 70, 85])  # J ~ 0.52
    _, docs = prepared(
        write(tmp_path, [*base, copy]), "data.filters.near_dup=on", "data.filters.near_dup_threshold=0.4"
    )
    assert copy not in docs and len(docs) == 30


@pytest.mark.parametrize(
    "keep, kept",
    [
        ("[en]", "english"),
        ("[fa]", "persian"),
        ("en,fa", "both"),  # the comma form of --set
    ],
)
def test_lines_in_other_languages_are_dropped(tmp_path, keep, kept):
    english = english_docs(6, words=12)
    path = write(tmp_path, [*english, *PERSIAN, *OTHER])
    corpus, docs = prepared(path, "data.filters.language=on", f"data.filters.languages={keep}")
    expected = {"english": english, "persian": PERSIAN, "both": english + PERSIAN}[kept]
    assert sorted(docs) == sorted(expected)
    stats = corpus.stats["filters"]["language"]
    assert stats["dropped"] == 11 - len(expected) and stats["detected"]["fa"] == 2 and stats["detected"]["en"] == 6


def test_language_report_without_languages_counts_what_it_detects(tmp_path):
    corpus, docs = prepared(write(tmp_path, [*english_docs(4, 12), *PERSIAN, *OTHER]), "data.filters.language=report")
    assert len(docs) == 9
    assert corpus.stats["filters"]["language"]["detected"] == {"en": 4, "fa": 2, "de": 1, "fr": 1, "ar": 1}


def test_mojibake_is_repaired_and_report_mode_only_counts_it(tmp_path):
    right = "The café served crème brûlée — and it’s good: “curly” quotes stay curly."
    broken = right.encode("utf-8").decode("latin-1")  # bytes read with the wrong codec
    assert broken != right and "Ã" in broken
    path = write(tmp_path, [broken, "plain ascii text stays as it is"])
    corpus, docs = prepared(path, "data.filters.mojibake=on")
    assert right in docs and broken not in docs
    assert corpus.stats["filters"]["mojibake"] | {"seconds": 0} == {
        "mode": "on", "checked": 2, "flagged": 1, "fixed": 1, "share": 0.5, "seconds": 0
    }  # fmt: skip
    corpus, docs = prepared(path, "data.filters.mojibake=report")
    assert broken in docs and corpus.stats["filters"]["mojibake"]["fixed"] == 0
    assert corpus.stats["filters"]["mojibake"]["flagged"] == 1


PROSE = english_docs(1, words=60, seed=3)[0]
SHORT = "two words"
LONG_WORDS = "aHR0cHM6Ly9leGFtcGxlLmNvbS9hYmNkZWZn aGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk= ZXhhbXBsZS5jb20vYQ=="
FIGURES = "2019 | 12,345.67 | 8.9% | 1,000 | 2,000 | 3,000 | -4.5 | $ 6,789 | 10 % | 11.12"
REPEATED_LINES = "buy now and save\nbuy now and save\nbuy now and save\nlimited offer"
REPEATED_NGRAMS = " ".join(["click here to win a prize today"] * 8)  # 56 words, 84% in repeated 5-grams


@pytest.mark.parametrize(
    "setting, dropped",
    [
        ("data.filters.length=on", [SHORT, LONG_WORDS]),
        ("data.filters.char_share=on", [FIGURES]),
        ("data.filters.repetition=on", [REPEATED_LINES, REPEATED_NGRAMS]),
    ],
)
def test_length_char_share_and_repetition_drop_what_they_should(tmp_path, setting, dropped):
    docs = [PROSE, SHORT, LONG_WORDS, FIGURES, REPEATED_LINES, REPEATED_NGRAMS]
    corpus, kept = prepared(write(tmp_path, docs), setting)
    assert sorted(kept) == sorted(d for d in docs if d not in dropped)
    name = setting.split(".")[2].split("=")[0]
    assert corpus.stats["filters"][name] | {"seconds": 0, "share": 0} == {
        "mode": "on", "checked": 6, "flagged": len(dropped), "dropped": len(dropped), "kept": 6 - len(dropped),
        "seconds": 0, "share": 0,
    }  # fmt: skip


def test_report_mode_keeps_everything_and_counts_what_on_would_drop(tmp_path):
    docs = [PROSE, SHORT, LONG_WORDS, FIGURES, REPEATED_LINES, REPEATED_NGRAMS, *PERSIAN, edited(PROSE, [30])]
    path = write(tmp_path, docs)
    names = ("length", "char_share", "repetition", "language", "near_dup")
    report, kept = prepared(path, *(f"data.filters.{n}=report" for n in names), "data.filters.languages=[en]")
    assert sorted(kept) == sorted(docs)
    on, _ = prepared(path, *(f"data.filters.{n}=on" for n in names), "data.filters.languages=[en]")
    for name in names:
        assert report.stats["filters"][name]["dropped"] == 0 and report.stats["filters"][name]["kept"] == len(docs)
    # a chain of dropping filters sees fewer documents, so compare each filter on alone
    # language: the two Persian lines, and base64 and the table of figures, which are no language at all
    for name, flagged in {"length": 2, "char_share": 1, "repetition": 2, "language": 4, "near_dup": 1}.items():
        assert report.stats["filters"][name]["flagged"] == flagged, name
        extra = ["data.filters.languages=[en]"] if name == "language" else []
        alone, _ = prepared(path, f"data.filters.{name}=on", *extra)
        assert alone.stats["filters"][name]["dropped"] == flagged, name
    assert on.stats["train_docs"] == 1  # PROSE and nothing else passes all five


def test_filter_settings_key_the_preparation_cache(tmp_path, monkeypatch):
    path = write(tmp_path, english_docs(21))

    def cfg(*sets):
        return build_config({}, [f"data.corpus={path}", f"data.cache_dir={tmp_path / 'cache'}", *sets]).data

    keys = {
        prepare._source_key(cfg(*s))
        for s in [(), ("data.filters.near_dup=on",), ("data.filters.near_dup=report",), ("data.filters.min_words=5",)]
    }
    assert len(keys) == 4  # each setting its own entry
    assert prepare._source_key(cfg("data.filters.near_dup=on")) == prepare._source_key(cfg("data.filters.near_dup=on"))

    off = prepare_corpus(cfg())
    report = prepare_corpus(cfg("data.filters.near_dup=report"))  # same content as off (report drops nothing)
    assert report.digest == off.digest  # so the tokenizer and the shards are shared, each with its own counts
    assert off.stats["filters"]["near_dup"] == {"mode": "off"} and report.stats["filters"]["near_dup"]["checked"] == 21

    def refuse(*args):
        raise AssertionError("the corpus was cleaned again for settings it has seen")

    monkeypatch.setattr(prepare, "_clean_into", refuse)
    assert prepare_corpus(cfg("data.filters.near_dup=report")).stats == report.stats  # a warm cache, its own counts
    assert prepare_corpus(cfg()).stats == off.stats
    with pytest.raises(AssertionError, match="cleaned again"):
        prepare_corpus(cfg("data.filters.near_dup=on"))  # a new setting prepares afresh


@pytest.mark.parametrize(
    "setting, message",
    [
        ("data.filters.near_dup=maybe", "data.filters.near_dup must be one of off, on, report"),
        ("data.filters.language=on", "data.filters.language=on needs the languages to keep"),
        ("data.filters.near_dup_threshold=1.5", "near_dup_threshold must be strictly between 0 and 1"),
        ("data.filters.min_letter_share=-0.1", "min_letter_share must be a share in [0, 1]"),
        ("data.filters.languages=[EN]", "ISO 639-1 codes"),
        ("data.filters.nonsense=1", "unknown config key data.filters.nonsense"),
    ],
)
def test_bad_filter_settings_are_one_line_errors(setting, message):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("]", r"\]")):
        build_config({}, [setting])


def test_yaml_on_and_off_mean_the_modes():
    cfg = build_config({"data": {"filters": {"near_dup": True, "mojibake": False}}}).data.filters
    assert (cfg.near_dup, cfg.mojibake) == ("on", "off")


def test_an_unknown_language_is_named_with_the_known_ones(tmp_path):
    with pytest.raises(
        UserError,
        match=r"languages names xx, which the language detector \(py3langid\) does not know; use ISO 639-1 codes",
    ):
        prepared(write(tmp_path, english_docs(3)), "data.filters.language=on", "data.filters.languages=[xx]")


def test_a_corpus_the_filters_empty_says_which_filter_dropped_it(tmp_path):
    with pytest.raises(UserError, match="2 dropped by data.filters.language"):
        prepared(write(tmp_path, PERSIAN), "data.filters.language=on", "data.filters.languages=[en]")


def test_summary_json_records_each_filter_and_bad_values_exit_2(tmp_path, monkeypatch, capsys):
    docs = english_docs(80, words=40)
    # two near-duplicates (an end word changed: J = 35/37), two Persian lines
    docs += [edited(docs[0], [39]), edited(docs[1], [0]), *PERSIAN]
    path = write(tmp_path, docs)
    out = tmp_path / "run"
    sets = tiny_overrides(
        path,
        train__max_steps=2,
        data__filters__near_dup="on",
        data__filters__language="on",
        data__filters__languages="[en]",
    )
    code, _, err = masklab(
        monkeypatch, capsys, "pretrain", *[a for s in sets for a in ("--set", s)], "--out", out, "-q"
    )
    assert code == 0, err
    filters = json.loads((out / "summary.json").read_text(encoding="utf-8"))["corpus"]["filters"]
    assert filters["near_dup"]["dropped"] == 2 and filters["near_dup"]["kept"] == 80
    assert filters["language"]["dropped"] == 2 and filters["language"]["kept"] == 82
    assert filters["mojibake"]["mode"] == "on" and filters["length"]["mode"] == "report"
    code, _, err = masklab(monkeypatch, capsys, "pretrain", "--set", "data.filters.near_dup=maybe", "--out", out)
    assert code == 2 and err.count("\n") == 1 and "data.filters.near_dup must be one of off, on, report" in err

"""Masking strategies: statistical bounds on real (small) corpora, real taggers, no mocked models.

English data is a slice of builtin:sotu with a 1,000-token vocabulary (so words often have several
sub-tokens); Persian is builtin:fa-chat. Every rate and split is measured over >= 100k eligible tokens
(several passes of dynamic masking) and every share of selected tokens over >= 40k selected tokens, so
each one-percentage-point bound is more than 5 standard deviations wide.
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import tiny_overrides
from masklab.config import UPOS_TAGS, build_config
from masklab.data.pipeline import prepare_data
from masklab.data.shards import packed_blocks
from masklab.errors import UserError
from masklab.masking import MLMBatcher, masking_statistics
from masklab.masking.batches import TrainBatches, eval_batches
from masklab.masking.stats import measure_masking
from masklab.masking.strategies import mean_span_words

STRATEGIES = ["random", "whole_word", "span", "pos", "entity", "pmi"]
UNIT_STRATEGIES = STRATEGIES[1:]
GAZETTEER = ["united states", "house of representatives", "fellow-citizens", "public debt", "the senate"]


class Corpus:
    """A prepared corpus, its training blocks, and a way to mask them with any masking settings."""

    def __init__(self, corpus: str, cache, *sets: str, seq_length: int = 128):
        self.sets = [f"data.corpus={corpus}", f"data.cache_dir={cache}", f"data.seq_length={seq_length}", *sets]
        cfg = build_config({}, self.sets)
        self.data = prepare_data(cfg.data, cfg.tokenizer, show_progress=False)
        self.tokenizer = self.data.tokenizer
        self.blocks = packed_blocks(self.data.shards, "train", seq_length, self.tokenizer.cls_token_id)

    def batcher(self, *masking: str, seed: int = 0) -> MLMBatcher:
        # the masking section's own defaults (BERT's 15%), not the rate the mini preset's masked LM trains at
        cfg = build_config({}, [*self.sets, *masking], preset_training=False)
        batcher = MLMBatcher(cfg.masking, self.tokenizer, seed)
        batcher.attach(self.blocks, show_progress=False)
        return batcher

    def mask(self, batcher: MLMBatcher, min_tokens: int = 100_000, batch_size: int = 64) -> list:
        """Masked batches over as many passes as it takes to see `min_tokens` eligible tokens."""
        out, seen, epoch = [], 0, 0
        names = tuple(dict.fromkeys((*batcher.features, "words")))
        while seen < min_tokens:
            for start in range(0, len(self.blocks), batch_size):
                ids = np.arange(start, min(start + batch_size, len(self.blocks)))
                batch = batcher.mask(
                    self.blocks.gather(ids), ids, epoch, self.blocks.gather_features(ids, names), with_units=True
                )
                out.append(batch)
                seen += int(batch.eligible.sum())
            epoch += 1
        return out


@pytest.fixture(scope="session")
def sotu(tmp_path_factory):
    gazetteer = tmp_path_factory.mktemp("gaz") / "phrases.txt"
    gazetteer.write_text("\n".join(GAZETTEER) + "\n", encoding="utf-8")
    corpus = Corpus(
        "builtin:sotu", tmp_path_factory.mktemp("sotu-cache"), "data.max_documents=6", "tokenizer.vocab_size=1000"
    )
    corpus.gazetteer = gazetteer
    return corpus


@pytest.fixture(scope="session")
def persian(tmp_path_factory):
    return Corpus(
        "builtin:fa-chat", tmp_path_factory.mktemp("fa-cache"), "tokenizer.vocab_size=2000", "data.min_chars=5"
    )


def settings_for(strategy: str, corpus: Corpus) -> list[str]:
    extra = {"entity": [f"masking.entity={{gazetteer: {corpus.gazetteer}}}"], "pmi": ["masking.pmi={min_count: 5}"]}
    return [f"masking.strategy={strategy}", *extra.get(strategy, [])]


def word_ids(batch) -> torch.Tensor:
    """(B, T) index of the word each token belongs to (a block may start inside a word)."""
    starts = torch.from_numpy(batch.features["words"].astype(bool)) | ~batch.eligible
    starts[:, 1:] |= ~batch.eligible[:, :-1]
    starts[:, :2] = True
    return starts.long().cumsum(1)


# --------------------------------------------------------------------------------------- rates and split


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("rate", [0.15, 0.4])
def test_rate_and_replacement_split_within_one_percent(sotu, strategy, rate):
    batcher = sotu.batcher(*settings_for(strategy, sotu), f"masking.rate={rate}")
    batches = sotu.mask(batcher, min_tokens=int(40_000 / rate))
    original = torch.cat([b.original for b in batches])
    shown = torch.cat([b.input_ids for b in batches])
    labels = torch.cat([b.labels for b in batches])
    eligible = torch.cat([b.eligible for b in batches])
    sel = labels != -100
    assert eligible.sum() >= 100_000
    assert abs(sel.sum().item() / eligible.sum().item() - rate) < 0.01
    assert not (sel & ~eligible).any(), "a special or pad token was selected"
    assert torch.equal(labels[sel], original[sel]) and torch.equal(shown[~sel], original[~sel])
    hit = 1 / len(batcher.replacement_ids)  # a random replacement may draw the original token
    masked = (shown[sel] == sotu.tokenizer.mask_token_id).float().mean().item()
    randomised = ((shown[sel] != original[sel]) & (shown[sel] != sotu.tokenizer.mask_token_id)).float().mean().item()
    assert abs(masked - 0.8) < 0.01
    assert abs(randomised - 0.1 * (1 - hit)) < 0.01
    assert abs(1 - masked - randomised - (0.1 + 0.1 * hit)) < 0.01
    assert not torch.isin(shown[sel], batcher.special_ids[batcher.special_ids != sotu.tokenizer.mask_token_id]).any()
    stats = masking_statistics(batches, sotu.tokenizer.mask_token_id)
    assert stats["rate"] == pytest.approx(sel.sum().item() / eligible.sum().item())


@pytest.mark.parametrize("strategy", ["whole_word", "span", "pos", "pmi"])
def test_bernoulli_selection_rate(sotu, strategy):
    batches = sotu.mask(sotu.batcher(*settings_for(strategy, sotu), "masking.selection=bernoulli"))
    selected = sum(int((b.labels != -100).sum()) for b in batches)
    assert abs(selected / sum(int(b.eligible.sum()) for b in batches) - 0.15) < 0.01


# ------------------------------------------------------------------------------------------- units


@pytest.mark.parametrize("strategy", UNIT_STRATEGIES)
def test_units_never_split_a_word(sotu, strategy):
    for batch in sotu.mask(sotu.batcher(*settings_for(strategy, sotu)), min_tokens=30_000):
        sel = (batch.labels != -100).long()
        words = word_ids(batch)
        per_word = torch.zeros(words.shape[0], words.shape[1] + 1, dtype=torch.long)
        size = per_word.clone()
        per_word.scatter_add_(1, words, sel)
        size.scatter_add_(1, words, batch.eligible.long())
        partial = (per_word > 0) & (per_word < size)
        assert not partial.any(), f"{strategy} selected part of a word"
        # a masking unit is contiguous whole words: its first token starts a word
        first = batch.unit_first == torch.arange(sel.shape[1])
        inside = ~first & batch.eligible
        assert torch.equal(sel.bool() & inside, sel.bool().gather(1, batch.unit_first) & inside)


@pytest.mark.parametrize("model", ["wordpiece", "bpe", "unigram"])
@pytest.mark.parametrize("corpus", ["builtin:sotu", "builtin:fa-chat"])
def test_word_starts_follow_the_pretokenizer(tmp_path, model, corpus):
    """The word-start sidecar agrees with the tokenizer's own pre-tokenization, for every model and script."""
    docs = 2 if corpus == "builtin:sotu" else 400
    c = Corpus(
        corpus,
        tmp_path,
        f"data.max_documents={docs}",
        f"tokenizer.model={model}",
        "tokenizer.vocab_size=800",
        "data.min_chars=5",
        seq_length=64,
    )
    starts = np.asarray(c.data.shards.sidecar("train", "words"))
    pre = c.tokenizer.backend_tokenizer.pre_tokenizer
    normalizer = c.tokenizer.backend_tokenizer.normalizer
    for position, text, enc in list(c.data.shards.encoded_documents("train", c.tokenizer))[:10]:
        words = pre.pre_tokenize_str(normalizer.normalize_str(text))
        n_tokens = sum(len(c.tokenizer.backend_tokenizer.model.tokenize(w)) for w, _ in words)
        assert n_tokens == len(enc.ids)
        expected = np.concatenate(
            [np.eye(1, len(c.tokenizer.backend_tokenizer.model.tokenize(w)), dtype=np.uint8)[0] for w, _ in words]
            + [np.ones(1, dtype=np.uint8)]
        )
        assert np.array_equal(starts[position : position + len(expected)], expected)
    assert (starts == 0).mean() > 0.05  # multi-token words exist, so the check above means something


@pytest.mark.parametrize("p, max_words", [(0.2, 10), (0.4, 5)])
def test_span_lengths_follow_the_configured_distribution(sotu, p, max_words):
    batcher = sotu.batcher("masking.strategy=span", f"masking.span={{p: {p}, max_words: {max_words}}}")
    stats = masking_statistics(sotu.mask(batcher), sotu.tokenizer.mask_token_id)
    target = mean_span_words(p, max_words)
    assert mean_span_words(0.2, 10) == pytest.approx(3.797, abs=1e-3)  # SpanBERT's reported mean of 3.8 words
    assert abs(stats["mean_unit_words"] / target - 1) < 0.05
    lengths = []
    for batch in sotu.mask(batcher, min_tokens=20_000):
        sel = batch.labels != -100
        words = word_ids(batch)
        for row in range(sel.shape[0]):
            firsts = torch.unique(batch.unit_first[row][sel[row]])
            for f in firsts.tolist():
                members = (batch.unit_first[row] == f) & sel[row]
                lengths.append(len(torch.unique(words[row][members])))
    assert max(lengths) <= max_words and min(lengths) >= 1


def test_pos_weights_set_per_pos_rates_in_the_configured_ratio(sotu):
    weights = {"NOUN": 2.0, "VERB": 1.5, "ADJ": 1.0, "default": 0.5}
    batcher = sotu.batcher("masking.strategy=pos", f"masking.pos={{weights: {json.dumps(weights)}}}")
    chosen, total = Counter(), Counter()
    batches = sotu.mask(batcher, min_tokens=300_000)
    for batch in batches:
        sel = (batch.labels != -100).numpy()
        first = (batch.unit_first == torch.arange(sel.shape[1])).numpy() & batch.eligible.numpy()  # word starts
        pos = batch.features["pos"]
        for tag_id in np.unique(pos[first]):
            name = ("none",) + UPOS_TAGS
            group = name[tag_id] if name[tag_id] in weights else "default"
            total[group] += int((first & (pos == tag_id)).sum())
            chosen[group] += int((first & (pos == tag_id) & sel).sum())
    rate = {g: chosen[g] / total[g] for g in total}
    for group, weight in weights.items():
        assert total[group] > 2000
        assert abs((rate[group] / rate["ADJ"]) / (weight / weights["ADJ"]) - 1) < 0.10, rate
    stats = masking_statistics(batches, sotu.tokenizer.mask_token_id)
    assert abs(stats["rate"] - 0.15) < 0.01 and stats["share_by_pos"]["NOUN"] > stats["share_by_pos"]["DET"]


def test_pos_tags_come_from_the_real_tagger(sotu):
    sotu.batcher("masking.strategy=pos")
    pos = np.asarray(sotu.blocks.features["pos"][0])
    tokens = np.asarray(sotu.blocks.tokens)

    def by_token(word):
        return Counter(pos[tokens == sotu.tokenizer.convert_tokens_to_ids(word)].tolist()).most_common(1)[0][0]

    assert UPOS_TAGS[by_token("the") - 1] == "DET"
    assert UPOS_TAGS[by_token("and") - 1] == "CCONJ"
    assert UPOS_TAGS[by_token("of") - 1] == "ADP"
    assert UPOS_TAGS[by_token("is") - 1] == "AUX"
    assert UPOS_TAGS[by_token("we") - 1] == "PRON"
    assert pos[tokens == sotu.tokenizer.sep_token_id].max() == 0


def test_entity_units_are_entities_and_gazetteer_phrases_masked_first(sotu):
    batcher = sotu.batcher(*settings_for("entity", sotu))
    phrases = np.asarray(sotu.blocks.features["phrases"][0])
    tokens = np.asarray(sotu.blocks.tokens)
    units = np.split(np.arange(len(phrases)), np.flatnonzero(phrases != 2))[1:]
    texts = Counter(sotu.tokenizer.decode(tokens[u].tolist()) for u in units if phrases[u[0]] == 1)
    for phrase in ["house of representatives", "fellow - citizens", "public debt"]:  # gazetteer phrases became units
        assert texts[phrase] > 0, (phrase, texts.most_common(20))
    assert texts["the united states"] + texts["united states"] > 20  # spaCy's GPE entities
    in_phrase = sum(
        int(((b.labels != -100) & torch.from_numpy(b.features["phrases"] > 0)).sum()) for b in sotu.mask(batcher)
    )
    share_selected = in_phrase / sum(int((b.labels != -100).sum()) for b in sotu.mask(batcher))
    assert share_selected > 2 * (phrases > 0).mean()  # phrases take the budget first


def test_pmi_units_are_real_high_pmi_ngrams(tmp_path):
    """A corpus of random words with planted collocations: the PMI vocabulary holds the collocations,
    with the counts and PMI_n an independent count finds, and masked multi-word units are only those."""
    rng = np.random.default_rng(0)
    filler = [f"z{i}" for i in range(300)]
    planted = ["kilo lima", "quebec romeo sierra", "alpha bravo charlie delta"]
    docs = []
    for _ in range(400):
        words = list(rng.choice(filler, size=40))
        for phrase in planted:
            if rng.random() < 0.5:
                at = int(rng.integers(0, len(words)))
                words[at:at] = phrase.split()
        docs.append(" ".join(words) + ".")
    path = tmp_path / "planted.txt"
    path.write_text("\n\n".join(docs), encoding="utf-8")
    c = Corpus(str(path), tmp_path / "cache", "tokenizer.vocab_size=400", "data.val_fraction=0.02")
    batcher = c.batcher("masking.strategy=pmi", "masking.pmi={min_count: 10}")
    vocab = json.loads(next(c.data.shards.directory.glob("pmi-*.json")).read_text())
    texts = {g["text"]: g for g in vocab}
    assert {"kilo lima", "quebec romeo sierra", "alpha bravo charlie delta"} <= set(texts)
    # independent counts over the training documents' words
    words = [d.rstrip(".").split() for d in c.data.corpus.documents("train")]
    grams = {n: Counter(tuple(ws[i : i + n]) for ws in words for i in range(len(ws) - n + 1)) for n in range(1, 6)}
    total = {n: sum(grams[n].values()) for n in grams}

    def log_p(seq):
        return math.log(grams[len(seq)][tuple(seq)] / total[len(seq)])

    def pmi(seq):
        n, best = len(seq), math.inf
        for cuts in range(1, 1 << (n - 1)):
            bounds = [0] + [i + 1 for i in range(n - 1) if cuts >> i & 1] + [n]
            best = min(best, log_p(seq) - sum(log_p(seq[a:b]) for a, b in zip(bounds[:-1], bounds[1:])))
        return best

    for text, gram in texts.items():
        seq = text.split()
        assert gram["count"] == grams[len(seq)][tuple(seq)] >= 10
        assert gram["pmi"] == pytest.approx(pmi(seq), rel=1e-6) and gram["pmi"] > 0
    multi = Counter()
    for batch in c.mask(batcher, min_tokens=20_000):
        sel = batch.labels != -100
        for row in range(sel.shape[0]):
            for f in torch.unique(batch.unit_first[row][sel[row]]).tolist():
                members = torch.nonzero(batch.unit_first[row] == f).flatten()
                text = c.tokenizer.decode(batch.original[row][members].tolist())
                if " " in text:
                    at_edge = members[0] == 1 or members[-1] == sel.shape[1] - 1  # a block may cut a unit
                    assert text in planted or (at_edge and any(f" {text} " in f" {p} " for p in planted)), text
                    multi[text] += 1
    assert sum(multi[p] for p in planted) > 50


def test_each_strategy_reads_its_own_phrase_units(sotu):
    """Entity and PMI units share the feature name "phrases"; attaching one replaces the other."""
    sotu.batcher(*settings_for("entity", sotu))
    entity = np.asarray(sotu.blocks.features["phrases"][0]).copy()
    sotu.batcher(*settings_for("pmi", sotu))
    pmi = np.asarray(sotu.blocks.features["phrases"][0])
    assert (entity > 0).any() and (pmi > 0).any() and not np.array_equal(entity, pmi)


# --------------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_seeded_masks_are_reproducible_and_batch_independent(sotu, strategy):
    batcher = sotu.batcher(*settings_for(strategy, sotu), seed=3)
    ids = np.arange(16)
    a = batcher.from_blocks(sotu.blocks, ids, 1)
    again = sotu.batcher(*settings_for(strategy, sotu), seed=3).from_blocks(sotu.blocks, ids, 1)
    assert torch.equal(a["input_ids"], again["input_ids"]) and torch.equal(a["labels"], again["labels"])
    sub = batcher.from_blocks(sotu.blocks, ids[[9, 2]], 1)
    assert torch.equal(sub["input_ids"], a["input_ids"][[9, 2]])
    other = sotu.batcher(*settings_for(strategy, sotu), seed=4).from_blocks(sotu.blocks, ids, 1)
    assert not torch.equal(other["labels"], a["labels"])


def test_corrupt_per_unit_treats_a_word_as_one(sotu):
    batches = sotu.mask(sotu.batcher("masking.strategy=whole_word", "masking.corrupt_per=unit"), min_tokens=400_000)
    kinds = Counter()
    for batch in batches:
        sel = batch.labels != -100
        masked = batch.input_ids == sotu.tokenizer.mask_token_id
        same_as_first = masked == masked.gather(1, batch.unit_first)
        assert same_as_first[sel].all()
        first = sel & (batch.unit_first == torch.arange(sel.shape[1]))
        kinds["mask"] += int((first & masked).sum())
        kinds["units"] += int(first.sum())
    assert abs(kinds["mask"] / kinds["units"] - 0.8) < 0.01


# ---------------------------------------------------------------------------------- schedule, errors


@pytest.mark.parametrize(
    "schedule, progress, expected",
    [
        ("constant", 0.5, 0.15),
        ("linear", 0.0, 0.4),
        ("linear", 0.5, 0.275),
        ("linear", 1.0, 0.15),
        ("cosine", 0.5, 0.275),
        ("cosine", 0.25, 0.15 + 0.25 * (1 + math.cos(math.pi / 4)) / 2),
    ],
)
def test_rate_schedule(schedule, progress, expected):
    cfg = build_config({}, [f"masking.schedule={schedule}", "masking.rate_start=0.4"], preset_training=False).masking
    assert cfg.rate_at(progress) == pytest.approx(expected)


def test_train_batches_follow_the_rate_schedule(sotu):
    batcher = sotu.batcher("masking.strategy=whole_word", "masking.schedule=linear", "masking.rate_start=0.4")
    batches = TrainBatches(sotu.blocks, batcher, 64, seed=0, length=10, show_progress=False)
    rates = []
    for m in (0, 9):
        out = batches[m]
        eligible = batcher.eligible(out["labels"].where(out["labels"] != -100, out["input_ids"]))
        rates.append(((out["labels"] != -100).sum() / eligible.sum()).item())
    assert abs(rates[0] - 0.4) < 0.02 and abs(rates[1] - batcher.rate_at(0.9)) < 0.02


@pytest.mark.parametrize(
    "module, tagger, extra", [("spacy", "spacy-en", "masklab[pos]"), ("parsivar", "parsivar-fa", "masklab[fa]")]
)
def test_missing_tagger_package_names_the_extra(monkeypatch, module, tagger, extra):
    from masklab.data.tagging import build_tagger

    monkeypatch.setitem(sys.modules, module, None)  # as if the package were not installed
    with pytest.raises(UserError) as info:
        build_tagger(tagger)
    assert extra in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize(
    "overrides, needle",
    [
        (["masking.pos={weights: {NOUNS: 2}}"], "unknown tags NOUNS"),
        (["masking.span={p: 0}"], "masking.span.p"),
        (["masking.schedule=linear"], "masking.rate_start"),
        (["masking.strategy=entity", "masking.selection=bernoulli"], "selection=exact"),
        (["masking.strategy=pos", "masking.pos={tagger: treetagger}"], "unknown tagger"),
        (["masking.strategy=entity", "masking.entity={gazetteer: /no/such/file.txt, ner: ''}"], "does not exist"),
        (["masking.strategy=spam"], "choose one of"),
    ],
)
def test_bad_masking_settings_say_what_to_fix(overrides, needle):
    from masklab.masking import build_masker

    with pytest.raises(UserError) as info:
        build_masker(build_config({}, overrides).masking).sidecars()
    assert needle in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------------------------ end to end


def test_persian_masking_end_to_end(persian):
    for strategy, extra in [
        ("whole_word", []),
        ("span", []),
        ("pos", ["masking.pos={tagger: parsivar-fa}"]),
        ("pmi", ["masking.pmi={min_count: 5}"]),
    ]:
        batcher = persian.batcher(f"masking.strategy={strategy}", *extra)
        batches = persian.mask(batcher, min_tokens=270_000)
        stats = masking_statistics(batches, persian.tokenizer.mask_token_id)
        assert abs(stats["rate"] - 0.15) < 0.01 and abs(stats["mask_share"] - 0.8) < 0.01, (strategy, stats)
        for batch in batches[:20]:
            sel = (batch.labels != -100).long()
            words = word_ids(batch)
            per_word = torch.zeros(words.shape[0], words.shape[1] + 1, dtype=torch.long).scatter_add_(1, words, sel)
            size = torch.zeros_like(per_word).scatter_add_(1, words, batch.eligible.long())
            assert not ((per_word > 0) & (per_word < size)).any()
    tags = np.asarray(persian.blocks.features["pos"][0])
    assert (tags == UPOS_TAGS.index("NOUN") + 1).mean() > 0.2  # parsivar tags Persian nouns


@pytest.mark.parametrize(
    "corpus, strategy, extra",
    [
        ("builtin:fa-chat", "whole_word", {"masking__corrupt_per": "unit"}),
        ("sotu-slice", "pos", {"data__max_documents": 3, "masking__schedule": "linear", "masking__rate_start": 0.3}),
    ],
)
def test_pretrain_with_a_strategy(tmp_path, corpus, strategy, extra):
    from masklab.pretrain.run import pretrain

    spec = "builtin:sotu" if corpus == "sotu-slice" else corpus
    cfg = build_config(
        {},
        tiny_overrides(
            spec, masking__strategy=strategy, train__max_steps=6, train__eval_every=0, train__save_every=0, **extra
        ),
    )
    summary = pretrain(cfg, tmp_path / "run", show_progress=False)
    assert math.isfinite(summary["final_train_loss"]) and summary["masked_accuracy"] >= 0


def test_measure_masking_reports_units_and_pos(sotu):
    stats = measure_masking(sotu.batcher("masking.strategy=span"), sotu.blocks, max_blocks=128)
    assert abs(stats["rate"] - 0.15) < 0.02 and stats["mean_unit_words"] > 2
    assert set(stats) >= {"rate", "mask_share", "random_share", "kept_share", "mean_unit_tokens"}


def test_mask_preview_cli(tmp_path, capsys, monkeypatch, sotu):
    from masklab import cli

    html = tmp_path / "preview.html"
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "masklab",
            "mask-preview",
            "--n",
            "2",
            "--html",
            str(html),
            *(x for s in [*sotu.sets, "masking.strategy=span"] for x in ("--set", s)),
        ],
    )
    with pytest.raises(SystemExit) as info:
        cli.main()
    out = capsys.readouterr().out
    assert info.value.code == 0 and "[MASK]" in out and "mean_unit_words" in out and "predicted" in out
    page = html.read_text(encoding="utf-8")
    assert page.count('class="mask"') > 5 and "<table>" in page


# --------------------------------------------------------------------------------------- evaluation masks


def test_eval_passes_reach_min_masked_tokens_and_keep_the_first_pass(sotu):
    """eval.min_masked_tokens adds passes with new fixed masks; the first pass is the one-pass evaluation."""
    one = build_config({}, [*sotu.sets, "eval.max_blocks=8", "eval.batch_size=4"])
    many = build_config({}, [*sotu.sets, "eval.max_blocks=8", "eval.batch_size=4", "eval.min_masked_tokens=1000"])
    single = list(eval_batches(sotu.blocks, MLMBatcher(one.masking, sotu.tokenizer, 1234), one.eval))
    passes = list(eval_batches(sotu.blocks, MLMBatcher(many.masking, sotu.tokenizer, 1234), many.eval))
    masked = sum(int((b["labels"] != -100).sum()) for b in passes)
    per_pass = sum(int((b["labels"] != -100).sum()) for b in single)
    assert len(passes) > len(single) and len(passes) % len(single) == 0
    assert masked >= 1000 > per_pass and masked - per_pass < 1000  # just enough passes: one does not reach it
    for a, b in zip(single, passes[: len(single)]):
        assert torch.equal(a["labels"], b["labels"])
    # later passes are new masks over the same blocks, still fixed by the seed
    assert not torch.equal(passes[0]["labels"], passes[len(single)]["labels"])
    again = list(eval_batches(sotu.blocks, MLMBatcher(many.masking, sotu.tokenizer, 1234), many.eval))
    assert all(torch.equal(a["labels"], b["labels"]) for a, b in zip(passes, again))

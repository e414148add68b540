"""Minimal pairs from the user's own text (`--pairs from:CORPUS`): held-out sentences against their
own word order scrambled.

    reversal       the nation is strong today.  /  *today strong is nation the.
    adjacent_swap  the nation is strong today.  /  *the is nation strong today.

Both members of a pair hold the same words (whitespace-separated, punctuation attached to its word;
the sentence's closing punctuation stays at the end), so only word order tells them apart. This needs
no hand-built pair file, so it works in any language the corpus is written in (Persian too: '؟' ends
a sentence, '،' is a comma inside one, and the zero-width non-joiner stays inside its word because a
word is whatever lies between spaces).

The sentences come from held-out documents only. A run trained on CORPUS gets its own validation
documents: the corpus is prepared again with the run's data settings (`data.val_fraction`,
`data.split_seed`, cleaning), and that preparation's seeded hash split is the one the run trained
with. Another corpus is split the same way. Sentences are drawn by a seeded permutation, so the same
run, corpus and seed give the same pairs.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from masklab.config import DataConfig
from masklab.data.prepare import prepare_corpus
from masklab.errors import UserError
from masklab.evaluate.pairs.pair import MinimalPair

FROM = "from:"
PHENOMENA = ("reversal", "adjacent_swap")
# a 3-word reversal only swaps the ends, and shorter sentences are mostly headings and fragments
MIN_WORDS = 4
# PLL costs one forward pass per token: a longer sentence makes the pairs slower without telling more
MAX_WORDS = 40
# pairs per phenomenon: enough for a CI of about +-0.04 on an accuracy, and seconds on a CPU for tiny models
PER_PHENOMENON = 500
# room beside the sentence's tokens for [CLS], [SEP] and a seq2seq sentinel
SPECIAL_TOKENS = 3

TERMINATORS = ".!?؟۔…"  # '؟' is the Arabic-script question mark; '،' and '؛' are a comma and semicolon
CLOSERS = "\"'”’»)]"  # a quote or bracket closing right after the full stop belongs to the sentence it ends
_BOUNDARY = re.compile(rf"[{re.escape(TERMINATORS)}]+[{re.escape(CLOSERS)}]*(?=\s)")
_CLOSING = re.compile(rf"[{re.escape(TERMINATORS)}]+[{re.escape(CLOSERS)}]*$")
# a full stop that ends an abbreviation or initials (Mr., U.S., e.g.) rather than the sentence
_ABBREVIATION = re.compile(
    r"^[\"'(“‘]*(?:(?:[A-Za-z]\.)+|(?:Mr|Mrs|Ms|Dr|Jr|Sr|Gen|Gov|Sen|Rep|Hon|Col|Capt|Lt|Mt)\.)$"
)


@dataclass(frozen=True)
class CorpusPairs:
    pairs: list[MinimalPair]
    origin: dict  # where the sentences came from: reported beside the accuracy


def split_sentences(text: str) -> list[str]:
    """A document's sentences: every line is cut after a run of terminators followed by a space."""
    sentences = []
    for line in text.split("\n"):
        start = 0
        for end in _BOUNDARY.finditer(line):
            if _abbreviation(line[start : end.end()]):
                continue
            sentences.append(line[start : end.end()].strip())
            start = end.end()
        sentences.append(line[start:].strip())
    return [s for s in sentences if s]


def _abbreviation(sentence: str) -> bool:
    """Whether the full stop ending `sentence` ends an abbreviation inside it. A lowercase next word is no
    sign of one: lowercased and chat corpora start their sentences in lowercase."""
    return bool(_ABBREVIATION.match(sentence.split()[-1]))


def words_and_end(sentence: str) -> tuple[list[str], str]:
    """The sentence's words, and the closing punctuation that stays at the end when they are reordered."""
    words = sentence.split()
    closing = _CLOSING.search(words[-1])
    if closing is None:
        return words, ""
    if closing.start() == 0:  # punctuation written apart ("چرا ؟"): keep its space
        return words[:-1], " " + words[-1]
    return [*words[:-1], words[-1][: closing.start()]], closing.group()


def reversal(words: Sequence[str], end: str) -> str:
    return " ".join(reversed(words)) + end


def adjacent_swap(words: Sequence[str], end: str, position: int) -> str:
    """Words `position` and `position + 1` exchanged."""
    swapped = list(words)
    swapped[position], swapped[position + 1] = swapped[position + 1], swapped[position]
    return " ".join(swapped) + end


def usable(words: Sequence[str]) -> bool:
    """Long enough to scramble, short enough to score quickly, and prose rather than a row of figures."""
    lettered = sum(any(c.isalpha() for c in w) for w in words)
    return MIN_WORDS <= len(words) <= MAX_WORDS and lettered >= MIN_WORDS


def sentence_pairs(
    sentences: Sequence[str],
    seed: int = 0,
    per_phenomenon: int = PER_PHENOMENON,
    fits: Callable[[list[str]], list[bool]] | None = None,
) -> list[MinimalPair]:
    """A reversal pair and an adjacent-swap pair for up to `per_phenomenon` usable sentences.

    One `random.Random(seed)` draws the order the sentences are tried in and each one's swap position,
    so a larger cap keeps the smaller cap's pairs. `fits` says which texts the model can take whole.
    """
    candidates = list(dict.fromkeys(s for s in sentences if usable(words_and_end(s)[0])))  # once each, in order
    rng = random.Random(seed)
    order = rng.sample(range(len(candidates)), len(candidates))
    kept: list[tuple[int, str, str]] = []  # (index in candidates, reversal, swap)
    for start in range(0, len(order), 4 * per_phenomenon):  # tokenise in chunks: most corpora need only one
        chunk = []
        for index in order[start : start + 4 * per_phenomenon]:
            words, end = words_and_end(candidates[index])
            # two equal neighbours would swap into the same sentence
            positions = [i for i in range(len(words) - 1) if words[i] != words[i + 1]]
            position = rng.choice(positions) if positions else None
            backwards = reversal(words, end)
            if position is not None and backwards != candidates[index]:  # a palindrome would tie
                chunk.append((index, backwards, adjacent_swap(words, end, position)))
        if fits is not None:
            ok = fits([text for index, *bad in chunk for text in (candidates[index], *bad)])
            chunk = [item for n, item in enumerate(chunk) if all(ok[3 * n : 3 * n + 3])]
        kept += chunk[: per_phenomenon - len(kept)]
        if len(kept) == per_phenomenon:
            break
    kept.sort()  # document order, as the other suites list their pairs
    return [MinimalPair(candidates[item[0]], item[at], name) for name, at in zip(PHENOMENA, (1, 2)) for item in kept]


def same_corpus(a: str, b: str) -> bool:
    """Two specs naming one corpus: the same string, or paths to the same file or directory."""
    if a == b:
        return True
    if a.startswith(("builtin:", "hf:")) or b.startswith(("builtin:", "hf:")):
        return False
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def heldout_settings(corpus: str, run_data: DataConfig | None) -> tuple[DataConfig, str]:
    """The data settings whose validation split holds CORPUS's held-out documents, and that split in words."""
    if run_data is None:
        data = DataConfig(corpus=corpus)
        return data, f"masklab's default split (val_fraction={data.val_fraction}; not a masklab run)"
    split = f"data.val_fraction={run_data.val_fraction}, data.split_seed={run_data.split_seed}"
    if same_corpus(corpus, run_data.corpus):
        if run_data.val_fraction == 0:
            raise UserError(
                f"the run trained on all of {corpus} (data.val_fraction=0), so it has no held-out sentences; "
                "use --pairs from:ANOTHER_CORPUS"
            )
        return dataclasses.replace(run_data, corpus=corpus), f"the run's own validation split ({split})"
    # the run never split this corpus: its held-out share is the default wherever the run held out none
    fraction = run_data.val_fraction or DataConfig.val_fraction
    data = dataclasses.replace(run_data, corpus=corpus, val_fraction=fraction)
    return data, f"its validation split under the run's split settings (data.val_fraction={fraction}, " + (
        f"data.split_seed={run_data.split_seed})"
    )


def corpus_pairs(
    corpus: str,
    run_data: DataConfig | None = None,
    count_tokens: Callable[[list[str]], Sequence[int]] | None = None,
    seed: int = 0,
    per_phenomenon: int = PER_PHENOMENON,
) -> CorpusPairs:
    """Reversal and adjacent-swap pairs from the held-out documents of `corpus` (see the module docstring).

    `run_data` is the run's own data config (None for a checkpoint that is not a masklab run);
    `count_tokens` counts a text's tokens without specials, to skip sentences longer than the run's
    training blocks."""
    if not corpus.strip():
        raise UserError("--pairs from: needs a corpus after the colon, e.g. from:builtin:sotu or from:PATH")
    data, split = heldout_settings(corpus, run_data)
    documents = list(prepare_corpus(data).documents("val"))
    sentences = [s for doc in documents for s in split_sentences(doc)]
    limit = data.seq_length - SPECIAL_TOKENS
    fits = None if count_tokens is None else (lambda texts: [n <= limit for n in count_tokens(texts)])
    pairs = sentence_pairs(sentences, seed, per_phenomenon, fits)
    if not pairs:
        raise UserError(
            f"the {len(documents)} held-out documents of {corpus} hold no sentence of {MIN_WORDS}-{MAX_WORDS} words "
            f"within {limit} tokens ({len(sentences)} sentences in all); pass a corpus of longer prose"
        )
    origin = {
        "pairs_source": f"held-out documents of {corpus}: {split}",
        "pairs_heldout_documents": len(documents),
        "pairs_sentences": len(pairs) // len(PHENOMENA),
        "pairs_seed": seed,
    }
    return CorpusPairs(pairs, origin)

"""Training (or loading) the tokenizer, with the `tokenizers` library.

The result is a directory `transformers.AutoTokenizer.from_pretrained` loads, with BERT's special
tokens, plus what the other objectives need without touching the masked-LM vocabulary: [CLS] and [SEP]
double as BOS and EOS (packed blocks already start with [CLS] and end each document with [SEP]), and
100 T5 sentinels `<extra_id_N>` for span corruption are appended as special tokens after the learned
vocabulary (special tokens are never masked, replaced into or predicted by the masked LM), so one
tokenizer serves every objective's runs of a comparison. WordPiece is BERT's choice; BPE (byte-level,
GPT-2/RoBERTa style) and Unigram (SentencePiece style) are there for comparison. Accents are never
stripped: for Persian, Arabic and many other scripts the "accents" are letters.
"""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import AutoTokenizer, PreTrainedTokenizerFast

from masklab.config import TokenizerConfig
from masklab.data.trainers import count_words, learn_merges, learn_unigram
from masklab.errors import UserError
from masklab.fsutil import publish, staged_directory
from masklab.objective_records import RECORDS

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SENTINELS = [f"<extra_id_{i}>" for i in range(100)]  # T5's names and count: enough spans for 512-token blocks at 15%
TOKENIZER_VERSION = 3  # bump when the recipe below changes, so cached tokenizers are rebuilt
# (2: sentinels, BOS/EOS; 3: deterministic trainers, the same vocabulary in every process)

# a needed token (an objective record's `needs`) -> (what it is, test on the tokenizer), for tokenizers
# that come from elsewhere
TOKEN_CHECKS = {
    "mask": ("mask token", lambda t: t.mask_token_id is not None),
    "bos_eos": ("BOS and EOS tokens ([CLS]/[SEP] or bos/eos)", lambda t: block_ids(t) is not None),
    "sentinels": ("sentinel tokens <extra_id_0>, <extra_id_1>, ...", lambda t: len(sentinel_ids(t)) > 0),
}


def _pipeline(cfg: TokenizerConfig):
    """(normalizer, pre-tokenizer, decoder) for the configured tokenizer type."""

    steps = [normalizers.NFC()] + ([normalizers.Lowercase()] if cfg.lowercase else [])
    normalizer = normalizers.Sequence(steps)
    if cfg.model == "wordpiece":
        return normalizer, pre_tokenizers.BertPreTokenizer(), decoders.WordPiece(prefix="##")
    if cfg.model == "bpe":
        return normalizer, pre_tokenizers.ByteLevel(add_prefix_space=True), decoders.ByteLevel()
    return (
        normalizer,
        pre_tokenizers.Sequence([pre_tokenizers.Punctuation(), pre_tokenizers.Metaspace()]),
        decoders.Metaspace(),
    )


def _learn_model(cfg: TokenizerConfig, counts):
    """The trained `tokenizers` model, learned by the deterministic trainers in `data/trainers.py`."""

    if cfg.model == "wordpiece":
        vocab, _ = learn_merges(counts, cfg.vocab_size, SPECIAL_TOKENS, cfg.min_frequency, prefix="##")
        return models.WordPiece(
            {t: i for i, t in enumerate(vocab)},
            unk_token="[UNK]",
            continuing_subword_prefix="##",
            max_input_chars_per_word=100,
        )
    if cfg.model == "bpe":
        vocab, merges = learn_merges(
            counts, cfg.vocab_size, SPECIAL_TOKENS, cfg.min_frequency, alphabet=pre_tokenizers.ByteLevel.alphabet()
        )
        return models.BPE({t: i for i, t in enumerate(vocab)}, merges, unk_token="[UNK]")
    n_chars = len({c for word in counts for c in word})
    try:  # SentencePiece counts its own unknown piece, which [UNK] replaces
        pieces = learn_unigram(counts, max(cfg.vocab_size - len(SPECIAL_TOKENS) + 1, n_chars + 2))
    except RuntimeError as exc:
        raise UserError(
            f"unigram training failed on this corpus ({str(exc).splitlines()[-1][:200]}); "
            "use more text or tokenizer.model=wordpiece"
        ) from None
    return models.Unigram(
        [(t, 0.0) for t in SPECIAL_TOKENS] + pieces, unk_id=SPECIAL_TOKENS.index("[UNK]"), byte_fallback=False
    )


def train_tokenizer(lines: Iterable[str], cfg: TokenizerConfig, out_dir: Path, model_max_length: int = 512):
    """Train on an iterator of text lines and save to `out_dir` (atomically); return the HF tokenizer.

    The same text and settings give a byte-identical tokenizer.json in any process, on any machine,
    with any thread count (see `data/trainers.py` for the order every step follows)."""

    normalizer, pre_tokenizer, decoder = _pipeline(cfg)
    counts = count_words(lines, normalizer, pre_tokenizer)
    if not counts:
        raise UserError("the tokenizer learned no vocabulary: the corpus has too little text; use a larger corpus")
    tok = Tokenizer(_learn_model(cfg, counts))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoder
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    if tok.get_vocab_size() <= len(SPECIAL_TOKENS):
        raise UserError("the tokenizer learned no vocabulary: the corpus has too little text; use a larger corpus")
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        bos_token="[CLS]",
        eos_token="[SEP]",
        additional_special_tokens=SENTINELS,
        model_max_length=model_max_length,
    )
    with staged_directory(out_dir.parent, ".tok-") as tmp:
        hf.save_pretrained(tmp)
        publish(tmp, out_dir)
    return load_tokenizer(out_dir)


def load_tokenizer(path: str | Path, objective: str = "mlm"):
    """Load a Hugging Face tokenizer directory and check it has what `objective` needs."""

    path = Path(path).expanduser()
    if (path / "checkpoint").is_dir():  # a masklab run directory
        path = path / "checkpoint"
    if not path.is_dir() or not ((path / "tokenizer.json").exists() or (path / "tokenizer_config.json").exists()):
        raise UserError(
            f"{path} is not a tokenizer directory (no tokenizer.json / tokenizer_config.json); "
            "train one with `masklab tokenizer train` or pass a save_pretrained directory"
        )
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # transformers raises many types for a broken directory
        raise UserError(
            f"could not load the tokenizer in {path} ({type(exc).__name__}); is it a save_pretrained directory?"
        ) from None
    check_tokenizer(tok, objective, path)
    return tok


def block_ids(tokenizer) -> tuple[int, int] | None:
    """(start, end) ids packed blocks use: [CLS]/[SEP], or a decoder tokenizer's BOS/EOS."""
    start = tokenizer.cls_token_id if tokenizer.cls_token_id is not None else tokenizer.bos_token_id
    end = tokenizer.sep_token_id if tokenizer.sep_token_id is not None else tokenizer.eos_token_id
    return None if start is None or end is None else (start, end)


def sentinel_ids(tokenizer) -> list[int]:
    """Ids of <extra_id_0>, <extra_id_1>, ... in order, as far as the tokenizer has them."""
    vocab = tokenizer.get_vocab()
    ids = []
    while f"<extra_id_{len(ids)}>" in vocab:
        ids.append(vocab[f"<extra_id_{len(ids)}>"])
    return ids


def check_tokenizer(tokenizer, objective: str, where="the tokenizer") -> None:
    """One clear error naming what a tokenizer lacks for an objective, and how to get it."""
    needs = RECORDS[objective].needs if objective in RECORDS else ()  # classification needs nothing special
    for what, ok in (TOKEN_CHECKS[n] for n in needs):
        if not ok(tokenizer):
            raise UserError(
                f"tokenizer {where} has no {what}, which train.objective={objective} needs; add it "
                "(tokenizer.add_special_tokens(...) and save_pretrained) or let masklab train a tokenizer "
                "(leave tokenizer.path empty)"
            )


def causal_tokenizer(tokenizer):
    """A copy that adds only BOS ([CLS]) when encoding: what a text-generation pipeline should feed a
    causal LM (with BERT's template every prompt would end in [SEP], the end of a document). The
    vocabulary, and so every id, stays the same."""

    start, end = block_ids(tokenizer)
    out = copy.deepcopy(tokenizer)
    names = tokenizer.convert_ids_to_tokens([start, end])
    out.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{names[0]} $A", pair=f"{names[0]} $A {names[1]} $B:1", special_tokens=list(zip(names, (start, end)))
    )
    return out


def tokenizer_digest(tokenizer) -> str:
    """Content hash of a tokenizer (its tokenizer.json without the post-processor: shards are encoded
    without special tokens, so a causal checkpoint's BOS-only template reuses the same shards)."""
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec.pop("post_processor", None)
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode("utf-8")).hexdigest()[:20]


def config_digest(cfg: TokenizerConfig, corpus_digest: str) -> str:
    payload = json.dumps(
        {
            "v": TOKENIZER_VERSION,
            "corpus": corpus_digest,
            "model": cfg.model,
            "vocab": cfg.vocab_size,
            "lower": cfg.lowercase,
            "min_freq": cfg.min_frequency,
        },
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]

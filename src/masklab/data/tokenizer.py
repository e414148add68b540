"""Training (or loading) the tokenizer, with the `tokenizers` library.

The result is a directory `transformers.AutoTokenizer.from_pretrained` loads, with BERT's special
tokens. WordPiece is BERT's choice; BPE (byte-level, GPT-2/RoBERTa style) and Unigram (SentencePiece
style) are there for comparison. Accents are never stripped: for Persian, Arabic and many other
scripts the "accents" are letters.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable

from masklab.config import TokenizerConfig
from masklab.errors import UserError
from masklab.fsutil import publish, staged_directory

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
TOKENIZER_VERSION = 1  # bump when the recipe below changes, so cached tokenizers are rebuilt


def _components(cfg: TokenizerConfig):
    """(model, trainer, pre-tokenizer, decoder) for the configured tokenizer type."""
    from tokenizers import decoders, models, pre_tokenizers, trainers

    if cfg.model == "wordpiece":
        return (
            models.WordPiece(unk_token="[UNK]", continuing_subword_prefix="##"),
            trainers.WordPieceTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency,
                                      special_tokens=SPECIAL_TOKENS, continuing_subword_prefix="##", show_progress=False),
            pre_tokenizers.BertPreTokenizer(),
            decoders.WordPiece(prefix="##"),
        )
    if cfg.model == "bpe":
        return (
            models.BPE(unk_token="[UNK]"),
            trainers.BpeTrainer(vocab_size=cfg.vocab_size, min_frequency=cfg.min_frequency, special_tokens=SPECIAL_TOKENS,
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False),
            pre_tokenizers.ByteLevel(add_prefix_space=True),
            decoders.ByteLevel(),
        )
    return (
        models.Unigram(),
        trainers.UnigramTrainer(vocab_size=cfg.vocab_size, special_tokens=SPECIAL_TOKENS, unk_token="[UNK]", show_progress=False),
        pre_tokenizers.Sequence([pre_tokenizers.Punctuation(), pre_tokenizers.Metaspace()]),
        decoders.Metaspace(),
    )


def train_tokenizer(lines: Iterable[str], cfg: TokenizerConfig, out_dir: Path, model_max_length: int = 512):
    """Train on an iterator of text lines and save to `out_dir` (atomically); return the HF tokenizer."""
    from tokenizers import Tokenizer, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    model, trainer, pre_tokenizer, decoder = _components(cfg)
    tok = Tokenizer(model)
    steps = [normalizers.NFC()]
    if cfg.lowercase:
        steps.append(normalizers.Lowercase())
    tok.normalizer = normalizers.Sequence(steps)
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoder
    tok.train_from_iterator(lines, trainer=trainer)
    if tok.get_vocab_size() <= len(SPECIAL_TOKENS):
        raise UserError("the tokenizer learned no vocabulary: the corpus has too little text; use a larger corpus")
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)]
    )
    hf = PreTrainedTokenizerFast(
        tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]",
        mask_token="[MASK]", model_max_length=model_max_length,
    )
    with staged_directory(out_dir.parent, ".tok-") as tmp:
        hf.save_pretrained(tmp)
        publish(tmp, out_dir)
    return load_tokenizer(out_dir)


def load_tokenizer(path: str | Path):
    """Load a Hugging Face tokenizer directory and check it can do masked language modelling."""
    from transformers import AutoTokenizer

    path = Path(path).expanduser()
    if (path / "checkpoint").is_dir():  # a masklab run directory
        path = path / "checkpoint"
    if not path.is_dir() or not ((path / "tokenizer.json").exists() or (path / "tokenizer_config.json").exists()):
        raise UserError(f"{path} is not a tokenizer directory (no tokenizer.json / tokenizer_config.json); "
                        "train one with `masklab tokenizer train` or pass a save_pretrained directory")
    try:
        tok = AutoTokenizer.from_pretrained(str(path))
    except Exception as exc:  # transformers raises many types for a broken directory
        raise UserError(f"could not load the tokenizer in {path} ({type(exc).__name__}); is it a save_pretrained directory?") from None
    if tok.mask_token is None or tok.mask_token_id is None:
        raise UserError(f"tokenizer {path} has no mask token; MLM needs one: add it (tokenizer.add_special_tokens({{'mask_token': '[MASK]'}})) or train one with masklab")
    return tok


def tokenizer_digest(tokenizer) -> str:
    """Content hash of a tokenizer (its full tokenizer.json), for caching shards."""
    return hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode("utf-8")).hexdigest()[:20]


def config_digest(cfg: TokenizerConfig, corpus_digest: str) -> str:
    payload = json.dumps({"v": TOKENIZER_VERSION, "corpus": corpus_digest, "model": cfg.model, "vocab": cfg.vocab_size,
                          "lower": cfg.lowercase, "min_freq": cfg.min_frequency}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]

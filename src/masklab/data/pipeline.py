"""Corpus spec -> cleaned corpus -> tokenizer -> token shards: each step cached by content."""

from __future__ import annotations

from dataclasses import dataclass

from masklab.config import DataConfig, TokenizerConfig
from masklab.data.prepare import PreparedCorpus, cache_root, prepare_corpus, training_lines
from masklab.data.shards import Shards, build_shards
from masklab.data.tokenizer import config_digest, load_tokenizer, tokenizer_digest, train_tokenizer


@dataclass
class PreparedData:
    corpus: PreparedCorpus
    tokenizer: object  # transformers PreTrainedTokenizerFast
    shards: Shards


def get_tokenizer(
    tok_cfg: TokenizerConfig,
    corpus: PreparedCorpus,
    data_cfg: DataConfig,
    override_path: str = "",
    objective: str = "mlm",
):
    """The configured tokenizer directory, else one trained on the corpus (cached per corpus + settings)."""
    path = override_path or tok_cfg.path
    if path:
        return load_tokenizer(path, objective)
    cached = cache_root(data_cfg) / "tokenizers" / config_digest(tok_cfg, corpus.digest)
    if (cached / "tokenizer.json").exists():
        return load_tokenizer(cached, objective)
    return train_tokenizer(training_lines(corpus), tok_cfg, cached)


def prepare_data(
    data_cfg: DataConfig,
    tok_cfg: TokenizerConfig,
    tokenizer_path: str = "",
    show_progress: bool = True,
    objective: str = "mlm",
) -> PreparedData:
    corpus = prepare_corpus(data_cfg)
    tokenizer = get_tokenizer(tok_cfg, corpus, data_cfg, tokenizer_path, objective)
    shards = build_shards(corpus, tokenizer, tokenizer_digest(tokenizer), cache_root(data_cfg), show_progress)
    return PreparedData(corpus, tokenizer, shards)

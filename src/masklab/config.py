"""Typed run configuration: one dataclass per section, a YAML loader and dotted `--set` overrides.

A run is fully described by a `RunConfig`; the resolved config is written into the run directory so a
run can be repeated from that file alone. Derived values (steps from a token budget, the precision
"auto" resolves to) are computed where they are used and logged, never written back here.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from masklab.errors import UserError
from masklab.objective_records import RECORDS, record

FilterMode = Literal["off", "on", "report"]  # report = count what the filter would drop or fix, keep the text


@dataclass
class FilterConfig:
    """Cleaning filters (masklab.data.filters), per document: mojibake before normalisation, the others after exact
    dedup in this order."""

    # ftfy repairs text decoded with the wrong codec ("Ã©" -> "é", "â€™" -> "'") and nothing else; on, because a
    # mis-decoded word is a second spelling to learn; it changes no document of builtin:sotu or fa-chat, and one
    # review of builtin:rt (a cp1252 ellipsis read as a control character)
    mojibake: FilterMode = "on"
    # length, char_share and repetition report by default: no text changes (no figure moves, and a corpus of chat
    # lines or code is not silently cut) while summary.json says what each would drop; on builtin:sotu (10.8 MB)
    # the three and mojibake add 2.6 s to the 1.1 s preparation (2-core AMD EPYC under load), once per cache
    length: FilterMode = "report"
    # a document of 1-2 words gives a masked word no context to be predicted from; 3 keeps short chat lines
    min_words: int = 3
    # natural languages average 4-7 letters a word; above 12 a "document" is mostly URLs, hashes or base64
    max_mean_word_chars: float = 12.0
    char_share: FilterMode = "report"
    # letters among letters, digits, symbols and punctuation: builtin:sotu's speeches are all above 0.86, tables of
    # figures near 0; 0.6 keeps an expressive chat line ("چرا؟؟؟ مگه چی شده؟!!" is 0.65) and drops most code
    min_letter_share: float = 0.6
    repetition: FilterMode = "report"
    # Gopher's rules (Rae et al. 2021, Table A1): text in lines repeated within the document, and text in
    # repeated word 5-grams; boilerplate and spam repeat, prose stays well below both
    max_dup_line_share: float = 0.2
    max_dup_ngram_share: float = 0.15
    # off by default: which languages a corpus should hold is the user's choice, and a mixed corpus would lose text
    language: FilterMode = "off"
    languages: list[str] = field(default_factory=list)  # ISO 639-1 codes to keep, e.g. [en] or [fa, en]
    # MinHash LSH over word 5-gram shingles: on for scraped text (Lee et al. 2022: less memorisation, no near-copies
    # of train documents in val). Off by default: its index holds ~4.3 KB per kept document (measured, 12-word
    # documents), so memory grows with the corpus where preparation otherwise streams in flat memory (4 GB per
    # million documents), and it finds no near-duplicate in builtin:sotu, fa-chat or rt (2 of 1,257 in en-chat)
    near_dup: FilterMode = "off"
    # Jaccard similarity of word 5-gram shingle sets above which a later document repeats an earlier one; 0.8 is
    # Lee et al. 2022's NearDup threshold (arXiv 2107.06499): edited copies score above it, documents on one
    # topic well below
    near_dup_threshold: float = 0.8
    near_dup_shingle: int = 5  # words per shingle (Lee et al. 2022): long enough that shared stock phrases are rare

    def __post_init__(self):
        for name in ("mojibake", "length", "char_share", "repetition", "language", "near_dup"):
            value = getattr(self, name)
            check(value in ("off", "on", "report"), f"data.filters.{name} must be off, on or report (got {value!r})")
        if isinstance(self.languages, str):  # --set data.filters.languages=en or =en,fa
            self.languages = [x.strip() for x in self.languages.split(",") if x.strip()]
        check(
            isinstance(self.languages, list)
            and all(isinstance(x, str) and x.isalpha() and x.islower() for x in self.languages),
            f"data.filters.languages must be a list of ISO 639-1 codes, e.g. [en] or [fa, en] (got {self.languages!r})",
        )
        check(
            self.language != "on" or bool(self.languages),
            "data.filters.language=on needs the languages to keep: set data.filters.languages, e.g. [en] or [fa]",
        )
        check(self.min_words >= 0, f"data.filters.min_words must be >= 0 (got {self.min_words}), e.g. 3")
        check(self.max_mean_word_chars > 0, "data.filters.max_mean_word_chars must be > 0, e.g. 12")
        for name in ("min_letter_share", "max_dup_line_share", "max_dup_ngram_share"):
            value = getattr(self, name)
            check(0.0 <= value <= 1.0, f"data.filters.{name} must be a share in [0, 1] (got {value})")
        check(
            0.0 < self.near_dup_threshold < 1.0,
            f"data.filters.near_dup_threshold must be strictly between 0 and 1 (got {self.near_dup_threshold}), "
            "e.g. 0.8",
        )
        check(self.near_dup_shingle >= 1, "data.filters.near_dup_shingle must be >= 1 word, e.g. 5")


def _filter_section(value) -> FilterConfig:
    """data.filters from YAML/--set: YAML reads a bare on/off as true/false, so those mean the modes."""
    if isinstance(value, FilterConfig):
        return value
    if not isinstance(value, dict):
        raise UserError("data.filters must be a mapping of settings, e.g. filters: {near_dup: on}")
    modes = {name for name, hint in typing.get_type_hints(FilterConfig).items() if hint == FilterMode}
    words = {True: "on", False: "off"}
    return build_section(
        FilterConfig,
        {k: words[v] if k in modes and isinstance(v, bool) else v for k, v in value.items()},
        "data.filters",
    )


@dataclass
class DataConfig:
    corpus: str = "builtin:sotu"  # a file, a directory, builtin:NAME, or hf:NAME for a Hugging Face dataset
    text_column: str = "text"  # column holding the text in jsonl / csv / parquet / HF datasets
    doc_split: Literal["blank_line", "line"] = "blank_line"  # how a .txt file is cut into documents
    # NFC keeps Persian/Arabic letters intact; NFKC also folds ligatures and presentation forms
    normalization: Literal["NFC", "NFKC", "none"] = "NFC"
    dedup: bool = True  # drop exact duplicate documents (after normalisation), so the val split can't leak into train
    min_chars: int = 20  # shorter documents are mostly headers and noise
    max_chars: int = 0  # 0 = no upper limit; set it to drop pathological giant documents
    max_documents: int = 0  # 0 = all; a cap makes quick experiments quick
    val_fraction: float = 0.05  # share of documents (not tokens) held out, so no document straddles the split
    split_seed: int = 0  # seeds the document split independently of the training seed
    seq_length: int = 128  # tokens per packed training block, including [CLS]
    # packed documents don't attend to each other ([SEP] ends one); costs an explicit attention mask
    block_diagonal: bool = False
    cache_dir: str = ""  # "" = $MASKLAB_CACHE or ~/.cache/masklab; token shards are cached here by content
    hf_split: str = "train"  # split to read when `corpus` is a Hugging Face dataset name
    filters: FilterConfig = field(default_factory=FilterConfig)  # cleaning filters, e.g. data.filters.near_dup=on

    def __post_init__(self):
        self.filters = _filter_section(self.filters)
        check(0.0 <= self.val_fraction < 1.0, "data.val_fraction must be in [0, 1), e.g. 0.05")
        check(self.seq_length >= 8, "data.seq_length must be at least 8 tokens, e.g. 128")
        check(self.min_chars >= 0 and self.max_chars >= 0, "data.min_chars and data.max_chars must be >= 0")


@dataclass
class TokenizerConfig:
    path: str = ""  # an existing Hugging Face tokenizer directory; "" = train one on the corpus
    model: Literal["wordpiece", "bpe", "unigram"] = "wordpiece"  # WordPiece is what BERT used
    vocab_size: int = 16000  # small corpora want small vocabularies: every id needs examples to learn from
    lowercase: bool = True  # halves the vocabulary needed for English; harmless for scripts without case
    min_frequency: int = 2  # a merge/word seen once is usually noise

    def __post_init__(self):
        check(self.vocab_size >= 100, "tokenizer.vocab_size must be at least 100, e.g. 16000")


@dataclass
class ModelConfig:
    preset: str = "mini"  # size preset (see masklab.models.PRESETS); ignored when `init` is set
    # auto = the objective's default (its record's first architecture): modernbert for mlm (the measured best: README,
    # Defaults), llama for clm and hybrid, t5 for seq2seq, electra for electra; bert and gpt2 are the classics
    architecture: Literal["auto", "bert", "modernbert", "llama", "gpt2", "t5", "electra"] = "auto"
    init: str = ""  # "" = from scratch; or a checkpoint / masklab run directory to continue from
    # off in pretraining (Cramming): it costs a fifth of a CPU step and one pass over data barely overfits
    hidden_dropout: float = 0.0
    attention_dropout: float = 0.0  # same reasoning; turn both on for long multi-epoch runs on small corpora
    num_layers: int = 0  # 0 = take the preset's value; set any of these four to reshape a preset
    hidden_size: int = 0
    num_heads: int = 0
    intermediate_size: int = 0
    sparse_prediction: bool = True  # run the vocabulary head only at masked positions: same loss, far less compute
    # with sparse_prediction: the last encoder layer only at masked positions too (same loss)
    sparse_final_layer: bool = True
    # auto = eager on CPU (faster there: README, Performance), SDPA (flash kernels) on GPU
    attention: Literal["auto", "sdpa", "eager"] = "auto"

    def __post_init__(self):
        for name in ("hidden_dropout", "attention_dropout"):
            check(0.0 <= getattr(self, name) < 1.0, f"model.{name} must be in [0, 1)")


UPOS_TAGS = (
    "ADJ",
    "ADP",
    "ADV",
    "AUX",
    "CCONJ",
    "DET",
    "INTJ",
    "NOUN",
    "NUM",
    "PART",
    "PRON",
    "PROPN",
    "PUNCT",
    "SCONJ",
    "SYM",
    "VERB",
    "X",
)  # Universal Dependencies tags: one tag set for every tagger and language


@dataclass
class SpanSettings:
    p: float = 0.2  # span length in words ~ Geometric(p); SpanBERT's 0.2 gives a mean of 3.8 words with max_words=10
    max_words: int = 10  # longer draws are clipped here (SpanBERT: 10)

    def __post_init__(self):
        check(0.0 < self.p <= 1.0, f"masking.span.p must be in (0, 1] (got {self.p}), e.g. 0.2")
        check(self.max_words >= 1, "masking.span.max_words must be >= 1, e.g. 10")


def _default_pos_weights() -> dict[str, float]:
    return {"NOUN": 2.0, "VERB": 1.5, "ADJ": 1.0, "default": 0.5}


@dataclass
class PosSettings:
    # spacy-en (spaCy en_core_web_sm) or parsivar-fa (Persian); tags are computed once and cached
    tagger: str = "spacy-en"
    weights: dict[str, float] = field(
        default_factory=_default_pos_weights
    )  # relative masking chance per UPOS tag; "default" for the rest
    processes: int = 1  # tagger processes (spaCy n_process): tagging runs once per corpus, then tags are cached

    def __post_init__(self):
        check(
            isinstance(self.weights, dict) and self.weights,
            "masking.pos.weights must be a mapping like {NOUN: 2.0, default: 0.5}",
        )
        unknown = sorted(set(self.weights) - set(UPOS_TAGS) - {"default"})
        check(
            not unknown,
            f"masking.pos.weights has unknown tags {', '.join(map(str, unknown))}; use Universal POS tags "
            f"({', '.join(UPOS_TAGS)}) or default",
        )
        for tag, weight in self.weights.items():
            check(
                isinstance(weight, (int, float)) and not isinstance(weight, bool) and weight >= 0,
                f"masking.pos.weights.{tag} must be a number >= 0 (got {weight!r})",
            )
        check(any(w > 0 for w in self.weights.values()), "masking.pos.weights must give some tag a weight > 0")
        check(self.processes >= 1, "masking.pos.processes must be >= 1")


@dataclass
class EntitySettings:
    gazetteer: str = ""  # text file, one phrase per line, matched on whole words of the tokenized corpus
    ner: str = "spacy-en"  # tagger whose named entities become units; "" = gazetteer only (e.g. for Persian)
    processes: int = 1  # tagger processes (spaCy n_process): entities are found once per corpus, then cached

    def __post_init__(self):
        check(
            bool(self.gazetteer or self.ner),
            "masking.entity needs a gazetteer file or a ner tagger (e.g. ner: spacy-en)",
        )
        check(self.processes >= 1, "masking.entity.processes must be >= 1")


@dataclass
class PmiSettings:
    max_n: int = 5  # longest n-gram unit; Levine et al. use 2..5 words
    min_count: int = 10  # rarer n-grams have unreliable PMI estimates
    # n-grams kept as units: the highest-PMI ones, an equal share per length; grow it with the corpus
    vocab_size: int = 2000
    count_tokens: int = 50_000_000  # n-grams are counted on at most this many training tokens; memory grows with it

    def __post_init__(self):
        check(2 <= self.max_n <= 8, "masking.pmi.max_n must be between 2 and 8, e.g. 5")
        check(
            self.min_count >= 2 and self.vocab_size >= 1 and self.count_tokens >= 1000,
            "masking.pmi needs min_count >= 2, vocab_size >= 1 and count_tokens >= 1000",
        )


@dataclass
class DiffusionSettings:
    """Masked-diffusion training (MDLM, Sahoo et al. 2024, arXiv 2406.07524; LLaDA, Nie et al. 2025, arXiv
    2502.09992): every block draws its own time t ~ U(epsilon, 1] and masks the share m(t) of its tokens, all
    with [MASK] (the absorbing state sampling starts from), so the model learns to fill mostly-masked text.
    The loss is weighted so it is the diffusion ELBO (masklab.masking.diffusion derives the weights)."""

    # masked share m(t): off = the fixed masking.rate; linear m=t (MDLM, LLaDA); cosine m=1-cos(pi t/2)
    schedule: Literal["off", "linear", "cosine"] = "off"
    epsilon: float = 1e-3  # smallest time drawn: t in (epsilon, 1]; MDLM's 1e-3 keeps the 1/t weight bounded

    def __post_init__(self):
        check(
            0.0 < self.epsilon < 1.0,
            f"masking.diffusion.epsilon must be strictly between 0 and 1 (got {self.epsilon}), e.g. 1e-3",
        )


_NESTED_MASKING = {
    "span": SpanSettings,
    "pos": PosSettings,
    "entity": EntitySettings,
    "pmi": PmiSettings,
    "diffusion": DiffusionSettings,
}


@dataclass
class MaskingConfig:
    strategy: str = "random"  # masker name: random, whole_word, span, pos, entity, pmi (masklab.masking registry)
    rate: float = 0.15  # share of eligible tokens the model must predict (the end value when a schedule is set)
    mask_token_fraction: float = 0.8  # of the selected tokens: replaced by [MASK] (BERT's 80)
    random_token_fraction: float = 0.1  # replaced by a random non-special token (BERT's 10); the rest stay unchanged
    selection: Literal["exact", "bernoulli"] = "exact"  # exact = round(rate*n) per sequence: exact rate, static shapes
    # dynamic = fresh masks each time (RoBERTa); static = fixed per example (BERT)
    mode: Literal["dynamic", "static"] = "dynamic"
    static_copies: int = 1  # with static masking: distinct mask patterns per block, cycled per epoch (BERT used 10)
    # unit = a masked word/span is all [MASK], all random or all kept, not mixed
    corrupt_per: Literal["token", "unit"] = "token"
    # rate over training: constant, or rate_start -> rate
    schedule: Literal["constant", "linear", "cosine"] = "constant"
    # the rate at the start of a linear/cosine schedule (e.g. 0.4 -> 0.15); unused when constant
    rate_start: float = 0.0
    span: SpanSettings = field(default_factory=SpanSettings)  # strategy span (SpanBERT)
    pos: PosSettings = field(default_factory=PosSettings)  # strategy pos: part-of-speech weighted words
    entity: EntitySettings = field(
        default_factory=EntitySettings
    )  # strategy entity: phrases and named entities (ERNIE)
    pmi: PmiSettings = field(default_factory=PmiSettings)  # strategy pmi: high-PMI n-grams (Levine et al. 2021)
    diffusion: DiffusionSettings = field(
        default_factory=DiffusionSettings
    )  # a masking rate drawn per block (any strategy): an MLM that can generate

    def __post_init__(self):
        check(0.0 < self.rate < 1.0, f"masking.rate must be strictly between 0 and 1 (got {self.rate}), e.g. 0.15")
        check(
            self.mask_token_fraction >= 0 and self.random_token_fraction >= 0,
            "masking.mask_token_fraction and masking.random_token_fraction must be >= 0",
        )
        total = self.mask_token_fraction + self.random_token_fraction
        check(
            total <= 1.0 + 1e-9,
            f"masking.mask_token_fraction + masking.random_token_fraction = {total:g} exceeds 1; "
            "lower one of them (BERT uses 0.8 and 0.1)",
        )
        check(self.static_copies >= 1, "masking.static_copies must be >= 1")
        if self.schedule != "constant":
            check(
                0.0 < self.rate_start < 1.0,
                f"masking.schedule={self.schedule} needs masking.rate_start strictly between "
                f"0 and 1 (got {self.rate_start}), e.g. 0.4",
            )
        check(
            not (self.strategy == "entity" and self.selection == "bernoulli"),
            "masking.strategy=entity fills the budget phrases first, which needs masking.selection=exact",
        )
        for name, cls in _NESTED_MASKING.items():
            value = getattr(self, name)
            if isinstance(value, dict):
                setattr(self, name, build_section(cls, value, f"masking.{name}"))
            elif not isinstance(value, cls):
                raise UserError(f"masking.{name} must be a mapping of settings, e.g. {name}: {{}}")
        if self.diffusion.schedule != "off":
            check(
                self.schedule == "constant",
                "masking.diffusion draws a rate per block; it cannot follow a rate "
                "schedule too: drop masking.schedule or set masking.diffusion.schedule=off",
            )
            # The absorbing process hides with [MASK] only. BERT's 80/10/10 is replaced when left at its
            # defaults; fractions the user set on purpose are kept.
            if (self.mask_token_fraction, self.random_token_fraction) == (0.8, 0.1):
                self.mask_token_fraction, self.random_token_fraction = 1.0, 0.0

    @property
    def diffusion_on(self) -> bool:
        return self.diffusion.schedule != "off"

    def rate_at(self, progress: float) -> float:
        """The masking rate at `progress` in [0, 1] of training: constant, or rate_start -> rate along a
        linear or cosine curve (Ankner et al. 2023, "Dynamic Masking Rate Schedules for MLM Pretraining")."""
        if self.schedule == "constant":
            return self.rate
        t = min(1.0, max(0.0, progress))
        shape = t if self.schedule == "linear" else 0.5 * (1.0 - math.cos(math.pi * t))
        return self.rate_start + (self.rate - self.rate_start) * shape


@dataclass
class TrainConfig:
    batch_size: int = 32  # blocks per optimizer micro-step (per process)
    grad_accum: int = 1  # micro-steps per optimizer step: effective batch = batch_size * grad_accum * processes
    # peak learning rate; 0 = the architecture's default (README, Defaults: 1e-3 for modernbert), unless
    # PRESET_TRAINING sets it (mini's masked LM: 1.44e-3)
    lr: float = 0.0
    weight_decay: float = 0.01  # not applied to biases and LayerNorm weights
    beta2: float = 0.98  # RoBERTa's value: steadier than 0.999 with large learning rates
    warmup_fraction: float = 0.06  # share of the run spent warming up linearly from 0
    # decay after warm-up; wsd = warm-up, stable, decay (Hu et al. 2024, MiniCPM): the peak rate holds until the
    # last train.decay_fraction of the run, then falls linearly to 0
    schedule: Literal["linear", "cosine", "constant", "wsd"] = "linear"
    decay_fraction: float = 0.2  # wsd only: share of the run spent decaying
    # sequence-length warm-up (Li et al. 2022; cramming): over this first share of the run, each block is cut into
    # shorter pieces (train.seq_warmup_start tokens, doubling stage by stage up to data.seq_length). The tokens per
    # step stay the same, so the budget and schedule do not move; 0 = off
    seq_warmup_fraction: float = 0.0
    seq_warmup_start: int = 32  # the first stage's piece length in tokens; data.seq_length must be it times 2^k
    max_steps: int = 1000  # optimizer steps; the schedule's horizon
    max_tokens: int = 0  # 0 = none; else stop (and end the schedule) after this many training tokens
    max_minutes: float = 0.0  # 0 = none; else a wall-clock budget, and the schedule follows elapsed time
    clip_norm: float = 1.0  # gradient clipping by global norm; 0 = off
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto = bf16 autocast where the hardware runs it fast
    seed: int = 0  # model init, data order and dynamic masks all derive from it
    log_every: int = 10  # steps between metrics.jsonl lines
    eval_every: int = 200  # steps between validation evaluations; 0 = only at the end
    save_every: int = 500  # steps between checkpoints; 0 = only at the end
    num_workers: int = 0  # dataloader processes; batches are cheap, so 0 leaves both cores to the model
    compile: bool = False  # torch.compile the encoder (slow first steps, faster later)
    # what pretraining predicts: one of objective_records.RECORDS (masked tokens, the next token, corrupted spans, or
    # both causal and masked)
    objective: str = "mlm"

    def __post_init__(self):
        check(self.batch_size >= 1 and self.grad_accum >= 1, "train.batch_size and train.grad_accum must be >= 1")
        check(self.lr >= 0, "train.lr must be >= 0 (0 = the architecture's default), e.g. 1e-3")
        check(0.0 <= self.warmup_fraction < 1.0, "train.warmup_fraction must be in [0, 1)")
        check(0.0 < self.decay_fraction <= 1.0, "train.decay_fraction must be in (0, 1], e.g. 0.2")
        check(0.0 <= self.seq_warmup_fraction < 1.0, "train.seq_warmup_fraction must be in [0, 1), e.g. 0.3 (0 = off)")
        check(self.seq_warmup_start >= 8, "train.seq_warmup_start must be >= 8 tokens, e.g. 32")
        check(self.max_steps >= 1, "train.max_steps must be >= 1")
        check(self.max_tokens >= 0 and self.max_minutes >= 0, "train.max_tokens and train.max_minutes must be >= 0")


@dataclass
class EvalConfig:
    batch_size: int = 64
    max_blocks: int = 256  # validation blocks for masked accuracy / loss; 0 = all
    # pass over those blocks again (new fixed masks each pass) until at least this many tokens are masked: a
    # study's arms differ by a point or two of masked accuracy, which 5 k masked tokens cannot resolve; 0 = one pass
    min_masked_tokens: int = 0
    pppl_sequences: int = 16  # sequences scored by pseudo-perplexity (one forward pass per token)
    pppl_max_length: int = 64  # tokens per pseudo-perplexity sequence
    score_sentences: int = 64  # held-out sentences for the sentence-score perplexities of `masklab evaluate`
    # pairs per phenomenon built by `--pairs from:CORPUS`: 500 gives a CI of about +-0.04 on an accuracy in seconds
    # for a tiny model; fewer for a quick look
    corpus_pairs: int = 500
    seed: int = 1234  # masking seed: every evaluation of every model sees the same masks

    def __post_init__(self):
        check(self.batch_size >= 1, "eval.batch_size must be >= 1")
        check(
            self.max_blocks >= 0 and self.min_masked_tokens >= 0,
            "eval.max_blocks and eval.min_masked_tokens must be >= 0 (0 = all blocks / one pass)",
        )
        check(self.corpus_pairs >= 1, "eval.corpus_pairs must be >= 1, e.g. 500")


@dataclass
class Seq2SeqConfig:
    # span = T5: each span becomes one sentinel, the target lists the spans; infill = BART: one [MASK] per span, the
    # target is the whole block
    corruption: Literal["span", "infill"] = "span"
    rate: float = 0.15  # share of each block's tokens that are corrupted (T5's 15%)
    # mean span length in tokens (T5's 3); spans and gaps are drawn so both counts are exact: static shapes
    mean_span: float = 3.0

    def __post_init__(self):
        check(0.0 < self.rate < 1.0, f"seq2seq.rate must be strictly between 0 and 1 (got {self.rate}), e.g. 0.15")
        check(self.mean_span >= 1.0, f"seq2seq.mean_span must be >= 1 token (got {self.mean_span}), e.g. 3")


@dataclass
class HybridConfig:
    # share of each batch's blocks trained by next-token prediction; the rest by masked next-token prediction (GPT-BERT)
    causal_share: float = 0.5

    def __post_init__(self):
        check(
            0.0 < self.causal_share < 1.0,
            f"hybrid.causal_share must be strictly between 0 and 1 (got {self.causal_share}); "
            "use train.objective=clm or mlm for one objective alone",
        )


@dataclass
class ElectraConfig:
    """Replaced-token detection (Clark et al. 2020, arXiv 2003.10555): loss = mlm + rtd_weight * rtd."""

    # the paper's lambda: the discriminator's per-token loss is far smaller than the generator's
    rtd_weight: float = 50.0
    # generator width / discriminator width: the paper found 1/4 to 1/2 best (a stronger one is too hard to detect)
    generator_fraction: float = 0.25

    def __post_init__(self):
        check(
            self.rtd_weight > 0,
            f"electra.rtd_weight must be > 0 (got {self.rtd_weight:g}): it weighs the discriminator's loss, the "
            "point of electra; the paper uses 50",
        )
        check(
            0 < self.generator_fraction <= 1,
            f"electra.generator_fraction must be in (0, 1] (got {self.generator_fraction:g}): a generator larger "
            "than the discriminator makes replacements it cannot detect; the paper found 0.25 to 0.5 best",
        )


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    masking: MaskingConfig = field(default_factory=MaskingConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seq2seq: Seq2SeqConfig = field(default_factory=Seq2SeqConfig)  # span corruption, with train.objective=seq2seq
    hybrid: HybridConfig = field(default_factory=HybridConfig)  # the causal:masked mix, with train.objective=hybrid
    electra: ElectraConfig = field(default_factory=ElectraConfig)  # generator and rtd weight, train.objective=electra

    def __post_init__(self):
        objective = record(self.train.objective)  # an unknown name fails here, listing the valid ones
        allowed = objective.architectures
        check(
            self.model.architecture in ("auto", *allowed) or bool(self.model.init),
            f"model.architecture={self.model.architecture} cannot train train.objective={objective.name}; "
            f"choose {' or '.join(allowed)} (or auto)",
        )
        if not objective.masks_tokens and self.masking != MaskingConfig():
            maskers = " or ".join(r.name for r in RECORDS.values() if r.masks_tokens)
            raise UserError(
                f"masking settings do nothing with train.objective={objective.name} (it masks no tokens); "
                f"drop the masking.* settings, or use train.objective={maskers}"
            )
        if not objective.packs_documents:
            check(
                not self.data.block_diagonal,
                f"data.block_diagonal does not apply to train.objective={objective.name}; set it false",
            )
        if objective.section == "electra":
            check(
                not self.masking.diffusion_on,
                "masking.diffusion does not apply to train.objective=electra (its generator fills a fixed share of "
                "masks); set masking.diffusion.schedule=off",
            )
        if objective.section == "seq2seq":
            corrupted = max(1, round((self.data.seq_length - 1) * self.seq2seq.rate))
            check(
                self.seq2seq.mean_span <= corrupted,
                f"seq2seq.mean_span={self.seq2seq.mean_span:g} is longer than the {corrupted} tokens corrupted per "
                f"{self.data.seq_length}-token block (data.seq_length x seq2seq.rate); lower seq2seq.mean_span or "
                "raise data.seq_length or seq2seq.rate",
            )


def check(ok: bool, message: str) -> None:
    """Config validation: a failed condition becomes the one-line UserError `message`."""
    if not ok:
        raise UserError(message)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Turn a YAML/CLI value into the field's type, or say what was expected."""
    if typing.get_origin(hint) is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise UserError(f"{where} must be one of {', '.join(map(str, choices))} (got {value!r})")
        return value
    if hint is bool:
        if isinstance(value, bool):
            return value
        raise UserError(f"{where} must be true or false (got {value!r})")
    if isinstance(value, str) and hint in (int, float):
        try:  # YAML reads 3e-4 (no dot) as a string
            value = float(value)
        except ValueError:
            pass
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise UserError(f"{where} must be a whole number (got {value!r})")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where} must be a number (got {value!r})")
        return float(value)
    if hint is str:
        return "" if value is None else str(value)
    return value


def build_section(cls, values: dict, name: str):
    """The dataclass `cls` from a YAML/CLI mapping: unknown keys and wrong types raise UserError naming `name.key`."""
    hints = typing.get_type_hints(cls)
    valid = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in values.items():
        if key not in valid:
            raise UserError(f"unknown config key {name}.{key}; valid keys in [{name}]: {', '.join(valid)}")
        kwargs[key] = _coerce(value, hints[key], f"{name}.{key}")
    return cls(**kwargs)


def parse_override(text: str, depth: tuple[int, int], shape: str, example: str) -> tuple[list[str], Any]:
    """`key.path=value` -> (key parts, YAML-typed value); the key has depth[0] to depth[1] parts, as `shape` says."""
    if "=" not in text:
        raise UserError(
            f"--set expects {shape.replace(' or ', '=value or ')}=value (got {text!r}), e.g. --set {example}"
        )
    key, raw = text.split("=", 1)
    parts = key.strip().split(".")
    if not depth[0] <= len(parts) <= depth[1] or not all(parts):
        raise UserError(f"--set key must be {shape} (got {key!r}), e.g. --set {example}")
    return parts, yaml.safe_load(raw) if raw.strip() else ""


def deep_merge(base: dict, overlay: dict) -> dict:
    """`base` under `overlay`: mappings merge key by key (a nested setting keeps its other keys), anything else
    replaces; neither input is changed."""
    out = copy.deepcopy(base)
    for key, value in overlay.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = deep_merge(out[key], value) if both else copy.deepcopy(value)
    return out


def merge_override(target: dict, parts: list[str], value: Any) -> None:
    """Set target[a][b]... = value; the last level merges into an existing mapping (e.g. masking.span.p)."""
    *path, last = parts
    for part in path[:-1]:
        target = target.setdefault(part, {})
    if path:
        nested = target.get(path[-1])
        target[path[-1]] = {**(nested if isinstance(nested, dict) else {}), last: value}
    else:
        target[last] = value


# (model.preset, train.objective) -> the dotted settings that pair trains best with, measured (README, Defaults;
# benchmarks/word_order_target.py and default_recipe.py). They fill only the keys a config leaves unset, so a YAML
# value or a --set still wins key by key. They were measured on the objective's own architecture (what
# model.architecture=auto picks: ModernBERT for the masked LM), so another architecture, or a run that continues a
# checkpoint (model.init), takes none.
# - tiny: the shape does four to five times mini's steps in the same minutes; holding its peak rate (wsd) and
#   starting on 32-token pieces taught its masked LM word order in the time a causal LM needs, with its probe
#   accuracy within seed noise. At mini either change alone cost probe accuracy on the speeches.
# - mini: the q7-search study's best point (docs/studies/q7-search). At 10 minutes it beat lr 1e-3 / 6% warm-up /
#   15% masking on the sotu-era probe beyond seed noise on 5 of 5 seeds, and at 2 minutes it lost no judge beyond
#   noise on three corpora. The rate fills only where it is the rate a run trains at (a constant masking rate, no
#   diffusion): under a rate schedule or diffusion masking.rate means the schedule's end or the validation rate.
# Other pairs (the causal, seq2seq, hybrid and electra objectives among them) were not measured and keep the
# dataclass defaults.
PRESET_TRAINING = {
    ("tiny", "mlm"): {"train.schedule": "wsd", "train.seq_warmup_fraction": 0.3},
    ("mini", "mlm"): {"masking.rate": 0.345, "train.lr": 1.44e-3, "train.warmup_fraction": 0.127},
}


def seq_warmup_fits(cfg: RunConfig) -> bool:
    """Whether sequence-length warm-up can cut this run's blocks: data.seq_length = train.seq_warmup_start x 2^k,
    k >= 1 (shorter blocks have nothing to warm up)."""
    pieces = cfg.data.seq_length // cfg.train.seq_warmup_start
    whole = pieces * cfg.train.seq_warmup_start == cfg.data.seq_length
    return whole and pieces >= 2 and not pieces & (pieces - 1)


def with_preset_training(cfg: RunConfig, given: set[str]) -> RunConfig:
    """`cfg` with its preset and objective's PRESET_TRAINING values for the dotted keys not in `given` (the
    sequence-length warm-up only where it fits the blocks, the masking rate only where it is constant)."""
    if cfg.model.init or cfg.model.architecture not in ("auto", record(cfg.train.objective).architectures[0]):
        return cfg  # measured on the objective's own architecture (what auto means), from scratch
    recipe = PRESET_TRAINING.get((cfg.model.preset, cfg.train.objective), {})
    values = {k: v for k, v in recipe.items() if k not in given}
    if values.get("train.seq_warmup_fraction") and not seq_warmup_fits(cfg):
        del values["train.seq_warmup_fraction"]
    if "masking.rate" in values and (cfg.masking.schedule != "constant" or cfg.masking.diffusion.schedule != "off"):
        del values["masking.rate"]
    sections: dict[str, dict] = {}
    for key, value in values.items():
        section, name = key.split(".")
        sections.setdefault(section, {})[name] = value
    changed = {sec: dataclasses.replace(getattr(cfg, sec), **kv) for sec, kv in sections.items()}
    return dataclasses.replace(cfg, **changed) if changed else cfg


def build_config(
    raw: dict | None = None, overrides: list[str] | tuple[str, ...] = (), preset_training: bool = True
) -> RunConfig:
    """Defaults, then `raw` (a dict shaped like the YAML file), then dotted overrides; then, with
    `preset_training`, the preset's measured training values (PRESET_TRAINING) for the keys neither set (off where
    the config describes no training: evaluating a bare checkpoint masks at the dataclass defaults)."""
    merged: dict[str, dict] = {}
    for sec, values in (raw or {}).items():
        if values is None:
            continue
        if not isinstance(values, dict):
            raise UserError(f"config section [{sec}] must be a mapping of key: value")
        merged.setdefault(sec, {}).update(values)
    for text in overrides:
        parts, value = parse_override(
            text, (2, 3), "section.key or section.key.subkey", "train.lr=3e-4 or masking.span.p=0.3"
        )
        merged.setdefault(parts[0], {})
        merge_override(merged[parts[0]], parts[1:], value)
    sections = {f.name: f.type for f in dataclasses.fields(RunConfig)}
    hints = typing.get_type_hints(RunConfig)
    kwargs = {}
    for sec, values in merged.items():
        if sec not in sections:
            raise UserError(f"unknown config section {sec!r}; valid sections: {', '.join(sections)}")
        kwargs[sec] = build_section(hints[sec], values, sec)
    cfg = RunConfig(**kwargs)
    if not preset_training:
        return cfg
    return with_preset_training(cfg, {f"{sec}.{key}" for sec, values in merged.items() for key in values})


# what a run's config file holds, for the one-line error when it holds something else
RUN_FILE_SHAPE = "sections (data:, model:, train: ...)"


def read_yaml_mapping(path: str | Path | None, shape: str = RUN_FILE_SHAPE) -> dict:
    """A YAML config file as a dict ({} for no file); `shape` says what the mapping should hold."""
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise UserError(f"config file {p} does not exist; pass an existing YAML file or omit it to use defaults")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise UserError(f"config file {p} is not valid YAML ({exc}); fix the syntax") from None
    return yaml_mapping(text, f"config file {p}", shape)


def yaml_mapping(text: str, where: str, shape: str) -> dict:
    """YAML text that must hold a mapping ({} for an empty file); `where` names it in the one-line error."""
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"{where} is not valid YAML ({first}); fix the syntax") from None
    if not isinstance(raw, dict):
        raise UserError(f"{where} must be a mapping of {shape}")
    return raw


def load_config(
    path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = (), preset_training: bool = True
) -> RunConfig:
    return build_config(read_yaml_mapping(path), overrides, preset_training)


def save_config(cfg, path: Path) -> None:
    """Any config dataclass as YAML: the resolved config a run directory keeps (loadable by its loader)."""
    path.write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False, allow_unicode=True), encoding="utf-8")

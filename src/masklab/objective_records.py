"""One record per pretraining objective: the facts every other package asks about it.

A leaf module (it imports nothing of masklab's but errors), so the config, the model builder, the
tokenizer checks, the scorers and the reports can all read it without importing torch or each other.
The objective's behaviour (its loss terms in the one loop and its held-out figures) lives in
`masklab.objectives.<record.module>`; `masklab.objectives.behaviour(name)` finds it. Adding an objective
is one record here plus that one module; no other file names objectives.
"""

from __future__ import annotations

from dataclasses import dataclass

from masklab.errors import UserError


@dataclass(frozen=True)
class ObjectiveRecord:
    name: str  # the value of train.objective
    architectures: tuple[str, ...]  # model.architecture values that can train it; the first is what auto means
    auto_class: str  # the transformers auto class its checkpoints load with
    family: str  # the kind of checkpoint it saves ("mlm", "clm", "seq2seq"): loaders and scorers dispatch on it
    needs: tuple[str, ...]  # tokens a tokenizer from elsewhere must have (keys of data.tokenizer.TOKEN_CHECKS)
    causal_checkpoint: bool  # saved as a text-generation model (a BOS-only template), not as fill-mask
    masks_tokens: bool  # reads masking.*: without it, masking settings are an error rather than ignored
    packs_documents: bool  # trains on packed blocks where data.block_diagonal can keep documents apart
    scores: tuple[str, ...]  # sentence scores of `masklab evaluate`, the main one first
    headline: tuple[str, str]  # (column label, summary key) of its own figure in reports
    module: str  # masklab.objectives.<module>: parts(Setting) -> Parts and heldout(...) -> figures
    section: str = ""  # its own config section (seq2seq., hybrid., electra.), when it has one


# A family's checkpoints can give these sentence scores (a decoder also gives masked ones: see
# evaluate.scoring), whatever objective trained them.
FAMILY_SCORES = {
    "mlm": ("pll", "pll_word"),
    "clm": ("causal", "pll", "pll_word"),
    "seq2seq": ("sentinel", "decoder"),
    "electra": ("pll_word", "pll", "rtd"),  # a discriminator with its generator: the generator's PLL, its own rtd
}

RECORDS: dict[str, ObjectiveRecord] = {
    r.name: r
    for r in (
        ObjectiveRecord(
            "mlm",
            ("modernbert", "bert"),
            "AutoModelForMaskedLM",
            "mlm",
            ("mask",),
            causal_checkpoint=False,
            masks_tokens=True,
            packs_documents=True,
            scores=("pll_word", "pll"),
            headline=("masked acc", "masked_accuracy"),
            module="mlm",
        ),
        ObjectiveRecord(
            "clm",
            ("llama", "gpt2"),
            "AutoModelForCausalLM",
            "clm",
            ("bos_eos",),
            causal_checkpoint=True,
            masks_tokens=False,
            packs_documents=True,
            scores=("causal",),
            headline=("perplexity", "perplexity"),
            module="clm",
        ),
        ObjectiveRecord(
            "seq2seq",
            ("t5",),
            "AutoModelForSeq2SeqLM",
            "seq2seq",
            ("sentinels", "mask", "bos_eos"),
            causal_checkpoint=False,
            masks_tokens=False,
            packs_documents=False,
            # sentinel first (per-word fill-in, like the encoders' PLL); decoder (the whole sentence as one span) is
            # reported beside it: a small T5's encoder stays blind to word order long after its decoder learned it
            # (docs/seq2seq-diagnosis.md)
            scores=("sentinel", "decoder"),
            headline=("span acc", "span_accuracy"),
            module="seq2seq",
            section="seq2seq",
        ),
        # GPT-BERT: one decoder trained on next-token and masked next-token prediction
        ObjectiveRecord(
            "hybrid",
            ("llama", "gpt2"),
            "AutoModelForCausalLM",
            "clm",
            ("mask", "bos_eos"),
            causal_checkpoint=True,
            masks_tokens=True,
            packs_documents=True,
            scores=("causal", "pll_word", "pll"),
            headline=("perplexity", "perplexity"),
            module="hybrid",
            section="hybrid",
        ),
        # ELECTRA: a small generator fills the masked positions, the discriminator (the saved model) spots replacements
        ObjectiveRecord(
            "electra",
            ("electra",),
            "AutoModelForPreTraining",
            "electra",
            ("mask",),
            causal_checkpoint=False,
            masks_tokens=True,
            packs_documents=True,
            scores=("pll_word", "pll", "rtd"),
            headline=("rtd auc", "rtd_auc"),
            module="electra",
            section="electra",
        ),
    )
}


def record(name: str) -> ObjectiveRecord:
    """The record of train.objective `name`; an unknown name is a one-line error listing the valid ones."""
    if name not in RECORDS:
        raise UserError(f"unknown train.objective {name!r}; choose one of: {', '.join(RECORDS)}")
    return RECORDS[name]

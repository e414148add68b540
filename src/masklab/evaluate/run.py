"""Evaluating a finished checkpoint of any objective (the `evaluate` command): its own held-out
figures, then the yardsticks that mean the same thing for every objective.

    held-out     the objective's loss figures on the validation split (or all of another corpus)
    sentences    sentence-score perplexities on held-out sentences (each on its own scale)
    pairs        minimal-pair accuracy, overall and per phenomenon        -> comparable across objectives
    cloze        5-way accuracy at filling a blanked held-out word         -> comparable across objectives
    generation   distinct-n and repetition of top-p samples (decoders, encoder-decoders)
    downstream   test accuracy of a probe and of full fine-tuning on a labelled task (`masklab finetune`)
    cost         parameters, training tokens/s and wall clock (from the run's summary)

Results are also merged into RUN/evaluation.json, which `masklab compare` reads.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

from masklab.config import DataConfig, load_config
from masklab.data.pipeline import prepare_data
from masklab.data.prepare import cache_root
from masklab.data.shards import packed_blocks
from masklab.evaluate.cloze import SENTENCE_END, cloze_accuracy, cloze_items, word_band
from masklab.evaluate.generation import generation_metrics
from masklab.evaluate.pairs import minimal_pair_accuracy, pair_set
from masklab.evaluate.pairs.corpus import PER_PHENOMENON
from masklab.evaluate.scoring import SentenceScorer
from masklab.finetune.config import FinetuneConfig
from masklab.finetune.run import run_finetune
from masklab.fsutil import write_json_atomic
from masklab.models.checkpoint import load_language_model, resolve_checkpoint
from masklab.objectives import behaviour, record
from masklab.runtime import run_precision

COMPARABLE = (
    "minimal_pair_accuracy",
    "cloze_accuracy",
    "downstream_probe_accuracy",
    "downstream_full_accuracy",
    "distinct_1",
    "distinct_2",
    "repetition_4",
    "parameters",
    "tokens_per_second",
    "train_seconds",
)
NOT_COMPARABLE = (
    "every perplexity (masked, pseudo, causal, span, sentinel) is on its own objective's scale: compare "
    "them only between models of the same objective and tokenizer"
)


def heldout_sentences(docs, n: int) -> list[str]:
    sentences = []
    for doc in docs:
        sentences += [s for s in SENTENCE_END.split(doc) if 5 <= len(s.split()) <= 40]
        if len(sentences) >= n:
            break
    return sentences[:n]


SCORE_NAMES = {
    "causal": "causal_sentence_perplexity",
    "pll": "pseudo_perplexity_pll",
    "pll_word": "pseudo_perplexity_pll_word",
    "sentinel": "sentinel_perplexity",
    "decoder": "decoder_perplexity",
    "rtd": "rtd_perplexity",
}


def sentence_figures(scorer: SentenceScorer, kinds, sentences: list[str]) -> dict:
    """exp(-log-probability per token) of each score over the held-out sentences, and sentences/s."""
    out = {}
    tokens = scorer.token_counts(sentences).sum()
    for kind in kinds:
        start = time.perf_counter()
        total = scorer.scores(kind, sentences).sum()
        out[SCORE_NAMES[kind]] = math.exp(min(-total / max(tokens, 1), 50.0))
        out[f"{kind}_sentences_per_second"] = len(sentences) / (time.perf_counter() - start)
    out["scored_sentences"] = len(sentences)
    return out


def pair_figures(
    scorer: SentenceScorer,
    kinds,
    spec: str,
    run_data: DataConfig | None = None,
    seed: int = 0,
    per_phenomenon: int = PER_PHENOMENON,
) -> dict:
    """Minimal-pair accuracy by the objective's main score (and by its other scores, suffixed).
    `from:CORPUS` pairs (`per_phenomenon` of each kind) come from the held-out documents of `run_data`'s split
    (the run's own data config)."""
    pairs, origin = pair_set(spec, run_data, scorer.token_counts, seed, per_phenomenon)
    out = {"pairs_file": spec, **origin}
    for n, kind in enumerate(kinds):
        good = scorer.scores(kind, [p.good for p in pairs])
        bad = scorer.scores(kind, [p.bad for p in pairs])
        result = minimal_pair_accuracy(pairs, good, bad)
        suffix = "" if n == 0 else f"_{kind}"
        out[f"minimal_pair_accuracy{suffix}"] = result["minimal_pair_accuracy"]
        out[f"minimal_pair_accuracy_by_phenomenon{suffix}"] = {
            k: v["accuracy"] for k, v in result["by_phenomenon"].items()
        }
        out[f"minimal_pair_ties{suffix}"] = result["ties"]  # counted wrong
        if n == 0:
            out["minimal_pairs"] = result["pairs"]
            out["minimal_pair_score"] = kind
    return out


def evaluate_checkpoint(
    path: str | Path,
    corpus: str | None = None,
    overrides=(),
    show_progress: bool = True,
    pairs: str | None = None,
    cloze: int = 0,
    generate: int = 0,
    downstream: str | None = None,
    downstream_steps: int = 300,
    downstream_modes: tuple[str, ...] = ("probe", "full"),
) -> dict:
    """Evaluate on the run's validation split, or on all of `corpus` when given."""
    path = Path(path)
    run_config = path / "config.yaml"
    # with `corpus`: the run's own settings (masking, attention, eval) on all of another text
    other_text = [f"data.corpus={corpus}", "data.val_fraction=0"] if corpus is not None else []
    # no preset training values: a run's config.yaml holds every value it trained with, and a bare checkpoint is
    # judged on the dataclass defaults (BERT's 15% masks), not on what a fresh run of the default preset would train
    cfg = load_config(run_config if run_config.exists() else None, [*overrides, *other_text], preset_training=False)
    model, tokenizer, family = load_language_model(path)
    objective = cfg.train.objective if run_config.exists() else family
    data = prepare_data(
        cfg.data,
        cfg.tokenizer,
        tokenizer_path=str(resolve_checkpoint(path)),
        show_progress=show_progress,
        objective="classify",
    )
    split = "train" if corpus is not None else "val"
    blocks = packed_blocks(data.shards, split, cfg.data.seq_length, tokenizer.cls_token_id)
    precision, _ = run_precision(
        cfg.train.precision, model, cfg.eval.batch_size * cfg.data.seq_length, cache_root(cfg.data)
    )
    # the figures pretraining reports for the objective, on fixed masks and corruptions
    metrics = {
        "objective": objective,
        **behaviour(objective).heldout(model, tokenizer, blocks, cfg, precision, data.shards.unigram_counts()),
    }
    metrics["evaluated_blocks"] = min(len(blocks), cfg.eval.max_blocks or len(blocks))
    if "masked_accuracy" in metrics:  # the rate its masked figures were scored at (compare warns across rates)
        metrics["masked_at_rate"] = cfg.masking.rate

    kinds = record(objective).scores
    main = kinds[0]
    scorer = SentenceScorer(model, tokenizer, "fp32")  # sums of log-probabilities rank close pairs: no bf16 rounding
    metrics.update(
        sentence_figures(scorer, kinds, heldout_sentences(data.corpus.documents(split), cfg.eval.score_sentences))
    )
    if pairs:
        # the run's own split even under --corpus, whose override holds nothing out
        own = load_config(run_config, overrides).data if run_config.exists() else None
        metrics.update(pair_figures(scorer, kinds, pairs, own, cfg.eval.seed, cfg.eval.corpus_pairs))
    if cloze:
        items = cloze_items(
            data.corpus.documents(split), word_band(data.corpus.documents("train")), cloze, cfg.eval.seed
        )
        metrics.update(cloze_accuracy(scorer, main, items))
        if "pll_word" in kinds[1:]:  # a decoder that also learned masked prediction: its cloze by that score too
            metrics["cloze_accuracy_pll_word"] = cloze_accuracy(scorer, "pll_word", items)["cloze_accuracy"]
    if generate and record(objective).family in ("clm", "seq2seq"):  # an encoder has no prompt to continue
        prompts = [" ".join(s.split()[:6]) for s in heldout_sentences(data.corpus.documents(split), generate)]
        metrics.update(generation_metrics(model, tokenizer, prompts, seed=cfg.eval.seed))
    if downstream:
        metrics.update(downstream_figures(path, downstream, downstream_steps, show_progress, downstream_modes))
    metrics.update(cost_figures(path))
    metrics["comparable_across_objectives"] = [k for k in COMPARABLE if k in metrics]
    metrics["not_comparable"] = NOT_COMPARABLE
    if run_config.exists() and corpus is None:
        save_evaluation(path, metrics)
    return metrics


def downstream_figures(path: Path, task: str, steps: int, show_progress: bool, modes=("probe", "full")) -> dict:
    """Probe and/or full fine-tuning from the checkpoint, into RUN/downstream/MODE (finished ones are reused)."""

    out = {"downstream_task": task, "downstream_steps": steps}
    for mode in modes:
        directory = path / "downstream" / task.replace(":", "-").replace("/", "_") / mode
        done = directory / "summary.json"
        summary = json.loads(done.read_text(encoding="utf-8")) if done.exists() else None
        if summary is None or summary["steps"] != steps:
            if summary is not None:  # another budget: start that fine-tuning afresh
                shutil.rmtree(directory)
            # a seeded subsample of the examples `steps` batches can reach: a probe encodes its training split once,
            # and encoding all of a large task would cost more than the probe itself (the test split stays whole)
            reach = steps * FinetuneConfig.batch_size
            cfg = FinetuneConfig(
                task=task, init=str(path), mode=mode, max_steps=steps, max_train_examples=reach, save_model=False
            )
            summary = run_finetune(
                cfg, directory, show_progress=show_progress, resume=(directory / "config.yaml").exists()
            )
        out[f"downstream_{mode}_accuracy"] = summary["test_accuracy"]
        out["downstream_majority_accuracy"] = summary["majority_accuracy"]
    return out


def cost_figures(path: Path) -> dict:
    summary = path / "summary.json"
    if not summary.exists():
        return {}
    done = json.loads(summary.read_text(encoding="utf-8"))
    return {
        k: done[k]
        for k in (
            "parameters",
            "non_embedding_parameters",
            "train_tokens",
            "tokens_per_second",
            "train_seconds",
            "wall_seconds",
        )
        if k in done
    }


def save_evaluation(path: Path, metrics: dict) -> None:
    """Merge into RUN/evaluation.json: a later `evaluate --pairs` adds to an earlier `--cloze`."""
    target = path / "evaluation.json"
    previous = json.loads(target.read_text(encoding="utf-8")) if target.exists() else {}
    write_json_atomic(target, {**previous, **metrics})

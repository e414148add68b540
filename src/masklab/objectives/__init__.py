"""Objectives: modules whose forward(**batch) returns {"loss", ...}, one registry ("objective").

    mlm.py       masked-LM with sparse prediction (every masking strategy feeds it)
    clm.py       next-token prediction, and masked next-token prediction (hybrid) on a decoder
    seq2seq.py   T5 span corruption / BART text infilling on an encoder-decoder
    classify.py  sequence and token classification (fine-tuning), optionally on cached encoder features

A run trains on a weighted list of them (masklab.train.Term); the loop does not know which.
"""

from masklab.objectives import classify, clm, mlm, seq2seq  # noqa: F401  (registers the objectives)
from masklab.registry import build, names


def build_objective(name: str, model, tokenizer, **options):
    return build("objective", name, model, tokenizer, **options)


def objective_names() -> list[str]:
    return names("objective")


__all__ = ["build_objective", "objective_names"]

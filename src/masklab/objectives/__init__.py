"""Objectives: what a run predicts, its loss as a module whose forward(**batch) returns {"loss", ...}, and
(for pretraining) what it puts into the one loop and which held-out figures it reports.

    recipe.py    the pieces every objective's behaviour is built from: Setting, Parts, evaluation hooks
    mlm.py       masked-LM with sparse prediction (every masking strategy feeds it); masked figures, PPPL
    clm.py       next-token prediction, and masked next-token prediction on a decoder; causal figures
    seq2seq.py   T5 span corruption / BART text infilling on an encoder-decoder; span figures
    hybrid.py    next-token and masked next-token terms on one decoder (GPT-BERT)
    classify.py  sequence and token classification (fine-tuning), optionally on cached encoder features

Each pretraining objective's facts are one record in masklab/objective_records.py (a leaf the config
reads); its record names the module here that holds its behaviour. A run trains on a weighted list of
terms (masklab.train.Term); the loop does not know which.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from masklab.objective_records import RECORDS, ObjectiveRecord, record


def behaviour(name: str) -> ModuleType:
    """The module that holds objective `name`'s parts(Setting) and heldout(...): the one its record names.
    Imported by name so that this package's root, which the config reads, stays free of torch."""
    return importlib.import_module(f"masklab.objectives.{record(name).module}")


__all__ = ["RECORDS", "ObjectiveRecord", "behaviour", "record"]

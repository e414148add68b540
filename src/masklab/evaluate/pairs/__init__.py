"""Minimal pairs: a model should score the acceptable sentence of each pair above the unacceptable one.

pair.py     MinimalPair, and the fixed subsample the suites draw
io.py       pair_set / load_pairs (BLiMP-format JSONL, builtin:NAME or from:CORPUS), minimal_pair_accuracy
corpus.py   from:CORPUS, held-out sentences of any corpus against their reversal and an adjacent-word swap
english.py  builtin:en, rule-built pairs in the register of the State of the Union addresses
persian.py  builtin:fa, rule-built Persian pairs (verb agreement, the object marker را)
"""

from masklab.evaluate.pairs.io import BUILTIN_SUITES, MinimalPair, load_pairs, minimal_pair_accuracy, pair_set

__all__ = ["BUILTIN_SUITES", "MinimalPair", "load_pairs", "minimal_pair_accuracy", "pair_set"]

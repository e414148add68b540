"""Pretraining: a masked LM from scratch (or continued) on a corpus, through the one loop; the quickstart.

run.py         `masklab pretrain`: data -> model -> train() -> evaluation -> run directory
quickstart.py  `masklab quickstart`: the whole path on the built-in corpus in a few minutes
"""

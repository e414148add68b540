"""Evaluation: the yardsticks that mean the same for every objective, and evaluating a finished checkpoint.

    scoring.py     sentence scores of any objective's model (PLL, word-PLL, causal, sentinel)
    pairs/         minimal pairs (files, built-in English and Persian sets) and their accuracy
    cloze.py       5-way accuracy at filling a blanked held-out word
    generation.py  distinct-n and repetition of sampled continuations (decoders, encoder-decoders)
    run.py         `masklab evaluate RUN`: the objective's own held-out figures, then the yardsticks

Each objective's own figures (masked accuracy, perplexity, span accuracy) live with it in objectives/.
"""

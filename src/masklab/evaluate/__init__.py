"""Evaluation: masked-LM figures (masked accuracy, unigram baseline, pseudo-perplexity, fill-mask),
task metrics for classifiers, and evaluating a finished checkpoint on a corpus.

    masked.py    masked accuracy / loss on fixed masks, pseudo-perplexity, fill-mask
    classify.py  accuracy and macro-F1 of a classification objective
    run.py       `masklab evaluate RUN`: a checkpoint on its validation split or another corpus
"""

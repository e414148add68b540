"""Studies: one command per question. A study is a base run + a grid (or an optuna search) + seeds + the
metric that answers the question; each trial is an ordinary masklab run in its own directory.

    spec.py     the study file: parsed and checked before anything runs; ready-made ones in builtin/
    kinds.py    what a trial is (pretrain, finetune, continual, generate): config, seed key, run
    trials.py   a point + seed -> its config and hashed directory; needs; trial records
    queue.py    optuna as the queue: storage, exactly-once grid enqueueing, heartbeats, re-queueing
    storage.py  where a study lives (journal file or database): one storage per process, outages waited out
    worker.py   worker processes that take trials until none is left; run_study
    results.py  trials read back from the storage; grouped per point; results.csv
    stats.py    mean ± sd, Student-t intervals, paired comparisons
    finding.py  the finding in plain words and the verdict on the published claim
    report.py   report.md / report.html / results.csv: tables with CIs, paired comparisons, plots
"""

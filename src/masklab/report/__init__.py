"""Reports: finished runs read back, plots, and markdown + self-contained HTML pages.

runs.py     a run directory's summary and per-seed logs
plots.py    learning curves and per-layer change (PNG)
compare.py  `masklab compare`: table, plots and one offline HTML page for several runs
"""

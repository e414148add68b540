"""The local browser playground: `masklab playground RUN [RUN2]`.

    models.py     the runs a page serves: model, tokenizer, config, loaded once with hub access off
    fillmask.py   the words a click masks (proposals: generate.fillmask.fill_mask, the hub's fill-mask schema)
    maskview.py   typed text as a masker hides it (every strategy, tags from the run's tagger), with statistics
    stream.py     generation whose steps arrive as they happen (masks filling in)
    scores.py     sentence scores side by side: a minimal-pair explorer
    runs.py       summary.json, learning curves and a study's report for a loaded run
    render.py     the HTML of every view (probability bars, coloured pieces, tables), right-to-left aware
    app.py        the Gradio page and its API (fill_mask, mask_preview, generate, score)
    serve.py      launching safely: loopback by default, no share links, no analytics, a free port

Every view is a thin layer over functions that take loaded models and plain values, so they are
tested without a browser; the page is tested through gradio_client and in Debian's chromium.
"""

"""`masklab answers`: the finished ready-made studies gathered into one page, Q1-Q7, in English or Persian.

    text.py       the questions, labels and sentence templates of both languages; quick_minutes()
    gather.py     which folders hold finished studies; results.csv read back as the study package's rows
    measure.py    one study's numbers: paired comparisons within blocks, the verdict, the table, the time
    sentences.py  the measured answer and the verdict as sentences from the templates
    page.py       answers[.fa].md and one self-contained answers[.fa].html
    build.py      write_answers: gather, measure, write
    run.py        --run: every study without a finished report, in order, resumably; reports copied over
    reference.yaml  published figures shown beside the studies (Devlin et al. 2019 Table 8, Wettig et al. 2023)

Nothing is imported here: the CLI reads text.quick_minutes() for its --help without the study machinery.
"""

"""masklab's command line: a thin typer layer over importable functions, one module per command group.

    pretrain.py  pretrain, quickstart, models, tokenizer train
    evaluate.py  evaluate, fill-mask
    masking.py   mask-preview
    generate.py  generate
    finetune.py  finetune, compare
    continual.py continual
    study.py     study
    answers.py   answers

Heavy imports (torch, transformers) happen inside the commands so `masklab --help` is instant.
A `UserError` anywhere becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys

import typer

from masklab.cli import answers, continual, evaluate, finetune, generate, masking, playground, pretrain, study
from masklab.errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Pretrain (masked, causal, seq2seq or hybrid), fine-tune, evaluate and generate with language "
    "models on your own corpus, and compare runs; every run goes through one training loop.",
)
for group in (pretrain, evaluate, generate, masking, finetune, continual, study, answers, playground):
    group.register(app)


def main() -> None:
    try:
        app()
    except UserError as exc:
        print(f"masklab: error: {exc}", file=sys.stderr)
        sys.exit(2)

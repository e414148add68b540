"""`python -m masklab.cli ...` (what `accelerate launch -m masklab.cli` and torchrun run)."""

from masklab.cli import main

main()

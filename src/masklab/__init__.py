"""masklab: pretrain, fine-tune, evaluate and generate with masked language models."""

__version__ = "0.1.0"

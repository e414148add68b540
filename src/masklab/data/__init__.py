"""Corpus reading, cleaning, tokenizer training, token shards and packing."""

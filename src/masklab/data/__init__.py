"""Data: corpus reading, cleaning, tokenizer training, token shards and packing, taggers and phrase
units, labelled tasks (tasks.py) and their batches (labelled.py)."""

"""Fine-tuning and transfer learning through the one loop.

config.py  FinetuneConfig (flat keys: --set lr=3e-5, --set objectives.mlm=0.5)
start.py   where training starts: random, builtin:minilm, a masklab run, a Hugging Face checkpoint
modes.py   layer groups, which train in each mode (probe / top-k / full / gradual), layer-wise LR decay
hooks.py   the mode and best-validation selection as hooks of the loop
metrics.py accuracy, macro-F1 and loss of a classification objective on labelled batches
layers.py  per-layer weight change and CKA between the start and the fine-tuned model
run.py     one seed through masklab.train.train, seeds aggregated, the run directory
"""

"""Training any model family through one loop driven by tasks.

loop.py         train(): steps, estimates, checkpoints, exact resume, time budgets, metrics
tasks.py        what a batch, its loss and the final scores are; build_task, fit_model_config
masked.py       the encoder's masked-token pretraining
labelling.py    the encoder's fine-tuning: a label or score per text, a label per character
translation.py  the encoder-decoder's translation
vocabulary.py   which tokens a task reads its data in (char, a BPE, a tokenizer.json, the run's)
scores.py, baselines.py
                the scores of fine-tuned and translation models, and the baselines beside them
optim.py        AdamW with its weight-decay groups, Muon, the learning-rate schedules
evaluate.py     the lecture's estimate_loss and the full, deterministic validation loss
signals.py      Ctrl-C: stop cleanly after the step, or at once on the second
distributed.py  torchrun: DDP, each process's slice of every batch, rank 0 writes, one stop
bench.py        training throughput: ms/step, tokens/s, MFU, peak memory
"""

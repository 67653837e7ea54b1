"""Measuring a model: the lecture's quick estimate and the full, deterministic validation loss.

`estimate_loss` is the lecture's: the mean loss over `eval_iters` random batches of each split of
a task, cheap and noisy, used during training. Its batches come from their own seeded generator,
so an estimate never moves the training batches (and every estimate sees the same batches).

`evaluate_split` scores every non-overlapping window of a split: window i predicts tokens
i*T+1 .. (i+1)*T from tokens i*T .. (i+1)*T-1. It is the number to compare runs by: the same every
time, whatever the evaluation batch size. Reported in nats per token and bits per character.

Nats per token depend on the tokens: a BPE token carries several characters, so its loss is larger
than a character's while the model may be better. Bits per character do not: the total loss over
the scored tokens, in bits, divided by the characters those tokens hold (the tokenizer's
`char_counts`), so runs with any tokenizer compare on the same validation text. For character
tokens it is loss / ln 2.
"""

import math

import numpy as np
import torch
from torch.nn import functional as F

from ..nn.modes import evaluating


@torch.no_grad()
def estimate_loss(model, task, batch_size, eval_iters, seed, device, amp):
    """{"train": mean loss, "val": mean loss} over eval_iters random batches of each split."""
    out = {}
    with evaluating(model):
        for split in ("train", "val"):
            generator = torch.Generator().manual_seed(seed)
            losses = torch.zeros(eval_iters)
            for k in range(eval_iters):
                batch = task.batch(split, batch_size, generator, device)
                with amp:
                    losses[k] = task.loss(model, batch).item()
            out[split] = losses.mean().item()
    return out


@torch.no_grad()
def evaluate_split(model, data, block_size, batch_size=64, device="cpu", char_counts=None):
    """(mean loss in nats per token, bits per character) over every non-overlapping window of
    `data`. `char_counts` (V,) gives the characters of each token id (the tokenizer's
    `char_counts()`); None means one per token (character tokens)."""
    n = (len(data) - 1) // block_size  # windows that have all T targets
    tokens = torch.from_numpy(np.asarray(data[: n * block_size + 1]).astype(np.int64))
    x_all = tokens[:-1].view(n, block_size)  # (n, T)
    y_all = tokens[1:].view(n, block_size)  # (n, T): x shifted by one
    total = 0.0
    with evaluating(model):
        for start in range(0, n, batch_size):
            x = x_all[start : start + batch_size].to(device)  # (b, T)
            y = y_all[start : start + batch_size].to(device)  # (b, T)
            logits, _ = model(x)  # (b, T, V), float32
            total += F.cross_entropy(logits.flatten(0, 1).float(), y.flatten(), reduction="sum").item()
    loss = total / (n * block_size)
    chars = n * block_size if char_counts is None else int(np.asarray(char_counts)[y_all.numpy()].sum())
    return loss, total / math.log(2) / chars

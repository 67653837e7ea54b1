"""Dropout: zero each element with probability p and scale the rest by 1 / (1 - p), so that the
expected value is unchanged. The lecture's idea, with a cheaper random mask.

torch's dropout draws its mask with `bernoulli_`, a float uniform per element. On the CPUs we
measured, that draw costs about three times as much as a 31-bit random integer per element
compared with a threshold, and at the lecture's shape torch's masks were the dearest non-matmul
work of a training step: 226 million draws per step, 151 million of them for the attention
weights (BENCHMARKS.md, "Attention dropout without the slow path"). `keep_mask` draws the integers:

    keep  iff  r >= round(p * 2^31),  r uniform on [0, 2^31)

so P(keep) = 1 - p to within 2^-32 (`bernoulli_` compares a 24-bit float, no closer), and the
kept elements are scaled by the exact inverse of that probability.

One Dropout module serves both attention faces and the feed-forward block; the fast attention
applies `keep_mask` to its weights itself (attention.py). For the tests, `recording_masks` and
`replaying_masks` let one face reuse the masks the other drew, so the two faces can be proven
equal in training mode, dropout included.
"""

import contextlib

import torch
import torch.nn as nn

_RANGE = 2**31  # int32 random_() draws uniformly from [0, 2^31)
_masks = {"record": None, "replay": None}  # the test mode: a list being recorded or replayed


def kept_fraction(p):
    """The probability that keep_mask keeps an element: 1 - p, p rounded to a multiple of 2^-31."""
    return 1 - round(p * _RANGE) / _RANGE


def keep_mask(shape, p, device):
    """A bool mask of `shape`, each element True (kept) with probability kept_fraction(p), drawn
    from torch's default generator (seeded and checkpointed like every other draw of training)."""
    if _masks["replay"] is not None:
        mask = _masks["replay"].pop(0)
        if mask.shape != torch.Size(shape):
            raise RuntimeError(f"replayed dropout mask has shape {tuple(mask.shape)}, wanted {tuple(shape)}")
        return mask
    mask = torch.empty(shape, dtype=torch.int32, device=device).random_() >= round(p * _RANGE)
    if _masks["record"] is not None:
        _masks["record"].append(mask)
    return mask


def dropout(x, p, training=True):
    """x with each element zeroed with probability p and the rest scaled to keep the mean."""
    if not training or p == 0:
        return x
    scale = 1 / kept_fraction(p)
    mask = keep_mask(x.shape, p, x.device)
    if x.dtype in (torch.float32, torch.float64):  # the mask scaled first: one pass over x
        return x * (mask * torch.full((), scale, dtype=x.dtype, device=x.device))
    # bf16 or float16 (under autocast): 1/0.9 in bf16 is 1.109375, so scaling by a bf16 number would
    # shrink the mean; a Python float multiplies in float32 and rounds once, to x's dtype
    return x * mask * scale


class Dropout(nn.Module):
    """nn.Dropout's interface and distribution, with keep_mask's cheaper draw."""

    def __init__(self, p=0.5):
        super().__init__()
        self.p = p

    def forward(self, x):
        return dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


@contextlib.contextmanager
def recording_masks():
    """Inside, every mask keep_mask draws is appended to the list this yields."""
    masks = []
    _masks["record"] = masks
    try:
        yield masks
    finally:
        _masks["record"] = None


@contextlib.contextmanager
def replaying_masks(masks):
    """Inside, keep_mask hands out `masks` in order instead of drawing (each must have the shape
    asked for)."""
    _masks["replay"] = list(masks)
    try:
        yield
    finally:
        _masks["replay"] = None

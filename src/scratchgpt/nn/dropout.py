"""Dropout: zero each element with probability p and scale the rest by 1 / (1 - p), so that the
expected value is unchanged. The lecture's nn.Dropout, with a cheaper random mask.

torch's dropout draws its mask with `bernoulli_`, a float uniform per element. On the CPUs we
measured, that draw costs about three times as much as a 31-bit random integer per element
compared with a threshold, and at the lecture's shape torch's masks were the dearest non-matmul
work of a training step: 226 million draws per step, 151 million of them for the attention
weights (BENCHMARKS.md, "Attention dropout without the slow path"). `keep_mask` draws the integers:

    keep  iff  r >= round(p * 2^31),  r uniform on [0, 2^31)

so P(keep) = 1 - p to within 2^-32 (`bernoulli_` compares a 24-bit float, no closer), and the
kept elements are scaled by the exact inverse of that probability.

One Dropout module serves both attention faces and the feed-forward block; the fast attention
draws the masks of its weights through `AttentionDropout` (attention_dropout.py). Each of them
draws with its `draw_mask`; `drawing_masks(model, draw)` lends a test's own draw to every one in a
model, so that one face can replay the masks the other drew and the two be proven equal in
training mode, dropout included.
"""

import contextlib

import torch
import torch.nn as nn

_RANGE = 2**31  # int32 random_() draws uniformly from [0, 2^31)


def kept_fraction(p):
    """The probability that keep_mask keeps an element: 1 - p, p rounded to a multiple of 2^-31."""
    return 1 - round(p * _RANGE) / _RANGE


def keep_mask(shape, p, device):
    """A bool mask of `shape`, each element True (kept) with probability kept_fraction(p), drawn
    from torch's default generator (seeded and checkpointed like every other draw of training)."""
    return torch.empty(shape, dtype=torch.int32, device=device).random_() >= round(p * _RANGE)


class Dropout(nn.Dropout):
    """nn.Dropout's interface and distribution, with keep_mask's cheaper draw."""

    draw_mask = staticmethod(keep_mask)  # (shape, p, device) -> bool mask; drawing_masks lends another

    def forward(self, x):
        if not self.training or self.p == 0:
            return x
        scale = 1 / kept_fraction(self.p)
        mask = self.draw_mask(x.shape, self.p, x.device)
        if x.dtype in (torch.float32, torch.float64):  # the mask scaled first: one pass over x
            return x * (mask * torch.full((), scale, dtype=x.dtype, device=x.device))
        # bf16 or float16 (under autocast): 1/0.9 in bf16 is 1.109375, so scaling by a bf16 number
        # would shrink the mean; a Python float multiplies in float32 and rounds once, to x's dtype
        return x * mask * scale


@contextlib.contextmanager
def drawing_masks(model, draw):
    """Inside, every dropout of `model` (each module with a `draw_mask`) draws its masks with
    draw(shape, p, device) instead: a test's recording or replaying of masks."""
    modules = [m for m in model.modules() if hasattr(m, "draw_mask")]
    for m in modules:
        m.draw_mask = draw
    try:
        yield model
    finally:
        for m in modules:
            del m.draw_mask

"""Attention with dropout on its weights, made fast on the CPU: what the fast face
(fused.py) computes in training mode on the CPU in place of scaled_dot_product_attention's dropout.

Shapes: B batch, nh heads, T queries, S keys, hs head size.

There, SDPA has no fused kernel with dropout and falls back to separate steps with bernoulli_
masks. Here the masks are dropout.py's cheaper draw, causal attention skips the top-right quarter
of the weights, and torch.compile fuses mask, softmax and dropout (BENCHMARKS.md, "Attention
dropout without the slow path", has the ablation). Where torch.compile cannot run (no C++
compiler), the same steps run eagerly.
"""

import warnings

import torch
import torch.nn as nn
from torch.nn import functional as F

from .dropout import keep_mask, kept_fraction


def _attend(q, k, v, mask, causal, keep):
    """softmax(q k^T / sqrt(hs)) masked, with the weights that `keep` (B, nh, T, S) drops zeroed,
    times v: (B, nh, T, hs). Causal: the T queries are the last T of the S tokens."""
    T, S = q.size(-2), k.size(-2)
    wei = q @ k.transpose(-2, -1) * q.size(-1) ** -0.5  # (B, nh, T, hs) @ (B, nh, hs, S) -> (B, nh, T, S)
    if causal:
        future = torch.ones(T, S, dtype=torch.bool, device=q.device).tril(S - T).logical_not()  # (T, S)
        wei = wei.masked_fill(future, float("-inf"))
    if mask is not None:
        wei = wei.masked_fill(mask.logical_not(), float("-inf"))  # mask broadcasts to (B, nh, T, S)
    return (F.softmax(wei, dim=-1) * keep) @ v  # (B, nh, T, S) @ (B, nh, S, hs) -> (B, nh, T, hs)


def _dropout_attention(q, k, v, mask, causal, keeps, scale_kept):
    """Dropout attention, with one keep mask, or two for causal attention split in halves: the
    first half of the queries sees only the first half of the keys, so the weights, their masks
    and their matmuls are 3/4 of the full (T, T)."""
    if len(keeps) == 2:
        h = q.size(-2) // 2
        y = torch.cat(
            [
                _attend(q[..., :h, :], k[..., :h, :], v[..., :h, :], None, True, keeps[0]),  # (B, nh, h, hs)
                _attend(q[..., h:, :], k, v, None, True, keeps[1]),
            ],
            dim=-2,
        )  # (B, nh, T, hs)
    else:
        y = _attend(q, k, v, mask, causal, keeps[0])
    return y * scale_kept  # the kept weights scaled by 1 / P(keep)


class AttentionDropout(nn.Module):
    """scaled_dot_product_attention(q, k, v, mask, is_causal, dropout_p=p), the dropout drawn by
    keep_mask: (B, nh, T, hs) queries over (B, nh, S, hs) keys and values -> (B, nh, T, hs)."""

    draw_mask = staticmethod(keep_mask)  # (shape, p, device) -> bool mask; dropout.drawing_masks lends another

    def __init__(self, p):
        super().__init__()
        self.p = p
        self.kernel = None  # torch.compile(_dropout_attention) at the first call; itself if that fails

    def forward(self, q, k, v, mask, causal):
        B, nh, T, S = q.size(0), q.size(1), q.size(2), k.size(2)
        if causal and mask is None and T == S and T % 2 == 0:
            keeps = [
                self.draw_mask((B, nh, T // 2, T // 2), self.p, q.device),
                self.draw_mask((B, nh, T // 2, T), self.p, q.device),
            ]
        else:
            keeps = [self.draw_mask((B, nh, T, S), self.p, q.device)]
        if self.kernel is None:
            self.kernel = torch.compile(_dropout_attention, dynamic=None)
        try:
            return self.kernel(q, k, v, mask, causal, keeps, 1 / kept_fraction(self.p))
        except Exception as e:  # the compiler is missing or failed: the same steps, eagerly
            if self.kernel is _dropout_attention:
                raise
            warnings.warn(
                f"torch.compile of dropout attention failed ({type(e).__name__}); running it eagerly", stacklevel=2
            )
            self.kernel = _dropout_attention
            return _dropout_attention(q, k, v, mask, causal, keeps, 1 / kept_fraction(self.p))

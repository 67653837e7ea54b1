"""The transformer block: communication (self-attention) then computation (feed-forward).

Shapes: B batch, T time, C channels (n_embd).
"""

import torch
import torch.nn as nn

from .attention import FusedMultiHeadAttention, MultiHeadAttention


class _ReLUSquaredFunction(torch.autograd.Function):
    """relu(x)^2 with its derivative 2 relu(x) written out: half the memory passes of autograd's."""

    @staticmethod
    def forward(ctx, x):
        r = torch.relu(x)
        ctx.save_for_backward(r)
        return r * r

    @staticmethod
    def backward(ctx, grad):
        (r,) = ctx.saved_tensors
        return grad * (2 * r)


class ReLUSquared(nn.Module):
    """relu(x)^2: the feed-forward non-linearity of the modded-nanogpt speedruns."""

    def forward(self, x):
        return _ReLUSquaredFunction.apply(x)


ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "relu2": ReLUSquared}


class FeedForward(nn.Module):
    """A simple linear layer followed by a non-linearity, applied to each token on its own."""

    def __init__(self, n_embd, dropout, activation="relu"):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd),  # (B, T, C) -> (B, T, 4C)
            ACTIVATIONS[activation](),
            nn.Linear(4 * n_embd, n_embd),  # (B, T, 4C) -> (B, T, C)
            nn.Dropout(dropout),
        )

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    """Transformer block with pre-norm residual connections: x + sa(ln1(x)), then x + ffwd(ln2(x))."""

    def __init__(self, config, causal=True):
        super().__init__()
        if config.attention == "readable":
            self.sa = MultiHeadAttention(config.n_embd, config.n_head, config.block_size,
                                         config.dropout, causal, config.qk_norm)
        else:
            self.sa = FusedMultiHeadAttention(config.n_embd, config.n_head, config.dropout, causal,
                                              config.qk_norm)
        self.ffwd = FeedForward(config.n_embd, config.dropout, config.activation)
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.ln2 = nn.LayerNorm(config.n_embd)

    def forward(self, x, rope=None, cache=None, layer=0):
        """x (B, T, C) -> (B, T, C); rope: rotary (cos, sin) or None; cache: fast path only."""
        attend = self.sa(self.ln1(x), rope) if cache is None else self.sa(self.ln1(x), rope, cache, layer)
        x = x + attend  # (B, T, C)
        x = x + self.ffwd(self.ln2(x))  # (B, T, C)
        return x

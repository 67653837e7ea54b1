"""The transformer block: communication (self-attention) then computation (feed-forward).

Shapes: B batch, T time, C channels (n_embd).
"""

import torch.nn as nn

from .attention import FusedMultiHeadAttention, MultiHeadAttention


class FeedForward(nn.Module):
    """A simple linear layer followed by a non-linearity, applied to each token on its own."""

    def __init__(self, n_embd, dropout):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd),  # (B, T, C) -> (B, T, 4C)
            nn.ReLU(),
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
                                         config.dropout, causal)
        else:
            self.sa = FusedMultiHeadAttention(config.n_embd, config.n_head, config.dropout, causal)
        self.ffwd = FeedForward(config.n_embd, config.dropout)
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.ln2 = nn.LayerNorm(config.n_embd)

    def forward(self, x, cache=None, layer=0):
        attend = self.sa(self.ln1(x)) if cache is None else self.sa(self.ln1(x), cache, layer)
        x = x + attend  # (B, T, C)
        x = x + self.ffwd(self.ln2(x))  # (B, T, C)
        return x

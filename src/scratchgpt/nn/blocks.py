"""The transformer block: communication (self-attention) then computation (feed-forward).

Shapes: B batch, T time, C channels (n_embd).

`Block(config, causal=True)` is the GPT's block; `causal=False` with a `key_mask` makes it an
encoder's. `DecoderBlock` is the encoder-decoder's: causal self-attention, then cross-attention
over the encoder's output, then feed-forward. The attention face (readable or fast) is the
config's `attention`.
"""

import torch
import torch.nn as nn

from .attention import make_attention
from .dropout import Dropout


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


class TanhGELU(nn.GELU):
    """GELU by its tanh approximation, as GPT-2 computes it (Hugging Face's "gelu_new")."""

    def __init__(self):
        super().__init__(approximate="tanh")


ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "relu2": ReLUSquared, "gelu_tanh": TanhGELU}


class FeedForward(nn.Module):
    """A simple linear layer followed by a non-linearity, applied to each token on its own."""

    def __init__(self, n_embd, dropout, activation="relu"):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd),  # (B, T, C) -> (B, T, 4C)
            ACTIVATIONS[activation](),
            nn.Linear(4 * n_embd, n_embd),  # (B, T, 4C) -> (B, T, C)
            Dropout(dropout),
        )

    @property
    def proj(self):
        """The output projection (4C -> C), whose weight `zero_init` starts at zero."""
        return self.net[2]

    def forward(self, x):
        return self.net(x)


class Block(nn.Module):
    """Transformer block with pre-norm residual connections: x + sa(ln1(x)), then x + ffwd(ln2(x))."""

    def __init__(self, config, causal=True):
        super().__init__()
        self.sa = make_attention(config, causal)
        self.ffwd = FeedForward(config.n_embd, config.dropout, config.activation)
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.ln2 = nn.LayerNorm(config.n_embd)

    def forward(self, x, key_mask=None, rope=None, cache=None, layer=0):
        """x (B, T, C) -> (B, T, C); key_mask (B, T): real tokens; rope: rotary (cos, sin) or None;
        cache: a KVCache (fast face only) whose `layer` this block is."""
        x = x + self.sa(self.ln1(x), key_mask=key_mask, rope=rope, cache=cache, layer=layer)  # (B, T, C)
        x = x + self.ffwd(self.ln2(x))  # (B, T, C)
        return x


class DecoderBlock(nn.Module):
    """The decoder's block of the encoder-decoder, pre-norm like Block, with a third sub-layer between
    the two: x + sa(ln1(x)), then x + cross(ln2(x), memory), then x + ffwd(ln3(x))."""

    def __init__(self, config):
        super().__init__()
        self.sa = make_attention(config, causal=True)
        self.cross = make_attention(config, causal=False)
        self.ffwd = FeedForward(config.n_embd, config.dropout, config.activation)
        self.ln1 = nn.LayerNorm(config.n_embd)
        self.ln2 = nn.LayerNorm(config.n_embd)
        self.ln3 = nn.LayerNorm(config.n_embd)

    def forward(self, x, memory, memory_mask, rope=None, cache=None, layer=0):
        """x (B, T, C) target tokens; memory (B, S, C) the encoder's output, memory_mask (B, S) its
        real tokens -> (B, T, C). Rotary angles turn the self-attention only: the source's
        positions are another sequence's."""
        x = x + self.sa(self.ln1(x), rope=rope, cache=cache, layer=layer)  # (B, T, C)
        x = x + self.cross(self.ln2(x), context=memory, key_mask=memory_mask, cache=cache, layer=layer)  # (B, T, C)
        x = x + self.ffwd(self.ln3(x))  # (B, T, C)
        return x

"""The lecture's transformer pieces, readable: attention, feed-forward and the block.

Shapes: B batch, T time (the queries' tokens), S source (the keys' and values' tokens; S = T in
self-attention), C channels (n_embd), nh heads, hs head size (C / nh).

    Head                one head: keys, queries, values; softmax(q k^T / sqrt(hs)) masked by `tril`
    MultiHeadAttention  nh Heads side by side, concatenated on the channel dimension, projected
    FeedForward         Linear, non-linearity, Linear, applied to each token on its own
    Block               pre-norm residuals: x + sa(ln1(x)), then x + ffwd(ln2(x))
    DecoderBlock        the encoder-decoder's: self-attention, cross-attention, feed-forward

Head and MultiHeadAttention have `weights(...)`, the attention weights themselves, which `forward`
uses and the lessons draw. One attention serves the lecture's three transformers; the cases are
arguments, not copies:

    causal self-attention       the GPT: token t attends to tokens 0..t (causal=True)
    bidirectional self-attention
      with a key-padding mask   the encoder: every token attends to every real token; `key_mask`
                                (B, S) is True where a key is a real token, so padding is never
                                attended to (each sequence needs at least one real token)
    cross-attention             the decoder: queries from x (B, T, C), keys and values from the
                                encoder's output `context` (B, S, C), with the source's key_mask

A config's `attention` picks this face ("readable") or the fast one ("fast": fused.py's
FusedMultiHeadAttention, the same function in one kernel, with a key/value cache for decoding).
Two speedrun options act on queries and keys through `prepare_qk` (positional.py), on both faces
alike: `qk_norm` RMS-normalises them, rotary positions (`rope`) rotate them. Dropout is nn.Dropout
with a cheaper mask (dropout.py).
"""

import torch
import torch.nn as nn
from torch.nn import functional as F

from ..errors import InputError
from .activations import ACTIVATIONS
from .dropout import Dropout
from .fused import FusedMultiHeadAttention
from .positional import prepare_qk


class Head(nn.Module):
    """One head of attention."""

    def __init__(self, n_embd, head_size, block_size, dropout, causal=True, qk_norm=False, bias=False):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=bias)  # bias: GPT-2's option, not the lecture's
        self.query = nn.Linear(n_embd, head_size, bias=bias)
        self.value = nn.Linear(n_embd, head_size, bias=bias)
        if causal:
            self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = Dropout(dropout)
        self.causal = causal
        self.qk_norm = qk_norm

    def weights(self, x, context=None, key_mask=None, rope=None):
        """How much each query attends to each key: (B, T, S), every row summing to 1."""
        source = x if context is None else context  # (B, S, C): what the keys come from
        k = prepare_qk(self.key(source), self.qk_norm, rope)  # (B, S, hs)
        q = prepare_qk(self.query(x), self.qk_norm, rope)  # (B, T, hs)
        # attention scores ("affinities"), scaled by 1/sqrt(hs) so softmax stays diffuse at init
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, hs) @ (B, hs, S) -> (B, T, S)
        if self.causal:
            T = x.shape[1]
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # the future is hidden
        if key_mask is not None:
            wei = wei.masked_fill(~key_mask[:, None, :], float("-inf"))  # so is padding: (B, 1, S)
        return F.softmax(wei, dim=-1)  # (B, T, S)

    def forward(self, x, context=None, key_mask=None, rope=None):
        """x (B, T, C) -> (B, T, hs): the weighted average of the values."""
        wei = self.dropout(self.weights(x, context, key_mask, rope))  # (B, T, S)
        v = self.value(x if context is None else context)  # (B, S, hs)
        return wei @ v  # (B, T, S) @ (B, S, hs) -> (B, T, hs)


class MultiHeadAttention(nn.Module):
    """Several heads of attention in parallel, concatenated and projected back to C."""

    def __init__(self, n_embd, n_head, block_size, dropout, causal=True, qk_norm=False, qkv_bias=False):
        super().__init__()
        head_size = n_embd // n_head
        self.heads = nn.ModuleList(
            [Head(n_embd, head_size, block_size, dropout, causal, qk_norm, qkv_bias) for _ in range(n_head)]
        )
        self.proj = nn.Linear(head_size * n_head, n_embd)
        self.dropout = Dropout(dropout)

    def weights(self, x, context=None, key_mask=None, rope=None):
        """Every head's attention weights: (B, nh, T, S)."""
        return torch.stack([h.weights(x, context, key_mask, rope) for h in self.heads], dim=1)

    def forward(self, x, context=None, key_mask=None, rope=None, cache=None, layer=0):
        """x (B, T, C) -> (B, T, C)."""
        if cache is not None:
            raise InputError(
                "the readable attention keeps no key/value cache; convert the model to the fast face to decode with one"
            )
        out = torch.cat([h(x, context, key_mask, rope) for h in self.heads], dim=-1)  # nh x (B, T, hs) -> (B, T, C)
        return self.dropout(self.proj(out))  # (B, T, C)


def make_attention(config, causal=True):
    """The attention face `config.attention` names ("readable" or "fast"), shaped by `config`."""
    qkv_bias = getattr(config, "qkv_bias", False)  # a GPT setting (GPT-2 has these biases)
    if config.attention == "readable":
        return MultiHeadAttention(
            config.n_embd, config.n_head, config.block_size, config.dropout, causal, config.qk_norm, qkv_bias
        )
    return FusedMultiHeadAttention(config.n_embd, config.n_head, config.dropout, causal, config.qk_norm, qkv_bias)


class FeedForward(nn.Module):
    """A simple linear layer followed by a non-linearity, applied to each token on its own."""

    def __init__(self, n_embd, dropout, activation="relu"):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd),  # (B, T, C) -> (B, T, 4C)
            ACTIVATIONS[activation](),  # the lecture's nn.ReLU, or an option (activations.py)
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
    """Transformer block with pre-norm residual connections: x + sa(ln1(x)), then x + ffwd(ln2(x)).
    `causal=False` with a `key_mask` makes it an encoder's."""

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

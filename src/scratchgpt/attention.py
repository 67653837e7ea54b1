"""Self-attention, twice: the lecture's readable form and a fused fast form of the same function.

Shapes: B batch, T time (tokens), C channels (n_embd), nh heads, hs head size (C / nh).

Readable path (the lecture's code, one module per idea):
    Head                one head: keys, queries, values; softmax(q k^T / sqrt(hs)) masked by `tril`
    MultiHeadAttention  nh Heads side by side, concatenated on the channel dimension, projected

Fast path (`FusedMultiHeadAttention`): one Linear computes q, k and v of every head at once, and
`torch.nn.functional.scaled_dot_product_attention` does mask, scale, softmax and the weighted sum
in one kernel (flash attention where the device has it). `tests/test_models.py` proves the two
compute the same function; `gpt.convert` moves weights between them.

`causal=True` (the GPT) lets token t attend to tokens 0..t only; `causal=False` attends everywhere,
as a BERT-like encoder does. Two speedrun options act on queries and keys, on both paths alike:
`qk_norm` RMS-normalises them, and rotary positions (`rope`, from positional.py) rotate them.
"""

import torch
import torch.nn as nn
from torch.nn import functional as F

from .positional import apply_rotary


def prepare_qk(q, k, qk_norm, rope):
    """QK-norm, then rotary positions, on queries and keys (..., T, hs)."""
    if qk_norm:
        q, k = F.rms_norm(q, q.shape[-1:]), F.rms_norm(k, k.shape[-1:])
    if rope is not None:
        q, k = apply_rotary(q, *rope), apply_rotary(k, *rope)
    return q, k


class Head(nn.Module):
    """One head of self-attention."""

    def __init__(self, n_embd, head_size, block_size, dropout, causal=True, qk_norm=False):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = nn.Dropout(dropout)
        self.causal = causal
        self.qk_norm = qk_norm

    def forward(self, x, rope=None):
        B, T, C = x.shape
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
        q, k = prepare_qk(q, k, self.qk_norm, rope)  # (B, T, hs) each; unchanged by default
        # attention scores ("affinities"), scaled by 1/sqrt(hs) so softmax stays diffuse at init
        wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5  # (B, T, hs) @ (B, hs, T) -> (B, T, T)
        if self.causal:
            wei = wei.masked_fill(self.tril[:T, :T] == 0, float("-inf"))  # (B, T, T)
        wei = F.softmax(wei, dim=-1)  # (B, T, T)
        wei = self.dropout(wei)
        v = self.value(x)  # (B, T, hs)
        return wei @ v  # (B, T, T) @ (B, T, hs) -> (B, T, hs)


class MultiHeadAttention(nn.Module):
    """Several heads of self-attention in parallel, concatenated and projected back to C."""

    def __init__(self, n_embd, n_head, block_size, dropout, causal=True, qk_norm=False):
        super().__init__()
        head_size = n_embd // n_head
        self.heads = nn.ModuleList(
            [Head(n_embd, head_size, block_size, dropout, causal, qk_norm) for _ in range(n_head)])
        self.proj = nn.Linear(head_size * n_head, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, rope=None):
        out = torch.cat([h(x, rope) for h in self.heads], dim=-1)  # nh x (B, T, hs) -> (B, T, C)
        return self.dropout(self.proj(out))  # (B, T, C)


class FusedMultiHeadAttention(nn.Module):
    """The same function as MultiHeadAttention, with one QKV projection and a fused attention kernel.

    `qkv.weight` is (3C, C): rows [0, C) are the queries of heads 0..nh-1 in order, then the keys,
    then the values; head h owns rows h*hs .. (h+1)*hs of each part.
    """

    def __init__(self, n_embd, n_head, dropout, causal=True, qk_norm=False):
        super().__init__()
        self.n_head = n_head
        self.qk_norm = qk_norm
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout
        self.causal = causal

    def forward(self, x, rope=None, cache=None, layer=0):
        """x (B, T, C) -> (B, T, C). With a KVCache, x holds only the new tokens: their keys and
        values are appended to the cache and their queries attend over everything cached."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        q, k = prepare_qk(q, k, self.qk_norm, rope)  # (B, nh, T, hs) each; unchanged by default
        mask, is_causal = None, self.causal
        if cache is not None:
            past = cache.length
            k, v = cache.update(layer, k, v)  # (B, nh, past+T, hs) each
            is_causal = self.causal and past == 0
            if self.causal and past > 0 and T > 1:  # new token i sees the cache and new tokens <= i
                mask = torch.ones(T, past + T, dtype=torch.bool, device=x.device).tril(past)  # (T, past+T)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal,
            dropout_p=self.attn_dropout if self.training else 0.0)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again: (B, T, C)
        return self.dropout(self.proj(y))  # (B, T, C)


class KVCache:
    """The keys and values of the tokens seen so far, per layer, for incremental decoding.

    Buffers are allocated once at (B, nh, block_size, hs): memory never grows with the number of
    generated tokens. `length` tokens are filled; the model calls `advance` after each forward.
    """

    def __init__(self, config, batch_size, device, dtype=torch.float32):
        hs = config.n_embd // config.n_head
        shape = (batch_size, config.n_head, config.block_size, hs)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.length = 0

    def update(self, layer, k, v):
        """Store new keys/values k, v (B, nh, T, hs); return all of them so far (B, nh, length+T, hs)."""
        end = self.length + k.size(2)
        self.keys[layer][:, :, self.length:end] = k
        self.values[layer][:, :, self.length:end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def advance(self, n):
        self.length += n

    def reset(self):
        self.length = 0

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
as a BERT-like encoder does.
"""

import torch
import torch.nn as nn
from torch.nn import functional as F


class Head(nn.Module):
    """One head of self-attention."""

    def __init__(self, n_embd, head_size, block_size, dropout, causal=True):
        super().__init__()
        self.key = nn.Linear(n_embd, head_size, bias=False)
        self.query = nn.Linear(n_embd, head_size, bias=False)
        self.value = nn.Linear(n_embd, head_size, bias=False)
        self.register_buffer("tril", torch.tril(torch.ones(block_size, block_size)))
        self.dropout = nn.Dropout(dropout)
        self.causal = causal

    def forward(self, x):
        B, T, C = x.shape
        k = self.key(x)  # (B, T, hs)
        q = self.query(x)  # (B, T, hs)
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

    def __init__(self, n_embd, n_head, block_size, dropout, causal=True):
        super().__init__()
        head_size = n_embd // n_head
        self.heads = nn.ModuleList(
            [Head(n_embd, head_size, block_size, dropout, causal) for _ in range(n_head)])
        self.proj = nn.Linear(head_size * n_head, n_embd)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):
        out = torch.cat([h(x) for h in self.heads], dim=-1)  # nh x (B, T, hs) -> (B, T, C)
        return self.dropout(self.proj(out))  # (B, T, C)


class FusedMultiHeadAttention(nn.Module):
    """The same function as MultiHeadAttention, with one QKV projection and a fused attention kernel.

    `qkv.weight` is (3C, C): rows [0, C) are the queries of heads 0..nh-1 in order, then the keys,
    then the values; head h owns rows h*hs .. (h+1)*hs of each part.
    """

    def __init__(self, n_embd, n_head, dropout, causal=True):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout
        self.causal = causal

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        y = F.scaled_dot_product_attention(
            q, k, v, is_causal=self.causal,
            dropout_p=self.attn_dropout if self.training else 0.0)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again: (B, T, C)
        return self.dropout(self.proj(y))  # (B, T, C)

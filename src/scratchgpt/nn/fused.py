"""The fast face of attention (shapes as in attention.py): one Linear, `qkv`, holds the queries,
keys and values of every head, and scaled_dot_product_attention does mask, scale, softmax and
weighted sum in one kernel (flash attention where the device has it). It composes a cache
(kv_cache.py) for decoding and, in training on the CPU, the compiled dropout attention
(attention_dropout.py). `fuse_heads` and `split_heads` move weights between the faces; the tests
prove the faces equal in every case.
"""

import torch
import torch.nn as nn
from torch.nn import functional as F

from .attention_dropout import AttentionDropout
from .dropout import Dropout
from .kv_cache import attention_mask
from .positional import prepare_qk


class FusedMultiHeadAttention(nn.Module):
    """The same function as MultiHeadAttention, with one QKV projection and a fused attention kernel.

    `qkv.weight` is (3C, C): rows [0, C) are the queries of heads 0..nh-1 in order, then the keys,
    then the values; head h owns rows h*hs .. (h+1)*hs of each part. Cross-attention uses the
    query rows on x and the key and value rows on the context: one layout for every case.
    """

    def __init__(self, n_embd, n_head, dropout, causal=True, qk_norm=False, qkv_bias=False):
        super().__init__()
        self.n_head = n_head
        self.qk_norm = qk_norm
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=qkv_bias)  # qkv.bias (3C,), if any, in the same order
        self.proj = nn.Linear(n_embd, n_embd)
        self.dropout = Dropout(dropout)
        self.attention_dropout = AttentionDropout(dropout)
        self.causal = causal

    def _split(self, t):
        B, L, C = t.shape
        return t.view(B, L, self.n_head, C // self.n_head).transpose(1, 2)  # (B, L, C) -> (B, nh, L, hs)

    def _keys_values(self, context):
        """The context (B, S, C) -> its keys and values (B, nh, S, hs) each, for cross-attention."""
        C = context.size(-1)
        kv = F.linear(context, self.qkv.weight[C:], None if self.qkv.bias is None else self.qkv.bias[C:])  # (B, S, 2C)
        k, v = map(self._split, kv.split(C, dim=2))  # (B, nh, S, hs) each
        return prepare_qk(k, self.qk_norm, None), v  # positions of another sequence: no rotary

    def forward(self, x, context=None, key_mask=None, rope=None, cache=None, layer=0):
        """x (B, T, C) -> (B, T, C). With a KVCache: in self-attention x holds only the new tokens,
        whose keys and values join the cache; in cross-attention the cache keeps the context's."""
        B, T, C = x.shape
        if context is None:
            q, k, v = map(self._split, self.qkv(x).split(C, dim=2))  # 3 x (B, nh, T, hs)
            q, k = prepare_qk(q, self.qk_norm, rope), prepare_qk(k, self.qk_norm, rope)
            if cache is None:
                mask, is_causal = attention_mask(T, T, key_mask, x.device, causal=self.causal)
            else:
                k, v, mask, is_causal = cache.attend(layer, k, v, key_mask, self.causal)  # (B, nh, S, hs) each
        else:
            q_bias = None if self.qkv.bias is None else self.qkv.bias[:C]
            q = prepare_qk(self._split(F.linear(x, self.qkv.weight[:C], q_bias)), self.qk_norm, rope)  # (B, nh, T, hs)
            k, v = self._keys_values(context) if cache is None else cache.source(layer, self._keys_values, context)
            mask, is_causal = attention_mask(T, k.size(2), key_mask, x.device, causal=False)
        p = self.attention_dropout.p if self.training else 0.0
        if p > 0 and q.device.type == "cpu":
            y = self.attention_dropout(q, k, v, mask, is_causal)  # (B, nh, T, hs)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=p)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again: (B, T, C)
        return self.dropout(self.proj(y))  # (B, T, C)


# ---------------------------------------------------------------------------------------------
# Moving weights between the faces, on a state dict, for the attention module at `prefix`.


def fuse_heads(state, prefix, n_head):
    """Readable -> fast, in place: each head's query, key and value weights (hs, C) stacked into
    one qkv weight (3C, C), queries of heads 0..nh-1 first, then keys, then values (and their
    biases (hs,) into qkv.bias (3C,) in the same order, where they have them)."""
    for kind in ("weight", "bias"):
        if f"{prefix}heads.0.query.{kind}" not in state:
            continue  # the lecture's heads have no biases
        parts = []
        for name in ("query", "key", "value"):
            parts += [state.pop(f"{prefix}heads.{h}.{name}.{kind}") for h in range(n_head)]
        state[f"{prefix}qkv.{kind}"] = torch.cat(parts, dim=0)  # 3 nh x (hs, C) -> (3C, C); biases (3C,)
    for h in range(n_head):
        state.pop(f"{prefix}heads.{h}.tril", None)


def split_heads(state, prefix, n_head, tril=None):
    """Fast -> readable, in place: the qkv weight cut into each head's query, key and value weights;
    a causal module's heads get the mask `tril` (the lecture keeps one per head)."""
    for kind in ("weight", "bias"):
        if prefix + f"qkv.{kind}" not in state:
            continue  # no biases: the lecture's
        q, k, v = state.pop(prefix + f"qkv.{kind}").chunk(3, dim=0)  # 3 x (C, C); biases 3 x (C,)
        hs = q.shape[0] // n_head
        for name, w in (("query", q), ("key", k), ("value", v)):
            for h in range(n_head):
                state[f"{prefix}heads.{h}.{name}.{kind}"] = w[h * hs : (h + 1) * hs]  # (hs, C); biases (hs,)
    if tril is not None:
        for h in range(n_head):
            state[f"{prefix}heads.{h}.tril"] = tril.clone()

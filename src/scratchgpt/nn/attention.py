"""Attention, twice: the lecture's readable form and a fused fast form of the same function.

Shapes: B batch, T time (the queries' tokens), S source (the keys' and values' tokens; S = T in
self-attention), C channels (n_embd), nh heads, hs head size (C / nh).

One attention serves the lecture's three transformers; the cases are arguments, not copies:

    causal self-attention       the GPT: token t attends to tokens 0..t (causal=True)
    bidirectional self-attention
      with a key-padding mask   the encoder: every token attends to every real token; `key_mask`
                                (B, S) is True where a key is a real token, so padding is never
                                attended to (each sequence needs at least one real token)
    cross-attention             the decoder: queries from x (B, T, C), keys and values from the
                                encoder's output `context` (B, S, C), with the source's key_mask

Readable face (the lecture's code, one module per idea):
    Head                one head: keys, queries, values; softmax(q k^T / sqrt(hs)) masked by `tril`
    MultiHeadAttention  nh Heads side by side, concatenated on the channel dimension, projected
Both have `weights(...)`, the attention weights themselves, which `forward` uses and the lessons
draw.

Fast face (`FusedMultiHeadAttention`): one Linear, `qkv`, holds the queries, keys and values of
every head, and `torch.nn.functional.scaled_dot_product_attention` does mask, scale, softmax and
weighted sum in one kernel (flash attention where the device has it). With a `KVCache` it decodes
incrementally: self-attention appends each new token's keys and values, cross-attention computes
the source's once.

`fuse_heads` and `split_heads` move weights between the faces; the tests prove the faces equal in
every case. Two speedrun options act on queries and keys through `prepare_qk`, on both faces
alike: `qk_norm` RMS-normalises them, rotary positions (`rope`, from positional.py) rotate them.
"""

import warnings

import torch
import torch.nn as nn
from torch.nn import functional as F

from ..errors import InputError
from .dropout import Dropout, keep_mask, kept_fraction
from .positional import apply_rotary


def prepare_qk(t, qk_norm, rope):
    """QK-norm, then rotary positions, on queries or keys t (..., T, hs); the same shape back."""
    if qk_norm:
        t = F.rms_norm(t, t.shape[-1:])
    if rope is not None:
        t = apply_rotary(t, *rope)
    return t


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

    def forward(self, x, context=None, key_mask=None, rope=None, cache=None, layer=0):
        """x (B, T, C) -> (B, T, hs): the weighted average of the values."""
        _refuse_cache(cache)
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
        _refuse_cache(cache)
        out = torch.cat([h(x, context, key_mask, rope) for h in self.heads], dim=-1)  # nh x (B, T, hs) -> (B, T, C)
        return self.dropout(self.proj(out))  # (B, T, C)


def _refuse_cache(cache):
    if cache is not None:
        raise InputError(
            "the readable attention keeps no key/value cache; convert the model to the fast face to decode with one"
        )


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
        self.attn_dropout = dropout
        self.causal = causal

    def _split(self, t):
        B, L, C = t.shape
        return t.view(B, L, self.n_head, C // self.n_head).transpose(1, 2)  # (B, L, C) -> (B, nh, L, hs)

    def forward(self, x, context=None, key_mask=None, rope=None, cache=None, layer=0):
        """x (B, T, C) -> (B, T, C). With a KVCache: in self-attention x holds only the new tokens,
        whose keys and values join the cache; in cross-attention the context's keys and values are
        computed on the first call and reused after (the context is then not read again)."""
        B, T, C = x.shape
        if context is None:
            q, k, v = map(self._split, self.qkv(x).split(C, dim=2))  # 3 x (B, nh, T, hs)
            q, k = prepare_qk(q, self.qk_norm, rope), prepare_qk(k, self.qk_norm, rope)
            past = 0 if cache is None else cache.length
            if cache is not None:
                k, v = cache.update(layer, k, v)  # (B, nh, past+T, hs) each
        else:
            bias = (None, None) if self.qkv.bias is None else (self.qkv.bias[:C], self.qkv.bias[C:])
            q = prepare_qk(self._split(F.linear(x, self.qkv.weight[:C], bias[0])), self.qk_norm, rope)  # (B, nh, T, hs)
            k, v = cache.source(layer) if cache is not None else (None, None)
            if k is None:
                kv = F.linear(context, self.qkv.weight[C:], bias[1])  # (B, S, 2C)
                k, v = map(self._split, kv.split(C, dim=2))  # (B, nh, S, hs)
                k = prepare_qk(k, self.qk_norm, None)  # positions of another sequence: no rotary
                if cache is not None:
                    cache.keep_source(layer, k, v)
        if context is None and cache is not None and cache.static:
            if key_mask is not None or not self.causal:
                raise InputError("a static KVCache is for causal self-attention without padding")
            mask, is_causal = cache.visible(T), False  # (T, block_size): the unfilled rows hidden
        else:
            mask, is_causal = self._mask(
                T, k.size(2), key_mask, x.device, past if context is None else 0, self.causal and context is None
            )
        if self.training and self.attn_dropout > 0 and q.device.type == "cpu":
            y = attention_with_dropout(q, k, v, mask, is_causal, self.attn_dropout)  # (B, nh, T, hs)
        else:
            y = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, is_causal=is_causal, dropout_p=self.attn_dropout if self.training else 0.0
            )  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again: (B, T, C)
        return self.dropout(self.proj(y))  # (B, T, C)

    @staticmethod
    def _mask(T, S, key_mask, device, past, causal):
        """(attn_mask or None, is_causal) for T queries over S keys, the last T of which are the
        queries' own tokens when causal (`past` keys come before them, from the cache)."""
        if causal and key_mask is None and past == 0:
            return None, True  # the kernel's own causal mask
        mask = None
        if causal and T > 1:  # new token i sees the past and the new tokens <= i
            mask = torch.ones(T, S, dtype=torch.bool, device=device).tril(past)  # (T, S)
        if key_mask is not None:
            padding = key_mask[:, None, None, :]  # (B, 1, 1, S)
            mask = padding if mask is None else mask & padding  # (B, 1, T, S)
        return mask, False


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


_compiled = {"attention": None}  # torch.compile(_dropout_attention) on first use; itself if that fails


def attention_with_dropout(q, k, v, mask, causal, p):
    """What scaled_dot_product_attention computes with dropout_p = p, made fast on the CPU.

    There, SDPA has no fused kernel with dropout and falls back to separate steps with bernoulli_
    masks. Here the masks are dropout.py's cheaper draw, causal attention skips the top-right
    quarter of the weights, and torch.compile fuses mask, softmax and dropout (BENCHMARKS.md,
    "Attention dropout without the slow path", has the ablation). Where torch.compile cannot run (no C++ compiler), the
    same steps run eagerly.
    """
    B, nh, T, S = q.size(0), q.size(1), q.size(2), k.size(2)
    if causal and mask is None and T == S and T % 2 == 0:
        keeps = [keep_mask((B, nh, T // 2, T // 2), p, q.device), keep_mask((B, nh, T // 2, T), p, q.device)]
    else:
        keeps = [keep_mask((B, nh, T, S), p, q.device)]
    if _compiled["attention"] is None:
        _compiled["attention"] = torch.compile(_dropout_attention, dynamic=None)
    try:
        return _compiled["attention"](q, k, v, mask, causal, keeps, 1 / kept_fraction(p))
    except Exception as e:  # the compiler is missing or failed: the same steps, eagerly
        if _compiled["attention"] is _dropout_attention:
            raise
        warnings.warn(
            f"torch.compile of dropout attention failed ({type(e).__name__}); running it eagerly", stacklevel=2
        )
        _compiled["attention"] = _dropout_attention
        return _dropout_attention(q, k, v, mask, causal, keeps, 1 / kept_fraction(p))


def make_attention(config, causal=True):
    """The attention face `config.attention` names ("readable" or "fast"), shaped by `config`."""
    qkv_bias = getattr(config, "qkv_bias", False)  # a GPT setting (GPT-2 has these biases)
    if config.attention == "readable":
        return MultiHeadAttention(
            config.n_embd, config.n_head, config.block_size, config.dropout, causal, config.qk_norm, qkv_bias
        )
    return FusedMultiHeadAttention(config.n_embd, config.n_head, config.dropout, causal, config.qk_norm, qkv_bias)


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


class KVCache:
    """The keys and values of the tokens seen so far, per layer, for incremental decoding; and,
    for cross-attention, the keys and values of the source, computed once per source.

    Self-attention buffers are allocated once at (B, nh, block_size, hs): memory never grows with
    the number of generated tokens. `length` tokens are filled; the model calls `advance` after
    each forward.

    `static=True` keeps every shape the same from one token to the next, so that one compiled
    graph (inference/compiled.py) serves every position: `length` is then a 0-d long tensor,
    advanced in place; new keys and values are written at that position with `index_copy_`; and
    attention reads the whole (B, nh, block_size, hs) buffer, its unfilled rows hidden by
    `visible`. Nothing checks that length stays within block_size (that would read the tensor
    back at every token): the caller counts. Causal self-attention without padding only (the GPT's).
    """

    def __init__(self, config, batch_size, device, dtype=torch.float32, static=False):
        hs = config.n_embd // config.n_head
        shape = (batch_size, config.n_head, config.block_size, hs)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.sources = {}  # layer -> (keys, values) of the source, each (B, nh, S, hs)
        self.static = static
        self.length = torch.zeros((), dtype=torch.long, device=device) if static else 0

    def tensors(self):
        """Every buffer a static cache's compiled step reads or writes in place."""
        return self.keys + self.values + ([self.length] if self.static else [])

    def update(self, layer, k, v):
        """Store new keys/values k, v (B, nh, T, hs); return all of them so far (B, nh, length+T, hs),
        or with a static cache the whole buffers (B, nh, block_size, hs)."""
        if self.static:
            positions = self.length + torch.arange(k.size(2), device=k.device)  # (T,)
            self.keys[layer].index_copy_(2, positions, k)
            self.values[layer].index_copy_(2, positions, v)
            return self.keys[layer], self.values[layer]
        end = self.length + k.size(2)
        self.keys[layer][:, :, self.length : end] = k
        self.values[layer][:, :, self.length : end] = v
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def source(self, layer):
        """The source's (keys, values) for cross-attention in `layer`, or (None, None) before the first call."""
        return self.sources.get(layer, (None, None))

    def keep_source(self, layer, k, v):
        self.sources[layer] = (k, v)

    def visible(self, T):
        """A static cache's attention mask (T, block_size): new token i, at position length + i,
        sees the keys at positions up to its own (the rows after them are not filled yet)."""
        S = self.keys[0].size(2)
        query = self.length + torch.arange(T, device=self.length.device)  # (T,)
        return torch.arange(S, device=query.device) <= query[:, None]  # (T, S)

    def advance(self, n):
        if self.static:
            self.length.add_(n)  # in place: a compiled step's input, the same tensor at every token
        else:
            self.length += n

    def reorder(self, index):
        """Row b of the self-attention cache becomes row index[b] (index (B,)): beam search follows
        the beams it keeps. Only the filled `length` positions move. The sources stay: a beam only
        ever takes the place of a beam of the same source."""
        for buffer in self.keys + self.values:
            buffer[:, :, : self.length] = buffer[index, :, : self.length]  # (B, nh, length, hs)

    def reset(self):
        """Forget the self-attention tokens (a new window); the source stays."""
        if self.static:
            self.length.zero_()
        else:
            self.length = 0

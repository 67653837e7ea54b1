"""Key/value caches for incremental decoding with the fast attention face (fused.py). Shapes: B
batch, nh heads, T new tokens, S keys, hs head size.
"""

import torch

from ..errors import InputError


def attention_mask(T, S, key_mask, device, past=0, causal=True):
    """(attn_mask or None, is_causal) for T queries over S keys, the last T of which are the
    queries' own tokens when causal (`past` keys come before them, from a cache)."""
    if causal and key_mask is None and past == 0:
        return None, True  # the kernel's own causal mask
    mask = None
    if causal and T > 1:  # new token i sees the past and the new tokens <= i
        mask = torch.ones(T, S, dtype=torch.bool, device=device).tril(past)  # (T, S)
    if key_mask is not None:
        padding = key_mask[:, None, None, :]  # (B, 1, 1, S)
        mask = padding if mask is None else mask & padding  # (B, 1, T, S)
    return mask, False


class KVCache:
    """The keys and values of the tokens seen so far, per layer, for incremental decoding; and, for
    cross-attention, the keys and values of the source, computed once per source.

    Self-attention buffers are allocated once at (B, nh, block_size, hs): memory never grows with
    the number of generated tokens. `length` tokens are filled; the model calls `advance` after each
    forward."""

    def __init__(self, config, batch_size, device, dtype=torch.float32):
        hs = config.n_embd // config.n_head
        shape = (batch_size, config.n_head, config.block_size, hs)
        self.keys = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.values = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(config.n_layer)]
        self.sources = {}  # layer -> (keys, values) of the source, each (B, nh, S, hs)
        self.length = 0

    def attend(self, layer, k, v, key_mask, causal):
        """Self-attention's new keys and values k, v (B, nh, T, hs) stored after the cached ones ->
        (keys, values (B, nh, length+T, hs), attn_mask, is_causal) for the T new queries."""
        past, end = self.length, self.length + k.size(2)
        self.keys[layer][:, :, past:end] = k
        self.values[layer][:, :, past:end] = v
        mask, is_causal = attention_mask(k.size(2), end, key_mask, k.device, past, causal)
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end], mask, is_causal

    def source(self, layer, keys_values, context):
        """Cross-attention's (keys, values) of the source in `layer`: keys_values(context) on the
        first call, the same tensors after (the context is then not read again)."""
        if layer not in self.sources:
            self.sources[layer] = keys_values(context)
        return self.sources[layer]

    def advance(self, n):
        self.length += n

    def reorder(self, index):
        """Row b of the self-attention cache becomes row index[b] (index (B,)): beam search follows
        the beams it keeps. Only the filled `length` positions move. The sources stay: a beam only
        ever takes the place of a beam of the same source."""
        for buffer in self.keys + self.values:
            buffer[:, :, : self.length] = buffer[index, :, : self.length]  # (B, nh, length, hs)

    def reset(self):
        """Forget the self-attention tokens (a new window); the source stays."""
        self.length = 0


class StaticKVCache(KVCache):
    """A KVCache of the same shapes at every token, so that one compiled graph (inference/compiled.py)
    serves every position: `length` is a 0-d long tensor,
    advanced in place; new keys and values are written at that position with `index_copy_`; and
    attention reads the whole (B, nh, block_size, hs) buffer, its unfilled rows masked. Nothing
    checks that length stays within block_size (that would read the tensor back at every token):
    the caller counts. Causal self-attention without padding only (the GPT's)."""

    def __init__(self, config, batch_size, device, dtype=torch.float32):
        super().__init__(config, batch_size, device, dtype)
        self.length = torch.zeros((), dtype=torch.long, device=device)

    def tensors(self):
        """Every buffer the compiled step reads or writes in place."""
        return self.keys + self.values + [self.length]

    def attend(self, layer, k, v, key_mask, causal):
        """New keys and values k, v (B, nh, T, hs) written at positions length.. -> (the whole
        buffers (B, nh, block_size, hs), the mask (T, block_size) of what the new tokens see, False)."""
        if key_mask is not None or not causal:
            raise InputError("a static KVCache is for causal self-attention without padding")
        T, S = k.size(2), self.keys[layer].size(2)
        positions = self.length + torch.arange(T, device=k.device)  # (T,): the new tokens' own
        self.keys[layer].index_copy_(2, positions, k)
        self.values[layer].index_copy_(2, positions, v)
        visible = torch.arange(S, device=k.device) <= positions[:, None]  # (T, S): up to its own position
        return self.keys[layer], self.values[layer], visible, False

    def advance(self, n):
        self.length.add_(n)  # in place: a compiled step's input, the same tensor at every token

    def reset(self):
        self.length.zero_()


class SlotKVCache(KVCache):
    """A cache of `batch_size` rows (slots), each its own sequence at its own position, for
    continuous batching (inference/batching.py): `length` is a (B,) long tensor, one position per
    row. A row is filled from a one-sequence KVCache (`load`), decodes one token per step with the
    rows beside it, and is moved or dropped when its sequence leaves. `rows(n)` is the cache of
    the first n rows (views of the same buffers), so a step runs on the rows in use only.

    Attention reads the first `span` positions of the buffers (the longest row's, set by the
    caller before an eager step; None: all block_size, the fixed shape a compiled step needs) and
    a (B, 1, 1, S) mask hides each row's unfilled positions. Nothing checks that a row's length
    stays within block_size: the caller counts."""

    def __init__(self, config, batch_size, device, dtype=torch.float32):
        super().__init__(config, batch_size, device, dtype)
        self.length = torch.zeros(batch_size, dtype=torch.long, device=device)
        self.span = None  # positions attention reads (None: all block_size; a compiled step's)
        self._views = {}

    def rows(self, n):
        """The cache of rows 0..n-1: the same memory, made once per n."""
        if n == self.length.size(0):
            return self
        if n not in self._views:
            view = SlotKVCache.__new__(SlotKVCache)
            view.keys = [k[:n] for k in self.keys]
            view.values = [v[:n] for v in self.values]
            view.sources, view.length, view.span, view._views = {}, self.length[:n], None, {}
            self._views[n] = view
        return self._views[n]

    def attend(self, layer, k, v, key_mask, causal):
        """One new token per row, k, v (B, nh, 1, hs), written at each row's own position ->
        (the first `span` positions of the buffers (B, nh, S, hs), the mask (B, 1, 1, S), False)."""
        if key_mask is not None or not causal or k.size(2) != 1:
            raise InputError("a slot KVCache decodes one token per row of causal self-attention")
        B, S = k.size(0), self.span or self.keys[layer].size(2)
        rows = torch.arange(B, device=k.device)  # (B,)
        self.keys[layer][rows, :, self.length] = k[:, :, 0]  # (B, nh, hs) into each row at its position
        self.values[layer][rows, :, self.length] = v[:, :, 0]
        visible = torch.arange(S, device=k.device) <= self.length[:, None]  # (B, S): up to its own position
        return self.keys[layer][:, :, :S], self.values[layer][:, :, :S], visible[:, None, None, :], False

    def advance(self, n):
        self.length.add_(n)  # every row: one token each

    def load(self, row, cache, n):
        """Row `row` takes the first n positions of a one-sequence cache's keys and values."""
        for mine, theirs in zip(self.keys + self.values, cache.keys + cache.values):
            mine[row, :, :n] = theirs[0, :, :n]  # (nh, n, hs)
        self.length[row] = n

    def move(self, source, row):
        """Row `row` takes row `source`'s sequence (the filled positions only)."""
        n = int(self.length[source])
        for buffer in self.keys + self.values:
            buffer[row, :, :n] = buffer[source, :, :n]  # (nh, n, hs)
        self.length[row] = n

    def reset(self):
        self.length.zero_()

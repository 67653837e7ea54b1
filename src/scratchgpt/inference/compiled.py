"""The cached decode step, compiled: one token's forward without Python's per-op overhead.

A cached step at batch 1 is about a hundred small ops (six layers of LayerNorm, three Linears,
attention, a feed-forward, residual adds); in eager mode each is a trip through Python and the
dispatcher. `torch.compile` turns the whole step into one graph of fused kernels, but only if the
step has the same shapes at every token, or it would compile again for every position. So the
compiled step decodes with a `StaticKVCache` (nn/kv_cache.py): the position is a 0-d tensor, not
a Python int; new keys and values are written at it with `index_copy_`; attention reads the whole
(B, nh, block_size, hs) buffer, the rows not filled yet hidden by a mask. It is the model's own
forward, compiled: there is no second copy of the transformer. Prefill and the window policy's
re-encoding (other lengths) stay eager, on the same static cache.

Batch-1 decoding reads every weight once per token, so how the weights lie in memory matters:
nn.Linear keeps W as (out, in), row-major, and computes x @ W.T, a matrix-vector product that runs
at a third to a half of the memory's speed on the CPUs measured (BENCHMARKS.md). The same numbers
stored column-major (`W.t().contiguous().t()`: same shape, same values, other strides) make it x
times an (in, out) matrix read in order. On the CPU a Decoder keeps such a copy of every Linear
weight (as much memory again as those weights) and runs the model's forward on them with
`torch.func.functional_call`: a snapshot, so make a new Decoder after the weights change.

On CUDA the graph is also replayed as a CUDA graph (compile's "reduce-overhead" mode): the
cache's tensors then keep their addresses from one generation to the next, so `Decoder` lends
static caches from a pool instead of allocating one per generation. One Decoder per model: made
once (the playground makes it when it loads a model) and shared by concurrent generations, each
with a cache of its own.
"""

import threading
import time
from contextlib import contextmanager

import torch
from torch import nn
from torch.func import functional_call

from ..errors import ConfigError, a_or_an
from ..nn.kv_cache import StaticKVCache
from ..nn.modes import evaluating


def compilable(config):
    """Whether a model of this config decodes with a key/value cache (a GPT's fast attention)."""
    return config.kind == "gpt" and config.attention == "fast"


def check_compilable(config):
    """Refuse, in one line, a model whose decoding has nothing to compile."""
    if not compilable(config):
        what = {"gpt": "a GPT with the readable attention", "bigram": "a bigram model"}.get(
            config.kind, f"{a_or_an(config.kind)} model"
        )
        raise ConfigError(f"compile speeds up decoding with a key/value cache, and {what} has none")


def _step(model, weights, idx, cache):
    """The model's own forward for one token per sequence, with `weights` in place of its own."""
    return functional_call(model, weights, (idx,), {"cache": cache})


class Decoder:
    """A model's compiled decode step and the static caches it decodes with.

    `decoder(idx, cache)` is `model(idx, cache=cache)` compiled for one new token per sequence,
    idx (B, 1) -> logits (B, 1, V); a new batch size compiles once more, except with `any_batch`
    (the playground's decode loop, whose batch changes whenever a stream joins or leaves): then
    the second batch size compiles a graph for every size.
    """

    def __init__(self, model, any_batch=False):
        check_compilable(model.config)
        self.model = model
        self.cuda = next(model.parameters()).device.type == "cuda"
        self.weights = (
            {}
            if self.cuda
            else {  # name -> the Linear weight, column-major (see above)
                f"{name}.weight": m.weight.detach().t().contiguous().t()
                for name, m in model.named_modules()
                if isinstance(m, nn.Linear)
            }
        )
        # dynamic=False: one graph of fixed shapes; with any_batch, torch's automatic dynamic
        # shapes: a graph for the first batch size, then one for every other. fullgraph: an error,
        # not a silent slow path, if the step ever breaks out of the graph. Every Decoder shares
        # the compiled graphs of its shapes: the model and weights are inputs, not constants.
        self.step = torch.compile(
            _step,
            dynamic=None if any_batch else False,
            fullgraph=True,
            mode="reduce-overhead" if self.cuda and not any_batch else None,
        )
        self._free = []  # static caches no generation is using
        self._lock = threading.Lock()

    def __call__(self, idx, cache):
        """idx (B, 1), the next token of each sequence, at position cache.length -> logits (B, 1, V)."""
        try:
            return self.step(self.model, self.weights, idx, cache)
        except torch._dynamo.exc.TorchDynamoException as e:  # no C++ compiler, an unsupported op, ...
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise ConfigError(f"--compile: compiling the decode step failed ({reason})") from None

    def warm_up(self, batch_size):
        """Compile for this batch size now (one step on an empty cache) rather than at the first
        token; the seconds it took."""
        start = time.perf_counter()
        dtype = next(self.model.parameters()).dtype
        with torch.no_grad(), evaluating(self.model), self.cache(batch_size, dtype) as kv:
            self(torch.zeros(batch_size, 1, dtype=torch.long, device=kv.length.device), kv)
        return time.perf_counter() - start

    @contextmanager
    def cache(self, batch_size, dtype):
        """A static KVCache for one generation (empty), given back to the pool after it."""
        device = next(self.model.parameters()).device
        with self._lock:
            fits = [c for c in self._free if c.keys[0].shape[0] == batch_size and c.keys[0].dtype == dtype]
            if fits:
                self._free.remove(fits[0])
        kv = fits[0] if fits else self._new_cache(batch_size, device, dtype)
        kv.reset()
        try:
            yield kv
        finally:
            with self._lock:
                self._free.append(kv)

    def _new_cache(self, batch_size, device, dtype):
        kv = StaticKVCache(self.model.config, batch_size, device, dtype)
        if self.cuda:  # CUDA graphs may write in place only to tensors whose address never changes
            for t in kv.tensors():
                torch._dynamo.mark_static_address(t)
        return kv

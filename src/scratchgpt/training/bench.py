"""Training throughput: how fast a training step runs, and how close to the hardware's limit.

`scratchgpt bench` times the real training step (`loop.training_step`: the task's batches from the
token memmap, forward, backward, clipping, optimiser) of a preset on one device, for the readable and the
fast path side by side, with torch.compile off and/or on. It reports ms/step, tokens/s, peak memory
and model FLOPs utilisation (MFU): the model's matmul FLOPs per second divided by a peak this
module measures itself, a large matmul in the training dtype on the same device.

FLOPs per token (the PaLM paper's count, forward + backward = 3 x forward):
    6 N          for the N weights of every Linear layer (2 FLOPs per multiply-add, x3)
    12 L T C     for attention's two (T, T) matmuls in L layers (a causal mask's skipped half counted)
"""

import dataclasses
import resource
import sys
import time

import torch

from ..config import ModelConfig
from ..device import autocast, synchronize, training_dtype
from ..models.gpt import GPTLanguageModel
from .loop import training_step
from .optim import make_optimizer


def flops_per_token(config: ModelConfig):
    """Training FLOPs per token of a GPT of this shape (see the module docstring)."""
    C, V, L, T = config.n_embd, config.vocab_size, config.n_layer, config.block_size
    linear = L * (3 * C * C + C * C + 8 * C * C) + C * V  # qkv, proj, feed-forward; lm_head
    return 6 * linear + 12 * L * T * C


def matmul_peak(device, dtype, size=None, seconds=1.0):
    """Measured FLOP/s of a square matmul in `dtype` on `device`: the best of as many timings as fit
    in `seconds`, and at least one (where the dtype is emulated, one 1024^2 bf16 matmul on a CPU can
    take seconds by itself). The first timing includes kernel selection; the best of several drops it."""
    size = size or (8192 if device.type == "cuda" else 1024)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best, deadline = 0.0, time.perf_counter() + seconds
    while True:
        synchronize(device)
        start = time.perf_counter()
        a @ b
        synchronize(device)
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
        if time.perf_counter() >= deadline:
            return best


def peak_memory_bytes(device):
    """Peak memory so far: allocated tensors on CUDA, the process's resident set elsewhere."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # macOS reports bytes, Linux KiB


def bench_step(model_config, train_config, task, device, attention, compile, steps, warmup, dtype="auto"):
    """Time `steps` training steps after `warmup` untimed ones, multiplying in `dtype` (auto: as
    training would); a dict of the measurements."""
    torch.manual_seed(train_config.seed)
    config = dataclasses.replace(model_config, attention=attention)
    model = GPTLanguageModel(config).to(device).train()
    optimizer = make_optimizer(model, train_config)
    forward = torch.compile(model) if compile else model
    amp = autocast(device, dtype if dtype != "auto" else training_dtype(device, config, train_config))
    generator = torch.Generator().manual_seed(train_config.seed)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def run(n):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(n):
            loss, _ = training_step(forward, model, optimizer, task, train_config, generator, device, amp)
        loss.item()
        synchronize(device)
        return time.perf_counter() - start

    warmup_seconds = run(warmup)
    seconds = run(steps)
    tokens = task.batch_tokens(train_config.batch_size)
    return {
        "attention": attention,
        "compile": compile,
        "dtype": dtype,
        "ms_per_step": 1000 * seconds / steps,
        "tokens_per_s": tokens * steps / seconds,
        "warmup_s": warmup_seconds,
        "achieved_flops": flops_per_token(config) * tokens * steps / seconds,
        "peak_memory_mb": peak_memory_bytes(device) / 2**20,
    }

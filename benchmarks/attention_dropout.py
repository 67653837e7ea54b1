"""Attention dropout on the CPU: the ablation behind nn/attention_dropout.py's AttentionDropout, and
the lecture preset's training step before and after.

1. One attention layer at the lecture's shape (batch 64, 6 heads, T 256, head size 64), forward and
   backward: SDPA without dropout (the floor), SDPA with dropout 0.2 (what the fast face ran
   before: no fused CPU kernel, bernoulli_ masks), the same steps eagerly with torch's dropout,
   with dropout.py's masks, compiled, and compiled in causal halves (what runs now).
2. One residual dropout on (64, 256, 384), forward and backward: torch's against dropout.py's.
3. The lecture preset's training step (dropout 0.2), float32 and bf16 autocast, with torch's
   dropout everywhere (before) and with this project's (after).
Rows alternate, round after round, so a busy machine slows them alike; medians are reported.

    python benchmarks/attention_dropout.py --rounds 3 [--step-rounds 2] [--batch 64] [--no-step]
"""

import argparse
import json
import platform
import statistics
import time
from contextlib import contextmanager, nullcontext

import torch
from torch.nn import functional as F

from scratchgpt import GPTLanguageModel, ModelConfig, TrainConfig
from scratchgpt.device import autocast, cpu_flags, device_name
from scratchgpt.nn.attention_dropout import AttentionDropout, _attend, _dropout_attention
from scratchgpt.nn.dropout import Dropout, keep_mask, kept_fraction
from scratchgpt.training.optim import make_optimizer

NH, T, HS, P = 6, 256, 64, 0.2  # the lecture's heads, block, head size, dropout


def attention_rows(B):
    torch.manual_seed(0)
    q, k, v = [torch.randn(B, NH, T, HS, requires_grad=True) for _ in range(3)]
    compiled_full = torch.compile(_dropout_attention)
    compiled_halves = torch.compile(_dropout_attention)
    scale = 1 / kept_fraction(P)

    def eager_torch_dropout():
        wei = (q @ k.transpose(-2, -1) * HS**-0.5).masked_fill(
            torch.ones(T, T, dtype=torch.bool).tril().logical_not(), float("-inf")
        )
        return F.dropout(F.softmax(wei, dim=-1), P) @ v

    def full_keep():
        return [keep_mask((B, NH, T, T), P, q.device)]

    def half_keeps():
        return [keep_mask((B, NH, T // 2, T // 2), P, q.device), keep_mask((B, NH, T // 2, T), P, q.device)]

    return {
        "SDPA, no dropout (the floor)": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True),
        "SDPA, dropout 0.2 (before)": lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=P),
        "eager steps, torch's dropout": eager_torch_dropout,
        "eager steps, dropout.py's masks": lambda: _attend(q, k, v, None, True, full_keep()[0]) * scale,
        "compiled, full (T, T)": lambda: compiled_full(q, k, v, None, True, full_keep(), scale),
        "compiled, causal halves (now)": lambda: compiled_halves(q, k, v, None, True, half_keeps(), scale),
    }, torch.randn(B, NH, T, HS)


def residual_rows(B):
    x = torch.randn(B, T, 384, requires_grad=True)
    return {
        "torch's dropout": lambda: F.dropout(x, P),
        "dropout.py's dropout": lambda: Dropout(P)(x),
    }, torch.randn(B, T, 384)


def timed(fn, grad):
    start = time.perf_counter()
    fn().backward(grad)
    return 1000 * (time.perf_counter() - start)


def interleaved(rows, grad, rounds):
    for fn in rows.values():
        timed(fn, grad)  # warm-up, compilation included
    times = {name: [] for name in rows}
    for _ in range(rounds):
        for name, fn in rows.items():
            times[name].append(timed(fn, grad))
    return {name: statistics.median(t) for name, t in times.items()}


@contextmanager
def torchs_dropout():
    """The fast face as it was: SDPA's own dropout on the weights, F.dropout on the residuals."""
    saved = AttentionDropout.forward, Dropout.forward
    AttentionDropout.forward = lambda self, q, k, v, mask, causal: F.scaled_dot_product_attention(
        q, k, v, attn_mask=mask, is_causal=causal, dropout_p=self.p
    )
    Dropout.forward = lambda self, x: F.dropout(x, self.p, self.training)
    try:
        yield
    finally:
        AttentionDropout.forward, Dropout.forward = saved


def step_rows(B, rounds):
    torch.manual_seed(0)
    model = GPTLanguageModel(ModelConfig(vocab_size=65, block_size=T, n_embd=384, n_head=6, n_layer=6, dropout=P))
    optimizer = make_optimizer(model, TrainConfig(lr=3e-4))
    x, y = torch.randint(0, 65, (2, B, T)).unbind(0)

    def step(dtype, before):
        with torchs_dropout() if before else nullcontext():
            start = time.perf_counter()
            with autocast(torch.device("cpu"), dtype):
                _, loss = model(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            return 1000 * (time.perf_counter() - start)

    cases = {
        f"{dtype}, {'torch' if before else 'this project'}'s dropout": (dtype, before)
        for dtype in ("float32", "bfloat16")
        for before in (True, False)
    }
    for case in cases.values():
        step(*case)  # warm-up
    times = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            times[name].append(step(*case))
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--step-rounds", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="sequences per batch (default: the lecture's 64)")
    parser.add_argument("--no-step", dest="step", action="store_false", help="skip the whole training step")
    args = parser.parse_args()
    report = {
        "cpu": device_name(torch.device("cpu")),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "flags": sorted(f for f in cpu_flags() if f in {"avx2", "avx512_f", "avx512_bf16", "amx_bf16"}),
        "batch": args.batch,
        "attention_ms": interleaved(*attention_rows(args.batch), args.rounds),
        "residual_ms": interleaved(*residual_rows(args.batch), args.rounds),
    }
    if args.step:
        report["lecture_step_ms"] = step_rows(args.batch, args.step_rounds)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

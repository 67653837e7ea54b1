"""Where bfloat16 pays on this CPU: one training step in float32 and in bf16 autocast, width by width.

`--dtype auto` trains in bf16 on a CPU with native bf16 (AMX or AVX-512 BF16) from the width
(n_embd) in device.BF16_CPU_MIN_WIDTH up; this sweep is how that width was chosen. Each width is
the `cpu` preset's shape (4 layers, block 64, batch 32, heads of 64 channels) made wider or
narrower; then nanoGPT's CPU shape (width 128 in 4 heads, batch 12); the last row is the lecture's
shape (6 layers of 384, block 256, batch 64) without dropout. Rows
alternate, round after round, so a busy machine slows them alike; the table reports medians.

    python benchmarks/cpu_bf16.py --rounds 3 --steps 3 [--widths 64 128 192 256 384 512] [--no-lecture]
"""

import argparse
import json
import platform
import statistics
import time

import torch

from scratchgpt import GPTLanguageModel, ModelConfig, TrainConfig
from scratchgpt.device import autocast, cpu_flags, device_name, native_bf16
from scratchgpt.training.optim import make_optimizer

CPU = torch.device("cpu")


def shapes(widths, lecture):
    rows = {
        f"width {w} (block 64, batch 32)": (
            ModelConfig(vocab_size=65, block_size=64, n_embd=w, n_head=w // 64, n_layer=4, dropout=0.0),
            32,
        )
        for w in widths
    }
    rows["nanoGPT's CPU shape (128, 4 heads, block 64, batch 12)"] = (
        ModelConfig(vocab_size=65, block_size=64, n_embd=128, n_head=4, n_layer=4, dropout=0.0),
        12,
    )
    if lecture:
        rows["lecture shape, dropout 0 (384, block 256, batch 64)"] = (
            ModelConfig(vocab_size=65, block_size=256, n_embd=384, n_head=6, n_layer=6, dropout=0.0),
            64,
        )
    return rows


def time_steps(model, optimizer, batch, dtype, steps, generator):
    T = model.config.block_size
    x = torch.randint(0, 65, (batch, T), generator=generator)  # (B, T)
    y = torch.randint(0, 65, (batch, T), generator=generator)
    start = time.perf_counter()
    for _ in range(steps):
        with autocast(CPU, dtype):
            _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return 1000 * (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--widths", type=int, nargs="+", default=[64, 128, 192, 256, 384, 512])
    parser.add_argument("--no-lecture", dest="lecture", action="store_false", help="skip the lecture's shape")
    args = parser.parse_args()
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    built = {}
    for name, (config, batch) in shapes(args.widths, args.lecture).items():
        model = GPTLanguageModel(config)
        built[name] = (model, make_optimizer(model, TrainConfig(lr=1e-3)), batch)
        for dtype in ("float32", "bfloat16"):
            time_steps(model, built[name][1], batch, dtype, 1, generator)  # warm-up
    timings = {(name, dtype): [] for name in built for dtype in ("float32", "bfloat16")}
    for _ in range(args.rounds):
        for name, (model, optimizer, batch) in built.items():
            for dtype in ("float32", "bfloat16"):
                timings[name, dtype].append(time_steps(model, optimizer, batch, dtype, args.steps, generator))
    rows = []
    for name in built:
        fp32, bf16 = statistics.median(timings[name, "float32"]), statistics.median(timings[name, "bfloat16"])
        rows.append({"shape": name, "float32_ms": fp32, "bfloat16_ms": bf16, "bf16_speedup": fp32 / bf16})
    shown = {"avx2", "avx512f", "avx512_f", "avx512_bf16", "amx_bf16", "amx_tile"}
    flags = sorted(f for f in cpu_flags() if f in shown)
    print(
        json.dumps(
            {
                "cpu": device_name(CPU),
                "flags": flags,
                "native_bf16": native_bf16(),
                "threads": torch.get_num_threads(),
                "torch": torch.__version__,
                "python": platform.python_version(),
                "rows": rows,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

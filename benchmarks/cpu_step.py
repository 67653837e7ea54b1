"""One training step at nanoGPT's CPU shape: a nanoGPT-like step against scratchgpt's, in one run.

nanoGPT's CPU recipe trains 4 layers, 4 heads, width 128, block 64, batch 12 in float32 without
compile. nanoGPT itself is not on this machine, so the baseline is its recipe's model built from
scratchgpt's fast path with nanoGPT's choices: GELU, tied embeddings, and AdamW stepped one tensor
at a time (what torch does on a CPU unless asked otherwise). The rows alternate, round after
round, so a busy machine slows them alike; the table reports the median ms/step of each.

    python benchmarks/cpu_step.py --rounds 5 --steps 20
"""

import argparse
import dataclasses
import json
import statistics
import time

import torch

from scratchgpt import GPTLanguageModel, ModelConfig, TrainConfig
from scratchgpt.training.optim import make_optimizer

SHAPE = ModelConfig(vocab_size=65, block_size=64, n_embd=128, n_head=4, n_layer=4, dropout=0.0)
BATCH = 12


def nanogpt_like():
    model = GPTLanguageModel(dataclasses.replace(SHAPE, activation="gelu", tie_embeddings=True))
    return model, torch.optim.AdamW(model.parameters(), lr=1e-3, foreach=False, fused=False)


def scratchgpt_step(**model_options):
    def build():
        model = GPTLanguageModel(dataclasses.replace(SHAPE, **model_options))
        return model, make_optimizer(model, TrainConfig(lr=1e-3))

    return build


ROWS = {
    "nanoGPT-like (GELU, tied, per-tensor AdamW)": nanogpt_like,
    "scratchgpt cpu preset choices (ReLU, fused AdamW)": scratchgpt_step(),
    "scratchgpt, 2 heads of 64 (the cpu preset's heads)": scratchgpt_step(n_head=2),
}


def time_steps(model, optimizer, steps, generator):
    x = torch.randint(0, 65, (BATCH, 64), generator=generator)  # (B, T)
    y = torch.randint(0, 65, (BATCH, 64), generator=generator)
    start = time.perf_counter()
    for _ in range(steps):
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return 1000 * (time.perf_counter() - start) / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    built = {name: build() for name, build in ROWS.items()}
    generator = torch.Generator().manual_seed(0)
    for model, optimizer in built.values():
        time_steps(model, optimizer, 3, generator)  # warm-up
    timings = {name: [] for name in ROWS}
    for _ in range(args.rounds):
        for name, (model, optimizer) in built.items():
            timings[name].append(time_steps(model, optimizer, args.steps, generator))
    base = statistics.median(next(iter(timings.values())))
    report = {
        name: {"ms_per_step": statistics.median(t), "speedup": base / statistics.median(t)}
        for name, t in timings.items()
    }
    print(
        json.dumps(
            {"threads": torch.get_num_threads(), "torch": torch.__version__, "batch": BATCH, "rows": report}, indent=2
        )
    )


if __name__ == "__main__":
    main()

"""ms per training step of the encoder-decoder on a TSV of pairs: characters against sub-words.

    OMP_NUM_THREADS=1 RAYON_NUM_THREADS=1 python benchmarks/pair_step.py ../shared/data/real/bible_en_es.tsv \
        --threads 1 --out results.json char:256 char:320 bpe2000:128 bpe4000:128 bpe8000:128 bpe4000:128:128

Each variant is TOKENS:BLOCK[:WIDTH] on seq2seq-cpu's shape otherwise (2 + 2 blocks, 2 heads, width
64, batch 128, AdamW): TOKENS is char or bpeN (a byte-level BPE of N tokens a side, separate
vocabularies, trained on the training split as `train --tokenizer bpe --vocab-size N` does). The
task keeps the pairs that fit BLOCK, as training does; each step is `loop.training_step` (batch
drawn and encoded, forward, backward, clipping, AdamW). After `--warmup` untimed steps each, the
variants take turns, `--steps` steps a turn for `--rounds` turns, and the median turn is kept.
Also recorded: the 1-minute load average before and after (other work on the machine), the pairs
the block keeps, the real tokens of a batch (source + target + [EOS]) and the tokens the model runs
on once each side is padded to the batch's longest.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import time

import torch


def build(data, variant, batch_size):
    from scratchgpt.config import PRESETS
    from scratchgpt.models.registry import build_model
    from scratchgpt.training.optim import make_optimizer
    from scratchgpt.training.tasks import build_task, fit_model_config

    tokens, block, *width = variant.split(":")
    model_config, train_config = PRESETS["seq2seq-cpu"]
    model_config = dataclasses.replace(model_config, block_size=int(block), n_embd=int(width[0]) if width else 64)
    bpe = tokens.startswith("bpe")
    train_config = dataclasses.replace(
        train_config,
        task="pairs",
        batch_size=batch_size,
        tokenizer="bpe" if bpe else "char",
        bpe_vocab_size=int(tokens[3:]) if bpe else 0,
    )
    start = time.perf_counter()
    task = build_task(model_config, train_config, data)
    built = time.perf_counter() - start
    model_config = fit_model_config(model_config, task)
    torch.manual_seed(train_config.seed)
    model = build_model(model_config).train()
    return {
        "variant": variant,
        "task": task,
        "model": model,
        "optimizer": make_optimizer(model, train_config),
        "train_config": train_config,
        "generator": torch.Generator().manual_seed(train_config.seed),
        "build_s": built,
        "parameters": model.num_parameters(),
    }


def steps(v, n):
    from scratchgpt.training.loop import training_step

    start = time.perf_counter()
    for _ in range(n):
        loss, _ = training_step(
            v["model"],
            v["model"],
            v["optimizer"],
            v["task"],
            v["train_config"],
            v["generator"],
            torch.device("cpu"),
            contextlib.nullcontext(),
        )
    loss.item()
    return (time.perf_counter() - start) / n


def batch_shape(v, batches=50):
    """(real tokens, padded tokens) of an average training batch (a generator of its own)."""
    generator, real, padded = torch.Generator().manual_seed(0), 0, 0
    for _ in range(batches):
        src, src_mask, tgt, targets = v["task"].batch("train", v["train_config"].batch_size, generator, "cpu")
        real += src_mask.sum().item() + (targets != -100).sum().item()
        padded += src.numel() + tgt.numel()
    return real / batches, padded / batches


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data")
    parser.add_argument("variants", nargs="+", help="TOKENS:BLOCK[:WIDTH], e.g. char:256 bpe4000:128")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="write the results as JSON here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load = os.getloadavg()[0]  # the machine's other work: the 1-minute load average

    variants = [build(args.data, name, args.batch_size) for name in args.variants]
    for v in variants:
        steps(v, args.warmup)
    times = {v["variant"]: [] for v in variants}
    for _ in range(args.rounds):
        for v in variants:
            times[v["variant"]].append(steps(v, args.steps))
    rows = []
    for v in variants:
        real, padded = batch_shape(v)
        task = v["task"]
        row = {
            "variant": v["variant"],
            "ms_per_step": 1000 * statistics.median(times[v["variant"]]),
            "turns_ms": [round(1000 * t, 1) for t in times[v["variant"]]],
            "parameters": v["parameters"],
            "kept_train_pairs": len(task.pairs["train"]),
            "too_long": task.too_long,
            "batch_real_tokens": real,
            "batch_padded_tokens": padded,
            "task_build_s": v["build_s"],
        }
        rows.append(row)
        print(
            f"{row['variant']:>16}: {row['ms_per_step']:7.1f} ms/step, {row['parameters'] / 1e6:.2f}M parameters, "
            f"{row['kept_train_pairs']:,} train pairs kept, a batch {real:,.0f} tokens ({padded:,.0f} padded), "
            f"task built in {v['build_s']:.1f} s",
            flush=True,
        )
    if args.out:
        summary = {"data": args.data, "threads": args.threads, "batch_size": args.batch_size}
        summary |= {"torch": torch.__version__, "load_average_before_after": [load, os.getloadavg()[0]]}
        with open(args.out, "w", encoding="utf-8") as f:
            json.dump({**summary, "results": rows}, f, indent=1)


if __name__ == "__main__":
    sys.exit(main())

"""Speedrun ablations: full-validation loss of a preset and of variants of it, over several seeds.

Each run trains in this process with `scratchgpt.train`, in a temporary run directory, then scores
the whole validation split. Results are appended to a JSON-lines file one run at a time (a stopped
sweep keeps what it finished), and `--table` prints mean ± std per variant as a Markdown table.

    python benchmarks/speedrun.py --preset speedrun-cpu --max-time 40 --seeds 1 2 3 \
        --variants base no-rotary adamw --out results/ablation-time.jsonl
    python benchmarks/speedrun.py --table results/ablation-time.jsonl
"""

import argparse
import json
import statistics
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

# Each variant changes the preset's settings in one way (leave-one-out for the options it has on).
VARIANTS = {
    "base": {},
    "no-rotary": {"position": "learned"},
    "no-qk-norm": {"qk_norm": False},
    "relu2": {"activation": "relu2"},
    "gelu": {"activation": "gelu"},
    "no-zero-init": {"zero_init": False},
    "untied": {"tie_embeddings": False},
    "adamw": {"optimizer": "adamw"},
    "muon-lr-0.02": {"muon_lr": 0.02},
    "batch-24": {"batch_size": 24},
    "batch-48": {"batch_size": 48},
    "cosine": {"schedule": "cosine"},
    "dropout-0.1": {"dropout": 0.1},
    "nanogpt-cpu": {
        "n_head": 4,
        "batch_size": 12,
        "lr": 1e-3,
        "position": "learned",
        "qk_norm": False,
        "activation": "gelu",
        "zero_init": False,
        "tie_embeddings": True,
        "optimizer": "adamw",
        "schedule": "cosine",
        "warmup_iters": 100,
        "beta2": 0.99,
        "weight_decay": 0.1,
    },
}


def run(preset_name, variant, seed, budget, data):
    from scratchgpt import preset, train  # here, not above: --table needs no torch
    from scratchgpt.config import apply_overrides

    model_config, train_config = preset(preset_name)
    overrides = {**VARIANTS[variant], "seed": seed, "sample_tokens": 0, **budget}
    model_config, train_config = apply_overrides(model_config, train_config, overrides)
    with tempfile.TemporaryDirectory() as tmp:
        result = train(model_config, train_config, Path(tmp) / "run", data=data, progress=False, log=lambda *_: None)
    return {
        "preset": preset_name,
        "variant": variant,
        "seed": seed,
        **budget,
        "steps": result.steps,
        "train_seconds": round(result.train_seconds, 2),
        "val_loss": round(result.val_loss, 4),
        "tokens_per_s": round(result.tokens_per_second),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def table(path):
    by_variant = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        record = json.loads(line)
        by_variant[record["variant"]].append(record)
    print("| variant | seeds | steps | train s | tokens/s | full-val loss (mean ± std) |")
    print("|---|---|---|---|---|---|")
    for variant, records in by_variant.items():
        losses = [r["val_loss"] for r in records]
        std = statistics.stdev(losses) if len(losses) > 1 else 0.0
        print(
            f"| {variant} | {len(records)} | {statistics.mean(r['steps'] for r in records):.0f} "
            f"| {statistics.mean(r['train_seconds'] for r in records):.1f} "
            f"| {statistics.mean(r['tokens_per_s'] for r in records):,.0f} "
            f"| {statistics.mean(losses):.4f} ± {std:.4f} |"
        )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--preset", default="speedrun-cpu")
    parser.add_argument("--variants", nargs="+", default=["base"], choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    budget = parser.add_mutually_exclusive_group()
    budget.add_argument("--max-time", type=float, help="seconds of training per run")
    budget.add_argument("--max-iters", type=int, help="steps per run (no time limit)")
    parser.add_argument("--data", type=Path, help="text file (default: $SCRATCHGPT_DATA or download)")
    parser.add_argument("--out", type=Path, help="append one JSON line per run here")
    parser.add_argument("--table", type=Path, metavar="JSONL", help="summarise a results file and exit")
    args = parser.parse_args()
    if args.table:
        return table(args.table)
    if args.max_time is not None:
        budget = {"max_time": args.max_time}
    elif args.max_iters is not None:
        budget = {"max_iters": args.max_iters, "max_time": 0.0}
    else:
        budget = {}
    for seed in args.seeds:  # round-robin over the variants: a machine that speeds up or slows
        for variant in args.variants:  # down during the sweep shifts every variant alike
            record = run(args.preset, variant, seed, budget, args.data)
            print(json.dumps(record), flush=True)
            if args.out:
                args.out.parent.mkdir(parents=True, exist_ok=True)
                with open(args.out, "a") as f:
                    f.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()

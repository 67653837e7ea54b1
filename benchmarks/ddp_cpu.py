"""Training throughput of 1 process against 2 processes (torchrun, DDP with gloo) on this CPU.

Each configuration trains the same run (a preset, a fixed number of steps, one estimate at the end)
as a real command line in a fresh run directory; the throughput is the run's own: tokens of the
global batches per second of training steps (the "final" record of metrics.jsonl, evaluation
excluded). The configurations are interleaved, repetition by repetition, so that a machine whose
load changes treats them alike; the load average before each run is recorded beside it.

    python benchmarks/ddp_cpu.py --out benchmarks/results/DATE/ddp-cpu.jsonl [--preset cpu]
        [--steps 200] [--reps 3]
    python benchmarks/ddp_cpu.py --table benchmarks/results/DATE/ddp-cpu.jsonl
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import torch

# name -> (processes, torch threads per process)
CONFIGS = {"1 process, 2 threads": (1, 2), "1 process, 1 thread": (1, 1), "2 processes, 1 thread each": (2, 1)}


def run(name, preset, steps, data):
    processes, threads = CONFIGS[name]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [
            "-m",
            "scratchgpt",
            "train",
            "--preset",
            preset,
            "--out",
            str(out),
            "--max-iters",
            str(steps),
            "--eval-interval",
            str(steps),
            "--eval-iters",
            "2",
            "--sample-tokens",
            "0",
            "--quiet",
            "--device",
            "cpu",
        ] + (["--data", data] if data else [])
        if processes > 1:
            command = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *command]
        load = os.getloadavg()[0]
        done = subprocess.run(
            [sys.executable, *command],
            env={**os.environ, "OMP_NUM_THREADS": str(threads)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(done.stderr)
        final = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    return {
        "config": name,
        "processes": processes,
        "threads": threads,
        "preset": preset,
        "steps": final["step"],
        "train_seconds": round(final["train_seconds"], 2),
        "tokens_per_s": round(final["tokens_per_s"]),
        "val_loss": round(final["val_loss"], 4),
        "load_before": load,
        "torch": torch.__version__,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def table(path):
    rows = defaultdict(list)
    for line in Path(path).read_text().splitlines():
        r = json.loads(line)
        rows[r["config"]].append(r)
    base = statistics.median(r["tokens_per_s"] for r in rows[next(iter(rows))])
    print(
        "| configuration | runs | tokens/s (median) | each run, in order (load average before it) "
        "| vs first row | full val |"
    )
    print("|---|---|---|---|---|---|")
    for name, runs in rows.items():
        median = statistics.median(r["tokens_per_s"] for r in runs)
        each = ", ".join(f"{r['tokens_per_s']:,} ({r['load_before']:.1f})" for r in runs)
        losses = ", ".join(sorted({str(r["val_loss"]) for r in runs}))
        print(f"| {name} | {len(runs)} | {median:,.0f} | {each} | {median / base:.2f}x | {losses} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", help="JSON-lines file to append results to")
    parser.add_argument("--table", help="print the Markdown table of a results file")
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--configs", nargs="+", choices=tuple(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--data", help="text file (default: as train)")
    args = parser.parse_args()
    if args.table:
        return table(args.table)
    for rep in range(args.reps):
        for name in args.configs:
            result = {**run(name, args.preset, args.steps, args.data), "rep": rep + 1}
            print(json.dumps(result), flush=True)
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()

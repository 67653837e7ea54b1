"""Generation speed: the key/value cache policies, eager and compiled, against the lecture's uncached method.

    python benchmarks/generation.py [--shapes cpu lecture] [--runs RUN ...] [--tokens 2000]
                                    [--batch 1 8] [--policies window compiled exact none]
                                    [--none-tokens N] [--temperature 1] [--repeats 1]
                                    [--threads N] [--device cpu|cuda] [--json] [--out FILE]

`--out` adds the run (its command, the machine with its load average before and after, every
record) to a JSON file, after the runs already there.

Policies: "window", "exact" and "none" as in inference/generate.py; "compiled" is the window
policy with the compiled decode step (inference/compiled.py), "compiled-exact" the exact one. A
shape is a preset's model, randomly initialised (speed does not depend on the weights); `--runs`
adds trained runs (their tokens are the better test of exactness). The prompt is half a block
long; time to first token includes encoding it. Each compiled policy's compile time is measured
first (a warm-up step, `compile_s`) and is not in its tokens' time; every policy first generates
8 untimed tokens. With `--repeats`, the policies
run in turn, round after round, and each reports its median.

Every policy draws from one seeded generator, so a compiled policy must give exactly the tokens of
its eager twin: `same_tokens_as_eager` says whether it did. `--none-tokens` times the lecture's
method over fewer tokens (it is slow); its ms/token is then over a shorter run, in which more of
the tokens have less than a full block of context, so "vs none" comes out lower than over the
whole run (conservative).
"""

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from scratchgpt import GPTLanguageModel, preset
from scratchgpt.device import device_name, resolve_device, synchronize
from scratchgpt.inference.compiled import Decoder
from scratchgpt.inference.generate import generate
from scratchgpt.rundir import load_model

COMPILED = {"compiled": "window", "compiled-exact": "exact"}  # compiled policy -> its eager twin


def measure(model, batch, tokens, policy, temperature, decoder=None):
    """(timings, the new tokens (B, tokens)) of one generation."""
    T0 = model.config.block_size // 2
    device = next(model.parameters()).device
    idx = torch.randint(0, model.config.vocab_size, (batch, T0), generator=torch.Generator().manual_seed(0))
    g = torch.Generator(device=device).manual_seed(0)
    compiled = policy in COMPILED
    synchronize(device)
    start = time.perf_counter()
    stream = generate(
        model,
        idx.to(device),
        tokens,
        temperature=temperature,
        generator=g,
        cache=COMPILED.get(policy, policy),
        compile=compiled,
        decoder=decoder,
    )
    out = [next(stream)]
    synchronize(device)
    first = time.perf_counter() - start
    out.extend(stream)  # the remaining tokens
    synchronize(device)
    total = time.perf_counter() - start
    return {
        "first_token_ms": first * 1e3,
        "seconds": total,
        "ms_per_token": total / tokens * 1e3,
        "tokens_per_s": tokens / total,
    }, torch.cat(out, dim=1)


def bench(name, model, batch, args):
    """One record per policy for this model and batch size, timed in turns."""
    decoder = Decoder(model) if any(p in COMPILED for p in args.policies) else None
    compile_s = decoder.warm_up(batch) if decoder else None
    tokens = {p: args.none_tokens if p == "none" and args.none_tokens else args.tokens for p in args.policies}
    runs, out = {p: [] for p in args.policies}, {}
    for policy in args.policies:  # a few untimed tokens first: the first call of a kernel costs more
        measure(model, batch, 8, policy, args.temperature, decoder if policy in COMPILED else None)
    for _ in range(args.repeats):
        for policy in args.policies:
            r, out[policy] = measure(
                model, batch, tokens[policy], policy, args.temperature, decoder if policy in COMPILED else None
            )
            runs[policy].append(r)
    results = {}
    for policy, rs in runs.items():
        r = min(rs, key=lambda r: abs(r["seconds"] - statistics.median(x["seconds"] for x in rs)))  # the median run
        r = {
            "model": name,
            "batch": batch,
            "policy": policy,
            "tokens": tokens[policy],
            **r,
            "repeats": args.repeats,
            "temperature": args.temperature,
        }
        if policy in COMPILED:
            r["compile_s"] = compile_s
            twin = COMPILED[policy]
            if twin in out:
                r["same_tokens_as_eager"] = bool(torch.equal(out[policy], out[twin]))
        results[policy] = r
    if "none" in results:
        for r in results.values():
            r["speedup_vs_none"] = results["none"]["ms_per_token"] / r["ms_per_token"]
    return list(results.values())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shapes", nargs="*", default=["cpu", "lecture"])
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="trained runs to measure too")
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--none-tokens", type=int, default=None, help="tokens for the uncached method")
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 8])
    parser.add_argument(
        "--policies", nargs="+", default=["window", "exact", "none"], choices=["window", "exact", "none", *COMPILED]
    )
    parser.add_argument("--temperature", type=float, default=1.0, help="0 is greedy")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="torch's CPU threads (default: torch's)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, ... (default cpu)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--out", type=Path, help="also add this run (command, machine, records) to this JSON file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)  # before any compile: the compiled kernels keep the count
    torch.manual_seed(0)
    device = resolve_device(args.device)
    models = [
        (shape, lambda shape=shape: GPTLanguageModel(preset(shape)[0]).to(device).eval()) for shape in args.shapes
    ]
    models += [(str(run), lambda run=run: load_model(run)[0].to(device)) for run in args.runs]
    machine = {
        "device": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "processor": device_name(torch.device("cpu")),
        "date": time.strftime("%Y-%m-%d"),
        "load_average_start": os.getloadavg(),
    }
    records = []
    for name, make in models:
        model = make()
        for batch in args.batch:
            for r in bench(name, model, batch, args):
                records.append(r)
                if args.json:
                    print(json.dumps({**r, **machine}), flush=True)
                else:
                    print(
                        f"{name:10s} B={batch} {r['policy']:14s} {r['tokens']:5d} tok {r['seconds']:8.2f} s "
                        f"{r['ms_per_token']:7.2f} ms/tok  first {r['first_token_ms']:7.1f} ms"
                        + (f"  x{r['speedup_vs_none']:.1f} vs none" if "speedup_vs_none" in r else "")
                        + (f"  compile {r['compile_s']:.1f} s" if "compile_s" in r else "")
                        + (f"  same tokens: {r['same_tokens_as_eager']}" if "same_tokens_as_eager" in r else ""),
                        flush=True,
                    )
    machine["load_average_end"] = os.getloadavg()
    if args.out:  # {"runs": [...]}: every invocation with this --out, in order
        args.out.parent.mkdir(parents=True, exist_ok=True)
        runs = json.loads(args.out.read_text())["runs"] if args.out.exists() else []
        runs.append({"command": vars(args), "machine": machine, "records": records})
        args.out.write_text(json.dumps({"runs": runs}, indent=2, default=str))


if __name__ == "__main__":
    main()

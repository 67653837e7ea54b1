"""The bandwidth floor of batch-1 decoding, and how close each weight option comes to it.

    python benchmarks/decode_floor.py [--run RUN] [--threads 1 2] [--weights f32 bf16 int8]
                                      [--tokens 100] [--rounds 5] [--bpc] [--json] [--out FILE]

A batch-1 decode step reads every Linear weight once per token (qkv, proj and the feed-forward's
two in each block, and lm_head: weights, biases, int8 scales; the embedding rows, LayerNorms and
the key/value cache are a few KB and not counted). Its floor is those bytes divided by the memory
bandwidth, measured here the way the step reads: a matrix-vector product x (1, 384) times a
float32 matrix of the model's weight bytes, larger than the caches (nn.Linear's row-major (out, in)
layout and the Decoder's column-major one, the faster of the two); and, for reference, a plain
streaming read (`sum`) of the same buffer. Best of `--repeats`.

Policies: eager (`generate(cache="window")`) and compiled (`compile=True`, inference/compiled.py)
for each of `--weights` (inference/weights.py). Each generates `--tokens` new tokens from a
one-token prompt (all within block_size: no window slide); ms/token is timed from the first token
to the last, so the prefill is not in it. The policies run in turn, round after round; each reports
its median. Each thread count compiles its own graph (torch.compile guards on it), before the
timing. The model is the lecture's shape, randomly initialised (speed does not depend on the
weights), or `--run`'s. `--bpc` adds each weight option's full-validation bits per character
(evaluation.evaluate_run; needs `--run`). "Linears alone" applies every Linear of the model to
one token back to back, eagerly, with nothing between them (best of `--repeats`): what a step
would cost if its Linears were all it did.
"""

import argparse
import dataclasses
import datetime
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

from scratchgpt import GPTLanguageModel, preset
from scratchgpt.evaluation import evaluate_run
from scratchgpt.inference.compiled import Decoder
from scratchgpt.inference.generate import generate
from scratchgpt.inference.weights import WEIGHTS, linear_bytes, with_weights
from scratchgpt.rundir import load_run


def cpu_flags():
    """The SIMD flags of /proc/cpuinfo that matter to these kernels, and the CPU's name."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor(), []
    name = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    wanted = ("avx", "avx2", "fma", "f16c", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
    return name, [f for f in wanted if f in flags]


def best_seconds(f, repeats):
    f()  # warm: first touch, thread pool
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times)


def bandwidth(nbytes, repeats, C=384):
    """GB/s of one batch-1 matrix-vector product over a float32 buffer of `nbytes` (both layouts),
    and of a plain streaming read of it."""
    out = nbytes // 4 // C
    row = torch.randn(out, C)  # (out, in): nn.Linear's layout
    col = row.t().contiguous().t()  # the same (out, in) matrix, column-major: the Decoder's
    x = torch.randn(1, C)
    gb = row.numel() * 4 / 1e9
    result = {
        "buffer_mb": row.numel() * 4 / 1e6,
        "matvec_row_gbps": gb / best_seconds(lambda: F.linear(x, row), repeats),  # (1, C) -> (1, out)
        "matvec_col_gbps": gb / best_seconds(lambda: F.linear(x, col), repeats),
        "read_gbps": gb / best_seconds(lambda: row.sum(), repeats),
    }
    result["matvec_gbps"] = max(result["matvec_row_gbps"], result["matvec_col_gbps"])
    return result


def linears_ms(model, repeats):
    """ms of every Linear of the model applied to one token, back to back and eagerly (what a step
    would cost if the Linears were all it did): the best of `repeats`."""
    layers = [m for m in model.modules() if hasattr(m, "weight") and m.weight.dim() == 2 and m is not model]
    layers = [m for m in layers if not isinstance(m, torch.nn.Embedding)]
    inputs = [torch.randn(1, 1, m.weight.shape[1]) for m in layers]  # (B, T, in) each

    def run():
        with torch.no_grad():
            for m, x in zip(layers, inputs):
                m(x)

    return best_seconds(run, repeats) * 1e3


def ms_per_token(model, tokens, decoder=None):
    """(ms per decoded token, the tokens) of one greedy generation from a one-token prompt."""
    idx = torch.zeros(1, 1, dtype=torch.long)
    stream = generate(model, idx, tokens, temperature=0, cache="window", compile=decoder is not None, decoder=decoder)
    out = [next(stream)]  # prefill and the first token: not timed
    start = time.perf_counter()
    out.extend(stream)
    return (time.perf_counter() - start) / (tokens - 1) * 1e3, torch.cat(out, dim=1)


def decode(models, decoders, args):
    """{policy: median ms/token} over interleaved rounds, and whether compiled gave eager's tokens."""
    policies = [(w, c) for w in models for c in (False, True)]
    times, tokens = {p: [] for p in policies}, {}
    for _ in range(args.rounds):
        for w, compiled in policies:
            ms, out = ms_per_token(models[w], args.tokens, decoders[w] if compiled else None)
            times[(w, compiled)].append(ms)
            tokens[(w, compiled)] = out
    same = {w: torch.equal(tokens[(w, True)], tokens[(w, False)]) for w in models}
    return {p: statistics.median(t) for p, t in times.items()}, times, same


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", type=Path, help="a trained GPT run (default: the lecture shape, random weights)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--weights", nargs="+", choices=WEIGHTS, default=list(WEIGHTS))
    p.add_argument("--tokens", type=int, default=100)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=20, help="bandwidth: best of this many products")
    p.add_argument("--bpc", action="store_true", help="full-val bits per character of each weight option (--run)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--out", type=Path, help="append this run's report to a JSON list in FILE")
    args = p.parse_args()
    if args.bpc and args.run is None:
        p.error("--bpc needs --run")

    torch.manual_seed(0)
    run = load_run(args.run) if args.run else None
    model = run.model if run else GPTLanguageModel(dataclasses.replace(preset("lecture")[0], vocab_size=65)).eval()
    models = {w: with_weights(model, w) for w in args.weights}
    decoders = {w: Decoder(m) for w, m in models.items()}
    name, flags = cpu_flags()
    report = {
        "command": "python benchmarks/decode_floor.py " + " ".join(sys.argv[1:]),
        "date": datetime.date.today().isoformat(),
        "cpu": name,
        "cpu_flags": flags,
        "torch": torch.__version__,
        "model": str(args.run) if args.run else "lecture shape, random weights",
        "config": {k: getattr(model.config, k) for k in ("n_layer", "n_embd", "n_head", "block_size", "vocab_size")},
        "bytes_per_token": {w: linear_bytes(m) for w, m in models.items()},
        "tokens": args.tokens,
        "rounds": args.rounds,
        "load_before": os.getloadavg(),
        "threads": {},
    }
    for threads in args.threads:
        torch.set_num_threads(threads)  # a compiled graph is for one thread count: compile now, untimed
        compile_s = {w: d.warm_up(1) for w, d in decoders.items()}
        bw = bandwidth(report["bytes_per_token"]["f32"], args.repeats)
        linears = {w: linears_ms(m, args.repeats) for w, m in models.items()}
        medians, times, same = decode(models, decoders, args)
        rows = []
        for (w, compiled), ms in medians.items():
            floor = report["bytes_per_token"][w] / (bw["matvec_gbps"] * 1e9) * 1e3
            rows.append(
                {
                    "weights": w,
                    "step": "compiled" if compiled else "eager",
                    "ms_per_token": ms,
                    "rounds_ms": times[(w, compiled)],
                    "tokens_per_s": 1e3 / ms,
                    "floor_ms": floor,
                    "linears_alone_ms": linears[w],
                    "vs_floor": ms / floor,
                    "vs_f32": medians[("f32", compiled)] / ms if "f32" in models else None,
                    "same_tokens_as_eager": same[w] if compiled else None,
                }
            )
        report["threads"][threads] = {"bandwidth": bw, "compile_s": compile_s, "rows": rows}
    report["load_after"] = os.getloadavg()
    if args.bpc:
        report["bpc"] = {w: evaluate_run(dataclasses.replace(run, model=m))[0]["val_bpc"] for w, m in models.items()}
    print(json.dumps(report, indent=1) if args.json else table(report))
    if args.out:
        old = json.loads(args.out.read_text()) if args.out.exists() else []
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(old + [report], indent=1) + "\n")


def table(report):
    lines = [
        f"{report['date']}  {report['cpu']}  flags {' '.join(report['cpu_flags'])}  torch {report['torch']}",
        f"model: {report['model']}, load {report['load_before']} -> {report['load_after']}",
    ]
    for threads, t in report["threads"].items():
        bw = t["bandwidth"]
        lines += [
            f"\n{threads} thread(s): matvec over {bw['buffer_mb']:.1f} MB: row-major {bw['matvec_row_gbps']:.1f} GB/s, "
            f"column-major {bw['matvec_col_gbps']:.1f} GB/s; streaming read {bw['read_gbps']:.1f} GB/s",
            "| weights | step | MB read per token | ms/token | tokens/s | floor ms | Linears alone ms | vs floor "
            "| tokens/s vs f32 |" + (" bpc |" if "bpc" in report else ""),
            "|---|---|---|---|---|---|---|---|---|" + ("---|" if "bpc" in report else ""),
        ]
        for r in t["rows"]:
            mb = report["bytes_per_token"][r["weights"]] / 1e6
            vs = "" if r["vs_f32"] is None else f"{r['vs_f32']:.2f}x"
            bpc = f" {report['bpc'][r['weights']]:.4f} |" if "bpc" in report else ""
            lines.append(
                f"| {r['weights']} | {r['step']} | {mb:.1f} | {r['ms_per_token']:.2f} | {r['tokens_per_s']:.0f} | "
                f"{r['floor_ms']:.2f} | {r['linears_alone_ms']:.2f} | {r['vs_floor']:.2f}x | {vs} |{bpc}"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    main()

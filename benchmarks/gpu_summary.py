"""Summarise benchmarks/gpu.sh's results folder into summary.json (and print it).

python benchmarks/gpu_summary.py RESULTS_DIR TARGET_LOSS
"""

import json
import sys
from pathlib import Path


def main(out, target):
    out = Path(out)
    bench = json.loads((out / "bench.json").read_text())
    records = [json.loads(line) for line in (out / "speedrun" / "metrics.jsonl").read_text().splitlines()]
    final = next(r for r in records if r["kind"] == "final")
    crossing = next((r for r in records if r["kind"] == "eval" and r["val_loss"] <= target), None)
    rows = bench["results"]

    def fastest(**where):
        return max(r["tokens_per_s"] for r in rows if all(r[k] == v for k, v in where.items()))

    summary = {
        "device": bench["device"],
        "peaks_tflops": bench["peaks_tflops"],
        "torch": bench["torch"],
        "fast_over_readable_tokens_per_s": fastest(attention="fast") / fastest(attention="readable"),
        "fast_bf16_over_float32": fastest(attention="fast", dtype="bfloat16")
        / fastest(attention="fast", dtype="float32"),
        "fast_compiled_over_eager": fastest(attention="fast", compile=True) / fastest(attention="fast", compile=False),
        "speedrun_full_val_loss": final["val_loss"],
        "speedrun_train_seconds": final["train_seconds"],
        "speedrun_steps": final["step"],
        "target": target,
        "target_met": final["val_loss"] <= target,
        "first_estimate_at_target_seconds": crossing and crossing["train_seconds"],
        "generation": [
            {
                k: r.get(k)
                for k in ("batch", "policy", "tokens_per_s", "speedup_vs_none", "compile_s", "same_tokens_as_eager")
            }
            for r in json.loads((out / "generation.json").read_text())["runs"][-1]["records"]
        ],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))

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
    rows = {(r["attention"], r["compile"]): r for r in bench["results"]}
    fastest = {path: max(r["tokens_per_s"] for (p, _), r in rows.items() if p == path)
               for path in ("readable", "fast")}
    summary = {
        "device": bench["device"], "peak_tflops": bench["peak_tflops"], "torch": bench["torch"],
        "fast_over_readable_tokens_per_s": fastest["fast"] / fastest["readable"],
        "speedrun_full_val_loss": final["val_loss"], "speedrun_train_seconds": final["train_seconds"],
        "speedrun_steps": final["step"], "target": target, "target_met": final["val_loss"] <= target,
        "first_estimate_at_target_seconds": crossing and crossing["train_seconds"],
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))

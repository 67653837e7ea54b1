#!/usr/bin/env bash
# Time the whole `scratchgpt train` command of a preset (start-up, data preparation, training,
# evaluation, sample) and score the result on the full validation split.
#   usage: benchmarks/train_preset.sh [PRESET] [RUN_DIR] [extra train flags...]
# Uses $SCRATCHGPT_DATA when set (no network). Prints one JSON line with the numbers.
set -euo pipefail
preset="${1:-cpu}"
out="${2:-runs/bench-$preset-$(date +%Y%m%d-%H%M%S)}"
shift $(( $# < 2 ? $# : 2 ))
start=$(date +%s.%N)
scratchgpt train --preset "$preset" --out "$out" --quiet "$@"
end=$(date +%s.%N)
final=$(tail -n 1 "$out/metrics.jsonl")
python3 - "$preset" "$out" "$start" "$end" "$final" <<'PY'
import json, platform, sys
preset, out, start, end, final = sys.argv[1:]
final = json.loads(final)
print(json.dumps({"preset": preset, "run": out, "wall_seconds": round(float(end) - float(start), 1),
                  "train_seconds": round(final["train_seconds"], 1),
                  "tokens_per_s": round(final["tokens_per_s"]), "val_loss": round(final["val_loss"], 4),
                  "val_bpc": round(final["val_bpc"], 4), "machine": platform.processor() or platform.machine()}))
PY

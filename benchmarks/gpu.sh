#!/usr/bin/env bash
# Every GPU measurement of BENCHMARKS.md in one call: about 8-10 minutes on one H100 or H200.
#
#   SCRATCHGPT_DATA=path/to/input.txt bash benchmarks/gpu.sh RESULTS_DIR            # on the GPU
#   SCRATCHGPT_DATA=path/to/input.txt bash benchmarks/gpu.sh RESULTS_DIR --cpu-smoke # tiny, on a CPU
#
# 1. the device and its measured bf16 matmul peak (in bench.json);
# 2. `scratchgpt bench` of the lecture preset: readable vs fast path, float32 vs bf16, torch.compile
#    off and on;
# 3. generation at the lecture's shape, batch 1 and 8: the KV cache eager and compiled (CUDA graphs)
#    against the lecture's uncached method, tokens/s and whether compiled gives the eager tokens;
# 4. `scratchgpt train --preset speedrun-gpu` (a 30 s training budget): time to the 1.47 target
#    and the final full-validation loss.
# Results: RESULTS_DIR/bench.json, RESULTS_DIR/generation.json, RESULTS_DIR/speedrun/ (the run),
# RESULTS_DIR/summary.json.
# Runs from the source tree (PYTHONPATH=src): nothing to install beyond torch, numpy, safetensors,
# tqdm and filelock.
set -euo pipefail
out=${1:?usage: bash benchmarks/gpu.sh RESULTS_DIR [--cpu-smoke]}
mode=${2:-gpu}
: "${SCRATCHGPT_DATA:?set SCRATCHGPT_DATA to Tiny Shakespeare (input.txt)}"
root=$(cd "$(dirname "$0")/.." && pwd)
export PYTHONPATH="$root/src${PYTHONPATH:+:$PYTHONPATH}"
py=${PYTHON:-python3}
mkdir -p "$out"
rm -rf "$out/speedrun"

if [[ $mode == --cpu-smoke ]]; then
  bench=(--preset tiny --n-layer 1 --device cpu --steps 2 --warmup 1)  # 1 layer: less to compile
  generation=(--shapes tiny --device cpu --tokens 40 --none-tokens 20)
  speedrun=(--preset tiny --device cpu --max-time 1 --max-iters 1000000 --eval-interval 20 --log-interval 1)
  target=3.0
else
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  bench=(--preset lecture --steps 20 --warmup 3)
  generation=(--shapes lecture --device cuda --tokens 2000 --none-tokens 500)
  speedrun=(--preset speedrun-gpu)
  target=1.47
fi

echo "== bench: readable vs fast, compile off and on"
"$py" -m scratchgpt bench "${bench[@]}" --compare-compile --compare-dtype --json > "$out/bench.json"
"$py" - "$out/bench.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"device {r['device']}: measured matmul peaks (TFLOP/s) {r['peaks_tflops']}")
for row in r["results"]:
    print(f"  {row['attention']:>8} {row['dtype']:>8} compile {'on ' if row['compile'] else 'off'}: "
          f"{row['ms_per_step']:7.1f} ms/step "
          f"{row['tokens_per_s']:>11,.0f} tokens/s  MFU {100 * row['mfu']:4.1f}%  "
          f"{row['peak_memory_mb']:,.0f} MB  warm-up {row['warmup_s']:.1f} s")
PY

echo "== generation: tokens/s at batch 1 and 8, eager and compiled cache against the lecture's method"
rm -f "$out/generation.json"
"$py" benchmarks/generation.py "${generation[@]}" --batch 1 8 --policies window compiled none \
  --out "$out/generation.json"

echo "== speedrun to full-val loss <= $target"
"$py" -m scratchgpt train "${speedrun[@]}" --data "$SCRATCHGPT_DATA" --out "$out/speedrun" --quiet \
  --sample-tokens 200 > "$out/speedrun-sample.txt" 2> "$out/speedrun.log"
"$py" benchmarks/gpu_summary.py "$out" "$target"

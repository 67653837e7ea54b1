#!/usr/bin/env bash
# Characters against byte-level BPE of a few vocabulary sizes, at equal training time: the `cpu`
# preset's model on Tiny Shakespeare for --max-time seconds of steps each (the schedule runs on the
# clock), scored in bits per character on the same validation text (the last 10% of its characters).
#   usage: benchmarks/tokenizers.sh [SECONDS] [OUT_DIR] [char|VOCAB_SIZE ...]   (default: char 512 1024 2048)
# One JSON line per run (benchmarks/train_preset.sh's, plus the tokenizer, the steps and the load
# average when the run started: the machine may be shared). The cache is OUT_DIR/cache, so a BPE is
# trained inside the first timed command of its size (its wall seconds include it; train seconds do not).
set -euo pipefail
seconds="${1:-120}"
out="${2:-runs/tokenizers-$(date +%Y%m%d-%H%M%S)}"
shift $(( $# < 2 ? $# : 2 ))
runs=("$@")
[[ ${#runs[@]} -eq 0 ]] && runs=(char 512 1024 2048)
mkdir -p "$out"
export SCRATCHGPT_CACHE="$out/cache"
for tok in "${runs[@]}"; do
  flags=(--max-time "$seconds" --max-iters 1000000)
  [[ "$tok" != char ]] && flags+=(--tokenizer bpe --vocab-size "$tok")
  load=$(cut -d' ' -f1 /proc/loadavg)
  line=$(benchmarks/train_preset.sh cpu "$out/$tok" "${flags[@]}" 2>"$out/$tok.log" | tail -n 1)  # after the sample
  python3 - "$line" "$tok" "$out/$tok/metrics.jsonl" "$load" <<'PY'
import datetime, json, sys
line, tok, metrics, load = sys.argv[1:]
result = json.loads(line)
final = json.loads(open(metrics).read().splitlines()[-1])
result.update(tokenizer=tok, steps=final["step"], load_at_start=float(load),
              date=datetime.date.today().isoformat())
print(json.dumps(result), flush=True)
PY
done

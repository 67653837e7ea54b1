"""metrics.jsonl: one JSON object per line, of kind "train" (a log line), "eval" (an estimate),
"extend" (a re-planned schedule) or "final" (the end of a run's training)."""

import json
from pathlib import Path

from .. import checkpoint as ckpt
from ..files import atomic_write

METRICS = "metrics.jsonl"


def append(run_dir, record):
    with ckpt.writing(f"metrics to {run_dir}"), open(Path(run_dir) / METRICS, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read(run_dir):
    """Every complete record of a run's metrics.jsonl, in order ([] before the first); a line still
    being written by a training process is left out."""
    path = Path(run_dir) / METRICS
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [r for r in map(_record, lines) if isinstance(r, dict)]


def trim(run_dir, step):
    """On resume: forget the records of steps after the checkpoint (they will run again) and the
    "final" record of the run being continued (the continued run writes its own)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = _record(line)
        if record is not None and record.get("kind") != "final" and record.get("step", step + 1) <= step:
            kept.append(line + "\n")
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(kept), encoding="utf-8"))


def _record(line):
    try:
        return json.loads(line)
    except ValueError:  # a line cut short by a crash
        return None

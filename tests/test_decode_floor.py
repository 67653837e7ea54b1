"""benchmarks/decode_floor.py, the bandwidth floor of batch-1 decoding against each weight option
(BENCHMARKS.md, "The bandwidth floor"), run on a tiny trained run."""

import json
import subprocess
import sys
from pathlib import Path

from scratchgpt.cli import main


def test_decode_floor_reports_every_weight_option_against_its_floor(tmp_path):
    """decode_floor.py on a tiny trained run: a row per weight option and step, each compiled row
    with its eager twin's tokens, and each option's full-val bits per character."""
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path / "tiny"), "--quiet"]) == 0
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "decode_floor.py"
    options = ["--run", tmp_path / "tiny", "--threads", "1", "--tokens", "5", "--rounds", "1", "--repeats", "1"]
    options += ["--weights", "f32", "int8"]  # bf16's rows are the same code path: one compile fewer
    out = subprocess.run(
        [sys.executable, script, *map(str, options), "--bpc", "--json"], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    rows = report["threads"]["1"]["rows"]
    assert {(r["weights"], r["step"]) for r in rows} == {(w, s) for w in ("f32", "int8") for s in ("eager", "compiled")}
    assert all(r["same_tokens_as_eager"] for r in rows if r["step"] == "compiled")
    assert report["bytes_per_token"]["f32"] > 3 * report["bytes_per_token"]["int8"]  # a byte a weight, and scales
    assert abs(report["bpc"]["int8"] - report["bpc"]["f32"]) < 0.05

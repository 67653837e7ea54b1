"""The benchmark scripts run and report what BENCHMARKS.md quotes them for (tiny settings)."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(*args, env=None):
    result = subprocess.run([*map(str, args)], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def test_gpu_script_runs_end_to_end_on_the_cpu(tmp_path, shakespeare):
    out = tmp_path / "gpu"
    run("bash", "benchmarks/gpu.sh", out, "--cpu-smoke", env={"SCRATCHGPT_DATA": str(shakespeare)})
    bench = json.loads((out / "bench.json").read_text())
    assert {(r["attention"], r["compile"]) for r in bench["results"]} == {
        ("readable", False), ("readable", True), ("fast", False), ("fast", True)}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fast_over_readable_tokens_per_s"] > 0
    assert 3.0 <= summary["speedrun_train_seconds"] < 10  # the smoke run's 3 s budget
    assert summary["speedrun_full_val_loss"] < 4.2  # below ln(65): it learned something
    assert (out / "speedrun" / "model.safetensors").exists()


def test_speedrun_ablation_script_writes_and_summarises(tmp_path, shakespeare):
    results = tmp_path / "ablation.jsonl"
    run(sys.executable, "benchmarks/speedrun.py", "--preset", "tiny", "--variants", "base", "untied",
        "--seeds", "1", "2", "--max-iters", "3", "--data", shakespeare, "--out", results)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["variant"], r["seed"], r["steps"]) for r in records] == [
        ("base", 1, 3), ("untied", 1, 3), ("base", 2, 3), ("untied", 2, 3)]
    table = run(sys.executable, "benchmarks/speedrun.py", "--table", results)
    assert "| base | 2 | 3 |" in table and "| untied | 2 | 3 |" in table
    rows = [line for line in table.splitlines() if line.startswith(("| base", "| untied"))]
    assert len(rows) == 2 and all(" ± " in row for row in rows)


def test_data_preparation_benchmark_reports_time_and_memory(tmp_path, shakespeare):
    report = json.loads(run(sys.executable, "benchmarks/prepare_data.py", "--mb", "2",
                            "--workdir", tmp_path, env={"SCRATCHGPT_DATA": str(shakespeare)}))
    assert report["num_tokens"] > 1_900_000 and report["vocab_size"] == 74
    assert report["seconds"] > 0 and report["peak_rss_mb"] >= report["rss_after_imports_mb"]

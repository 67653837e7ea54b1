"""The load test of benchmarks/serve_load.py, at its full size: 50 generations at once against a
tiny run. BENCHMARKS.md quotes its timings; here its outcomes must hold."""

import importlib.util
from pathlib import Path

from scratchgpt.cli import main

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_load.py"


def test_fifty_concurrent_generations(tmp_path):
    spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
    serve_load = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(serve_load)
    assert main(["train", "--preset", "tiny", "--out", str(tmp_path / "tiny"), "--quiet"]) == 0
    report = serve_load.load_test(tmp_path / "tiny", requests=50, max_new_tokens=200)
    assert report["other"] == [] and report["refused_503"] == 0
    assert report["answered"] == 50  # 64 streams a model by default: every one decodes, none waits
    assert report["wrong_texts"] == []  # each answer is its own seed's text: no crosstalk between streams
    assert report["health_failures"] == [] and report["health_polls"] > 0  # it answered throughout
    assert 0.9 <= report["rss_ratio"] <= 1.1  # memory back to where it started, within 10%

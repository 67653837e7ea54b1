"""Preparing a large corpus: seconds and memory to encode a ~100 MB UTF-8 file into tokens.

Builds the corpus from Tiny Shakespeare repeated (plus a line of non-ASCII text per copy, so the
vocabulary is not pure ASCII), then runs `scratchgpt.data.prepare` in a fresh process and reports
its wall time and how much its peak resident memory grew beyond the imports, next to the file's size.

    python benchmarks/prepare_data.py --mb 100 --workdir /tmp/prep
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from scratchgpt.data import corpus_path

CHILD = """
import json, resource, sys, time
from scratchgpt.data import prepare
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # the interpreter, numpy, torch
start = time.perf_counter()
corpus = prepare(sys.argv[1])
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "num_tokens": int(corpus.tokens.size),
                  "vocab_size": corpus.tokenizer.vocab_size,
                  "rss_after_imports_mb": before,
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="corpus size in MB (default 100)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "scratchgpt-prep")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    piece = corpus_path().read_text(encoding="utf-8") + "Ünïcödé — “quoted” ✓ 😀\n"
    path = args.workdir / f"corpus-{args.mb:g}mb.txt"
    copies = max(1, round(args.mb * 1e6 / len(piece.encode("utf-8"))))
    if not path.exists():
        path.write_text(piece * copies, encoding="utf-8")
    env = {**os.environ, "SCRATCHGPT_CACHE": str(args.workdir / "cache")}
    subprocess.run(["rm", "-rf", env["SCRATCHGPT_CACHE"]], check=True)  # time a cold encode
    result = subprocess.run([sys.executable, "-c", CHILD, str(path)], env=env, check=True,
                            capture_output=True, text=True)
    report = {"file_mb": path.stat().st_size / 1e6, **json.loads(result.stdout)}
    report["growth_over_file_size"] = ((report["peak_rss_mb"] - report["rss_after_imports_mb"])
                                       * 2**20 / path.stat().st_size)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

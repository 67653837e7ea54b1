"""Preparing a large corpus: seconds and memory to encode a ~100 MB UTF-8 file into tokens.

Builds the corpus from Tiny Shakespeare repeated (plus a line of non-ASCII text per copy, so the
vocabulary is not pure ASCII), then runs `scratchgpt.data.prepare` in a fresh process and reports
its wall time and its own peak memory: the most the process's resident set grew above where it
stood just before `prepare`, sampled every millisecond by a thread (`ru_maxrss` would not do: it is
the high-water mark of the whole process, which the imports alone may already have set).

    python benchmarks/prepare_data.py --mb 100 --workdir /tmp/prep
    python benchmarks/prepare_data.py --mb 100 --vocab-size 1024   # byte-level BPE: trained, then encoded
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

PAGE = os.sysconf("SC_PAGE_SIZE")


def current_rss():
    """The resident set of this process now, in bytes (Linux)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def peak_rss_growth(fn, interval=0.001):
    """(fn(), the most the resident set grew above its level at the call while fn ran, in bytes)."""
    base, peak, done = current_rss(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], current_rss() - base)
            time.sleep(interval)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        result = fn()
    finally:
        done.set()
        sampler.join()
    return result, max(peak[0], current_rss() - base)


def child(path, vocab_size=None):
    """Run in a fresh process: encode `path` cold and print the measurements as JSON."""
    from scratchgpt.data.corpus import prepare

    start = time.perf_counter()
    corpus, growth = peak_rss_growth(lambda: prepare(path, vocab_size=vocab_size))
    print(
        json.dumps(
            {
                "seconds": time.perf_counter() - start,
                "num_tokens": int(corpus.tokens.size),
                "vocab_size": corpus.tokenizer.vocab_size,
                "peak_growth_mb": growth / 2**20,
            }
        )
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="corpus size in MB (default 100)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "scratchgpt-prep")
    parser.add_argument(
        "--vocab-size",
        type=int,
        help="train a byte-level BPE of this size on the training split and encode with it (default: characters)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.vocab_size)
    from scratchgpt.data.corpus import corpus_path

    args.workdir.mkdir(parents=True, exist_ok=True)
    piece = corpus_path().read_text(encoding="utf-8") + "Ünïcödé — “quoted” ✓ 😀\n"
    path = args.workdir / f"corpus-{args.mb:g}mb.txt"
    copies = max(1, round(args.mb * 1e6 / len(piece.encode("utf-8"))))
    if not path.exists():
        path.write_text(piece * copies, encoding="utf-8")
    env = {**os.environ, "SCRATCHGPT_CACHE": str(args.workdir / "cache")}
    subprocess.run(["rm", "-rf", env["SCRATCHGPT_CACHE"]], check=True)  # time a cold encode
    bpe = ["--vocab-size", str(args.vocab_size)] if args.vocab_size else []
    result = subprocess.run(
        [sys.executable, __file__, "--child", str(path), *bpe], env=env, check=True, capture_output=True, text=True
    )
    report = {"file_mb": path.stat().st_size / 1e6, **json.loads(result.stdout)}
    report["growth_over_file_size"] = report["peak_growth_mb"] * 2**20 / path.stat().st_size
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Load test of the playground: many generations at once against one `scratchgpt serve`.

Starts `scratchgpt serve --run RUN [SERVE OPTIONS]` on a free loopback port (its defaults: 64
streams a model, a queue of 16), warms it up, times one streamed generation alone (the
single-stream rate), then sends REQUESTS generate requests at once (half streamed, half not, each
with its own seed) while polling /api/health every 50 ms. Reports how many were answered (200) and
refused (503, which must carry Retry-After), any other outcome, whether every answered text is
the one `sample_text` gives for its seed (no crosstalk between concurrent generations), the
aggregate tokens/s against the single stream's, the time to first token of the streamed requests
(median, p95, max; from sending the request), the health latencies, and the server's memory (RSS)
before and after.

    python benchmarks/serve_load.py [--run RUN] [--requests 50] [--max-new-tokens 200] [--out report.json]
                                    [-- SERVE OPTIONS, e.g. --compile --threads 1]
    python benchmarks/serve_load.py --single --run RUN [--max-new-tokens 500]

Without --run it trains a `tiny` run into a temporary directory first. `--single` measures one
streamed generation at a time instead: tokens/s through the server against `sample_text` in this
process, interleaved, three times each.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import torch

from scratchgpt.device import cpu_flags, device_name
from scratchgpt.inference.generate import sample_text
from scratchgpt.rundir import load_model


def start_server(run, options=()):
    process = subprocess.Popen(
        [sys.executable, "-m", "scratchgpt", "serve", "--run", str(run), "--port", "0", *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = process.stderr.readline()
    match = re.search(r"at (http://\S+?)/ ", line)
    if not match:
        process.kill()
        raise SystemExit(f"serve did not start: {line}{process.stderr.read()}")
    threading.Thread(target=lambda: process.stderr.read(), daemon=True).start()
    return process, match.group(1)


def settle(process, seconds=1.0):
    """The server's RSS in MB once it has been idle for `seconds`."""
    time.sleep(seconds)
    return psutil.Process(process.pid).memory_info().rss / 2**20


def load_test(run, requests=50, max_new_tokens=200, options=()):
    run = Path(run)
    model, tokenizer, _, _ = load_model(run)
    name = run.name
    process, url = start_server(run, options)
    try:
        with httpx.Client(base_url=url, timeout=600) as client:
            for seed in range(3):  # warm-up: the model loads, the allocator settles
                client.post(
                    "/api/generate", json={"run": name, "max_new_tokens": max_new_tokens, "seed": seed, "stream": False}
                ).raise_for_status()
            start = time.perf_counter()
            with client.stream("POST", "/api/generate", json={"run": name, "max_new_tokens": max_new_tokens}) as r:
                single = sum(line.startswith("event: token") for line in r.iter_lines())
            single_rate = single / (time.perf_counter() - start)
        rss_start = settle(process)
        latencies, health_failures, stop = [], [], threading.Event()

        def poll_health():
            with httpx.Client(base_url=url, timeout=10) as client:
                while not stop.is_set():
                    start = time.perf_counter()
                    try:
                        client.get("/api/health").raise_for_status()
                        latencies.append(time.perf_counter() - start)
                    except httpx.HTTPError as e:
                        health_failures.append(repr(e))
                    time.sleep(0.05)

        def generate(seed):
            body = {
                "run": name,
                "prompt": "ROMEO:",
                "max_new_tokens": max_new_tokens,
                "temperature": 0.9,
                "seed": seed,
                "stream": seed % 2 == 0,
            }
            with httpx.Client(base_url=url, timeout=600) as client:
                sent = time.perf_counter()
                if not body["stream"]:
                    response = client.post("/api/generate", json=body)
                    text = response.json().get("text") if response.status_code == 200 else None
                    return seed, response.status_code, response.headers.get("retry-after"), text, None
                with client.stream("POST", "/api/generate", json=body) as response:
                    pieces, first = [], None
                    for line in response.iter_lines():
                        if line.startswith("data: ") and '"text"' in line:
                            first = first or time.perf_counter() - sent
                            pieces.append(json.loads(line[6:])["text"])
                    return seed, response.status_code, response.headers.get("retry-after"), "".join(pieces), first

        poller = threading.Thread(target=poll_health)
        poller.start()
        started = time.perf_counter()
        with ThreadPoolExecutor(requests) as pool:
            outcomes = list(pool.map(generate, range(100, 100 + requests)))
        seconds = time.perf_counter() - started
        stop.set()
        poller.join()
        rss_end = settle(process, 2.0)
    finally:
        process.terminate()
        process.wait(timeout=60)
    answered = [o for o in outcomes if o[1] == 200]
    wrong = [
        seed
        for seed, _, _, text, _ in answered
        if "ROMEO:" + text
        != sample_text(model, tokenizer, "ROMEO:", max_new_tokens=max_new_tokens, temperature=0.9, seed=seed)
    ]
    latencies.sort()
    firsts = sorted(o[4] for o in answered if o[4] is not None)
    rate = len(answered) * max_new_tokens / seconds
    return {
        "requests": requests,
        "max_new_tokens": max_new_tokens,
        "serve_options": list(options),
        "answered": len(answered),
        "refused_503": sum(o[1] == 503 for o in outcomes),
        "refused_without_retry_after": sum(o[1] == 503 and o[2] is None for o in outcomes),
        "other": sorted({o[1] for o in outcomes} - {200, 503}),
        "wrong_texts": wrong,
        "seconds": seconds,
        "tokens_per_second": rate,
        "single_stream_tokens_per_second": single_rate,
        "aggregate_over_single": rate / single_rate,
        "first_token_median_s": firsts[len(firsts) // 2] if firsts else None,
        "first_token_p95_s": firsts[min(len(firsts) - 1, round(0.95 * (len(firsts) - 1)))] if firsts else None,
        "first_token_max_s": firsts[-1] if firsts else None,
        "health_polls": len(latencies),
        "health_failures": health_failures,
        "health_median_s": latencies[len(latencies) // 2] if latencies else None,
        "health_max_s": latencies[-1] if latencies else None,
        "rss_start_mb": rss_start,
        "rss_end_mb": rss_end,
        "rss_ratio": rss_end / rss_start,
    }


def single_stream(run, max_new_tokens=500, repeats=3):
    """Tokens/s of one streamed generation through the server and of sample_text in this process,
    interleaved: what the server's threads, events and HTTP cost a single user."""
    run = Path(run)
    model, tokenizer, _, _ = load_model(run)
    process, url = start_server(run)
    served, direct = [], []
    body = {"run": run.name, "prompt": "ROMEO:", "max_new_tokens": max_new_tokens}
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            client.post("/api/generate", json={**body, "stream": False}).raise_for_status()  # loads the model
            for seed in range(repeats):
                start = time.perf_counter()
                sample_text(model, tokenizer, "ROMEO:", max_new_tokens=max_new_tokens, seed=seed)
                direct.append(max_new_tokens / (time.perf_counter() - start))
                start = time.perf_counter()
                with client.stream("POST", "/api/generate", json={**body, "seed": seed}) as response:
                    tokens = sum(line.startswith("event: token") for line in response.iter_lines())
                served.append(tokens / (time.perf_counter() - start))
    finally:
        process.terminate()
        process.wait(timeout=60)
    return {
        "max_new_tokens": max_new_tokens,
        "in_process_tokens_per_s": direct,
        "served_tokens_per_s": served,
        "median_ratio": sorted(s / d for s, d in zip(served, direct))[repeats // 2],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, help="a GPT run directory (default: train a tiny one)")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=200)
    parser.add_argument("--single", action="store_true", help="one stream at a time, against sample_text")
    parser.add_argument("--out", type=Path, help="also write the report here")
    parser.add_argument("serve_options", nargs="*", help="options for scratchgpt serve, after --")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run
        if run is None:
            run = Path(tmp) / "tiny"
            subprocess.run(
                [sys.executable, "-m", "scratchgpt", "train", "--preset", "tiny", "--out", str(run), "--quiet"],
                check=True,
                env=os.environ.copy(),
            )
        report = (
            single_stream(run, args.max_new_tokens)
            if args.single
            else load_test(run, args.requests, args.max_new_tokens, args.serve_options)
        )
    report["machine"] = {
        "cpu": device_name(torch.device("cpu")),
        "flags": sorted(f for f in cpu_flags() if f in {"avx2", "avx512f", "avx512_bf16", "amx_bf16"}),
        "cores": len(os.sched_getaffinity(0)),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d"),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

"""Is this tree as fast as another? `scratchgpt bench` of two source trees, interleaved round by
round (so a busy spell of the machine slows both alike), with the median ms/step of each.

    git worktree add /tmp/base a01f0f6
    python benchmarks/compare_trees.py --base /tmp/base/src --head src --rounds 5 -- --preset cpu

Each round runs `python -m scratchgpt bench ARGS --json` once per tree with PYTHONPATH set to that
tree, the two in alternating order. Prints one JSON object: every round's numbers, and per
attention path the median ms/step of each tree, head's over base, and the median of the rounds'
own head/base ratios (each taken a few seconds apart: the least noisy of the three).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def bench(src, args):
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    result = subprocess.run(
        [sys.executable, "-m", "scratchgpt", "bench", *args, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(result.stdout)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="src folder of the tree to compare against")
    parser.add_argument("--head", default="src", help="src folder of this tree (default src)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("bench_args", nargs="*", help="arguments for scratchgpt bench (after --)")
    args = parser.parse_args()
    trees = {"base": args.base, "head": args.head}
    rounds = []
    for i in range(args.rounds):
        order = ["base", "head"] if i % 2 == 0 else ["head", "base"]
        for tree in order:
            report = bench(trees[tree], args.bench_args)
            for row in report["results"]:
                rounds.append(
                    {"round": i, "tree": tree, "attention": row["attention"], "ms_per_step": row["ms_per_step"]}
                )
            print(
                f"round {i} {tree}: "
                + ", ".join(f"{r['attention']} {r['ms_per_step']:.1f} ms" for r in report["results"]),
                file=sys.stderr,
            )
    summary = {}
    for path in sorted({r["attention"] for r in rounds}):
        median = {
            tree: statistics.median(r["ms_per_step"] for r in rounds if r["tree"] == tree and r["attention"] == path)
            for tree in trees
        }
        per_round = [
            next(r["ms_per_step"] for r in rounds if r["round"] == i and r["tree"] == "head" and r["attention"] == path)
            / next(
                r["ms_per_step"] for r in rounds if r["round"] == i and r["tree"] == "base" and r["attention"] == path
            )
            for i in range(args.rounds)
        ]
        summary[path] = {
            **{f"{tree}_ms": ms for tree, ms in median.items()},
            "head_over_base": median["head"] / median["base"],
            "median_round_ratio": statistics.median(per_round),
        }
    print(
        json.dumps(
            {"device": report["device"], "bench_args": args.bench_args, "rounds": rounds, "summary": summary}, indent=2
        )
    )


if __name__ == "__main__":
    main()

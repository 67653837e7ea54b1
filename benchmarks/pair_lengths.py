"""How long are a TSV's pairs in tokens: the block_size a translation model needs for them.

    python benchmarks/pair_lengths.py ../shared/data/real/bible_en_es.tsv
    python benchmarks/pair_lengths.py PAIRS.tsv --sizes 2000 4000 8000 --json out.jsonl

A pair fits a block of N tokens when its source has at most N tokens and its target, with its
[EOS] (or [BOS]), at most N (training/translation.py), so the block a pair needs is
max(source tokens, target tokens + 1). For characters and for byte-level BPEs of each size, separate
(one per side) and shared (one of both sides), trained on the training split as `scratchgpt train
--task pairs --tokenizer bpe --vocab-size N` trains them, the script prints that need's median, 90th,
99th percentile and maximum over every pair, with the source's and the target's own 99th percentile
and maximum, and the share of pairs that a few blocks hold (with the number they leave out).
Set RAYON_NUM_THREADS=1 for one core.
"""

import argparse
import json
import sys

import numpy as np

BLOCKS = (96, 128, 192, 256, 320)


def lengths(tokenizer, pairs):
    """(source tokens, target tokens + 1, the block each pair needs): three int arrays."""
    src = np.array([len(tokenizer.source.encode(s)) for s, _ in pairs])
    tgt = np.array([len(tokenizer.target.encode(t)) + 1 for _, t in pairs])
    return src, tgt, np.maximum(src, tgt)


def row(name, tokenizer, pairs):
    src, tgt, need = lengths(tokenizer, pairs)
    q = lambda a, p: int(np.ceil(np.percentile(a, p)))  # noqa: E731
    return {
        "tokens": name,
        "src_vocab": tokenizer.source.vocab_size,
        "tgt_vocab": tokenizer.target.vocab_size,
        "src_p99": q(src, 99),
        "src_max": int(src.max()),
        "tgt_p99": q(tgt, 99),
        "tgt_max": int(tgt.max()),
        "need_p50": q(need, 50),
        "need_p90": q(need, 90),
        "need_p99": q(need, 99),
        "need_max": int(need.max()),
        "fits": {n: float((need <= n).mean()) for n in BLOCKS},
        "longer": {n: int((need > n).sum()) for n in BLOCKS},
        "tokens_per_pair": float((src + tgt).mean()),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data", help="a TSV of source<TAB>target lines")
    parser.add_argument("--sizes", type=int, nargs="*", default=[1024, 2000, 4000, 8000], help="BPE vocabulary sizes")
    parser.add_argument("--json", help="append one JSON line per tokenizer to this file")
    args = parser.parse_args()

    from scratchgpt.data.pairs import read_pairs, split_of
    from scratchgpt.data.tokenizer import PairTokenizer

    pairs, _ = read_pairs([args.data])
    train = [p for p in pairs if split_of(p[0]) == "train"]
    sources, targets = zip(*train)
    rows = [row("char", PairTokenizer.from_pairs(sources, targets), pairs)]
    for size in args.sizes:
        for shared in (False, True):
            tokenizer = PairTokenizer.from_pairs(sources, targets, shared=shared, vocab_size=size)
            rows.append(row(f"bpe {size} {'shared' if shared else 'separate'}", tokenizer, pairs))
    print(f"{len(pairs):,} pairs ({len(train):,} train); a pair needs max(source, target + 1) tokens")
    head = "tokens | vocab (src/tgt) | src p99/max | tgt+1 p99/max | need p50/p90/p99/max | tokens a pair | "
    print(head + " | ".join(f"block {n}: fits (longer)" for n in BLOCKS))
    for r in rows:
        print(
            f"{r['tokens']} | {r['src_vocab']}/{r['tgt_vocab']} | {r['src_p99']}/{r['src_max']} | "
            f"{r['tgt_p99']}/{r['tgt_max']} | {r['need_p50']}/{r['need_p90']}/{r['need_p99']}/{r['need_max']} | "
            f"{r['tokens_per_pair']:.0f} | " + " | ".join(f"{r['fits'][n]:.2%} ({r['longer'][n]:,})" for n in BLOCKS)
        )
    if args.json:
        with open(args.json, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({"data": args.data, **r}) + "\n")


if __name__ == "__main__":
    sys.exit(main())

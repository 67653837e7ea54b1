"""The encoder-decoder's acceptance runs and the sweep that chose seq2seq-cpu: train a built-in
translation task at a fixed training-time budget and record the deterministic test scores.

    python benchmarks/translation.py --task dates --budget 60 --out r.jsonl                # the preset
    python benchmarks/translation.py --task dates --budget 60 --out r.jsonl batch64 qk_norm
    python benchmarks/translation.py --task numbers --budget 180 --seeds 3 --out r.jsonl
    python benchmarks/translation.py --table r.jsonl
    python benchmarks/translation.py --decoding RUN     # decoding speed: cache or not, greedy or beam
    python benchmarks/translation.py --task copy --budget 0.5 --test-pairs 40 --out r.jsonl   # a smoke run

Each variant changes what its name says from the `seq2seq-cpu` preset (`preset` changes nothing;
`width96+muon` makes both changes);
each run is one JSON line: task, variant, seed, budget, steps, test exact match over 2,000
generated test pairs (never seen in training), chrF, and the copy-the-source chrF beside it.
`--test-pairs N` scores on N test pairs and N/2 val pairs instead of the task's 2,000 and 1,000
(for smoke runs, whose barely trained models decode every pair to the full block; the record's
test_pairs says how many).
"""

import argparse
import dataclasses
import functools
import json
import sys
import time

VARIANTS = {  # name: (model changes, training changes), from seq2seq-cpu
    "preset": ({}, {}),
    "batch64": ({}, {"batch_size": 64}),
    "batch256": ({}, {"batch_size": 256}),
    "lr1e-3": ({}, {"lr": 1e-3}),
    "lr4e-3": ({}, {"lr": 4e-3}),
    "heads4": ({"n_head": 4}, {}),
    "qk_norm": ({"qk_norm": True}, {}),
    "no_qk_norm": ({"qk_norm": False}, {}),
    "width96": ({"n_embd": 96}, {}),
    "width64": ({"n_embd": 64}, {}),
    "width128": ({"n_embd": 128}, {}),
    "layers3": ({"n_layer": 3}, {}),
    "learned": ({"position": "learned"}, {}),
    "rotary": ({"position": "rotary"}, {}),
    "tied": ({"tie_embeddings": True}, {}),
    "smoothing": ({"label_smoothing": 0.1}, {}),
    "muon": ({}, {"optimizer": "muon", "muon_lr": 0.02}),
}


def changes(name):
    """(model changes, training changes) of a variant, or of several joined by "+" ("width96+muon")."""
    model_changes, train_changes = {}, {}
    for part in name.split("+"):
        if part not in VARIANTS:
            raise SystemExit(f"unknown variant {part!r}; choose from {', '.join(VARIANTS)}")
        model_changes.update(VARIANTS[part][0])
        train_changes.update(VARIANTS[part][1])
    return model_changes, train_changes


def run(task, budget, names, seeds, out, workdir, test_pairs=None):
    from scratchgpt import preset, train  # here, not above: --table needs no torch
    from scratchgpt.training.tasks import EVAL_PAIRS, translation_task

    # the generated task's fixed val and test sets, smaller with --test-pairs
    eval_pairs = EVAL_PAIRS if test_pairs is None else {"val": max(1, test_pairs // 2), "test": test_pairs}
    for name in names:
        for seed in range(1, seeds + 1):
            model_config, train_config = preset("seq2seq-cpu")
            model_changes, train_changes = changes(name)
            model_config = dataclasses.replace(model_config, **model_changes)
            train_config = dataclasses.replace(
                train_config, task=task, max_time=budget, seed=seed, sample_tokens=0, **train_changes
            )
            result = train(
                model_config,
                train_config,
                f"{workdir}/{task}-{name}-{seed}-{int(budget)}",
                progress=False,
                log=lambda _: None,
                task_builder=functools.partial(translation_task, eval_pairs=eval_pairs),
            )
            s = result.scores
            record = {
                "task": task,
                "variant": name,
                "seed": seed,
                "budget": budget,
                "model": model_changes,
                "train": train_changes,
                "steps": result.steps,
                "test_exact": round(s["test_exact"], 4),
                "val_exact": round(s["val_exact"], 4),
                "test_chrf": round(s["test_chrf"], 2),
                "copy_chrf": round(s["copy_chrf"], 2),
                "test_pairs": s["test_pairs"],
            }
            with open(out, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            print(json.dumps(record), flush=True)


def table(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    print(
        "| task | variant | seed | budget (s) | steps | test exact match | chrF | copy-the-source chrF |\n"
        "|---|---|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['task']} | {r['variant']} | {r['seed']} | {r['budget']:.0f} | {r['steps']} | "
            f"{r['test_exact']:.2%} | {r['test_chrf']:.1f} | {r['copy_chrf']:.1f} |"
        )


def decoding(run, pairs=500, repeats=3):
    """Seconds to decode `pairs` test sources of a generated-task run, each way, the ways interleaved
    `repeats` times (best of each kept), and whether the ways agree."""
    import torch

    from scratchgpt import load_model
    from scratchgpt.data.pairs import generate_distinct
    from scratchgpt.inference.beam import beam_search, greedy
    from scratchgpt.inference.translate import encode_sources

    model, tokenizer, config, info = load_model(run)
    sources = [s for s, _ in generate_distinct(info["generated"], "test", pairs, seed=2)]
    src, mask = encode_sources(tokenizer, sources, config.block_size)
    bos, eos = tokenizer.target.special_id("[BOS]"), tokenizer.target.special_id("[EOS]")
    ways = {
        "greedy, KV cache": lambda: greedy(model, src, mask, bos, eos, config.block_size - 1),
        "greedy, no cache": lambda: greedy(model, src, mask, bos, eos, config.block_size - 1, cache=False),
        "beam 4, KV cache": lambda: beam_search(model, src, mask, bos, eos, config.block_size - 1, 4)[0],
    }
    best, outputs = {}, {}
    for _ in range(repeats):
        for name, way in ways.items():
            start = time.perf_counter()
            outputs[name] = way()
            best[name] = min(best.get(name, float("inf")), time.perf_counter() - start)
    base = best["greedy, no cache"]
    for name, seconds in best.items():
        same = sum(a == b for a, b in zip(outputs[name], outputs["greedy, KV cache"]))
        print(
            f"{name:18} {seconds:6.2f} s  {pairs / seconds:7.0f} sources/s  {base / seconds:4.1f}x the uncached "
            f"greedy  ({same}/{pairs} as cached greedy)"
        )
    print(f"{torch.get_num_threads()} threads, batch {pairs}, torch {torch.__version__}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "variants",
        nargs="*",
        default=["preset"],
        metavar="VARIANT",
        help=f"one or more of: {', '.join(VARIANTS)}, or several joined by + (default: preset)",
    )
    parser.add_argument("--task", choices=("dates", "numbers", "copy", "reverse"), default="dates")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds of training per run")
    parser.add_argument("--seeds", type=int, default=1, help="runs per variant, seeds 1..N")
    parser.add_argument(
        "--test-pairs",
        type=int,
        metavar="N",
        help="score on N test pairs and N/2 val pairs (default: the task's 2,000 and 1,000)",
    )
    parser.add_argument("--out", default="translation.jsonl", help="results file (appended to)")
    parser.add_argument("--workdir", default="runs/bench-translation", help="where the runs go")
    parser.add_argument("--table", metavar="JSONL", help="print the results of a file as a Markdown table")
    parser.add_argument("--decoding", metavar="RUN", help="time the decoding of a generated task's run")
    parser.add_argument("--pairs", type=int, default=500, help="--decoding: test sources to decode (default 500)")
    args = parser.parse_args(argv)
    if args.table:
        return table(args.table)
    if args.decoding:
        return decoding(args.decoding, args.pairs)
    if args.test_pairs is not None and args.test_pairs < 1:
        parser.error("--test-pairs must be at least 1")
    run(args.task, args.budget, args.variants, args.seeds, args.out, args.workdir, args.test_pairs)


if __name__ == "__main__":
    sys.exit(main())

"""The encoder's numbers for BENCHMARKS.md: pretraining, then every fine-tuning task, with baselines.

    python benchmarks/encoder.py --out results.jsonl [--seeds 1 2 3] [--pretrain-preset encoder-cpu]
                                 [--pretrain-max-time S | --pretrained RUN] [--tasks T ...]
                                 [--finetune-preset P]
    python benchmarks/encoder.py --table results.jsonl

1. pretrain: `encoder-cpu` (masked characters of the play without its held-out speeches); its
   curve of masked-character accuracy on the validation text (every estimate, and the final,
   deterministic score);
2. speakers: fine-tuned from the pretrained run and from scratch (same shape, same budget: the
   `speakers-cpu` preset), one run per seed; the majority-class and bag-of-characters baselines on
   the same test split;
3. names (token F1), regress and classify on the synthetic reviews, fine-tuned from the pretrained
   run and from scratch with the `finetune-cpu` preset, first seed.
Each result is one JSON line; --table prints the markdown tables of BENCHMARKS.md from them.
"""

import argparse
import dataclasses
import json
import statistics
import sys
import time
from pathlib import Path


def log_to(path):
    def log(record):
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)

    return log


def quiet(*_):
    """Discard the training log."""


def finetune(task, out, seed, pretrained=None, preset_name=None):
    from scratchgpt import preset, train  # in the functions that train, not above: --table needs no torch
    from scratchgpt.config import FINETUNE_PRESET, fine_tuning_model
    from scratchgpt.rundir import read_config

    shape, train_config = preset(preset_name or FINETUNE_PRESET.get(task, "finetune-cpu"))
    train_config = dataclasses.replace(train_config, task=task, seed=seed)
    model_config = shape if pretrained is None else fine_tuning_model(read_config(pretrained)[0], shape)
    start = time.perf_counter()
    result = train(model_config, train_config, out, pretrained=pretrained, progress=False, log=quiet)
    return {
        "wall_seconds": time.perf_counter() - start,
        "train_seconds": result.train_seconds,
        "steps": result.steps,
        **result.scores,
    }


def run(args):
    record = log_to(args.out)
    work = Path(args.workdir)
    if args.pretrained:
        pretrained = Path(args.pretrained)
        final = [
            m for m in map(json.loads, (pretrained / "metrics.jsonl").read_text().splitlines()) if m["kind"] == "final"
        ][-1]
        record({"what": "pretrain reused", "run": str(pretrained), **final})
    else:
        pretrained = work / "pretrain"
        pretrain(args, record, pretrained)
    if "speakers" in args.tasks:
        speakers(args, record, work, pretrained)
    for task in (t for t in ("names", "regress", "classify") if t in args.tasks):
        for source in ("pretrained", "scratch"):
            record(
                {
                    "what": task,
                    "model": f"encoder, {source}",
                    "seed": args.seeds[0],
                    **finetune(
                        task,
                        work / f"{task}-{source}-{args.seeds[0]}",
                        args.seeds[0],
                        pretrained if source == "pretrained" else None,
                        args.finetune_preset,
                    ),
                }
            )


def pretrain(args, record, pretrained):
    from scratchgpt import preset, train

    model_config, train_config = preset(args.pretrain_preset)
    if args.pretrain_max_time is not None:
        train_config = dataclasses.replace(train_config, max_time=args.pretrain_max_time)
    start = time.perf_counter()
    result = train(model_config, train_config, pretrained, progress=False, log=quiet)
    curve = [
        (m["train_seconds"], m["val_loss"], m["val_accuracy"])
        for m in map(json.loads, (pretrained / "metrics.jsonl").read_text().splitlines())
        if m["kind"] == "eval"
    ]
    record(
        {
            "what": "pretrain",
            "preset": args.pretrain_preset,
            "max_time": train_config.max_time,
            "wall_seconds": time.perf_counter() - start,
            "train_seconds": result.train_seconds,
            "steps": result.steps,
            **result.scores,
            "estimates": curve,
        }
    )


def speakers(args, record, work, pretrained):
    """The two baselines, then the encoder pretrained and from scratch, one run per seed."""
    from scratchgpt.data.corpus import read_text, tiny_shakespeare
    from scratchgpt.data.speeches import SPEAKERS, speaker_examples, speeches
    from scratchgpt.training import baselines, scores

    play, _ = read_text(tiny_shakespeare())
    found = speeches(play)
    train_pairs, test_pairs = speaker_examples(found, "train"), speaker_examples(found, "test")
    actual = [label for _, label in test_pairs]
    for name, predicted in (
        ("majority", baselines.majority([label for _, label in train_pairs], len(test_pairs))),
        (
            "bag-of-characters",
            baselines.bag_of_characters(
                [t for t, _ in train_pairs],
                [label for _, label in train_pairs],
                [t for t, _ in test_pairs],
                len(SPEAKERS),
            ),
        ),
    ):
        record(
            {
                "what": "speakers",
                "model": name,
                "test_accuracy": scores.accuracy(predicted, actual),
                "test_macro_f1": scores.macro_f1(predicted, actual, len(SPEAKERS)),
            }
        )
    for seed in args.seeds:
        for source in ("pretrained", "scratch"):
            scores_ = finetune(
                "speakers",
                work / f"speakers-{source}-{seed}",
                seed,
                pretrained if source == "pretrained" else None,
                args.finetune_preset,
            )
            record({"what": "speakers", "model": f"encoder, {source}", "seed": seed, **scores_})


def table(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    for r in (r for r in rows if r["what"] == "pretrain"):
        print(
            f"pretraining {r['preset']}: {r['steps']} steps, {r['train_seconds']:.0f} s of training, "
            f"{r['wall_seconds']:.0f} s in all; masked-character accuracy {r['val_accuracy']:.1%}, "
            f"loss {r['val_loss']:.4f}"
        )
        print("| training seconds | " + " | ".join(f"{e[0]:.0f}" for e in r["estimates"]) + " |")
        print("|---|" + "---|" * len(r["estimates"]))
        print("| estimated val loss | " + " | ".join(f"{e[1]:.3f}" for e in r["estimates"]) + " |")
        print("| masked accuracy, first 64 val windows | " + " | ".join(f"{e[2]:.1%}" for e in r["estimates"]) + " |")
    print("\n| speakers, test split | seeds | accuracy | macro-F1 |\n|---|---|---|---|")
    models = dict.fromkeys(r["model"] for r in rows if r["what"] == "speakers")
    for model in models:
        group = [r for r in rows if r["what"] == "speakers" and r["model"] == model]
        acc = [r["test_accuracy"] for r in group]
        f1 = [r["test_macro_f1"] for r in group]
        spread = lambda xs: f" ± {statistics.stdev(xs):.3f}" if len(xs) > 1 else ""  # noqa: E731
        print(
            f"| {model} | {', '.join(str(r['seed']) for r in group if 'seed' in r) or '-'} | "
            f"{statistics.mean(acc):.3f}{spread(acc)} | {statistics.mean(f1):.3f}{spread(f1)} |"
        )
    print("\n| task, test split | model | seed | scores | fine-tuning |\n|---|---|---|---|---|")
    shown = {
        "names": ("precision", "recall", "f1"),
        "regress": ("rmse", "spearman"),
        "classify": ("accuracy", "macro_f1"),
    }
    for r in (r for r in rows if r["what"] in shown):
        said = ", ".join(f"{k.replace('_', '-')} {r['test_' + k]:.3f}" for k in shown[r["what"]])
        print(f"| {r['what']} | {r['model']} | {r['seed']} | {said} | {r['steps']} steps, {r['train_seconds']:.0f} s |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="JSON lines file to append the results to")
    parser.add_argument("--workdir", default="/tmp/scratchgpt-encoder-bench", help="where the runs go")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--pretrain-preset", default="encoder-cpu")
    parser.add_argument("--pretrained", help="fine-tune from this pretrained run instead of pretraining one")
    parser.add_argument("--pretrain-max-time", type=float, help="seconds of pretraining (default: the preset's)")
    parser.add_argument(
        "--tasks",
        nargs="+",
        choices=("speakers", "names", "regress", "classify"),
        default=("speakers", "names", "regress", "classify"),
        help="the fine-tuning tasks to run",
    )
    parser.add_argument(
        "--finetune-preset",
        help="one budget for every task (default: the CLI's, speakers-cpu for speakers, finetune-cpu for the rest)",
    )
    parser.add_argument("--table", help="print the tables of a results file instead")
    args = parser.parse_args()
    if args.table:
        return table(args.table)
    if not args.out:
        sys.exit("--out RESULTS.jsonl (or --table RESULTS.jsonl)")
    run(args)


if __name__ == "__main__":
    main()

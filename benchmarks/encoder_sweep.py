"""How the encoder-cpu recipe was chosen: masked-character pretraining at a fixed training-time
budget, one option changed at a time from a plain start, one run each, in the order given.

    python benchmarks/encoder_sweep.py --budget 120 --out sweep.jsonl A muon qk_norm muon_qk
    python benchmarks/encoder_sweep.py --preset tiny-encoder --budget 1 --out sweep.jsonl base muon_qk  # smoke
    python benchmarks/encoder_sweep.py --table sweep.jsonl

The start (`base`) is BERT's recipe at the encoder-cpu width: learned positions, block 128, AdamW
3e-3, no QK-norm. The other variants change what their name says (`A` is rotary positions at block
64, the base of the later rows). Each result is one JSON line: the variant, its settings, the steps
it ran and the deterministic masked-character accuracy on the validation text. `--preset` starts
from another preset's width and training settings (`tiny-encoder`: a smoke run in seconds, its
60 steps or the budget, whichever ends first).
"""

import argparse
import dataclasses
import json
import sys

BASE_MODEL = {"position": "learned", "block_size": 128, "qk_norm": False}
BASE_TRAIN = {"optimizer": "adamw"}
A = {"position": "rotary", "block_size": 64}
MUON = {"optimizer": "muon", "muon_lr": 0.04}
VARIANTS = {  # name: (model changes, training changes)
    "base": ({}, {}),
    "block64": ({"block_size": 64}, {}),
    "rotary": ({"position": "rotary"}, {}),
    "A": (A, {}),
    "A-lr6e-3": (A, {"lr": 6e-3}),
    "A-batch64": (A, {"batch_size": 64}),
    "muon": (A, MUON),
    "qk_norm": ({**A, "qk_norm": True}, {}),
    "muon_qk": ({**A, "qk_norm": True}, MUON),
    "muon_qk-block128": ({**A, "qk_norm": True, "block_size": 128}, MUON),
}


def run(budget, names, out, workdir, preset_name="encoder-cpu"):
    from scratchgpt import preset, train  # here, not above: --table needs no torch

    for name in names:
        model_config, train_config = preset(preset_name)
        model_changes, train_changes = VARIANTS[name]
        model_config = dataclasses.replace(model_config, **{**BASE_MODEL, **model_changes})
        train_config = dataclasses.replace(
            train_config,
            max_time=budget,
            eval_interval=10**6,
            eval_iters=5,
            sample_tokens=0,
            **{**BASE_TRAIN, **train_changes},
        )
        result = train(
            model_config, train_config, f"{workdir}/{name}-{int(budget)}", progress=False, log=lambda _: None
        )
        scores = result.scores
        record = {
            "variant": name,
            "preset": preset_name,
            "budget": budget,
            "model": model_changes,
            "train": train_changes,
            "steps": result.steps,
            "val_accuracy": round(scores["val_accuracy"], 4),
            "val_loss": round(scores["val_loss"], 4),
        }
        with open(out, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        print(json.dumps(record), flush=True)


def table(path):
    with open(path, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    print("| variant | budget (s) | steps | masked accuracy | val loss |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['budget']:.0f} | {r['steps']} | {r['val_accuracy']:.1%} | {r['val_loss']:.4f} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", metavar="VARIANT", help=f"any of: {', '.join(VARIANTS)}")
    parser.add_argument("--budget", type=float, default=120.0, help="seconds of training per run")
    parser.add_argument(
        "--preset", default="encoder-cpu", help="the width and training settings to start from (default encoder-cpu)"
    )
    parser.add_argument("--out", help="JSON lines file to append the results to")
    parser.add_argument("--workdir", default="/tmp/scratchgpt-encoder-sweep")
    parser.add_argument("--table", help="print the table of a results file instead")
    args = parser.parse_args()
    if args.table:
        return table(args.table)
    if not args.out or not args.variants:
        sys.exit("give --out RESULTS.jsonl and one or more variants (or --table RESULTS.jsonl)")
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        sys.exit(f"unknown variant {unknown[0]!r}; choose from {', '.join(VARIANTS)}")
    run(args.budget, args.variants, args.out, args.workdir, args.preset)


if __name__ == "__main__":
    main()

"""Real data (BENCHMARKS.md, "Real data"): every human-labelled set of ../shared/data/real/, the
transformer beside the baseline a practitioner would try first, on the same fixed test split.

    python benchmarks/real_tasks.py baselines --out FILE            # every set's baseline
    python benchmarks/real_tasks.py corpus OUT.txt                  # general English to pretrain on
    python benchmarks/real_tasks.py finetune --sets S ... --pretrained RUN|scratch --out FILE
                                    [--seeds 1 2 3] [--tokenizer char|bpe] [--preset P] [--max-iters N]
    python benchmarks/real_tasks.py translate --out FILE [--seeds 1 2 3] [--preset P] [--max-iters N]
    python benchmarks/real_tasks.py table FILE ...                  # the markdown table

The sets, their task and the score that decides (on the test split, which nothing is tuned on):

    reviews_amazon, reviews_nyt, reviews_tweets   regress   Spearman    TF-IDF + ridge
    sms_spam                                       classify  spam F1     TF-IDF + logistic regression
    brown_pos                                      tag       word acc.   most frequent tag per word
    bible_en_es                                    pairs     chrF        copying the source

The splits are the package's own (data/labelled.split_examples, data/tagged.split_tagged,
data/pairs.split_of), so a baseline and a fine-tune see the same test examples. TF-IDF reads words
(1-2 grams) and characters (2-5 grams, within word boundaries); its regularisation is chosen on
the val split. The general-English corpus is the words of brown_pos.tsv's train split (its val
and test sentences stay unseen). Each result is one JSON line; `table` reads them back.
"""

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path

from encoder import log_to, quiet  # benchmarks/encoder.py: a JSON line a result; no training log

DATA = Path(
    os.environ.get("SCRATCHGPT_REAL_DATA") or Path(__file__).resolve().parent.parent.parent / "shared/data/real"
)
SETS = {
    "reviews_amazon": "regress",
    "reviews_nyt": "regress",
    "reviews_tweets": "regress",
    "sms_spam": "classify",
    "brown_pos": "tag",
    "bible_en_es": "pairs",
}
SCORE = {"regress": "spearman", "classify": "spam_f1", "tag": "word_accuracy", "pairs": "chrf"}
POSITIVE = "spam"  # the class whose F1 decides sms_spam


# ---------------------------------------------------------------------------------------------
# The splits, as the package makes them


def labelled_splits(path, regression):
    from scratchgpt.data.labelled import read_labelled, split_examples

    splits = split_examples(read_labelled(path, regression), regression, path)
    return {s: ([e.text for e in examples], [e.target for e in examples]) for s, examples in splits.items()}


def tagged_splits(path):
    from scratchgpt.data.tagged import read_tagged, split_tagged

    return split_tagged(read_tagged(path), path)  # {split: [TaggedSentence(words, tags, line)]}


def pair_splits(path):
    from scratchgpt.data.pairs import SPLITS, read_pairs, split_of

    pairs, _ = read_pairs([path])
    return {s: [p for p in pairs if split_of(p[0]) == s] for s in SPLITS}


# ---------------------------------------------------------------------------------------------
# Scores: the package's own where it has them, so that both columns are measured alike


def spam_f1(predicted, actual):
    tp = sum(p == POSITIVE and a == POSITIVE for p, a in zip(predicted, actual))
    fp = sum(p == POSITIVE and a != POSITIVE for p, a in zip(predicted, actual))
    fn = sum(p != POSITIVE and a == POSITIVE for p, a in zip(predicted, actual))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def label_scores(predicted, actual):
    from scratchgpt.training import scores

    labels = sorted(set(actual))
    index = [labels.index(p) if p in labels else -1 for p in predicted], [labels.index(a) for a in actual]
    return {"spam_f1": spam_f1(predicted, actual), "accuracy": scores.accuracy(*index)}


def score_scores(predicted, actual):
    from scratchgpt.training import scores

    return {"spearman": scores.spearman(predicted, actual), "rmse": scores.rmse(predicted, actual)}


# ---------------------------------------------------------------------------------------------
# Baselines


def tfidf_baseline(splits, regression):
    """TF-IDF + ridge (scores) or + logistic regression (labels), its strength chosen on val."""
    from scratchgpt.training.baselines import tfidf_model

    scored = score_scores if regression else label_scores
    key = SCORE["regress" if regression else "classify"]
    predict, strength = tfidf_model(splits["train"], splits["val"], regression, lambda p, a: scored(p, a)[key])
    name = "TF-IDF + ridge" if regression else "TF-IDF + logistic regression"
    val, test = (scored(predict(splits[s][0]), splits[s][1]) for s in ("val", "test"))
    return {"model": name, "strength": strength, "val": val[key], **{f"test_{k}": v for k, v in test.items()}}


def most_frequent_tag(splits):
    from scratchgpt.training.baselines import most_frequent_tag

    tag = most_frequent_tag([(s.words, s.tags) for s in splits["train"]])

    def accuracy(split):
        pairs = [(p, t) for s in splits[split] for p, t in zip(tag(s.words), s.tags)]
        return sum(p == t for p, t in pairs) / len(pairs)

    return {"model": "most frequent tag per word", "val": accuracy("val"), "test_word_accuracy": accuracy("test")}


def copy_source(splits):
    from scratchgpt.training.scores import translation_scores

    sources, targets = zip(*splits["test"])
    s = translation_scores(list(sources), list(targets))
    return {"model": "copy the source", "test_chrf": s["chrf"], "test_bleu": s["bleu"]}


def baselines(args):
    record = log_to(args.out)
    for name, task in SETS.items():
        path = args.data_dir / f"{name}.tsv"
        start = time.perf_counter()
        if task in ("regress", "classify"):
            splits = labelled_splits(path, task == "regress")
            result = tfidf_baseline(splits, task == "regress")
        elif task == "tag":
            splits = tagged_splits(path)
            result = most_frequent_tag(splits)
        else:
            splits = pair_splits(path)
            result = copy_source(splits)
        sizes = {s: len(v[0]) if isinstance(v, tuple) else len(v) for s, v in splits.items()}
        record({"set": name, "task": task, "kind": "baseline", **result, "sizes": sizes,
                "seconds": time.perf_counter() - start})  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The transformer


def corpus(args):
    """The words of brown_pos.tsv's train split, a sentence a line: general English to pretrain on."""
    splits = tagged_splits(args.data_dir / "brown_pos.tsv")
    args.out.write_text("".join(" ".join(s.words) + "\n" for s in splits["train"]), encoding="utf-8")
    print(f"wrote {args.out}: {len(splits['train']):,} sentences, {args.out.stat().st_size / 1e6:.1f} MB")


def train_run(model_config, train_config, out, data, pretrained):
    from scratchgpt import train

    start = time.perf_counter()
    result = train(model_config, train_config, out, data=data, pretrained=pretrained, progress=False, log=quiet)
    return result, time.perf_counter() - start


def finetune(args):
    from scratchgpt import preset
    from scratchgpt.config import FINETUNE_PRESET, fine_tuning_model
    from scratchgpt.inference.predict import predict
    from scratchgpt.rundir import load_model, read_config

    record = log_to(args.out)
    pretrained = None if args.pretrained == "scratch" else Path(args.pretrained)
    for name in args.sets:
        task = SETS[name]
        path = args.data_dir / f"{name}.tsv"
        for seed in args.seeds:
            shape, train_config = preset(args.preset or FINETUNE_PRESET.get(task, "finetune-cpu"))
            changes = {"task": task, "seed": seed}
            if args.max_iters:
                changes["max_iters"] = args.max_iters
            if pretrained is None:
                changes["tokenizer"] = args.tokenizer
            train_config = dataclasses.replace(train_config, **changes)
            model_config = shape if pretrained is None else fine_tuning_model(read_config(pretrained)[0], shape)
            out = args.runs / f"{name}-{_slug(args.label)}-{seed}"
            result, wall = train_run(model_config, train_config, out, path, pretrained)
            scores = {k: v for k, v in result.scores.items() if k.startswith(("test_", "val_"))}
            if task == "classify":  # the spam class's F1, from the model's own predictions
                model, tokenizer, _, _ = load_model(out)
                texts, actual = labelled_splits(path, regression=False)["test"]
                predicted = [r["label"] for r in predict(model, tokenizer, texts)]
                scores.update({f"test_{k}": v for k, v in label_scores(predicted, actual).items()})
            record({"set": name, "task": task, "kind": "transformer", "model": args.label, "seed": seed,
                    "pretrained": str(pretrained or "scratch"), "preset": args.preset, "steps": result.steps,
                    "train_seconds": result.train_seconds, "wall_seconds": wall, **scores})  # fmt: skip


def translate(args):
    """The encoder-decoder on bible_en_es.tsv: `pairs-cpu` (or --preset), one run a seed; its final
    scores decode the test split (chrF and BLEU, and copying the source's on the same pairs)."""
    from scratchgpt import preset

    record = log_to(args.out)
    path = args.data_dir / "bible_en_es.tsv"
    for seed in args.seeds:
        model_config, train_config = preset(args.preset)
        changes = {"seed": seed} | ({"max_iters": args.max_iters, "max_time": 0.0} if args.max_iters else {})
        train_config = dataclasses.replace(train_config, **changes)
        out = args.runs / f"bible_en_es-{args.preset}-{seed}"
        result, wall = train_run(model_config, train_config, out, path, None)
        scores = {k: v for k, v in result.scores.items() if isinstance(v, float)}
        record({"set": "bible_en_es", "task": "pairs", "kind": "transformer", "model": args.label, "seed": seed,
                "preset": args.preset, "steps": result.steps, "train_seconds": result.train_seconds,
                "wall_seconds": wall, **scores})  # fmt: skip


# ---------------------------------------------------------------------------------------------
# The table


def table(args):
    records = [json.loads(line) for path in args.files for line in open(path, encoding="utf-8")]
    print("| set | task | score | model | seeds | test | val |")
    print("|---|---|---|---|---|---|---|")
    for name, task in SETS.items():
        key = SCORE[task]
        rows = {}
        for r in records:
            if r["set"] == name:
                rows.setdefault((r["kind"], r["model"]), []).append(r)
        for (kind, model), group in sorted(rows.items()):
            tests = [r.get(f"test_{key}") for r in group]
            vals = [r.get(f"val_{key}", r.get("val")) for r in group]
            seeds = ", ".join(str(r["seed"]) for r in group) if kind == "transformer" else "-"
            print(f"| {name} | {task} | {key} | {model} | {seeds} | {_mean(tests)} | {_mean(vals)} |")


def _slug(label):
    """A run directory's name for a model's label: 'encoder, BPE 1,024' -> 'encoder-bpe-1024'."""
    return "-".join("".join(c for c in word if c.isalnum()) for word in label.lower().split()).strip("-")


def _mean(values):
    values = [v for v in values if v is not None]
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DATA, help="where the real sets are (../shared/data/real)")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("baselines")
    b.add_argument("--out", type=Path, required=True)
    c = sub.add_parser("corpus")
    c.add_argument("out", type=Path)
    f = sub.add_parser("finetune")
    f.add_argument("--sets", nargs="+", choices=[s for s, t in SETS.items() if t != "pairs"], required=True)
    f.add_argument("--pretrained", required=True, help="an encoder run, or scratch")
    f.add_argument("--label", required=True, help="the model's name in the table, e.g. 'encoder, chars, brown'")
    f.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    f.add_argument("--tokenizer", default="char", help="with --pretrained scratch: char or bpe")
    f.add_argument("--preset")
    f.add_argument("--max-iters", type=int)
    f.add_argument("--runs", type=Path, default=Path("runs/real"))
    f.add_argument("--out", type=Path, required=True)
    r = sub.add_parser("translate")
    r.add_argument("--label", default="encoder-decoder, BPE 2,000, pairs-cpu")
    r.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    r.add_argument("--preset", default="pairs-cpu")
    r.add_argument("--max-iters", type=int, help="a budget of steps instead of the preset's clock")
    r.add_argument("--runs", type=Path, default=Path("runs/real"))
    r.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("table")
    t.add_argument("files", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if not args.data_dir.is_dir() and args.command != "table":
        sys.exit(f"real_tasks.py: {args.data_dir} not found (give --data-dir)")
    commands = {"baselines": baselines, "corpus": corpus, "finetune": finetune, "translate": translate}
    commands.get(args.command, table)(args)


if __name__ == "__main__":
    main()

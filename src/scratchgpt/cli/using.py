"""Commands that use a trained model: sample (a GPT's text), eval (any run's scores), predict (a
fine-tuned encoder's labels or scores), fill (a pretrained encoder's guesses for [MASK]),
translate (an encoder-decoder's translations), attention (pictures of the attention weights), plot
(a run's training curves)."""

import json
import sys
from pathlib import Path

import torch

from ..device import resolve_device
from ..errors import CheckpointError, ConfigError, a_or_an
from ..evaluation import evaluate_run
from ..inference.compiled import Decoder, check_compilable
from ..inference.generate import sample_texts, stream_text
from ..inference.predict import fill, predict
from ..inference.sampling import CACHE_POLICIES, Sampling
from ..inference.translate import split_source, stream_translation, translate
from ..inference.weights import with_weights
from ..lessons.attention_maps import attention_panels, check_selection, plot_maps
from ..lessons.curves import plot_curves
from ..rundir import load_model, load_run, read_config, read_metrics
from .options import add_device, add_json, add_run, add_weights, run_dir


def add_commands(sub):
    s = sub.add_parser(
        "sample",
        help="generate text from a trained GPT",
        description="Generate text from a trained model, streamed as it is produced.",
    )
    add_run(s)
    s.add_argument("--prompt", default="", help="text to continue (default: start from a newline)")
    s.add_argument("--max-new-tokens", type=int, default=500, help="tokens to generate (default 500)")
    s.add_argument(
        "--temperature",
        type=float,
        default=1.0,
        help="divide the logits by this; below 1 is more conservative, 0 is greedy (default 1)",
    )
    s.add_argument("--top-k", type=int, default=None, help="sample only from the k likeliest tokens")
    s.add_argument(
        "--top-p",
        type=float,
        default=None,
        help="sample only from the likeliest tokens whose probabilities add up to p (0 < p <= 1)",
    )
    s.add_argument("--num-samples", type=int, default=1, help="samples to generate at once, as one batch")
    s.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="end a sample before this text (repeat for several)"
    )
    s.add_argument("--seed", type=int, default=None, help="random seed, for reproducible samples")
    s.add_argument(
        "--cache",
        choices=CACHE_POLICIES,
        default="window",
        help="window (default): key/value cache, sliding by half a block past block_size; "
        "exact: cache, then the lecture's cropping past block_size (same tokens as "
        "none); none: the lecture's uncached method",
    )
    s.add_argument(
        "--no-cache",
        dest="cache",
        action="store_const",
        const="none",
        help="the lecture's uncached method (same as --cache none)",
    )
    s.add_argument(
        "--compile",
        action="store_true",
        help="decode each cached token with a compiled step (torch.compile; it compiles "
        "before the first token): the same tokens, less overhead per token",
    )
    add_weights(s)
    add_device(s)
    s.set_defaults(command=cmd_sample)

    e = sub.add_parser(
        "eval",
        help="a run's scores: a GPT's full validation loss, an encoder's task metrics, "
        "an encoder-decoder's exact match, chrF and BLEU",
        description="Score a run deterministically: a GPT on every non-overlapping "
        "window of the validation split (the last 10% of the text); a "
        "pretrained encoder by masked characters of the validation text; a "
        "fine-tuned one on its val and test splits; an encoder-decoder by "
        "exact match, chrF and BLEU (sacrebleu) on its test split.",
    )
    add_run(e)
    e.add_argument(
        "--data",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="the data to score on (default: the run's own; two aligned files for pairs)",
    )
    e.add_argument("--beam", type=int, default=1, help="an encoder-decoder's beam size (default 1: greedy)")
    add_device(e)
    add_json(e)
    e.set_defaults(command=cmd_eval)

    p = sub.add_parser(
        "predict",
        help="a fine-tuned encoder's label, score or word tags for each text",
        description="Label or score texts with a fine-tuned encoder: the label and its "
        "probabilities, the score, the spans of labelled characters, or a tagger's "
        "word/TAG for each word (words: the text split on whitespace; --json adds "
        "the entities of BIO tags). "
        "Texts come from the arguments, else one per line of stdin.",
    )
    p.add_argument("texts", nargs="*", metavar="TEXT", help="texts (default: the lines of stdin)")
    add_run(p)
    add_device(p)
    add_json(p)
    p.set_defaults(command=cmd_predict)

    f = sub.add_parser(
        "fill",
        help="a pretrained encoder's guesses for each [MASK] of a text",
        description="Show the likeliest characters for each [MASK] in TEXT, as a "
        "pretrained (masked-LM) encoder sees them.",
    )
    f.add_argument("text", metavar="TEXT", help='text with one or more [MASK]s, e.g. "to be or not to b[MASK]"')
    add_run(f)
    f.add_argument("--top-k", type=int, default=5, help="guesses per [MASK] (default 5)")
    add_device(f)
    add_json(f)
    f.set_defaults(command=cmd_fill)

    t = sub.add_parser(
        "translate",
        help="an encoder-decoder's translation of each text",
        description="Translate texts with a trained encoder-decoder (train one with: "
        "scratchgpt train --model seq2seq). Texts come from the arguments, else "
        "one per line of stdin; one text with greedy decoding streams as it is "
        "written. A text longer than the model's block_size is refused, not cut, "
        "unless --split is given.",
    )
    t.add_argument("texts", nargs="*", metavar="TEXT", help="texts (default: the lines of stdin)")
    add_run(t)
    t.add_argument("--beam", type=int, default=1, help="beam size; 1 (the default) is greedy decoding")
    t.add_argument(
        "--alpha",
        type=float,
        default=0.6,
        help="beam search's length penalty ((5 + length) / 6) ** alpha; 0 is none (default 0.6)",
    )
    t.add_argument("--max-len", type=int, default=None, help="the most target tokens (default block_size - 1)")
    t.add_argument(
        "--split",
        action="store_true",
        help="translate a text longer than block_size in pieces: as many whole sentences a piece as fit "
        "(a longer sentence cut after its commas, semicolons and colons), the translations joined; "
        "without it such a text is refused",
    )
    add_device(t)
    add_json(t)
    t.set_defaults(command=cmd_translate)

    a = sub.add_parser(
        "attention",
        help="draw a trained model's attention weights over a text",
        description="Draw the attention weights of every layer and head over TEXT as "
        "heatmaps: row t shows which characters position t attends to "
        "(earlier ones only for a GPT, all of them for an encoder). For an "
        "encoder-decoder TEXT is the source: the encoder's, the decoder's and "
        "the cross-attention (rows: the target token being written; columns: "
        "the source) side by side.",
    )
    add_run(a)
    a.add_argument("--text", required=True, help="text to look at (at most block_size characters)")
    a.add_argument("--out", type=Path, default=Path("attention.png"), help="image file (default attention.png)")
    a.add_argument("--layer", type=int, help="draw only this layer (from 0)")
    a.add_argument("--head", type=int, help="draw only this head (from 0)")
    a.add_argument("--target", help="an encoder-decoder's target to read (default: its own translation of --text)")
    a.set_defaults(command=cmd_attention)

    c = sub.add_parser(
        "plot",
        help="draw a run's training curves from its metrics.jsonl",
        description="Draw a run's training curves from its metrics.jsonl, of any model and "
        "task, finished or still training: the training loss, the train and "
        "val estimates and the final score against the step, beside the "
        "learning rate, the gradient norm (with clipping), tokens/s and the "
        "task's tracked scores. Needs the viz extra (matplotlib).",
    )
    add_run(c)
    c.add_argument("--out", type=Path, help="image file (default: RUN/curves.png)")
    c.set_defaults(command=cmd_plot)


def _load(args, families):
    """(model, tokenizer, config) of the run, which must be of one of `families` for this command."""
    device = resolve_device(args.device) if hasattr(args, "device") else torch.device("cpu")
    run = run_dir(args.run)
    kind = read_config(run)[0].kind
    if kind not in families:
        wanted = " or ".join([", ".join(families[:-1]), families[-1]] if len(families) > 2 else families)
        raise ConfigError(f"{run} holds {a_or_an(kind)} model; this command needs {a_or_an(wanted)} run")
    return load_model(run, device)[:3]


def cmd_sample(args):
    sampling = Sampling(
        args.max_new_tokens,
        args.temperature,
        args.top_k,
        args.top_p,
        args.num_samples,
        args.stop,
        args.seed,
        args.cache,
        args.compile,
    )
    model, tokenizer, config = _load(args, ("gpt", "bigram"))
    model = with_weights(model, args.weights)  # a bigram or a bad value: refused here, in one line
    tokenizer.encode(args.prompt)  # refuse a bad prompt or stop string before printing anything
    sampling.check_stops(tokenizer)
    decoder = None
    if sampling.compile:  # compile (or fail to) before printing anything
        check_compilable(config)
        decoder = Decoder(model)
        seconds = decoder.warm_up(sampling.num_samples)
        print(f"scratchgpt: decode step compiled in {seconds:.1f} s", file=sys.stderr, flush=True)
    if sampling.num_samples == 1:
        print(args.prompt, end="", flush=True)
        for piece in stream_text(model, tokenizer, args.prompt, sampling, decoder=decoder):
            print(piece, end="", flush=True)
        print()
        return
    texts = sample_texts(model, tokenizer, args.prompt, sampling, decoder=decoder)
    print("\n\n".join(f"---- sample {i} ----\n{args.prompt}{text}" for i, text in enumerate(texts, 1)))


def cmd_eval(args):
    device = resolve_device(args.device)
    run = load_run(run_dir(args.run), device)
    kind = run.model_config.kind
    if args.beam != 1 and kind != "seq2seq":
        raise ConfigError(f"--beam is for encoder-decoder runs; {run.path} holds {a_or_an(kind)} model")
    scores, report = evaluate_run(run, args.data[0] if args.data and len(args.data) == 1 else args.data, args.beam)
    print(json.dumps({"run": str(run.path), **scores}) if args.json else report)


def cmd_predict(args):
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ConfigError("no text to predict: give texts as arguments or lines on stdin")
    if any(not t.strip() for t in texts):
        raise ConfigError("a text to predict is empty")
    model, tokenizer, _ = _load(args, ("encoder",))
    results = predict(model, tokenizer, texts)
    for text, result in zip(texts, results):
        if args.json:
            print(json.dumps({"text": text, **result}, ensure_ascii=False))
        elif "score" in result:
            print(f"{result['score']:.3f}\t{text}")
        elif "label" in result:
            print(f"{result['label']}\t{result['probabilities'][result['label']]:.1%}\t{text}")
        elif "tags" in result:
            print(" ".join(f"{word}/{tag}" for word, tag in zip(result["words"], result["tags"])))
        else:
            print(f"{', '.join(s['text'] for s in result['spans']) or '-'}\t{text}")


def cmd_fill(args):
    model, tokenizer, _ = _load(args, ("encoder",))
    guesses = fill(model, tokenizer, args.text, args.top_k)
    if args.json:
        print(
            json.dumps(
                {"text": args.text, "fills": [[{"token": t, "probability": p} for t, p in g] for g in guesses]},
                ensure_ascii=False,
            )
        )
        return
    for i, options in enumerate(guesses, 1):
        print(f"[MASK] {i}: " + "  ".join(f"{t!r} {p:.1%}" for t, p in options))


def cmd_translate(args):
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not texts:
        raise ConfigError("no text to translate: give texts as arguments or lines on stdin")
    model, tokenizer, config = _load(args, ("seq2seq",))
    if args.split:  # say which texts are translated in pieces (before any output: a piece too long is refused)
        for number, text in enumerate(texts, 1):
            if len(pieces := split_source(tokenizer, text, config.block_size, number)) > 1:
                print(
                    f"text {number} is longer than block_size {config.block_size} tokens: "
                    f"translated in {len(pieces)} pieces cut at sentence ends",
                    file=sys.stderr,
                )
    if len(texts) == 1 and args.beam == 1 and not args.json:
        for piece in stream_translation(model, tokenizer, texts[0], args.max_len, args.split):
            print(piece, end="", flush=True)
        print()
        return
    outputs = translate(model, tokenizer, texts, args.beam, args.alpha, args.max_len, split=args.split)
    for text, output in zip(texts, outputs):
        print(json.dumps({"text": text, "translation": output}, ensure_ascii=False) if args.json else output)


def cmd_attention(args):
    model, tokenizer, config = _load(args, ("gpt", "encoder", "seq2seq"))
    check_selection(config, args.layer, args.head)
    panels, translation = attention_panels(model, tokenizer, args.text, args.target)
    plot_maps(panels, args.out, args.layer, args.head)
    print((f"translation: {translation}\n" if translation is not None else "") + f"wrote {args.out}", file=sys.stderr)


def cmd_plot(args):
    run = run_dir(args.run)
    records = read_metrics(run)
    if not any(r.get("kind") in ("train", "eval", "final") for r in records):
        if not run.is_dir():
            raise CheckpointError(f"run directory not found: {run}")
        raise CheckpointError(f"{run} has no metrics yet; its first line comes after log_interval steps of training")
    out = args.out or run / "curves.png"
    plot_curves(records, out, title=str(run))
    print(f"wrote {out}", file=sys.stderr)

"""The `scratchgpt` command: train, sample, eval. A thin layer over the library.

Every training setting of `config.py` becomes a flag (`n_layer` -> `--n-layer`), so the CLI can
never drift from the dataclasses. Errors a user can cause print one line and exit with code 2.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import config as cfg
from .checkpoint import load_model, read_config
from .data.corpus import check_long_enough, corpus_path, prepare, read_text, split
from .device import compute_dtype, configure, device_name, has_gpu, resolve_device
from .errors import CheckpointError, ConfigError, ScratchGPTError
from .inference.generate import sample_texts, stream_text
from .inference.sampling import CACHE_POLICIES, Sampling
from .lessons.attention_maps import attention_weights, check_selection, plot_attention
from .training.bench import bench_step, matmul_peak
from .training.evaluate import evaluate_split
from .training.loop import train
from .training.tasks import make_task

RUNS = Path("runs")


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.command(args) or 0
    except ScratchGPTError as e:
        print(f"scratchgpt: {'error: ' if e.exit_code == 2 else ''}{e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("\nscratchgpt: interrupted", file=sys.stderr)
        return 130


def _parse_bool(text):
    value = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def _add_settings(parser):
    """One --flag per setting of config.py (`n_layer` -> `--n-layer`), default: the preset's."""
    settings = parser.add_argument_group("settings (default: the preset's value)")
    for section, f in cfg.setting_fields():
        settings.add_argument("--" + f.name.replace("_", "-"), dest=f"set_{f.name}",
                              type=_parse_bool if f.type is bool else f.type,
                              choices=f.metadata["choices"], default=None,
                              metavar=("{true,false}" if f.type is bool else None if f.metadata["choices"]
                                       else f.type.__name__.upper()),
                              help=f"{f.metadata['help']} [{section}]")


def _settings(args, resume_from=None):
    """(model config, train config): the preset's (or those of the run in `resume_from`), then the
    --config TOML file's, then the setting flags'. The model family comes from --model, else the
    TOML file's `kind`, else the preset."""
    overrides = cfg.read_toml(args.config) if args.config else {}
    kind = getattr(args, "model", None) or overrides.pop("kind", None)
    if resume_from is not None:
        model_config, train_config, _ = read_config(resume_from)
        if kind is not None and kind != model_config.kind:
            raise ConfigError(f"cannot resume {resume_from} with changed settings "
                              f"(model: {model_config.kind!r} -> {kind!r})")
    else:
        model_config, train_config = cfg.preset(args.preset, has_gpu(), kind)
    model_config, train_config = cfg.apply_overrides(model_config, train_config, overrides, str(args.config))
    flags = {name[4:]: v for name, v in vars(args).items() if name.startswith("set_") and v is not None}
    return cfg.apply_overrides(model_config, train_config, flags)


def build_parser():
    parser = Parser(prog="scratchgpt", description="A GPT built from scratch, the way the lecture does it.")
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=Parser)

    t = sub.add_parser("train", help="train a GPT on Tiny Shakespeare or your own text",
                       description="Train a character-level GPT. Settings come from the preset, "
                                   "then the --config TOML file, then the flags below.")
    t.add_argument("--model", choices=tuple(cfg.MODEL_KINDS), default=None,
                   help="model family: gpt (default) or bigram (the lecture's first model, the "
                        "baseline; its default preset is bigram)")
    t.add_argument("--preset", choices=cfg.PRESET_NAMES, default=None,
                   help="named settings: lecture (the lecture's model), cpu (minutes on a laptop CPU), "
                        "speedrun-cpu / speedrun-gpu (best model in 99 s / 30 s of training), "
                        "tiny (seconds, for tests), bigram (the lecture's bigram.py); "
                        "auto (default for gpt): lecture on a GPU, else cpu")
    t.add_argument("--data", type=Path, help="UTF-8 text file to train on (default: $SCRATCHGPT_DATA, "
                                             "else Tiny Shakespeare, which ships with scratchgpt)")
    t.add_argument("--out", type=Path, help="run directory (default: runs/<preset>-<n>)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint; its learning-rate "
                        "schedule keeps its plan even with a larger --max-iters or --max-time")
    t.add_argument("--extend", action="store_true",
                   help="with --resume: re-plan the learning-rate schedule over the new --max-iters "
                        "and --max-time")
    t.add_argument("--config", type=Path, metavar="TOML", help="TOML file of settings ([model], [train])")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_settings(t)
    t.set_defaults(command=cmd_train)

    s = sub.add_parser("sample", help="generate text from a trained model",
                       description="Generate text from a trained model, streamed as it is produced.")
    s.add_argument("--run", type=Path, help="run directory (default: the newest run in ./runs)")
    s.add_argument("--prompt", default="", help="text to continue (default: start from a newline)")
    s.add_argument("--max-new-tokens", type=int, default=500, help="tokens to generate (default 500)")
    s.add_argument("--temperature", type=float, default=1.0,
                   help="divide the logits by this; below 1 is more conservative, 0 is greedy (default 1)")
    s.add_argument("--top-k", type=int, default=None, help="sample only from the k likeliest tokens")
    s.add_argument("--top-p", type=float, default=None,
                   help="sample only from the likeliest tokens whose probabilities add up to p (0 < p <= 1)")
    s.add_argument("--num-samples", type=int, default=1, help="samples to generate at once, as one batch")
    s.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="end a sample before this text (repeat for several)")
    s.add_argument("--seed", type=int, default=None, help="random seed, for reproducible samples")
    s.add_argument("--cache", choices=CACHE_POLICIES, default="window",
                   help="window (default): key/value cache, sliding by half a block past block_size; "
                        "exact: cache, then the lecture's cropping past block_size (same tokens as "
                        "none); none: the lecture's uncached method")
    s.add_argument("--no-cache", dest="cache", action="store_const", const="none",
                   help="the lecture's uncached method (same as --cache none)")
    s.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default auto)")
    s.set_defaults(command=cmd_sample)

    e = sub.add_parser("eval", help="loss and bits per character on the whole validation split",
                       description="Score the model on every non-overlapping window of the "
                                   "validation split (the last 10%% of the text): deterministic.")
    e.add_argument("--run", type=Path, help="run directory (default: the newest run in ./runs)")
    e.add_argument("--data", type=Path, help="text file (default: the one the run was trained on)")
    e.add_argument("--device", default="auto", help="cpu, cuda, mps or auto (default auto)")
    e.add_argument("--json", action="store_true", help="print the result as one JSON object")
    e.set_defaults(command=cmd_eval)

    b = sub.add_parser("bench", help="time training steps: ms/step, tokens/s, MFU, peak memory",
                       description="Time the training step of a preset on one device, for the "
                                   "readable and the fast path side by side. MFU is measured against "
                                   "a large matmul on the same device, in the training dtype.")
    b.add_argument("--preset", choices=cfg.PRESET_NAMES, default="auto",
                   help="settings to bench (default auto: lecture on a GPU, else cpu)")
    b.add_argument("--data", type=Path, help="text file for the batches (default: as train)")
    b.add_argument("--config", type=Path, metavar="TOML", help="TOML file of settings ([model], [train])")
    b.add_argument("--steps", type=int, default=20, help="timed steps per configuration (default 20)")
    b.add_argument("--warmup", type=int, default=3,
                   help="untimed steps first, compilation included (default 3)")
    b.add_argument("--paths", nargs="+", choices=("readable", "fast"), default=["readable", "fast"],
                   help="attention paths to time (default both)")
    b.add_argument("--compare-compile", action="store_true",
                   help="time each path with torch.compile off and on (default: as --compile says)")
    b.add_argument("--json", action="store_true", help="print the results as one JSON object")
    _add_settings(b)
    b.set_defaults(command=cmd_bench)

    a = sub.add_parser("attention", help="draw a trained model's attention weights over a text",
                       description="Draw the attention weights of every layer and head over TEXT as "
                                   "heatmaps: row t shows which earlier characters position t attends to.")
    a.add_argument("--run", type=Path, help="run directory (default: the newest run in ./runs)")
    a.add_argument("--text", required=True, help="text to look at (at most block_size characters)")
    a.add_argument("--out", type=Path, default=Path("attention.png"), help="image file (default attention.png)")
    a.add_argument("--layer", type=int, help="draw only this layer (from 0)")
    a.add_argument("--head", type=int, help="draw only this head (from 0)")
    a.set_defaults(command=cmd_attention)
    return parser


def cmd_train(args):
    if args.resume and args.out is None:
        raise ConfigError("--resume needs --out RUN_DIR, the run to continue")
    if args.resume and args.preset is not None:
        raise ConfigError("--resume continues a run with its saved settings; drop --preset")
    model_config, train_config = _settings(args, resume_from=args.out if args.resume else None)
    out = args.out or _new_run_dir(cfg.preset_name(args.preset, has_gpu(), model_config.kind))
    result = train(model_config, train_config, out, data=args.data, resume=args.resume,
                   extend=args.extend, progress=not args.quiet,
                   log=lambda m: tqdm.write(m, file=sys.stderr))
    print(result.sample)
    print(f"\n[saved to {out}; more with: scratchgpt sample --run {out}]", file=sys.stderr)


def cmd_sample(args):
    sampling = Sampling(args.max_new_tokens, args.temperature, args.top_k, args.top_p, args.num_samples,
                        args.stop, args.seed, args.cache)
    device = resolve_device(args.device)
    model, tokenizer, _, _ = load_model(_run_dir(args.run), device)
    tokenizer.encode(args.prompt)  # refuse a bad prompt or stop string before printing anything
    sampling.check_stops(tokenizer)
    if sampling.num_samples == 1:
        print(args.prompt, end="", flush=True)
        for piece in stream_text(model, tokenizer, args.prompt, sampling):
            print(piece, end="", flush=True)
        print()
        return
    texts = sample_texts(model, tokenizer, args.prompt, sampling)
    print("\n\n".join(f"---- sample {i} ----\n{args.prompt}{text}" for i, text in enumerate(texts, 1)))


def cmd_bench(args):
    if args.steps < 1 or args.warmup < 1:
        raise ConfigError("--steps and --warmup must be at least 1")
    model_config, train_config = _settings(args)
    if model_config.kind != "gpt":
        raise ConfigError(f"bench times the GPT's attention paths; the {model_config.kind} model has none")
    device = configure(resolve_device(train_config.device))
    task, model_config = make_task(model_config, train_config, args.data)
    compile_modes = [False, True] if args.compare_compile else [train_config.compile]
    amp_dtype = compute_dtype(device, train_config.dtype)
    peak = matmul_peak(device, amp_dtype)
    rows = []
    for attention in args.paths:
        for compile in compile_modes:
            row = bench_step(model_config, train_config, task, device, attention, compile,
                             args.steps, args.warmup)
            row["mfu"] = row.pop("achieved_flops") / peak
            rows.append(row)
            if not args.json:
                print(f"{attention:>8} compile {'on ' if compile else 'off'}: "
                      f"{row['ms_per_step']:8.1f} ms/step {row['tokens_per_s']:>10,.0f} tokens/s  "
                      f"MFU {100 * row['mfu']:5.1f}%  peak memory {row['peak_memory_mb']:,.0f} MB  "
                      f"(warm-up {row['warmup_s']:.1f} s)", flush=True)
    summary = {"device": device_name(device), "preset": args.preset, "dtype": str(amp_dtype)[6:],
               "peak_tflops": peak / 1e12, "threads": torch.get_num_threads(),
               "batch_size": train_config.batch_size, "block_size": model_config.block_size,
               "torch": torch.__version__, "results": rows}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"device {summary['device']}, {summary['threads']} threads, measured {summary['dtype']} "
              f"matmul peak {peak / 1e9:,.0f} GFLOP/s")
        by_path = {r["attention"]: r["tokens_per_s"] for r in rows if r["compile"] == compile_modes[-1]}
        if len(by_path) == 2:
            print(f"fast path: {by_path['fast'] / by_path['readable']:.2f}x the readable path's tokens/s")


def cmd_eval(args):
    device = resolve_device(args.device)
    run = _run_dir(args.run)
    model, tokenizer, model_config, data_info = load_model(run, device)
    path = corpus_path(args.data or data_info.get("source"))
    text, sha = read_text(path)
    if sha == data_info.get("sha256"):
        tokens = prepare(path).tokens  # the cached token file of the training text
    else:  # another text: encode it with the model's own vocabulary
        tokens = np.array(tokenizer.encode(text), dtype=np.int64)
    _, val_data = split(tokens)
    check_long_enough({"validation": val_data}, model_config.block_size)
    loss, bpc = evaluate_split(model, val_data, model_config.block_size, device=device)
    windows = (len(val_data) - 1) // model_config.block_size
    if args.json:
        print(json.dumps({"run": str(run), "val_loss": loss, "val_bpc": bpc, "windows": windows,
                          "tokens": windows * model_config.block_size}))
    else:
        print(f"val loss {loss:.4f} nats/token, {bpc:.4f} bits/char "
              f"({windows} windows of {model_config.block_size} tokens)")


def _run_dir(run):
    if run is not None:
        return run
    runs = sorted((p for p in RUNS.glob("*") if (p / "model.safetensors").exists()),
                  key=lambda p: (p / "model.safetensors").stat().st_mtime)
    if not runs:
        raise CheckpointError("no trained run in ./runs; pass --run RUN_DIR")
    print(f"scratchgpt: using {runs[-1]}", file=sys.stderr)
    return runs[-1]


def _new_run_dir(preset):
    n = 1
    while (RUNS / f"{preset}-{n}").exists():
        n += 1
    return RUNS / f"{preset}-{n}"


def cmd_attention(args):
    model, tokenizer, config, _ = load_model(_run_dir(args.run))
    if config.kind != "gpt":
        raise ConfigError(f"the {config.kind} model has no attention to draw")
    check_selection(config, args.layer, args.head)
    if not args.text:
        raise ConfigError("--text must not be empty")
    if len(args.text) > config.block_size:
        raise ConfigError(f"text has {len(args.text)} characters; the model sees at most "
                              f"block_size {config.block_size}")
    idx = torch.tensor([tokenizer.encode(args.text)], dtype=torch.long)  # (1, T)
    plot_attention(attention_weights(model, idx), args.text, args.out, args.layer, args.head)
    print(f"wrote {args.out}", file=sys.stderr)

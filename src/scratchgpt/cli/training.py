"""Commands that train: train (any model family, from scratch), finetune (an encoder on a task,
from a pretrained run or from scratch), bench (how fast a training step runs)."""

import json
import sys
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import config as cfg
from ..device import configure, device_name, has_gpu, native_bf16, resolve_device, training_dtype
from ..errors import ConfigError
from ..settings import FINE_TUNING
from ..training import distributed
from ..training.bench import bench_step, matmul_peak
from ..training.loop import train
from ..training.tasks import build_task, fit_model_config
from .options import add_settings, new_run_dir, settings

MODEL_HELP = (
    "model family: gpt (default), bigram (the lecture's first model, the baseline), "
    "encoder (BERT-like, pretrained by masked tokens) or seq2seq (encoder-decoder, for translation: "
    "--task dates|numbers|copy|reverse|pairs)"
)
# finetune's presets: those that train a fine-tuning task
FINETUNE_PRESETS = tuple(name for name, (_, train) in cfg.PRESETS.items() if train.task in FINE_TUNING)
PRESET_HELP = (
    "named settings: lecture (the lecture's GPT), cpu (minutes on a laptop CPU), "
    "speedrun-cpu / speedrun-gpu (best GPT in 99 s / 30 s of training), gpt2-compatible (cpu's "
    "budget with GPT-2's pieces: exports to Hugging Face), tiny (seconds, for "
    "tests), bigram (the lecture's bigram.py), encoder-cpu / encoder-gpu / tiny-encoder (the "
    "encoder's pretraining), seq2seq-cpu / seq2seq-gpu / tiny-seq2seq (translation); auto (the "
    "default): the family's GPU preset on a GPU, else its CPU one"
)


def add_commands(sub):
    t = sub.add_parser(
        "train",
        help="train a model from scratch: a GPT (default), the bigram, an encoder or an encoder-decoder (seq2seq)",
        description="Train a model from scratch on Tiny Shakespeare or your own text: a "
        "character-level GPT, the bigram baseline, a BERT-like encoder "
        "by masked characters, or an encoder-decoder (seq2seq) on a "
        "translation task. Settings come from the preset, then the "
        "--config TOML file, then the flags below.",
    )
    t.add_argument("--model", choices=tuple(cfg.MODEL_KINDS), default=None, help=MODEL_HELP)
    t.add_argument("--preset", choices=cfg.PRESET_NAMES, default=None, help=PRESET_HELP)
    t.add_argument(
        "--data",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="UTF-8 text file to train on (default: the task's built-in data; for the GPT "
        "$SCRATCHGPT_DATA, else Tiny Shakespeare, which ships with scratchgpt); for "
        "--task pairs a TSV of source<TAB>target lines, or two aligned files",
    )
    t.add_argument("--out", type=Path, help="run directory (default: runs/<preset>-<n>)")
    t.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --out from its last checkpoint (any run: a GPT, an encoder, "
        "a fine-tuning); its learning-rate schedule keeps its plan even with a larger "
        "--max-iters or --max-time",
    )
    t.add_argument(
        "--extend",
        action="store_true",
        help="with --resume: re-plan the learning-rate schedule over the new --max-iters and --max-time",
    )
    t.add_argument(
        "--init-from",
        type=Path,
        metavar="GPT2_DIR",
        help="start from a Hugging Face GPT-2 directory (config.json, model.safetensors or "
        "pytorch_model.bin, tokenizer.json; e.g. GPT-2 small saved with save_pretrained): "
        "its shape, weights and tokenizer, fine-tuned on --data (default preset "
        "gpt2-finetune; --block-size may cut its positions; pip install 'scratchgpt[hf]')",
    )
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    add_settings(t)
    t.set_defaults(command=cmd_train)

    f = sub.add_parser(
        "finetune",
        help="fine-tune an encoder for a task: speakers, names, classify, regress, tag",
        description="Fine-tune a pretrained encoder (--from RUN) for a task, or train the "
        "same thing from random weights (--from scratch) with the same "
        "budget. Tasks: speakers (who speaks? 8 speakers of Tiny "
        "Shakespeare), names (which characters name a speaker), classify "
        "(text<TAB>label lines of --data), regress (text<TAB>score "
        "lines) and tag (a label per word: words<TAB>tags lines of --data, "
        "one sentence a line, or a CoNLL file of word<TAB>tag lines); "
        "without --data, classify and regress use synthetic "
        "restaurant reviews.",
    )
    f.add_argument(
        "--from",
        dest="source",
        required=True,
        metavar="RUN|scratch",
        help="the pretrained encoder's run directory, or scratch for random weights",
    )
    f.add_argument(
        "--preset",
        choices=FINETUNE_PRESETS,
        default=None,
        help="training budget (and, with --from scratch, model shape): finetune-cpu (the "
        "default; speakers-cpu for --task speakers, tag-cpu for --task tag) or finetune-tiny "
        "(seconds, for tests)",
    )
    f.add_argument("--data", type=Path, help="the task's data (default: its built-in data; tag has none)")
    f.add_argument("--out", type=Path, help="run directory (default: runs/<task>-<n>)")
    f.add_argument("--quiet", action="store_true", help="no progress bar")
    add_settings(
        f,
        only={
            "task": (
                FINE_TUNING,
                "the task to fine-tune for: speakers (who speaks?), names "
                "(which characters name a speaker), classify or regress "
                "(text<TAB>label or text<TAB>score lines of --data), tag (a "
                "label per word: words<TAB>tags lines of --data, or CoNLL "
                "word<TAB>tag lines with a blank line between sentences)",
            )
        },
    )
    f.set_defaults(command=cmd_finetune)

    b = sub.add_parser(
        "bench",
        help="time training steps: ms/step, tokens/s, MFU, peak memory",
        description="Time the training step of a preset on one device, for the "
        "readable and the fast path side by side. MFU is measured against "
        "a large matmul on the same device, in the training dtype.",
    )
    b.add_argument(
        "--preset",
        choices=cfg.PRESET_NAMES,
        default="auto",
        help="settings to bench (default auto: lecture on a GPU, else cpu)",
    )
    b.add_argument("--data", type=Path, help="text file for the batches (default: as train)")
    b.add_argument("--steps", type=int, default=20, help="timed steps per configuration (default 20)")
    b.add_argument("--warmup", type=int, default=3, help="untimed steps first, compilation included (default 3)")
    b.add_argument(
        "--paths",
        nargs="+",
        choices=("readable", "fast"),
        default=["readable", "fast"],
        help="attention paths to time (default both)",
    )
    b.add_argument(
        "--compare-compile",
        action="store_true",
        help="time each path with torch.compile off and on (default: as --compile says)",
    )
    b.add_argument(
        "--compare-dtype",
        action="store_true",
        help="time each path in float32 and in bfloat16 autocast (default: as --dtype says; "
        "auto picks bf16 on GPUs and on CPUs with native bf16 for wide models)",
    )
    b.add_argument("--json", action="store_true", help="print the results as one JSON object")
    add_settings(b)
    b.set_defaults(command=cmd_bench)


def _log(message):
    tqdm.write(message, file=sys.stderr)


def cmd_train(args):
    model_config, train_config = settings(args)
    preset = "gpt2-finetune" if args.init_from is not None else args.preset
    out = args.out or _new_run_dir(cfg.preset_name(preset, has_gpu(), model_config.kind))
    if args.data is not None and len(args.data) > 2:
        raise ConfigError("--data takes one file, or two aligned files for --task pairs")
    data = args.data if args.data is None or len(args.data) == 2 else args.data[0]
    result = train(
        model_config,
        train_config,
        out,
        data=data,
        resume=args.resume,
        extend=args.extend,
        pretrained=args.init_from,
        progress=not args.quiet,
        log=_log,
    )
    if not distributed.is_main():  # under torchrun, rank 0 reports
        return
    if result.sample:
        print(result.sample)
    print(f"\n[saved to {out}; {_next_step(model_config)} --run {out}]", file=sys.stderr)


def _new_run_dir(name):
    if distributed.launched():
        raise ConfigError("under torchrun every process must train into the same run directory; name it with --out")
    return new_run_dir(name)


def _next_step(model_config):
    if model_config.kind == "seq2seq":
        return 'try: scratchgpt translate "your text"'
    if model_config.kind != "encoder":
        return "more with: scratchgpt sample"
    if model_config.head == "mlm":
        return 'try: scratchgpt fill "To be or not to be, that is the [MASK]uestion"'
    return 'try: scratchgpt predict "your text"'


def cmd_finetune(args):
    model_config, train_config = settings(args, "finetune")
    pretrained = None if args.source == "scratch" else Path(args.source)
    out = args.out or _new_run_dir(train_config.task)
    result = train(
        model_config, train_config, out, data=args.data, pretrained=pretrained, progress=not args.quiet, log=_log
    )
    if not distributed.is_main():
        return
    print(json.dumps({"run": str(out), **result.scores}))
    print(f'\n[saved to {out}; try: scratchgpt predict --run {out} "your text"]', file=sys.stderr)


def cmd_bench(args):
    if args.steps < 1 or args.warmup < 1:
        raise ConfigError("--steps and --warmup must be at least 1")
    model_config, train_config = settings(args, "bench")
    device = configure(resolve_device(train_config.device))
    task = build_task(model_config, train_config, args.data)
    model_config = fit_model_config(model_config, task)
    compile_modes = [False, True] if args.compare_compile else [train_config.compile]
    chosen = training_dtype(device, model_config, train_config)  # what training multiplies in
    dtypes = ["float32", "bfloat16"] if args.compare_dtype else [chosen]
    peaks = {dtype: matmul_peak(device, getattr(torch, dtype)) for dtype in dtypes}
    rows = []
    for attention in args.paths:
        for dtype in dtypes:
            for compile in compile_modes:
                row = bench_step(
                    model_config, train_config, task, device, attention, compile, args.steps, args.warmup, dtype
                )
                row["mfu"] = row.pop("achieved_flops") / peaks[dtype]
                rows.append(row)
                if not args.json:
                    print(
                        f"{attention:>8} {dtype:>8} compile {'on ' if compile else 'off'}: "
                        f"{row['ms_per_step']:8.1f} ms/step {row['tokens_per_s']:>10,.0f} tokens/s  "
                        f"MFU {100 * row['mfu']:5.1f}%  peak memory {row['peak_memory_mb']:,.0f} MB  "
                        f"(warm-up {row['warmup_s']:.1f} s)",
                        flush=True,
                    )
    summary = {
        "device": device_name(device),
        "cpu_bf16": native_bf16() if device.type == "cpu" else None,
        "preset": args.preset,
        "dtype": chosen,
        "peak_tflops": peaks.get(chosen, 0) / 1e12,
        "peaks_tflops": {d: p / 1e12 for d, p in peaks.items()},
        "threads": torch.get_num_threads(),
        "batch_size": train_config.batch_size,
        "block_size": model_config.block_size,
        "n_embd": model_config.n_embd,
        "torch": torch.__version__,
        "results": rows,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        peak_text = ", ".join(f"{d} {p / 1e9:,.0f}" for d, p in peaks.items())
        print(
            f"device {summary['device']}, {summary['threads']} threads, measured matmul peak (GFLOP/s): "
            f"{peak_text}; --dtype {train_config.dtype} trains in {chosen} here"
            + (f" (native bf16: {summary['cpu_bf16']})" if summary["cpu_bf16"] else "")
        )
        last = [r for r in rows if r["compile"] == compile_modes[-1]]
        by_path = {r["attention"]: r["tokens_per_s"] for r in last if r["dtype"] == dtypes[-1]}
        if len(by_path) == 2:
            print(f"fast path: {by_path['fast'] / by_path['readable']:.2f}x the readable path's tokens/s")
        by_dtype = {r["dtype"]: r["tokens_per_s"] for r in last if r["attention"] == args.paths[-1]}
        if len(by_dtype) == 2:
            ratio = by_dtype["bfloat16"] / by_dtype["float32"]
            emulated = device.type == "cpu" and not summary["cpu_bf16"]
            print(
                f"bfloat16: {ratio:.2f}x float32's tokens/s"
                + (
                    f" ({'slower: ' if ratio < 1 else ''}this CPU has no native bf16 and emulates it)"
                    if emulated
                    else ""
                )
            )

"""`scratchgpt export`: a run in another ecosystem's format (today: Hugging Face's GPT-2)."""

import sys
from pathlib import Path

from .options import run_dir


def add_commands(sub):
    e = sub.add_parser(
        "export",
        help="write a GPT run as a Hugging Face GPT-2 directory",
        description="Write a GPT run as a directory that transformers' "
        "GPT2LMHeadModel.from_pretrained(OUT) and AutoTokenizer.from_pretrained(OUT) "
        "load offline, with a model card (README.md). The run must use GPT-2's "
        "pieces (train it with --preset gpt2-compatible, or learned positions, "
        "no QK-norm, relu/gelu/gelu_tanh, --lm-head-bias false). A run still "
        "training exports its kept model (model.safetensors). Needs "
        "pip install 'scratchgpt[hf]'.",
    )
    e.add_argument(
        "out", type=Path, metavar="OUT", help="the directory to write (refused if it exists, unless --force)"
    )
    e.add_argument("--run", type=Path, help="run directory (default: the newest run in ./runs)")
    e.add_argument("--format", choices=("hf",), default="hf", help="hf: Hugging Face GPT-2 (the default)")
    e.add_argument("--force", action="store_true", help="replace OUT if it exists (once the new one is complete)")
    e.set_defaults(command=cmd_export)


def cmd_export(args):
    from ..export.hf import export_hf

    run = run_dir(args.run)
    result = export_hf(run, args.out, force=args.force)
    state = "" if result.finished else " (training had not finished)"
    print(
        f"scratchgpt: exported {run}{state}, {result.source}, to {result.out}; load it with "
        f"transformers.GPT2LMHeadModel.from_pretrained({str(result.out)!r})",
        file=sys.stderr,
    )

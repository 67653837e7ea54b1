"""The `scratchgpt` command: a thin layer over the Python API.

    training.py  train, finetune, bench
    using.py     sample, eval, predict, fill, translate, attention
    serving.py   serve (the playground in the browser)
    exporting.py export (a run as a Hugging Face GPT-2 directory)
    options.py   what they share: the settings flags derived from config.py, run directories

Every setting of `config.py` becomes a flag (`n_layer` -> `--n-layer`), so the CLI can never drift
from the dataclasses; `settings.resolve` turns the flags into a run's settings. Errors a user can
cause print one line and exit with code 2.
"""

import os
import sys

from ..errors import ScratchGPTError
from . import exporting, serving, training, using
from .options import Parser


def build_parser():
    parser = Parser(
        prog="scratchgpt",
        description="The transformers of the lecture, built from scratch: "
        "train a GPT, an encoder or an encoder-decoder (seq2seq), "
        "sample, fine-tune, translate, look inside.",
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND", parser_class=Parser)
    training.add_commands(sub)
    using.add_commands(sub)
    serving.add_commands(sub)
    exporting.add_commands(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.command(args) or 0
    except ScratchGPTError as e:
        rank = os.environ.get("RANK", "0")  # under torchrun, every process says what stopped it
        who = f" (rank {rank})" if rank != "0" else ""
        # one write, newline included: torchrun's processes share stderr, and print's two writes
        # (the text, then the newline) let another process's line in between
        sys.stderr.write(f"scratchgpt{who}: {'error: ' if e.exit_code == 2 else ''}{e}\n")
        sys.stderr.flush()
        return e.exit_code
    except KeyboardInterrupt:
        print("\nscratchgpt: interrupted", file=sys.stderr)
        return 130

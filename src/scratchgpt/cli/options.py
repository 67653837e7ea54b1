"""What the commands share: one-line argparse errors, the settings flags derived from config.py,
and finding run directories."""

import argparse
import sys
from pathlib import Path

from .. import config as cfg
from ..device import has_gpu
from ..errors import CheckpointError, MissingExtra
from ..inference.weights import WEIGHTS
from ..rundir import gpt2_settings, newest_first, read_config
from ..settings import Request, resolve

RUNS = Path("runs")


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line, each pointing to the help of the command it is about."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):
        # Each parser refuses the arguments it does not know itself: argparse hands a command's
        # leftovers to the top-level parser, whose error would point to `scratchgpt --help`.
        namespace, unknown = super().parse_known_args(args, namespace)
        if unknown:
            self.error(f"unrecognized arguments: {' '.join(unknown)}")
        return namespace, unknown


def parse_bool(text):
    value = {
        "true": True,
        "1": True,
        "yes": True,
        "on": True,
        "false": False,
        "0": False,
        "no": False,
        "off": False,
    }.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def add_settings(parser, only=None):
    """One --flag per setting of config.py (`n_layer` -> `--n-layer`), default: the preset's; and
    --config, a TOML file of them. A yes/no setting's flag alone means true (`--tensorboard`), and
    takes a value too (`--tensorboard false`). `only` narrows a setting to the choices this
    command takes, with their help: {name: (choices, help)}."""
    parser.add_argument("--config", type=Path, metavar="TOML", help="TOML file of settings ([model], [train])")
    group = parser.add_argument_group("settings (default: the preset's value)")
    for s in cfg.setting_fields():
        choices, help = (only or {}).get(s.name, (s.choices, s.help))
        if s.type is bool:  # alone, the flag means true: `--compile` is `--compile true`
            value = {"type": parse_bool, "nargs": "?", "const": True, "metavar": "{true,false}"}
        else:
            value = {"type": s.type, "choices": choices, "metavar": None if choices else s.type.__name__.upper()}
        group.add_argument(cfg.flag(s.name), dest=f"set_{s.name}", default=None, help=f"{help} [{s.section}]", **value)


def settings(args, command="train"):
    """(model config, train config) of the command `args` were parsed for (settings.resolve)."""
    request = Request(
        command,
        kind=getattr(args, "model", None),
        preset=args.preset,
        config=args.config,
        flags={name[4:]: v for name, v in vars(args).items() if name.startswith("set_") and v is not None},
        out=getattr(args, "out", None),
        resume=getattr(args, "resume", False),
        init_from=getattr(args, "init_from", None),
        pretrained=None if getattr(args, "source", "scratch") == "scratch" else Path(args.source),
    )
    return resolve(request, has_gpu(), lambda run: read_config(run)[:2], _gpt2_settings)


def _gpt2_settings(path):
    settings = gpt2_settings(path)  # a directory that is not GPT-2 shaped: one line, here
    try:
        import tokenizers  # noqa: F401  (GPT-2's tokenizer.json is read with it)
    except ImportError:
        raise MissingExtra(
            "--init-from needs Hugging Face tokenizers (not installed): pip install 'scratchgpt[hf]'"
        ) from None
    return settings


def run_dir(run):
    """The run directory given, else the newest run in ./runs (said on stderr)."""
    if run is not None:
        return run
    runs = newest_first(RUNS.glob("*"))
    if not runs:
        raise CheckpointError("no trained run in ./runs; pass --run RUN_DIR")
    print(f"scratchgpt: using {runs[0]}", file=sys.stderr)
    return runs[0]


def new_run_dir(name):
    """runs/<name>-<n>, the first n not taken."""
    n = 1
    while (RUNS / f"{name}-{n}").exists():
        n += 1
    return RUNS / f"{name}-{n}"


def add_run(parser, what="run directory"):
    parser.add_argument("--run", type=Path, help=f"{what} (default: the newest run in ./runs)")


def add_device(parser):
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N, mps or auto (default auto)")


def add_json(parser):
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def add_weights(parser):
    """--weights: how a GPT's Linear weights are stored for decoding (inference/weights.py)."""
    parser.add_argument(
        "--weights",
        choices=WEIGHTS,
        default="f32",
        help="a GPT's Linear weights for decoding: f32 (default, as trained), bf16 or int8 (per-row "
        "scales): fewer bytes read per token, slightly different tokens",
    )

"""What the commands share: one-line argparse errors, the settings flags derived from config.py,
and finding run directories."""

import argparse
import sys
from pathlib import Path

from .. import config as cfg
from ..device import has_gpu
from ..errors import CheckpointError, ConfigError
from ..rundir import newest_first, read_config

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
        group.add_argument(
            "--" + s.name.replace("_", "-"), dest=f"set_{s.name}", default=None, help=f"{help} [{s.section}]", **value
        )


def overrides(args):
    """(the --config TOML file's settings, the setting flags given): {name: value} each."""
    toml = cfg.read_toml(args.config) if args.config else {}
    flags = {name[4:]: v for name, v in vars(args).items() if name.startswith("set_") and v is not None}
    return toml, flags


def model_kind(args, toml):
    """The model family asked for: --model, else the `kind` of the --config TOML file, else None.
    `kind` is taken out of the TOML file's settings (`toml`), and refused if --model says otherwise."""
    flag, in_toml = getattr(args, "model", None), toml.pop("kind", None)
    if flag is not None and in_toml is not None and flag != in_toml:
        raise ConfigError(f'--model {flag} and kind = "{in_toml}" in {args.config} disagree')
    return flag or in_toml


def settings(args, resume_from=None):
    """(model config, train config): the preset's (or those of the run in `resume_from`), then the
    --config TOML file's, then the setting flags'. The model family comes from --model, else the
    TOML file's `kind`, else the preset."""
    toml, flags = overrides(args)
    kind = model_kind(args, toml)
    if resume_from is not None:
        model_config, train_config, _ = read_config(resume_from)
        if kind is not None and kind != model_config.kind:
            raise ConfigError(
                f"cannot resume {resume_from} with changed settings (model: {model_config.kind!r} -> {kind!r})"
            )
    else:
        model_config, train_config = cfg.preset(args.preset, has_gpu(), kind)
    model_config, train_config = cfg.apply_overrides(model_config, train_config, toml, str(args.config))
    return cfg.apply_overrides(model_config, train_config, flags, "command line")


def a_or_an(word):
    """`word` with its article: "a gpt", "an encoder"."""
    return f"{'an' if word[0] in 'aeiou' else 'a'} {word}"


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

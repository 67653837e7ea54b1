"""What the commands share: one-line argparse errors, the settings flags derived from config.py,
and finding run directories."""

import argparse
import sys
from pathlib import Path

from .. import config as cfg
from ..checkpoint import read_config
from ..device import has_gpu
from ..errors import CheckpointError, ConfigError

RUNS = Path("runs")


class Parser(argparse.ArgumentParser):
    """argparse, with its errors on one line."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def parse_bool(text):
    value = {"true": True, "1": True, "yes": True, "on": True,
             "false": False, "0": False, "no": False, "off": False}.get(text.lower())
    if value is None:
        raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")
    return value


def add_settings(parser):
    """One --flag per setting of config.py (`n_layer` -> `--n-layer`), default: the preset's; and
    --config, a TOML file of them. A yes/no setting's flag alone means true (`--tensorboard`), and
    takes a value too (`--tensorboard false`)."""
    parser.add_argument("--config", type=Path, metavar="TOML", help="TOML file of settings ([model], [train])")
    group = parser.add_argument_group("settings (default: the preset's value)")
    for s in cfg.setting_fields():
        if s.type is bool:  # alone, the flag means true: `--compile` is `--compile true`
            value = {"type": parse_bool, "nargs": "?", "const": True, "metavar": "{true,false}"}
        else:
            value = {"type": s.type, "choices": s.choices, "metavar": None if s.choices else s.type.__name__.upper()}
        group.add_argument("--" + s.name.replace("_", "-"), dest=f"set_{s.name}", default=None,
                           help=f"{s.help} [{s.section}]", **value)


def overrides(args):
    """(the --config TOML file's settings, the setting flags given): {name: value} each."""
    toml = cfg.read_toml(args.config) if args.config else {}
    flags = {name[4:]: v for name, v in vars(args).items() if name.startswith("set_") and v is not None}
    return toml, flags


def settings(args, resume_from=None):
    """(model config, train config): the preset's (or those of the run in `resume_from`), then the
    --config TOML file's, then the setting flags'. The model family comes from --model, else the
    TOML file's `kind`, else the preset."""
    toml, flags = overrides(args)
    kind = getattr(args, "model", None) or toml.pop("kind", None)
    if resume_from is not None:
        model_config, train_config, _ = read_config(resume_from)
        if kind is not None and kind != model_config.kind:
            raise ConfigError(f"cannot resume {resume_from} with changed settings "
                              f"(model: {model_config.kind!r} -> {kind!r})")
    else:
        model_config, train_config = cfg.preset(args.preset, has_gpu(), kind)
    model_config, train_config = cfg.apply_overrides(model_config, train_config, toml, str(args.config))
    return cfg.apply_overrides(model_config, train_config, flags)


def run_dir(run):
    """The run directory given, else the newest run in ./runs (said on stderr)."""
    if run is not None:
        return run
    runs = sorted((p for p in RUNS.glob("*") if (p / "model.safetensors").exists()),
                  key=lambda p: (p / "model.safetensors").stat().st_mtime)
    if not runs:
        raise CheckpointError("no trained run in ./runs; pass --run RUN_DIR")
    print(f"scratchgpt: using {runs[-1]}", file=sys.stderr)
    return runs[-1]


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

"""The settings of a run, resolved in one place, and every rule between two settings.

`resolve` turns what a command asks for (a `Request`) into the run's (model config, TrainConfig),
the same way for train, finetune, bench, `--resume` and `--init-from`. Precedence, lowest first:
the preset (for `--resume`, the run's saved settings), the `--config` TOML file, the flags; then
what the run starts from, which gives the model's shape and tokens: a GPT-2 directory
(`--init-from`) or a pretrained encoder (`finetune --from RUN`). `check` holds the rules between a
model's settings and its training's, which the training loop and the tasks apply too; a refusal
names both settings.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from .config import (
    FINETUNE_PRESET,
    MODEL_KINDS,
    ModelConfig,
    apply_overrides,
    fine_tuning_model,
    flag,
    preset,
    read_toml,
    setting_name,
)
from .errors import CheckpointError, ConfigError

# The encoder's fine-tuning tasks (finetune's), and the model families each task trains.
FINE_TUNING = ("speakers", "names", "classify", "regress", "tag")
FAMILIES = {
    "next-token": ("gpt", "bigram"),
    **{name: ("encoder",) for name in ("mlm", *FINE_TUNING)},
    **{name: ("seq2seq",) for name in ("dates", "numbers", "copy", "reverse", "pairs")},
}
# Settings that may differ between a run and its --resume; any other difference is refused.
RESUMABLE = {"max_iters", "max_time", "grad_accum", "device", "compile"}  # how long, and on what
RESUMABLE |= {"eval_interval", "eval_iters", "log_interval", "sample_tokens", "tensorboard"}  # what it reports


@dataclass(frozen=True)
class Request:
    """What one command asks for, as given: nothing read or looked up yet."""

    command: str  # train, finetune or bench
    kind: str | None = None  # --model
    preset: str | None = None  # --preset
    config: Path | None = None  # --config, a TOML file of settings (and `kind`)
    flags: dict = field(default_factory=dict)  # the setting flags given: {name: value}
    out: Path | None = None  # --out, the run directory
    resume: bool = False  # continue the run in `out`
    init_from: Path | None = None  # a Hugging Face GPT-2 directory to start from
    pretrained: Path | None = None  # finetune --from RUN (None: --from scratch)


def resolve(request, has_gpu=False, read_run=None, read_gpt2=None):
    """The (model config, TrainConfig) of `request`. `read_run(path)` gives the (model config,
    TrainConfig) of a run directory (the run to resume, or the pretrained encoder), `read_gpt2(path)`
    the settings of a GPT-2 directory (models/gpt2.py): each is read once the command line is known
    to agree with itself."""
    _check_request(request)
    toml = read_toml(request.config) if request.config else {}
    kind = _kind(request, toml.pop("kind", None))
    if request.resume:
        start = read_run(request.out)
        if kind not in (None, start[0].kind):  # refused as any changed setting is
            resumed(request.out, start, (MODEL_KINDS[kind](), start[1]))
    else:
        start = preset(_preset_name(request, kind, toml), has_gpu, kind)
    chosen = apply_overrides(*start, toml, str(request.config))
    chosen = apply_overrides(*chosen, request.flags, "command line")
    if request.resume:
        chosen = resumed(request.out, start, chosen)
    elif request.init_from is not None:
        chosen = _from_gpt2(request.init_from, start, chosen, read_gpt2(request.init_from))
    elif request.pretrained is not None:
        chosen = _from_encoder(request.pretrained, start[0], chosen, read_run(request.pretrained))
    if request.command == "bench" and chosen[0].kind != "gpt":
        raise ConfigError(f"bench times the GPT's attention paths; the {chosen[0].kind} model has none")
    check(*chosen)
    return chosen


def _check_request(request):
    """The flags that exclude each other, before any file is read."""
    if request.resume and request.out is None:
        raise ConfigError("--resume needs --out RUN_DIR, the run to continue")
    if request.resume and request.preset is not None:
        raise ConfigError("--resume continues a run with its saved settings; drop --preset")
    if request.resume and request.init_from is not None:
        raise ConfigError("--init-from starts a new run; --resume continues one (drop --init-from)")
    if request.preset == "gpt2-finetune" and request.init_from is None and not request.resume:
        raise ConfigError("preset gpt2-finetune fine-tunes a GPT-2: use it with --init-from GPT2_DIR")


def _kind(request, in_toml):
    """The model family asked for: --model, else the TOML file's `kind`, else the command's (None:
    the preset's)."""
    if request.kind is not None and in_toml is not None and request.kind != in_toml:
        raise ConfigError(f'--model {request.kind} and kind = "{in_toml}" in {request.config} disagree')
    kind = request.kind or in_toml
    if request.init_from is not None:
        if kind not in (None, "gpt"):
            raise ConfigError(f"--init-from loads a GPT-2 into the GPT, not the {kind} model")
        return "gpt"
    if request.command == "finetune":
        if kind not in (None, "encoder"):
            raise ConfigError(f'finetune trains an encoder, not the {kind} model (kind = "{kind}" in {request.config})')
        return "encoder"
    return kind


def _preset_name(request, kind, toml):
    """The preset a command starts from: --preset, else its default (for finetune, by the task)."""
    if request.init_from is not None:
        return request.preset or "gpt2-finetune"
    if request.command != "finetune":
        return request.preset
    task = request.flags.get("task") or toml.get("task")
    if task not in FINE_TUNING:
        raise ConfigError(f"finetune needs --task, one of {', '.join(FINE_TUNING)}")
    return request.preset or FINETUNE_PRESET.get(task, "finetune-cpu")


def _from_gpt2(path, start, chosen, gpt2):
    """`train --init-from`: the GPT-2's shape, with the dropout, attention face and (up to its
    n_positions) block_size chosen, and the chosen training with the GPT-2's tokenizer.json."""
    (preset_model, preset_train), (model, train) = start, chosen
    changed = {f.name for f in dataclasses.fields(model) if getattr(model, f.name) != getattr(preset_model, f.name)}
    overruled = [
        name for name in sorted(changed & set(gpt2)) if name != "block_size" and getattr(model, name) != gpt2[name]
    ]
    overruled += [
        setting_name(f)
        for f in dataclasses.fields(train)
        if f.name in ("tokenizer", "bpe_vocab_size") and getattr(train, f.name) != getattr(preset_train, f.name)
    ]
    if overruled:
        raise ConfigError(
            f"the model's shape and tokens come from {path}; {flag(overruled[0])} applies to training from scratch only"
        )
    block_size = model.block_size if "block_size" in changed else gpt2["block_size"]
    if block_size > gpt2["block_size"]:
        raise ConfigError(f"--block-size {block_size} is longer than the {gpt2['block_size']} positions of {path}")
    model = ModelConfig(**{**gpt2, "block_size": block_size}, dropout=model.dropout, attention=model.attention)
    return model, dataclasses.replace(train, tokenizer=str((Path(path) / "tokenizer.json").resolve()))


def _from_encoder(path, preset_model, chosen, saved):
    """`finetune --from RUN`: the pretrained encoder's shape (fine_tuning_model) and tokenizer."""
    (model, train), (saved_model, saved_train) = chosen, saved
    if saved_model.kind != "encoder":
        raise CheckpointError(
            f"{path} holds a {saved_model.kind} model; finetune needs an encoder run "
            f"(train one with: scratchgpt train --model encoder)"
        )
    if (train.tokenizer, train.bpe_vocab_size) != ("char", 0):
        raise ConfigError(f"the tokenizer comes from {path}; --tokenizer and --vocab-size apply to --from scratch only")
    tuned = fine_tuning_model(saved_model, model)
    # a setting the user changed from the preset's that the pretrained shape overrules
    ignored = [
        f.name
        for f in dataclasses.fields(preset_model)
        if getattr(preset_model, f.name) != getattr(model, f.name) != getattr(tuned, f.name)
    ]
    if ignored:
        raise ConfigError(f"the model's shape comes from {path}; {flag(ignored[0])} applies to --from scratch only")
    train = dataclasses.replace(train, tokenizer=saved_train.tokenizer, bpe_vocab_size=saved_train.bpe_vocab_size)
    return tuned, train


def resumed(run_dir, saved, chosen):
    """The settings of `--resume`: the saved (model config, TrainConfig), with the RESUMABLE
    settings of `chosen`; any other difference is refused, but for the model's vocab_size (the
    data's, set by fit_model_config)."""
    (saved_model, saved_train), (model, train) = saved, chosen
    changed = [
        f"{name}: {a!r} -> {b!r}"
        for old, new, fitted in ((saved_model, model, {"vocab_size"}), (saved_train, train, set()))
        for name, a, b in _differences(old, new)
        if name not in RESUMABLE | fitted
    ]
    if changed:
        raise ConfigError(f"cannot resume {run_dir} with changed settings ({'; '.join(changed)})")
    return saved_model, dataclasses.replace(saved_train, **{k: getattr(train, k) for k in RESUMABLE})


def _differences(a, b):
    if type(a) is not type(b):
        return [("model", a.kind, b.kind)]
    return [
        (setting_name(f), getattr(a, f.name), getattr(b, f.name))
        for f in dataclasses.fields(a)
        if getattr(a, f.name) != getattr(b, f.name)
    ]


def check(model_config, train_config):
    """Every rule between a model's settings and its training's."""
    check_task(model_config, train_config)
    check_optimizer(model_config, train_config)


def check_task(model_config, c):
    """A task trains the model families it is made for."""
    if model_config.kind not in FAMILIES[c.task]:
        raise ConfigError(
            f"the {c.task} task trains the {' or '.join(FAMILIES[c.task])} model, not the {model_config.kind} model"
        )


def check_optimizer(model_config, c):
    """Refuse Muon for a model without transformer blocks (the bigram, or no layers): it would
    silently be AdamW."""
    if c.optimizer == "muon" and getattr(model_config, "n_layer", 0) == 0:
        layers = " (--n-layer 0)" if hasattr(model_config, "n_layer") else ""
        raise ConfigError(
            f"--optimizer muon updates the weight matrices inside transformer blocks, and this "
            f"{model_config.kind} model has none{layers}; use --optimizer adamw"
        )

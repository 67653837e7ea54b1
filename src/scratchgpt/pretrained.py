"""The weights a new run starts from: a Hugging Face GPT-2 directory (`train --init-from`), read
into our GPT (models/gpt2.py maps the layouts), or a run directory (`finetune --from`, an encoder)."""

import dataclasses
from pathlib import Path

from . import config as cfg
from .errors import CheckpointError, ConfigError
from .models import gpt2
from .models.convert import convert
from .models.registry import build_model
from .rundir import load_model


def gpt2_settings(path):
    """Our GPT settings ({name: value}) for the Hugging Face GPT-2 directory `path`, read from its
    config.json alone (cheap: the CLI checks a directory before anything else happens)."""
    hf = gpt2.read_gpt2_config(path)
    return gpt2.settings_from_gpt2(hf, path)


def load_gpt2(path, model_config=None):
    """(model in eval mode, tokenizer, model config) from a Hugging Face GPT-2 directory: its
    config.json, weights (model.safetensors, or pytorch_model.bin loaded with weights_only) and
    tokenizer.json. `model_config` (made from gpt2_settings, with the user's dropout, attention
    face and a block_size up to GPT-2's n_positions) shapes the model; None: GPT-2's own."""
    from .data.bpe import HFTokenizer  # needs Hugging Face tokenizers, the `hf` extra

    path = Path(path)
    hf, state = gpt2.read_gpt2(path)
    settings = gpt2.settings_from_gpt2(hf, path)
    if model_config is None:
        model_config = cfg.ModelConfig(**settings, dropout=0.0)
    differ = [k for k, v in settings.items() if getattr(model_config, k) != v and k != "block_size"]
    if differ or model_config.block_size > settings["block_size"]:
        raise ConfigError(
            f"{path}: a GPT-2 of other settings ({', '.join(differ) or 'block_size'}) than the model asked for"
        )
    if not (path / "tokenizer.json").exists():
        raise CheckpointError(
            f"{path} has no tokenizer.json (Hugging Face's fast tokenizer file, which save_pretrained writes)"
        )
    tokenizer = HFTokenizer.from_file(path / "tokenizer.json")
    if tokenizer.vocab_size != settings["vocab_size"]:
        raise CheckpointError(
            f"{path}: tokenizer.json has {tokenizer.vocab_size} tokens but the GPT-2 has {settings['vocab_size']}"
        )
    fast = dataclasses.replace(model_config, attention="fast")
    model = build_model(fast)
    model.load_state_dict(gpt2.from_gpt2_state(state, fast, path))
    if model_config.attention != "fast":
        model = convert(model, model_config.attention)
    return model.eval(), tokenizer, model_config


def load_pretrained(path, model_config):
    """(model, tokenizer) that a new run of `model_config` starts from: a Hugging Face GPT-2
    directory's (`train --init-from`), else a run directory's (`finetune --from`, an encoder)."""
    if gpt2.is_hf_dir(path):
        model, tokenizer, _ = load_gpt2(path, model_config)
        return model, tokenizer
    model, tokenizer, _, _ = load_model(path)
    return model, tokenizer

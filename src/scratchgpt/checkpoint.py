"""The run directory: everything needed to sample from, evaluate, or resume a training run.

    config.json        settings (model, train), the data source and its sha256, the format version
    tokenizer.json     the vocabulary
    model.safetensors  weights of the best model so far (lowest estimated val loss)
    last.safetensors   weights at the latest checkpoint, for --resume
    state.pt           optimizer state, step, best val loss and RNG states, for --resume; tensors
                       and plain containers only, loaded with torch.load(weights_only=True)
    metrics.jsonl      one JSON object per log, eval and final line
    samples.txt        the sample written when training ends

Every file is written to a temporary name and renamed into place, so a crash mid-write leaves the
earlier file intact. Nothing here ever unpickles arbitrary objects.
"""

import json
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from . import config as cfg
from .atomic import atomic_write
from .errors import CheckpointError, ScratchGPTError
from .gpt import GPTLanguageModel, convert
from .tokenizer import load_tokenizer, save_tokenizer

FORMAT_VERSION = 1
MODEL_FILE, LAST_FILE, STATE_FILE = "model.safetensors", "last.safetensors", "state.pt"


def write_json(path, obj):
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, ensure_ascii=False)))


def save_run_info(run_dir, model_config, train_config, tokenizer, data_info):
    run_dir = Path(run_dir)
    write_json(run_dir / "config.json", {
        "format_version": FORMAT_VERSION,
        "model": cfg.to_dict(model_config),
        "train": cfg.to_dict(train_config),
        "data": data_info,
    })
    atomic_write(run_dir / "tokenizer.json", lambda tmp: save_tokenizer(tokenizer, tmp))


def save_weights(path, model):
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    atomic_write(path, lambda tmp: safetensors.torch.save_file(state, tmp, metadata={"format": "pt"}))


def save_state(path, state):
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def read_config(run_dir):
    """(ModelConfig, TrainConfig, data info) from a run directory's config.json."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    if not path.exists():
        raise CheckpointError(f"{run_dir} holds no run (no config.json); train one with "
                              f"`scratchgpt train --out {run_dir}`")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path} is from an incompatible version of scratchgpt "
                              f"(format {doc.get('format_version') if isinstance(doc, dict) else '?'}, "
                              f"this version reads {FORMAT_VERSION})")
    try:
        model = cfg.from_dict(cfg.ModelConfig, doc["model"])
        train = cfg.from_dict(cfg.TrainConfig, doc["train"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is incomplete or malformed: {e}") from None
    except ScratchGPTError as e:
        raise CheckpointError(f"{path}: {e}") from None
    return model, train, doc.get("data", {})


def load_weights(path, model):
    try:
        state = safetensors.torch.load_file(str(path), device="cpu")
    except FileNotFoundError:
        raise CheckpointError(f"{path.parent} has no {path.name}; train one with "
                              f"`scratchgpt train --out {path.parent}`") from None
    except (OSError, safetensors.SafetensorError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated: {e}") from None
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "mismatch"
        raise CheckpointError(f"{path} does not match its config.json: {first}") from None


def load_model(run_dir, device="cpu", attention=None, weights=MODEL_FILE):
    """(model in eval mode, tokenizer, ModelConfig, data info) from a run directory.

    `attention` ("readable" or "fast") converts the model to that path; None keeps the saved one.
    """
    run_dir = Path(run_dir)
    model_config, _, data_info = read_config(run_dir)
    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
    if tokenizer.vocab_size != model_config.vocab_size:
        raise CheckpointError(f"{run_dir}: tokenizer has {tokenizer.vocab_size} tokens but the model "
                              f"expects {model_config.vocab_size}")
    model = GPTLanguageModel(model_config)
    load_weights(run_dir / weights, model)
    if attention is not None and attention != model_config.attention:
        model = convert(model, attention)
    return model.to(device).eval(), tokenizer, model.config, data_info


def load_state(run_dir):
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        raise CheckpointError(f"{run_dir} has no {STATE_FILE} to resume from")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file; all mean the same to the user
        raise CheckpointError(f"{path} is corrupt or not a scratchgpt state file: "
                              f"{str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__}") from None

"""The run directory: everything needed to sample from, evaluate, or resume a training run.

    config.json        settings (model, train), the data source and its sha256, the format version
    tokenizer.json     the vocabulary
    model.safetensors  weights of the best model so far (lowest estimated val loss)
    checkpoint.json    the manifest: which folder under checkpoints/ holds the latest complete
                       checkpoint, and the sha256 of each of its files
    checkpoints/step-N/model.safetensors, state.pt
                       weights, optimizer state, step, best val loss and RNG states at step N, for
                       --resume; state.pt holds tensors and plain containers only and is loaded
                       with torch.load(weights_only=True)
    metrics.jsonl      one JSON object per line, of kind "train" (a log line), "eval" (an
                       estimate), "extend" (a re-planned schedule) or "final" (the end of training)
    samples.txt        the sample written when training ends
    .lock              held (flock) by the one process training in this directory

Every file is written to a temporary name and renamed into place. A checkpoint becomes "the
latest" only when checkpoint.json, written last, names it; older checkpoint folders are deleted
after that. So a crash at any moment leaves a complete checkpoint to resume from. Nothing here
ever unpickles arbitrary objects.
"""

import dataclasses
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import filelock
import safetensors
import safetensors.torch
import torch

from . import config as cfg
from .data.tokenizer import load_tokenizer, save_tokenizer
from .errors import CheckpointError, ConfigError, ScratchGPTError
from .files import atomic_write, remove_temporaries, sha256_file
from .models import gpt2
from .models.convert import convert
from .models.registry import build_model

FORMAT_VERSION = 1
MODEL_FILE, STATE_FILE, MANIFEST, CHECKPOINTS = "model.safetensors", "state.pt", "checkpoint.json", "checkpoints"
METRICS = "metrics.jsonl"


def write_json(path, obj):
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(obj, indent=2, ensure_ascii=False)))


def save_run_info(run_dir, model_config, train_config, tokenizer, data_info):
    run_dir = Path(run_dir)
    write_json(
        run_dir / "config.json",
        {
            "format_version": FORMAT_VERSION,
            "model": cfg.model_to_dict(model_config),
            "train": cfg.to_dict(train_config),
            "data": data_info,
        },
    )
    atomic_write(run_dir / "tokenizer.json", lambda tmp: save_tokenizer(tokenizer, tmp))


def save_weights(path, model):
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    for copy in model.tied_weights:
        del state[copy]  # safetensors stores each tensor once; loading restores the alias
    atomic_write(path, lambda tmp: safetensors.torch.save_file(state, tmp, metadata={"format": "pt"}))


def read_config(run_dir):
    """(model config, TrainConfig, data info) from a run directory's config.json."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    if not path.exists():
        raise CheckpointError(_not_a_run(run_dir, "holds no run (no config.json)"))
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise CheckpointError(f"cannot read {path}: {e}") from None
    if not isinstance(doc, dict) or doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} is from an incompatible version of scratchgpt "
            f"(format {doc.get('format_version') if isinstance(doc, dict) else '?'}, "
            f"this version reads {FORMAT_VERSION})"
        )
    try:
        model = cfg.model_from_dict(doc["model"])
        train = cfg.from_dict(cfg.TrainConfig, doc["train"])
    except (KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is incomplete or malformed: {e}") from None
    except ScratchGPTError as e:
        raise CheckpointError(f"{path}: {e}") from None
    return model, train, doc.get("data", {})


def _not_a_run(folder, what):
    """The message for a --run that is not a run: the runs in it, if it is a folder of runs (as
    ./runs is), else `what` it lacks and how to train one there."""
    runs = sorted(str(p.parent) for p in folder.glob("*/config.json"))
    if runs:
        return f"{folder} is a folder of runs, not a run; pass one of: {', '.join(runs)}"
    return f"{folder} {what}; train one with `scratchgpt train --out {folder}`"


def load_weights(path, model):
    try:
        state = safetensors.torch.load_file(str(path), device="cpu")
    except FileNotFoundError:
        raise CheckpointError(_not_a_run(path.parent, f"has no {path.name}")) from None
    except (OSError, safetensors.SafetensorError) as e:
        raise CheckpointError(f"{path} is corrupt or truncated: {e}") from None
    for copy, original in model.tied_weights.items():
        if original in state:
            state[copy] = state[original]
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"{path} does not match its config.json: {_first_line(e)}") from None


@dataclass(frozen=True)
class Run:
    """A run directory as loaded by load_run."""

    path: Path
    model: object  # in eval mode, on `device`
    tokenizer: object
    model_config: object
    train_config: cfg.TrainConfig
    data_info: dict  # the data's source and sha256 (and where the weights came from, for a fine-tune)
    device: object
    source: str  # which weights: the kept model, or (or_checkpoint) the latest checkpoint's


def load_run(run_dir, device="cpu", attention=None, or_checkpoint=False):
    """The Run in `run_dir`, its model from the kept model.safetensors, or (`or_checkpoint`, none kept
    yet) the latest complete checkpoint's weights, never its optimizer state. `attention` ("readable"
    or "fast") converts the model (any family but the bigram) to that face; None keeps the saved one."""
    run_dir = Path(run_dir)
    model_config, train_config, data_info = read_config(run_dir)
    tokenizer = load_tokenizer(run_dir / "tokenizer.json")
    if (model_config.kind == "seq2seq") != (tokenizer.kind == "pair"):
        raise CheckpointError(f"{run_dir}: a {tokenizer.kind} tokenizer for a {model_config.kind} model")
    sizes = [(tokenizer.vocab_size, model_config.vocab_size)]
    if tokenizer.kind == "pair":
        sizes.append((tokenizer.source.vocab_size, model_config.src_vocab_size))
    for has, expects in sizes:
        if has != expects:
            raise CheckpointError(f"{run_dir}: tokenizer has {has} tokens but the model expects {expects}")
    model = build_model(model_config)
    source = _load_kept_weights(run_dir, model, or_checkpoint)
    if attention is not None and model_config.kind == "bigram":
        raise ConfigError("the bigram model has no attention to convert")
    if attention is not None and attention != model_config.attention:
        model = convert(model, attention)
    return Run(run_dir, model.to(device).eval(), tokenizer, model.config, train_config, data_info, device, source)


def load_model(run_dir, device="cpu", attention=None):
    """(model in eval mode, tokenizer, model config, data info) from a run directory: load_run's."""
    run = load_run(run_dir, device, attention)
    return run.model, run.tokenizer, run.model_config, run.data_info


def _load_kept_weights(run_dir, model, or_checkpoint):
    """Load the kept model (or_checkpoint: else the latest checkpoint's weights) into `model`; say which."""
    if not or_checkpoint or (run_dir / MODEL_FILE).exists():
        load_weights(run_dir / MODEL_FILE, model)
        return f"the kept model ({MODEL_FILE}, the lowest estimated val loss)"
    for attempt in range(3):  # a training process may replace the checkpoint as we read it
        manifest = read_manifest(run_dir)
        if manifest is None:
            raise CheckpointError(
                f"{run_dir} has no model yet (no {MODEL_FILE} and no checkpoint); wait for its first evaluation"
            )
        try:
            load_weights(_checked_folder(run_dir, manifest) / MODEL_FILE, model)
            return f"the checkpoint of step {manifest['step']} (no kept model yet)"
        except CheckpointError:
            if attempt == 2:
                raise


def gpt2_settings(path):
    """Our GPT settings ({name: value}) for the Hugging Face GPT-2 directory `path`, read from its
    config.json alone (cheap: the CLI checks a directory before anything else happens)."""
    return gpt2.settings_from_gpt2(gpt2.read_gpt2_config(path), path)


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
    return load_gpt2(path, model_config)[:2] if gpt2.is_hf_dir(path) else load_model(path)[:2]


def load_state(path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file; all mean the same to the user
        raise CheckpointError(f"{path} is corrupt or not a scratchgpt state file: {_first_line(e)}") from None


def _first_line(e):
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


# ---------------------------------------------------------------------------------------------
# Checkpoints for --resume


def save_checkpoint(run_dir, model, state):
    """Write checkpoints/step-N (weights and `state`, whose "step" is N), then make it the latest."""
    run_dir = Path(run_dir)
    step = state["step"]
    current = read_manifest(run_dir)
    if current is not None and current["step"] == step:
        return  # already saved at this step
    folder = run_dir / CHECKPOINTS / f"step-{step:08d}"
    shutil.rmtree(folder, ignore_errors=True)  # a half-written attempt from a crashed run
    folder.mkdir(parents=True)
    save_weights(folder / MODEL_FILE, model)
    atomic_write(folder / STATE_FILE, lambda tmp: torch.save(state, tmp))
    write_json(
        run_dir / MANIFEST,
        {
            "step": step,
            "folder": f"{CHECKPOINTS}/{folder.name}",
            "sha256": {name: sha256_file(folder / name) for name in (MODEL_FILE, STATE_FILE)},
        },
    )
    remove_stale(run_dir)


def read_manifest(run_dir):
    """The latest checkpoint's manifest, or None if the run has none yet."""
    path = Path(run_dir) / MANIFEST
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
        if not isinstance(manifest, dict) or not {"step", "folder", "sha256"} <= manifest.keys():
            raise ValueError("missing keys")
        return manifest
    except (OSError, ValueError) as e:
        raise CheckpointError(f"{path} is corrupt: {e}") from None


def load_checkpoint(run_dir, model):
    """Load the latest checkpoint's weights into `model`; returns its state (step, optimizer, ...)."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    if manifest is None:
        return None
    folder = _checked_folder(run_dir, manifest)
    load_weights(folder / MODEL_FILE, model)
    return load_state(folder / STATE_FILE)


def _checked_folder(run_dir, manifest):
    """The folder of the checkpoint `manifest` names, once its files match their sha256."""
    folder = run_dir / manifest["folder"]
    for name, expected in manifest["sha256"].items():
        if not (folder / name).exists() or sha256_file(folder / name) != expected:
            raise CheckpointError(
                f"checkpoint {folder} is damaged: {name} is missing or does not match its sha256 in {MANIFEST}"
            )
    return folder


def remove_stale(run_dir):
    """Delete checkpoint folders other than the latest, and temporary files a crash left."""
    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir)
    keep = run_dir / manifest["folder"] if manifest else None
    for folder in (run_dir / CHECKPOINTS).glob("step-*"):
        if folder != keep:
            shutil.rmtree(folder, ignore_errors=True)
    remove_temporaries(run_dir)


@contextmanager
def run_lock(run_dir):
    """Hold the run directory's lock; a second trainer is refused. The OS frees it if we die."""
    lock = filelock.FileLock(Path(run_dir) / ".lock", timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise CheckpointError(
            f"another process is training in {run_dir}; wait for it to finish or stop it first"
        ) from None
    try:
        yield
    finally:
        lock.release()


def newest_first(run_dirs):
    """The run directories that hold a model, the most recently kept model first: "the newest run"
    is the first."""
    kept = {}
    for run in map(Path, run_dirs):
        try:
            kept[run] = (run / MODEL_FILE).stat().st_mtime
        except (FileNotFoundError, NotADirectoryError):
            pass  # no model kept yet, or not a directory
    return sorted(kept, key=kept.get, reverse=True)


def run_is_training(run_dir):
    """Whether a process holds the run directory's lock (run_lock: filelock's flock), asked without
    waiting and without creating the lock file: a shared lock, taken and dropped at once, fails only
    while a trainer holds the exclusive one."""
    import fcntl  # POSIX only, as filelock's flock is; imported here so that loading a run needs it not

    try:
        fd = os.open(Path(run_dir) / ".lock", os.O_RDONLY)
    except FileNotFoundError:
        return False  # never trained here: the lock file stays in place once made
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock
    return False


@contextmanager
def writing(what):
    """Turn a failed write (a full disk, say) into a one-line error; earlier files stay intact."""
    try:
        yield
    except OSError as e:
        raise CheckpointError(f"cannot write {what} ({e.strerror or e}); the files written before are intact") from None


# ---------------------------------------------------------------------------------------------
# metrics.jsonl


def append_metrics(run_dir, record):
    with writing(f"metrics to {run_dir}"), open(Path(run_dir) / METRICS, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def read_metrics(run_dir):
    """Every complete record of a run's metrics.jsonl, in order ([] before the first); a line still
    being written by a training process is left out."""
    path = Path(run_dir) / METRICS
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    return [r for r in map(_record, lines) if isinstance(r, dict)]


def trim_metrics(run_dir, step):
    """On resume: forget the records of steps after the checkpoint (they will run again) and the
    "final" record of the run being continued (the continued run writes its own)."""
    path = Path(run_dir) / METRICS
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = _record(line)
        if record is not None and record.get("kind") != "final" and record.get("step", step + 1) <= step:
            kept.append(line + "\n")
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(kept), encoding="utf-8"))


def _record(line):
    try:
        return json.loads(line)
    except ValueError:  # a line cut short by a crash
        return None

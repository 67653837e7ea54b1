"""The training loop: AdamW, warm-up then cosine decay, clipping, estimates, checkpoints, metrics.

One loop for every model that keeps the contract `forward(idx, targets) -> (logits, loss)`.
`train()` is what `scratchgpt train` runs; its pieces (`make_optimizer`, `lr_at`) stand alone.
"""

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import checkpoint as ckpt
from .data import check_long_enough, corpus_path, get_batch, prepare, split
from .device import autocast, resolve_device
from .errors import ScratchGPTError
from .evaluate import estimate_loss, evaluate_split
from .generate import sample_text
from .gpt import GPTLanguageModel

# Settings that may differ between a run and its --resume; any other difference is refused.
RESUMABLE = {"max_iters", "eval_interval", "eval_iters", "log_interval", "device", "sample_tokens"}


@dataclass(frozen=True)
class TrainResult:
    steps: int
    best_val_loss: float  # best estimate seen during training (noisy, optimistic)
    val_loss: float  # full validation split, every window, of the kept (best) model
    val_bpc: float
    train_seconds: float  # time spent in training steps, evaluation excluded
    tokens_per_second: float
    sample: str


def make_optimizer(model, train_config):
    """AdamW with weight decay on matrices and embeddings (dim >= 2), none on biases and norms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": train_config.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=train_config.lr, betas=(train_config.beta1, train_config.beta2))


def lr_at(step, c):
    """Learning rate of step `step` (0-based): linear warm-up, then constant or cosine to min_lr."""
    if step < c.warmup_iters:
        return c.lr * (step + 1) / c.warmup_iters  # positive from step 0
    if c.schedule == "constant":
        return c.lr
    progress = min(1.0, (step - c.warmup_iters) / max(1, c.max_iters - c.warmup_iters))
    min_lr = c.lr * c.min_lr_ratio
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (c.lr - min_lr)


def train(model_config, train_config, run_dir, data=None, resume=False, progress=True, log=print):
    """Train a GPT into `run_dir` (a new directory, or an existing one with resume=True)."""
    run_dir = Path(run_dir)
    state = None
    if resume:
        model_config, train_config, data = _resume_settings(run_dir, model_config, train_config, data)
        state = ckpt.load_state(run_dir)
    elif (run_dir / "config.json").exists():
        raise ScratchGPTError(f"{run_dir} already holds a run; continue it with --resume, "
                              f"or train into another directory with --out")
    device = resolve_device(train_config.device)
    corpus = prepare(corpus_path(data))
    if resume and corpus.sha256 != _saved_data(run_dir).get("sha256"):
        raise ScratchGPTError(f"the data {corpus.source} differs from the text {run_dir} was trained on")
    model_config = dataclasses.replace(model_config, vocab_size=corpus.tokenizer.vocab_size)
    train_data, val_data = split(corpus.tokens)
    check_long_enough(train_data, val_data, model_config.block_size)

    torch.manual_seed(train_config.seed)
    model = GPTLanguageModel(model_config).to(device)
    optimizer = make_optimizer(model, train_config)
    batch_rng = torch.Generator().manual_seed(train_config.seed)
    start, best_val = 0, math.inf
    if state is None:
        run_dir.mkdir(parents=True, exist_ok=True)
        ckpt.save_run_info(run_dir, model_config, train_config, corpus.tokenizer,
                           {"source": str(Path(corpus.source).resolve()), "sha256": corpus.sha256})
    else:
        start, best_val = _restore(run_dir, state, model, optimizer, batch_rng, device)
        ckpt.save_run_info(run_dir, model_config, train_config, corpus.tokenizer, _saved_data(run_dir))
        log(f"resuming {run_dir} at step {start}")

    log(f"{model.num_parameters() / 1e6:.2f}M parameters, {len(train_data):,} training tokens, "
        f"device {device}, run directory {run_dir}")
    amp = autocast(device, train_config.dtype)
    T, B = model_config.block_size, train_config.batch_size
    metrics = open(run_dir / "metrics.jsonl", "a", encoding="utf-8")
    bar = tqdm(total=train_config.max_iters, initial=start, unit="step",
               disable=None if progress else True,  # None: only on a terminal
               dynamic_ncols=True)
    train_seconds, steps_done = 0.0, 0
    interval_start, interval_steps = time.perf_counter(), 0

    def write(record):
        metrics.write(json.dumps(record) + "\n")
        metrics.flush()

    model.train()
    try:
        for step in range(start, train_config.max_iters):
            lr = lr_at(step, train_config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            x, y = get_batch(train_data, T, B, batch_rng, device)
            with amp:
                _, loss = model(x, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if train_config.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), train_config.grad_clip)
            optimizer.step()
            bar.update(1)
            interval_steps += 1
            done = step + 1

            if done % train_config.log_interval == 0 or done == train_config.max_iters:
                loss_value = loss.item()  # the one host sync per log interval
                if not math.isfinite(loss_value):
                    raise ScratchGPTError(f"loss became {loss_value} at step {done}; "
                                          f"lower lr or enable grad_clip (last good checkpoint kept)")
                elapsed = time.perf_counter() - interval_start
                train_seconds += elapsed
                steps_done += interval_steps
                tokens_per_s = interval_steps * B * T / elapsed
                bar.set_postfix(loss=f"{loss_value:.4f}", tok_s=f"{tokens_per_s:,.0f}")
                write({"kind": "train", "step": done, "loss": loss_value, "lr": lr,
                       "tokens_per_s": tokens_per_s})
                interval_steps = 0

            if done % train_config.eval_interval == 0 or done == train_config.max_iters:
                losses = estimate_loss(model, {"train": train_data, "val": val_data}, T, B,
                                       train_config.eval_iters, train_config.seed + 1, device, amp)
                log(f"step {done}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")
                write({"kind": "eval", "step": done, "train_loss": losses["train"],
                       "val_loss": losses["val"]})
                if losses["val"] < best_val:
                    best_val = losses["val"]
                    ckpt.save_weights(run_dir / ckpt.MODEL_FILE, model)
                _save_checkpoint(run_dir, model, optimizer, batch_rng, device, done, best_val)

            if interval_steps == 0:
                interval_start = time.perf_counter()
    finally:
        bar.close()
        metrics.close()
    if not (run_dir / ckpt.MODEL_FILE).exists():  # max_iters 0: keep the initial model
        ckpt.save_weights(run_dir / ckpt.MODEL_FILE, model)

    return _finish(run_dir, model_config, train_config, val_data, device, best_val,
                   train_seconds, steps_done, log)


def _save_checkpoint(run_dir, model, optimizer, batch_rng, device, step, best_val):
    """Latest weights and everything else --resume needs to continue exactly from `step`."""
    ckpt.save_weights(run_dir / ckpt.LAST_FILE, model)
    state = {"step": step, "best_val_loss": best_val, "optimizer": optimizer.state_dict(),
             "batch_rng": batch_rng.get_state(), "torch_rng": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(device)
    ckpt.save_state(run_dir / ckpt.STATE_FILE, state)


def _restore(run_dir, state, model, optimizer, batch_rng, device):
    """Load what _save_checkpoint saved; returns (step, best val loss)."""
    ckpt.load_weights(run_dir / ckpt.LAST_FILE, model)
    optimizer.load_state_dict(state["optimizer"])
    batch_rng.set_state(state["batch_rng"])
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return int(state["step"]), float(state["best_val_loss"])


def _finish(run_dir, model_config, train_config, val_data, device, best_val, train_seconds,
            steps_done, log):
    """Score the kept model on the whole validation split and write a sample."""
    model, tokenizer, _, _ = ckpt.load_model(run_dir, device)
    val_loss, val_bpc = evaluate_split(model, val_data, model_config.block_size, device=device)
    tokens_per_s = steps_done * train_config.batch_size * model_config.block_size / max(train_seconds, 1e-9)
    with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as metrics:
        metrics.write(json.dumps({"kind": "final", "val_loss": val_loss, "val_bpc": val_bpc,
                                  "best_estimated_val_loss": best_val,
                                  "train_seconds": train_seconds, "tokens_per_s": tokens_per_s}) + "\n")
    log(f"full validation split: loss {val_loss:.4f} nats/token, {val_bpc:.4f} bits/char "
        f"({train_seconds:.1f} s of training, {tokens_per_s:,.0f} tokens/s)")
    sample = sample_text(model, tokenizer, max_new_tokens=train_config.sample_tokens,
                         seed=train_config.seed)
    ckpt.atomic_write(run_dir / "samples.txt", lambda tmp: Path(tmp).write_text(sample, encoding="utf-8"))
    return TrainResult(steps_done, best_val, val_loss, val_bpc, train_seconds, tokens_per_s, sample)


def _saved_data(run_dir):
    return ckpt.read_config(run_dir)[2]


def _resume_settings(run_dir, model_config, train_config, data):
    """The saved settings, with the changes the caller asked for where a resume allows them."""
    saved_model, saved_train, saved_data = ckpt.read_config(run_dir)
    changed = [f"{name}: {a!r} -> {b!r}"
               for old, new in ((saved_model, model_config), (saved_train, train_config))
               for name, a, b in _differences(old, new)
               if name not in RESUMABLE and name != "vocab_size"]
    if changed:
        raise ScratchGPTError(f"cannot resume {run_dir} with changed settings ({'; '.join(changed)})")
    train_config = dataclasses.replace(
        saved_train, **{k: getattr(train_config, k) for k in RESUMABLE})
    return saved_model, train_config, data if data is not None else saved_data.get("source")


def _differences(a, b):
    return [(f.name, getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)
            if getattr(a, f.name) != getattr(b, f.name)]

"""The training loop: optimiser steps on a task's batches, estimates, checkpoints, metrics.

One loop for every model family and every task: the task (tasks.py) says what a batch is, what
its loss is and how the model is scored at the end; the loop does the rest, once, for all of them:
the optimisers and the schedule (optim.py), gradient accumulation and clipping, time budgets,
estimates, checkpoints and exact resume, the run lock, Ctrl-C (signals.py), metrics.jsonl
(rundir.py; with --tensorboard also TensorBoard's event files, board.py) and the progress bar.
`train()` is what `scratchgpt train` runs.

Speed: the loop reads the losses back from the device only once per log interval (and before
every save, which checks them), batches come from memory-mapped token files (pinned, copied
without blocking on CUDA), `grad_accum` cuts a batch into micro-batches with the same result,
and `compile` runs the model through torch.compile.
"""

import contextlib
import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .. import rundir
from ..config import BigramConfig, EncoderConfig, ModelConfig, Seq2SeqConfig, TrainConfig
from ..data.tokenizer import load_tokenizer
from ..device import autocast, configure, synchronize, training_dtype
from ..errors import CheckpointError, ConfigError, DataError, TrainingDiverged, TrainingInterrupted
from ..files import atomic_write
from ..models.registry import build_model
from ..settings import check, resumed
from . import distributed
from .board import Board
from .evaluate import estimate_loss
from .optim import lr_at, make_optimizer
from .signals import StopAtOnce, StopSignals
from .signals import name as signal_name
from .tasks import Task, build_task, fit_model_config

clock = time.perf_counter  # the clock of training time and time budgets (tests replace it)
PROGRESS_SECONDS = 30.0  # without a progress bar (output not a terminal), a progress line this often


@dataclass(frozen=True)
class TrainResult:
    steps: int
    best_val_loss: float  # best estimate seen during training (noisy, optimistic)
    scores: dict  # the task's final scores of the kept (best) model: val_loss and more
    train_seconds: float  # time spent in training steps, evaluation excluded
    tokens_per_second: float
    sample: str

    @property
    def val_loss(self):
        return self.scores["val_loss"]

    @property
    def val_bpc(self):
        return self.scores["val_bpc"]


def train(
    model_config,
    train_config,
    run_dir,
    data=None,
    resume=False,
    extend=False,
    pretrained=None,
    progress=True,
    log=print,
    task_builder=build_task,
):
    """Train a model for train_config.task on `data` (a path; None: the task's built-in data) into
    `run_dir` (a new directory, or an existing one with resume=True). `pretrained`, a run directory
    of an encoder, gives a fine-tuned encoder its weights (all but the head's) and its tokenizer; a
    Hugging Face GPT-2 directory (`train --init-from`) gives a GPT its weights and its tokenizer.
    `task_builder` builds the task from build_task's arguments (benchmarks/translation.py's scores fewer pairs).

    SIGINT or SIGTERM stops training at the end of the current step, after saving a checkpoint
    (a second one stops at once, keeping the last complete checkpoint); `--resume` then continues
    exactly where it stopped. A resumed run keeps the learning-rate schedule it was planned with,
    even with a larger max_iters or max_time (past its end the rate stays at its final value);
    extend=True re-plans the schedule over the new max_iters and max_time instead.

    Under torchrun (distributed.py), each process trains its slice of every batch with DDP: the same
    run as one process, which rank 0 alone writes and logs; a run may resume with another number of
    processes. On ranks other than 0, the result has no scores and no sample.
    """
    with (
        distributed.joined(train_config.device) as (world, device),
        distributed.peers_watched(world, run_dir, lambda: _last_good(Path(run_dir))),
    ):
        return _train(
            model_config,
            train_config,
            run_dir,
            data,
            resume,
            extend,
            pretrained,
            progress and world.is_main,
            log if world.is_main else _silent,
            task_builder,
            world=world,
            device=device,
        )


def _silent(message):
    """The log of ranks other than 0 under torchrun: rank 0 alone reports."""


def _train(
    model_config, train_config, run_dir, data, resume, extend, pretrained, progress, log, task_builder, *, world, device
):
    run_dir = Path(run_dir)
    if extend and not resume:
        raise ConfigError("--extend re-plans the schedule of a resumed run; it needs --resume")
    planned = None  # the schedule's horizon recorded by the run being resumed
    if resume:  # the saved settings, with the changes a resume allows; the horizon they planned
        saved_model, saved_train, saved_data = rundir.read_config(run_dir)
        model_config, train_config = resumed(run_dir, (saved_model, saved_train), (model_config, train_config))
        data, planned = data if data is not None else saved_data.get("source"), _horizon(saved_train)
    elif (run_dir / "config.json").exists():
        raise CheckpointError(
            f"{run_dir} already holds a run; continue it with --resume, or train into another directory with --out"
        )
    check(model_config, train_config)
    world.check_batch(train_config.batch_size, train_config.grad_accum)
    device = configure(device)
    tokenizer, data_info = None, {}
    if resume:  # the run's own vocabulary (unless a crash came before it was written), where its weights came from
        if (run_dir / "tokenizer.json").exists():
            tokenizer = load_tokenizer(run_dir / "tokenizer.json")
        data_info = {k: v for k, v in rundir.read_config(run_dir)[2].items() if k == "pretrained"}
    elif pretrained is not None:
        source, tokenizer = rundir.load_pretrained(pretrained, model_config)
        data_info = {"pretrained": str(Path(pretrained).resolve())}
    with world.main_first():  # the data prepared once; every rank reads run_dir before rank 0 writes
        task = task_builder(model_config, train_config, data, tokenizer)
    model_config = fit_model_config(model_config, task)
    data_info = {**task.data_info, **data_info}
    if resume and task.data_info["sha256"] != rundir.read_config(run_dir)[2].get("sha256"):
        raise DataError(f"the data {task.data_info['source']} differs from the data {run_dir} was trained on")

    with rundir.writing(f"to {run_dir}"):
        run_dir.mkdir(parents=True, exist_ok=True)
    run = None
    try:
        with rundir.run_lock(run_dir) if world.is_main else contextlib.nullcontext(), StopSignals() as stop:
            torch.manual_seed(train_config.seed)
            model = build_model(model_config)
            if pretrained is not None and not resume:
                model.load_pretrained(source)
            dtype = training_dtype(device, model_config, train_config)  # float32 or bfloat16
            amp = autocast(device, dtype)
            run = _Run(
                run_dir,
                model_config,
                train_config,
                task,
                device,
                model.to(device),
                amp,
                log,
                horizon=_horizon(train_config),
                world=world,
            )
            optimizer = make_optimizer(run.model, train_config)
            batch_rng = torch.Generator().manual_seed(train_config.seed)
            start, best_val, run.train_seconds = 0, math.inf, 0.0
            state = rundir.load_checkpoint(run_dir, run.model) if resume else None
            if state is not None:
                start, best_val, run.train_seconds = _restore(state, optimizer, batch_rng, device)
                _check_room_to_train(run, start)
                log(f"resuming {run_dir} at step {start}")
                planned = state.get("schedule", planned)
            elif resume:
                log(f"{run_dir} has no checkpoint yet; starting from step 0")
            if train_config.tensorboard and world.is_main:  # before the run's files: without tensorboard, no run
                with rundir.writing(f"TensorBoard's event files to {run_dir}"):
                    run.board = Board(run_dir, start)
            with rundir.writing(f"to {run_dir}"):
                if world.is_main:
                    rundir.save_run_info(run_dir, model_config, train_config, task.tokenizer, data_info)
                    rundir.trim_metrics(run_dir, start)
                    rundir.remove_stale(run_dir)
                if state is not None:
                    _plan_schedule(run, planned, extend, start)
            log(
                f"{run.model.num_parameters() / 1e6:.2f}M parameters, {task.summary()}, device {device} ({dtype}), "
                f"run directory {run_dir}"
            )
            steps_done, best_val = _train_steps(run, optimizer, batch_rng, start, best_val, stop, progress)
        if not world.is_main:  # rank 0 scores the model and writes the sample
            return TrainResult(steps_done, best_val, {}, run.train_seconds, 0.0, "")
        return _finish(run, start + steps_done, steps_done, best_val)
    except StopAtOnce as e:
        manifest = rundir.read_manifest(run_dir)
        kept = f"the checkpoint of step {manifest['step']} is intact" if manifest else "no checkpoint yet"
        raise TrainingInterrupted(
            f"stopped at once by a second {signal_name(e.signum)}; {kept}; continue with: "
            f"scratchgpt train --resume --out {run_dir}",
            128 + e.signum,
        ) from None
    finally:
        if run is not None and run.board is not None:
            run.board.close()  # at the end, and on an interruption or an error too


def _check_room_to_train(run, start):
    c = run.train_config
    if start > c.max_iters:
        raise ConfigError(
            f"{run.run_dir} is already at step {start}, past max_iters {c.max_iters}; pass a larger --max-iters"
        )
    if 0 < c.max_time <= run.train_seconds:
        raise ConfigError(
            f"{run.run_dir} has already trained {run.train_seconds:.1f} s of its "
            f"max_time {c.max_time:g} s; pass a larger --max-time"
        )


def _horizon(c):
    """What the learning-rate schedule is planned over: the steps and the time budget."""
    return {"max_iters": c.max_iters, "max_time": c.max_time}


def _plan_schedule(run, planned, extend, start):
    """On resume: keep the schedule the run was planned with, or re-plan it (--extend) and log it."""
    c = run.train_config
    if extend:
        run.log(
            f"--extend: the learning-rate schedule is re-planned over {_describe(run.horizon)} from step {start} on"
        )
        run.record({"kind": "extend", "step": start, **run.horizon})
    elif planned != run.horizon:
        if c.schedule != "constant":
            run.log(
                f"the learning-rate schedule keeps its plan of {_describe(planned)}; after it the "
                f"rate stays at its final value (--extend re-plans it over {_describe(run.horizon)})"
            )
        run.horizon = planned


def _describe(horizon):
    steps = f"{horizon['max_iters']} steps"
    return steps + (f" or {horizon['max_time']:g} s" if horizon["max_time"] > 0 else "")


@dataclass
class _Run:
    """What the steps of one training run share."""

    run_dir: Path
    model_config: ModelConfig | BigramConfig | EncoderConfig | Seq2SeqConfig
    train_config: TrainConfig
    task: Task
    device: torch.device
    model: torch.nn.Module
    amp: contextlib.AbstractContextManager  # bf16 autocast, or nothing
    log: Callable[[str], None]
    horizon: dict  # the steps and seconds the learning-rate schedule is planned over
    train_seconds: float = 0.0  # time in training steps so far, this run and those it resumed
    pending_losses: list[torch.Tensor] = field(default_factory=list)  # on the device, not yet checked
    grad_norm: torch.Tensor | None = None  # the last step's, on the device (None without clipping)
    board: Board | None = None  # TensorBoard's event files, with --tensorboard
    world: distributed.World = distributed.ALONE  # this process's rank among torchrun's processes

    def record(self, record):
        """Report a metrics record: append it to metrics.jsonl and, with --tensorboard, write it to
        the event files. The loop reports everything through here (rank 0 only, under torchrun)."""
        if not self.world.is_main:
            return
        rundir.append_metrics(self.run_dir, record)
        if self.board is not None:
            self.board.record(record)


def training_step(forward, model, optimizer, task, c, generator, device, amp, replica=None, world=distributed.ALONE):
    """One optimiser step on a batch of c.batch_size training examples of `task`, drawn whole and
    cut into c.grad_accum micro-batches (and, under torchrun, into this process's rows of each:
    `world`, with `replica` the DDP wrapper, which averages the gradients over the processes in the
    last micro-batch's backward only). Each micro-batch's mean loss is weighted by its share of the
    batch's targets (World.parts): any grad_accum gives the one-batch step, to float rounding.
    Returns (the batch's mean loss on this process's rows, the total norm of the gradient before
    clipping, or None without clipping: clipping computes it anyway) as tensors: reading them would
    wait for the device."""
    optimizer.zero_grad(set_to_none=True)
    parts = world.parts(task.batch("train", c.batch_size, generator, device), c.grad_accum)
    loss = 0.0
    for micro, (part, weight) in enumerate(parts):
        with distributed.no_sync(replica) if micro < len(parts) - 1 else contextlib.nullcontext():
            with amp:
                part_loss = task.loss(forward, part) * weight
            part_loss.backward()
        loss = loss + part_loss.detach()
    grad_norm = None
    if c.grad_clip > 0:
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)  # () the norm of all of them
    optimizer.step()
    return loss, grad_norm


def _train_steps(run, optimizer, batch_rng, start, best_val, stop, progress):
    """Steps from `start` until max_iters (or max_time) with logs, estimates and checkpoints;
    returns (steps done, best val). Only the steps' time counts in run.train_seconds."""
    c, model, world = run.train_config, run.model, run.world
    batch_tokens = run.task.batch_tokens(c.batch_size)
    schedule = dataclasses.replace(c, **run.horizon)
    replica = world.wrap(model, run.device)  # DDP's wrapper under torchrun, else the model
    estimated = world.shard(run.task)  # this rank's slices of the estimates' batches
    forward = torch.compile(replica) if c.compile else replica
    timed = c.max_time > 0  # the bar counts seconds of the budget, else steps
    bar = tqdm(
        total=c.max_time if timed else c.max_iters,
        initial=run.train_seconds if timed else start,
        unit="s" if timed else "step",
        dynamic_ncols=True,
        bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}{postfix}]" if timed else None,
        disable=None if progress else True,
    )  # None: only on a terminal
    steps_done, interval_steps, interval_seconds, step_seconds = 0, 0, 0.0, 0.0
    lines = progress and bar.disable  # no bar to watch (a log file, a pipe): a line now and then instead
    last_line, loss_value = clock() if lines else 0.0, None
    model.train()
    try:
        for step in range(start, c.max_iters):
            step_start = clock()
            for group in optimizer.param_groups:  # the schedule's clock: the expected end of this step
                group["lr"] = lr_at(step, schedule, run.train_seconds + step_seconds, group["peak_lr"])
            loss, run.grad_norm = training_step(
                forward, model, optimizer, run.task, c, batch_rng, run.device, run.amp, replica, world
            )
            run.pending_losses.append(loss.detach())
            # every rank: the same clock (rank 0's) and the same decision to stop
            signum, step_seconds = world.agree(stop.signum, clock() - step_start)
            run.train_seconds += step_seconds
            interval_seconds += step_seconds
            bar.update(step_seconds if timed else 1)
            interval_steps += 1
            steps_done += 1
            done = step + 1
            last = done == c.max_iters or (c.max_time > 0 and run.train_seconds >= c.max_time)

            if done % c.log_interval == 0 or last:
                loss_value = _checked_losses(run, done)  # the one host sync per log interval
                tokens_per_s = interval_steps * batch_tokens / interval_seconds
                bar.set_postfix(loss=f"{loss_value:.4f}", tok_s=f"{tokens_per_s:,.0f}")
                # the step's gradient norm, read after that sync: no more waiting
                grad_norm = {} if run.grad_norm is None else {"grad_norm": run.grad_norm.item()}
                run.record(
                    {
                        "kind": "train",
                        "step": done,
                        "loss": loss_value,
                        "lr": optimizer.param_groups[-1]["lr"],  # AdamW's
                        **grad_norm,
                        "tokens_per_s": tokens_per_s,
                        "train_seconds": run.train_seconds,
                    }
                )
                interval_steps, interval_seconds = 0, 0.0

            if lines and clock() - last_line >= PROGRESS_SECONDS:
                last_line = clock()
                run.log(
                    f"step {done:,}"
                    + (f", {run.train_seconds:.0f} s of {c.max_time:g}" if timed else f" of {c.max_iters:,}")
                    + (f", loss {loss_value:.4f}" if loss_value is not None else "")
                    + f", {steps_done * batch_tokens / run.train_seconds:,.0f} tokens/s"
                )

            if done % c.eval_interval == 0 or last:
                synchronize(run.device)  # the steps' queued work belongs to training time
                losses = world.mean_values(
                    estimate_loss(model, estimated, c.batch_size, c.eval_iters, c.seed + 1, run.device, run.amp)
                )  # over each rank's slices
                tracked = run.task.track(model, run.device) if world.is_main else {}
                run.log(
                    f"step {done}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}"
                    + "".join(f", {k.replace('_', ' ')} {v:.4f}" for k, v in tracked.items())
                )
                run.record(
                    {
                        "kind": "eval",
                        "step": done,
                        "train_loss": losses["train"],
                        "val_loss": losses["val"],
                        **tracked,
                        "train_seconds": run.train_seconds,
                    }
                )
                if losses["val"] < best_val:
                    best_val = losses["val"]
                    _save_weights(run, run.run_dir / rundir.MODEL_FILE, f"the best model to {run.run_dir}", done)
                _save_checkpoint(run, optimizer, batch_rng, done, best_val)

            if signum is not None:
                _save_checkpoint(run, optimizer, batch_rng, done, best_val)
                _keep_a_model(run, done)
                world.barrier()  # no rank leaves (and makes torchrun stop the others) before rank 0 has saved
                raise TrainingInterrupted(
                    f"stopped by {signal_name(signum)} at step {done}, checkpoint saved; "
                    f"continue with: scratchgpt train --resume --out {run.run_dir}",
                    128 + signum,
                )
            if last:
                break
    finally:
        bar.close()
    _keep_a_model(run, start + steps_done)
    return steps_done, best_val


def _checked_losses(run, step):
    """The last loss of the steps since the last check, after checking that every one of them is
    finite (one host sync). Raises TrainingDiverged naming the first step whose loss is not."""
    if not run.pending_losses:
        return None
    values = run.world.mean(torch.stack(run.pending_losses).float()).tolist()  # the whole batches' losses
    run.pending_losses.clear()
    for i, value in enumerate(values):
        if not math.isfinite(value):
            bad_step = step - len(values) + 1 + i
            raise TrainingDiverged(
                f"loss became {value} at step {bad_step}; lower lr or enable grad_clip ({_last_good(run.run_dir)})"
            )
    return values[-1]


def _check_finite(run, step):
    """Refuse to save a model whose losses since the last check, or whose weights, are not finite."""
    _checked_losses(run, step)
    if not torch.stack([p.isfinite().all() for p in run.model.parameters()]).all():
        raise TrainingDiverged(
            f"the weights stopped being finite by step {step}; lower lr or enable grad_clip ({_last_good(run.run_dir)})"
        )


def _last_good(run_dir):
    manifest = rundir.read_manifest(run_dir)
    return f"the last good checkpoint, step {manifest['step']}, is kept" if manifest else "no checkpoint was saved"


def _save_weights(run, path, what, step):
    _check_finite(run, step)  # on every rank: it joins the ranks' losses
    if run.world.is_main:
        with rundir.writing(what):
            rundir.save_weights(path, run.model)


def _keep_a_model(run, step):
    """Before the first estimate there is no best model yet: keep the current one to sample from."""
    if run.world.main_says(not (run.run_dir / rundir.MODEL_FILE).exists()):
        _save_weights(run, run.run_dir / rundir.MODEL_FILE, f"the model to {run.run_dir}", step)


def _save_checkpoint(run, optimizer, batch_rng, step, best_val):
    """Everything --resume needs to continue exactly from `step`; never a diverged model."""
    _check_finite(run, step)
    state = {
        "step": step,
        "best_val_loss": best_val,
        "train_seconds": run.train_seconds,
        "schedule": run.horizon,
        "optimizer": optimizer.state_dict(),
        "batch_rng": batch_rng.get_state(),
        "torch_rng": torch.get_rng_state(),
    }
    if run.device.type == "cuda":
        state["cuda_rng"] = torch.cuda.get_rng_state(run.device)
    if run.world.is_main:  # the ranks' states are the same: rank 0's weights, optimizer and random streams
        with rundir.writing(f"the checkpoint of step {step} to {run.run_dir}"):
            rundir.save_checkpoint(run.run_dir, run.model, state)


def _restore(state, optimizer, batch_rng, device):
    """Load what _save_checkpoint saved (the weights are already in); (step, best val, seconds)."""
    optimizer.load_state_dict(state["optimizer"])
    batch_rng.set_state(state["batch_rng"])
    torch.set_rng_state(state["torch_rng"])
    if device.type == "cuda" and "cuda_rng" in state:
        torch.cuda.set_rng_state(state["cuda_rng"], device)
    return int(state["step"]), float(state["best_val_loss"]), float(state.get("train_seconds", 0.0))


def _finish(run, final_step, steps_done, best_val):
    """Score the kept model as the task says (the whole validation split) and write a sample."""
    model, _, _, _ = rundir.load_model(run.run_dir, run.device)
    scores = run.task.evaluate(model, run.device)
    train_seconds = run.train_seconds
    tokens_per_s = final_step * run.task.batch_tokens(run.train_config.batch_size) / max(train_seconds, 1e-9)
    run.record(
        {
            "kind": "final",
            "step": final_step,
            **scores,
            "best_estimated_val_loss": best_val,
            "train_seconds": train_seconds,
            "tokens_per_s": tokens_per_s,
        }
    )
    run.log(f"{run.task.report(scores)} ({train_seconds:.1f} s of training, {tokens_per_s:,.0f} tokens/s)")
    sample = run.task.sample(model, run.train_config.sample_tokens, run.train_config.seed)
    with rundir.writing(f"the sample to {run.run_dir}"):
        atomic_write(run.run_dir / "samples.txt", lambda tmp: Path(tmp).write_text(sample, encoding="utf-8"))
        if run.board is not None:
            run.board.sample(sample, final_step)
    return TrainResult(steps_done, best_val, scores, train_seconds, tokens_per_s, sample)

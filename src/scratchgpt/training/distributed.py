"""Training with several processes: PyTorch's DistributedDataParallel (DDP) under torchrun.

    torchrun --standalone --nproc_per_node=N -m scratchgpt train ...

starts N copies of the command and gives each its RANK, LOCAL_RANK and WORLD_SIZE (and where to
meet: MASTER_ADDR, MASTER_PORT); `joined` makes them one process group: gloo on CPUs, NCCL on CUDA
GPUs, one process per device (LOCAL_RANK takes cuda:LOCAL_RANK). Without torchrun (or with one
process) nothing here changes the loop: `ALONE` answers every question of a one-process run.

The run does not depend on N. `batch_size` stays the global batch: every rank draws the same global
batch from the run's one batch generator (seeded, saved in checkpoints) and trains on its own slice
(`Shard`); DDP averages the gradients over the ranks, and each rank's loss is weighted by its slice's
share of the batch's targets, so the average is the whole batch's mean loss even where slices hold
different numbers of targets (masked tokens, padded translations). N processes thus train the very
run one process would, to float rounding, and a run may resume with another number of processes.
With grad_accum, each step's batch is drawn whole, as without it, and cut into micro-batches
weighted the same way (`World.parts`); gradients are averaged once, on the last micro-step's
backward (`no_sync` on the others).

Who does what: every rank trains, computes the loss estimates on its slices (`mean` joins them) and
loads a checkpoint on resume; rank 0 alone writes (the run directory, checkpoints, metrics.jsonl,
TensorBoard, samples), logs, draws the progress bar, holds the run lock and computes the final
scores. The ranks agree after every step on the time spent (rank 0's clock drives time budgets and
the schedule) and on whether to stop (a signal that reached any of them): one small all-reduce on
the CPU (`agree`), so a checkpoint is written at the same step by everyone's reckoning.
"""

import contextlib
import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from ..data.masking import IGNORE
from ..device import resolve_device
from ..errors import ConfigError, DistributedError


def _env_int(name, default):
    return int(os.environ.get(name, default))


def rank():
    """This process's rank under torchrun (0 without it): usable before the group exists."""
    return _env_int("RANK", 0)


def is_main():
    """Whether this process is the one that writes and prints (rank 0, or the only one)."""
    return rank() == 0


def launched():
    """Whether torchrun started this process as one of several."""
    return _env_int("WORLD_SIZE", 1) > 1


@dataclass(frozen=True)
class World:
    """This process's place in the run: its rank among `size` processes."""

    rank: int = 0
    size: int = 1
    control: object = None  # a gloo group for host values (stop flag, clock), whatever the backend

    @property
    def alone(self):
        return self.size == 1

    @property
    def is_main(self):
        return self.rank == 0

    def check_batch(self, batch_size, grad_accum):
        """Each rank's share of each micro-batch must be whole."""
        if batch_size % (self.size * grad_accum):
            raise ConfigError(
                f"batch_size {batch_size} must divide by the number of processes times "
                f"grad_accum ({self.size} x {grad_accum})"
            )

    def wrap(self, model, device):
        """The model as the steps call it: DDP's wrapper (which averages the gradients in backward),
        or the model itself when alone."""
        if self.alone:
            return model
        # no buffer is trained (masks and rotary tables only): no need to broadcast them every step
        # (torch 2.13 renamed broadcast_buffers, which it still reads, with a warning)
        quiet = "forward_sync_buffers" in inspect.signature(DistributedDataParallel).parameters
        return DistributedDataParallel(
            model,
            device_ids=[device] if device.type == "cuda" else None,
            **{"forward_sync_buffers" if quiet else "broadcast_buffers": False},
        )

    def shard(self, task):
        """`task`'s batches and loss for the estimates, as this rank's slices (the task itself when alone)."""
        return task if self.alone else Shard(task, self)

    def parts(self, batch, pieces=1):
        """This rank's rows of `batch` (tensors (B, ...)) in `pieces` micro-batches, each with its
        weight: size x its targets / the batch's targets. Summed over the pieces and averaged over
        the ranks (as DDP averages gradients), the weighted mean losses are the whole batch's mean
        loss, so N processes and any grad_accum train what one process with one batch would, to
        float rounding, whatever each piece's share of the targets (masked tokens, padding)."""
        b = len(batch[0]) // (pieces * self.size)
        total = targets(batch)
        cut = []
        for piece in range(pieces):
            start = (piece * self.size + self.rank) * b
            part = tuple(t[start : start + b] for t in batch)  # (b, ...)
            cut.append((part, self.size * targets(part) / total))
        return cut

    def agree(self, signum, seconds):
        """(the signal any rank has received, or None; rank 0's `seconds`): all ranks stop at the
        same step and keep the same clock. One all-reduce on the CPU, after every step."""
        if self.alone:
            return signum, seconds
        values = torch.tensor([signum or 0, seconds if self.is_main else 0.0], dtype=torch.float64)
        dist.all_reduce(values, op=dist.ReduceOp.MAX, group=self.control)
        return int(values[0]) or None, values[1].item()

    def mean(self, tensor):
        """The mean over the ranks of `tensor` (on the device), which every rank gets."""
        if self.alone:
            return tensor
        total = tensor.clone()
        dist.all_reduce(total)
        return total / self.size

    def mean_values(self, values):
        """{name: the mean over the ranks of the number}: estimates made on each rank's slices."""
        if self.alone:
            return values
        numbers = torch.tensor(list(values.values()), dtype=torch.float64)
        dist.all_reduce(numbers, group=self.control)
        return dict(zip(values, (numbers / self.size).tolist()))

    def main_says(self, flag):
        """Rank 0's `flag`, on every rank (for decisions that read the run directory)."""
        if self.alone:
            return flag
        value = torch.tensor([float(flag)])
        dist.broadcast(value, src=0, group=self.control)
        return bool(value.item())

    def barrier(self):
        """Every rank waits here until all have come (e.g. until rank 0 has written a checkpoint)."""
        if not self.alone:
            dist.barrier(group=self.control)

    @contextlib.contextmanager
    def main_first(self):
        """Rank 0 runs the body first, the others after it: preparing the data once (token files,
        caches), and every rank reads the run directory before rank 0 writes into it."""
        if not self.alone and not self.is_main:
            dist.barrier(group=self.control)
        yield
        if not self.alone and self.is_main:
            dist.barrier(group=self.control)


ALONE = World()


def no_sync(replica):
    """For a micro-step whose gradients are accumulated but not yet averaged: DDP's no_sync
    (`replica` is the DDP wrapper), nothing for a model alone."""
    if isinstance(replica, DistributedDataParallel):
        return replica.no_sync()
    return contextlib.nullcontext()


class Shard:
    """What the loss estimates (`estimate_loss`) ask of a task, its batches and their loss, sliced
    for one rank (training steps cut their batches with World.parts themselves). Every rank draws
    the whole batch with the shared generator, so all of them draw the same one and the generator
    moves as in one process, then keeps its rows and weights its mean loss as World.parts says."""

    def __init__(self, task, world):
        self.task, self.world = task, world

    def batch(self, split, batch_size, generator, device):
        [(part, weight)] = self.world.parts(self.task.batch(split, batch_size, generator, device))
        return part, weight

    def loss(self, forward, batch):
        part, weight = batch
        return self.task.loss(forward, part) * weight


def targets(batch):
    """What a batch's mean loss is a mean over: its targets (the last tensor of every task's batch)
    that carry a loss, i.e. are not IGNORE (a tensor: counting them on a GPU need not wait for it);
    for one target per example (labels, scores), the rows."""
    last = batch[-1]
    if last.dtype.is_floating_point or last.dim() == 1:
        return len(last)
    return (last != IGNORE).sum()


def device_for(setting, local_rank, size):
    """The device of process `local_rank` of this machine: cuda:LOCAL_RANK for auto or cuda (on a
    machine with GPUs), else the CPU; an explicit cuda:N or mps is refused under torchrun."""
    if size == 1:
        return resolve_device(setting)
    if setting not in ("auto", "cuda", "cpu"):
        raise ConfigError(
            f"under torchrun each process takes its own device; use --device cuda (process "
            f"LOCAL_RANK on cuda:LOCAL_RANK) or cpu, not {setting}"
        )
    device = resolve_device(setting)
    if device.type == "mps":  # auto on a Mac: no DDP backend for it
        return torch.device("cpu")
    if device.type == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise ConfigError(
                f"process LOCAL_RANK {local_rank} needs cuda:{local_rank}, but this machine has "
                f"{count} GPUs; start at most {count} processes per node"
            )
        return torch.device("cuda", local_rank)
    return device


@contextlib.contextmanager
def joined(device_setting="auto"):
    """(this process's World, its device) for the duration of training: the process group torchrun's
    environment describes, made here and destroyed at the end; a group the caller made already is
    used as it is; without torchrun (or WORLD_SIZE 1), ALONE and the device the setting names."""
    if dist.is_available() and dist.is_initialized():
        size = dist.get_world_size()
        device = device_for(device_setting, _env_int("LOCAL_RANK", 0), size)
        control = dist.group.WORLD if dist.get_backend() == "gloo" else dist.new_group(backend="gloo")
        yield World(dist.get_rank(), size, control), device
        return
    size = _env_int("WORLD_SIZE", 1)
    device = device_for(device_setting, _env_int("LOCAL_RANK", 0), size)
    if size == 1:
        yield ALONE, device
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        control = dist.group.WORLD if device.type == "cpu" else dist.new_group(backend="gloo")
        yield World(dist.get_rank(), dist.get_world_size(), control), device
    finally:
        dist.destroy_process_group()


@contextlib.contextmanager
def peers_watched(world, run_dir, last_checkpoint):
    """Turn a collective that failed because another process of the run died (torchrun then stops
    the rest) into a one-line error that names the checkpoint kept; `last_checkpoint()` reads it."""
    try:
        yield
    except RuntimeError as e:
        # gloo raises a bare RuntimeError
        if world.alone or not (isinstance(e, dist.DistError) or "gloo" in str(e)):
            raise
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        first = first.split("] ", 1)[-1].split(". ")[0]  # without gloo's source path and advice
        raise DistributedError(
            f"another process of this run stopped or cannot be reached ({first}); "
            f"{last_checkpoint()}; continue with: scratchgpt train --resume --out "
            f"{run_dir} (under torchrun with any number of processes)"
        ) from None

"""torchrun and DDP: N processes train the very run one process trains, write it once, stop together
and resume exactly, with any number of processes.

The runs are real: `python -m torch.distributed.run --standalone --nproc_per_node=2` on the CPU (gloo),
one torch thread each, the tiny presets without dropout. Where a test needs a crash or a signal at
a given step, torchrun starts tests/ddp_worker.py, which is the `scratchgpt` command plus that hook.
"""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from helpers import fails

from scratchgpt import config as cfg
from scratchgpt.errors import ConfigError
from scratchgpt.models.registry import build_model
from scratchgpt.rundir import read_manifest
from scratchgpt.training import distributed
from scratchgpt.training.distributed import Shard, World
from scratchgpt.training.tasks import build_task, fit_model_config

WORKER = Path(__file__).with_name("ddp_worker.py")
STEPS = ["--max-iters", "20", "--log-interval", "1", "--sample-tokens", "0", "--quiet", "--device", "cpu"]
# checkpoints at steps 5, 10, 15, 20; micro-batches (no_sync), Muon on the averaged gradients, clipping
GPT = [
    "--preset",
    "tiny",
    "--eval-interval",
    "5",
    "--grad-accum",
    "2",
    "--optimizer",
    "muon",
    "--grad-clip",
    "1",
    *STEPS,
]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")  # one dataset cache for every run of this module


def run(cache, out, *args, processes=1, hook=None, writes=None, worker=False):
    """`scratchgpt train --out OUT ARGS` in `processes` processes (torchrun when more than one)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SCRATCHGPT_CACHE": str(cache)}
    for name, value in (("SCRATCHGPT_TEST_AT", hook), ("SCRATCHGPT_TEST_WRITES", writes)):
        env.pop(name, None)
        if value is not None:
            env[name] = str(value)
    command = [str(WORKER)] if worker or hook or writes else ["-m", "scratchgpt"]
    if processes > 1:
        command = ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *command]
    return subprocess.run(
        [sys.executable, *command, "train", "--out", str(out), *map(str, args)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def records(out, kind):
    found = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if r["kind"] == kind]
    steps = [r["step"] for r in found]
    assert len(steps) == len(set(steps)), f"{kind} records written more than once: {steps}"
    return found


def curve(out, key="loss"):
    """{step: train loss (or another key)} of every step, each step's record written once."""
    return {r["step"]: r.get(key) for r in records(out, "train")}


def same_curve(out, reference):
    assert curve(out) == pytest.approx(curve(reference), abs=1e-5)
    assert curve(out, "grad_norm") == pytest.approx(curve(reference, "grad_norm"), abs=1e-5)
    assert list(curve(out)) == list(range(1, 21))


@pytest.fixture(scope="module")
def one_process(cache, tmp_path_factory):
    """The GPT run of one process that the two-process runs must reproduce."""
    out = tmp_path_factory.mktemp("one") / "run"
    done = run(cache, out, *GPT)
    assert done.returncode == 0, done.stderr
    return out


def test_two_processes_train_the_run_one_process_trains_and_rank_0_alone_writes_it(cache, one_process, tmp_path):
    out, writes = tmp_path / "two", tmp_path / "writes.txt"
    done = run(cache, out, *GPT, processes=2, writes=writes)
    assert done.returncode == 0, done.stderr
    same_curve(out, one_process)
    assert [r["val_loss"] for r in records(out, "eval")] == pytest.approx(
        [r["val_loss"] for r in records(one_process, "eval")], abs=1e-5
    )  # sharded estimates
    assert records(out, "final")[0]["val_loss"] == pytest.approx(records(one_process, "final")[0]["val_loss"], abs=1e-5)
    # every file of the run written by rank 0, each checkpoint once: were every rank writing, rank 1's
    # lines would be here, and each checkpoint twice
    lines = writes.read_text().splitlines()
    assert lines and all(line.startswith("0 ") for line in lines), [x for x in lines if not x.startswith("0 ")]
    assert [x for x in lines if " checkpoint " in x] == [f"0 checkpoint {s}" for s in (5, 10, 15, 20)]
    assert done.stdout.count("saved to") == 0 and done.stderr.count(f"[saved to {out}") == 1  # one report
    assert len(list((out / "checkpoints").iterdir())) == 1 and not list(out.rglob("*.tmp"))


def test_an_encoder_with_uneven_targets_per_slice_trains_the_same_run_too(cache, tmp_path):
    """Masked tokens: each slice holds its own number of masked characters, so a plain average of the
    ranks' mean losses would not be the batch's mean loss (it differs by about 1e-2 here)."""
    flags = ["--preset", "tiny-encoder", "--eval-interval", "10", *STEPS]
    one, two = run(cache, tmp_path / "one", *flags), run(cache, tmp_path / "two", *flags, processes=2)
    assert one.returncode == 0 and two.returncode == 0, one.stderr + two.stderr
    same_curve(tmp_path / "two", tmp_path / "one")


def test_a_killed_process_stops_the_run_and_resume_continues_exactly(cache, one_process, tmp_path):
    out = tmp_path / "killed"
    killed = run(cache, out, *GPT, processes=2, hook="1:13:kill")  # rank 1 dies after step 13: a crash
    assert killed.returncode != 0
    assert "scratchgpt: another process of this run stopped" in killed.stderr, killed.stderr
    assert "the last good checkpoint, step 10, is kept" in killed.stderr
    assert read_manifest(out)["step"] == 10
    assert len(list((out / "checkpoints").iterdir())) == 1 and not list(out.rglob("*.tmp"))

    resumed = run(cache, out, "--resume", "--quiet", processes=2)
    assert resumed.returncode == 0, resumed.stderr
    same_curve(out, one_process)


def test_a_signal_to_torchrun_stops_every_process_at_one_step_and_any_number_of_processes_resumes(
    cache, one_process, tmp_path
):
    out = tmp_path / "stopped"
    alone = run(cache, out, *GPT, hook="0:7:int")  # Ctrl-C to one process at step 7
    assert alone.returncode == 130 and read_manifest(out)["step"] == 7, alone.stderr

    # 1 -> 2 processes; rank 1 sends SIGTERM to torchrun after its 6th step (the run's 13th), and
    # torchrun passes it on to both ranks, which agree on the step to stop at
    two = run(cache, out, "--resume", "--quiet", processes=2, hook="1:6:term-torchrun")
    assert two.returncode != 0
    stopped = [line for line in two.stderr.splitlines() if "stopped by SIGTERM at step" in line]
    assert len(stopped) == 2, two.stderr  # rank 0's and rank 1's
    step = read_manifest(out)["step"]
    assert 13 <= step < 20 and all(f"at step {step}," in line for line in stopped)

    one = run(cache, out, "--resume", "--quiet")  # 2 -> 1 process
    assert one.returncode == 0, one.stderr
    same_curve(out, one_process)


# ---------------------------------------------------------------------------------------------
# The pieces, in one process


@pytest.mark.parametrize(
    "preset, task",
    [
        ("tiny", "next-token"),
        ("tiny-encoder", "mlm"),
        ("finetune-tiny", "names"),
        ("finetune-tiny", "speakers"),
        ("tiny-seq2seq", "copy"),
    ],
)
def test_the_slices_are_the_batch_and_their_weighted_losses_average_to_its_loss(shakespeare, preset, task):
    model_config, train_config = cfg.preset(preset)
    task_ = build_task(
        model_config, dataclasses.replace(train_config, task=task), shakespeare if task == "next-token" else None
    )
    model_config = fit_model_config(model_config, task_)
    torch.manual_seed(0)
    model = build_model(model_config).eval()
    whole = task_.batch("train", 8, torch.Generator().manual_seed(3), torch.device("cpu"))
    with torch.no_grad():
        expected = task_.loss(model, whole).item()
        for size in (2, 4):
            shards = [Shard(task_, World(rank, size)) for rank in range(size)]
            batches = [s.batch("train", 8, torch.Generator().manual_seed(3), torch.device("cpu")) for s in shards]
            for i, tensor in enumerate(whole):  # the slices, in rank order, are the whole batch
                assert torch.equal(torch.cat([part[i] for part, _ in batches]), tensor)
            mean = sum(s.loss(model, b).item() for s, b in zip(shards, batches)) / size
            assert mean == pytest.approx(expected, abs=1e-5)


def test_one_process_is_left_alone():
    assert World().alone and distributed.ALONE.shard("task") == "task"
    assert distributed.ALONE.agree(None, 1.5) == (None, 1.5)


def test_each_process_must_get_a_whole_share_of_each_micro_batch():
    World(0, 2).check_batch(8, 2)
    with pytest.raises(
        ConfigError,
        match=r"batch_size 6 must divide by the number of processes times "
        r"grad_accum \(2 x 2\)",
    ):
        World(0, 2).check_batch(6, 2)


def test_under_torchrun_a_process_takes_its_own_device():
    assert distributed.device_for("cpu", 1, 2) == torch.device("cpu")
    with pytest.raises(ConfigError, match="under torchrun each process takes its own device"):
        distributed.device_for("cuda:1", 0, 2)


def test_under_torchrun_the_run_directory_is_named_and_errors_say_which_rank(capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    line = fails(capsys, "train", "--preset", "tiny")
    assert line == (
        "scratchgpt (rank 1): error: under torchrun every process must train into the same "
        "run directory; name it with --out"
    )

"""Never lose a run: kills at random moments, Ctrl-C and resume, one writer, full disks, damage."""

import errno
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
import safetensors.torch

from scratchgpt import GPTLanguageModel, TrainConfig, preset, train
from scratchgpt.errors import CheckpointError, ScratchGPTError, TrainingInterrupted
from scratchgpt.rundir import load_checkpoint, read_config, read_manifest

TINY_MODEL, TINY_TRAIN = preset("tiny")
# Small steps, a checkpoint every other step: much of the time is spent writing checkpoints.
FLAGS = [
    "--preset",
    "tiny",
    "--log-interval",
    "1",
    "--eval-interval",
    "2",
    "--eval-iters",
    "1",
    "--dropout",
    "0.1",
    "--sample-tokens",
    "0",
    "--quiet",
]


def start(out, data, *extra, resume=False):
    args = [sys.executable, "-m", "scratchgpt", "train", "--data", str(data), "--out", str(out)]
    args += ["--resume", "--quiet", "--sample-tokens", "0"] if resume else FLAGS
    return subprocess.Popen(args + [str(a) for a in extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def steps_logged(out):
    path = out / "metrics.jsonl"
    if not path.exists():
        return 0
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    return max((m["step"] for m in lines if m["kind"] == "train"), default=0)


def wait_for_step(proc, out, step, timeout=60):
    deadline = time.monotonic() + timeout
    while steps_logged(out) < step:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training made no progress"
        time.sleep(0.02)


def losses(out):
    return {
        m["step"]: m["loss"]
        for m in map(json.loads, (out / "metrics.jsonl").read_text().splitlines())
        if m["kind"] == "train"
    }


def checkpoint_step(out):
    """The step of the latest checkpoint after verifying it loads completely (sha256 included)."""
    model = GPTLanguageModel(read_config(out)[0])
    state = load_checkpoint(out, model)
    return None if state is None else state["step"]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_and_resumed_run_is_the_same_run(tmp_path, shakespeare, sig, code):
    reference = tmp_path / "reference"
    whole = start(reference, shakespeare, "--max-iters", 60)
    assert whole.wait(timeout=120) == 0, whole.communicate()

    out = tmp_path / "stopped"
    proc = start(out, shakespeare, "--max-iters", 60)
    wait_for_step(proc, out, 21)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert f"continue with: scratchgpt train --resume --out {out}" in err
    stopped_at = checkpoint_step(out)
    assert 21 <= stopped_at < 60
    assert (out / "model.safetensors").exists()  # something to sample from already
    too_few = start(out, shakespeare, "--max-iters", 10, resume=True)
    _, err = too_few.communicate(timeout=60)
    assert too_few.returncode == 2 and f"already at step {stopped_at}, past max_iters 10" in err

    resumed = start(out, shakespeare, resume=True)
    _, err = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, err
    assert f"resuming {out} at step {stopped_at}" in err
    assert losses(out) == losses(reference)  # every step, bit for bit: model, optimizer, RNGs


def test_killed_at_random_moments_a_run_always_resumes_and_finishes(tmp_path, shakespeare):
    rng = random.Random(0)
    out = tmp_path / "run"
    for _ in range(10):
        proc = start(out, shakespeare, "--max-iters", 100_000, resume=(out / "config.json").exists())
        wait_for_step(proc, out, steps_logged(out) + 1)
        time.sleep(rng.uniform(0, 0.3))
        proc.kill()  # SIGKILL: no handler runs
        proc.communicate()
        step = checkpoint_step(out)  # raises if the latest checkpoint is incomplete or damaged
        assert step is None or step >= 2
    final_step = steps_logged(out) + 4
    proc = start(out, shakespeare, "--max-iters", final_step, resume=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert sorted(losses(out)) == list(range(1, final_step + 1))  # no step lost or repeated
    assert read_manifest(out)["step"] == final_step
    assert not list(out.glob("*.tmp"))


# Runs the CLI and SIGKILLs itself just before its N-th rename of a finished temporary file into
# the run directory: the moment an atomic write is half done, chosen instead of hoped for.
KILL_BEFORE_RENAME = """
import os, signal, sys
from pathlib import Path
from scratchgpt.cli import main

run_dir, n = Path(sys.argv[1]).resolve(), int(sys.argv[2])
calls, rename = 0, os.replace

def replace(src, dst):
    global calls
    if run_dir in Path(dst).resolve().parents:
        calls += 1
        if calls == n:
            os.kill(os.getpid(), signal.SIGKILL)
    return rename(src, dst)

os.replace = replace
sys.exit(main(sys.argv[3:]))
"""


def test_killed_in_the_middle_of_each_kind_of_write_a_run_resumes_as_the_same_run(tmp_path, shakespeare):
    reference = tmp_path / "reference"
    whole = start(reference, shakespeare, "--max-iters", 12)
    assert whole.wait(timeout=120) == 0, whole.communicate()
    out = tmp_path / "run"
    # Renames into the run directory, in order: config.json, tokenizer.json (metrics.jsonl, trimmed,
    # on a resume), then at every other step model.safetensors (when the estimate improves),
    # checkpoints/step-N/model.safetensors, state.pt, checkpoint.json. Each n below kills the run
    # just before one of them.
    killed_before = set()
    for n in (3, 4, 5, 6, 2, 7):
        resume = (out / "config.json").exists()
        args = ["train", "--data", shakespeare, "--out", out, "--max-iters", 12]
        args += ["--resume", "--quiet", "--sample-tokens", "0"] if resume else FLAGS
        before = set(out.rglob("*.tmp"))
        proc = subprocess.run(
            [sys.executable, "-c", KILL_BEFORE_RENAME, *map(str, [out, n, *args])],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        leftovers = set(out.rglob("*.tmp")) - before
        assert len(leftovers) == 1, leftovers  # the finished temporary file, never renamed
        killed_before.add(leftovers.pop().name.split(".")[0])
        checkpoint_step(out)  # the manifest names a complete checkpoint (sha256 checked), or none
    assert killed_before == {"tokenizer", "model", "state", "checkpoint"}
    proc = start(out, shakespeare, "--max-iters", 12, resume=True)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert losses(out) == losses(reference)  # every step, bit for bit, as if never killed
    assert not list(out.rglob("*.tmp"))


def test_a_second_trainer_on_the_same_run_is_refused_until_the_first_dies(tmp_path, shakespeare):
    out = tmp_path / "run"
    proc = start(out, shakespeare, "--max-iters", 100_000)
    wait_for_step(proc, out, 3)
    model_config, train_config, _ = read_config(out)
    with pytest.raises(ScratchGPTError, match="another process is training in"):
        train(model_config, train_config, out, resume=True, progress=False, log=lambda m: None)
    proc.kill()
    proc.communicate()
    more = TrainConfig(**{**train_config.__dict__, "max_iters": checkpoint_step(out) + 2})
    train(model_config, more, out, resume=True, progress=False, log=lambda m: None)  # lock freed


def test_a_second_ctrl_c_stops_at_once_and_leaves_a_usable_run(tmp_path, shakespeare, interrupt_at):
    config = TrainConfig(
        **{
            **TINY_TRAIN.__dict__,
            "max_iters": 12,
            "eval_interval": 2,
            "eval_iters": 1,
            "log_interval": 1,
            "sample_tokens": 0,
        }
    )
    straight = train(TINY_MODEL, config, tmp_path / "straight", data=shakespeare, progress=False, log=lambda m: None)
    out = tmp_path / "run"
    interrupt_at(5, signals=2)  # the second Ctrl-C comes before step 5's end-of-step check
    with pytest.raises(
        TrainingInterrupted,
        match="stopped at once by a second SIGINT; the checkpoint of step 4 is intact; continue with",
    ) as stopped:
        train(TINY_MODEL, config, out, data=shakespeare, progress=False, log=lambda m: None)
    assert stopped.value.exit_code == 130
    assert checkpoint_step(out) == 4  # step 5 was not saved: it was cut short
    resumed = train(TINY_MODEL, config, out, resume=True, progress=False, log=lambda m: None)
    assert resumed.val_loss == straight.val_loss


def test_one_ctrl_c_finishes_the_step_and_saves_it(tmp_path, shakespeare, interrupt_at):
    config = TrainConfig(
        **{
            **TINY_TRAIN.__dict__,
            "max_iters": 12,
            "eval_interval": 2,
            "eval_iters": 1,
            "log_interval": 1,
            "sample_tokens": 0,
        }
    )
    interrupt_at(5)
    with pytest.raises(TrainingInterrupted, match="stopped by SIGINT at step 5, checkpoint saved") as stopped:
        train(TINY_MODEL, config, tmp_path / "run", data=shakespeare, progress=False, log=lambda m: None)
    assert stopped.value.exit_code == 130
    assert checkpoint_step(tmp_path / "run") == 5


def test_a_full_disk_fails_clearly_and_keeps_the_previous_checkpoint(tmp_path, small_corpus, monkeypatch):
    model_config = TINY_MODEL.__class__(block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.0)
    config = TrainConfig(batch_size=4, max_iters=10, eval_interval=5, eval_iters=1, sample_tokens=0)
    out = tmp_path / "run"
    train(model_config, config, out, data=small_corpus, progress=False, log=lambda m: None)

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    more = TrainConfig(**{**config.__dict__, "max_iters": 20})
    with pytest.raises(CheckpointError, match="No space left on device"):
        train(read_config(out)[0], more, out, resume=True, progress=False, log=lambda m: None)
    monkeypatch.undo()
    assert checkpoint_step(out) == 10
    train(read_config(out)[0], more, out, resume=True, progress=False, log=lambda m: None)
    assert checkpoint_step(out) == 20


def test_a_damaged_checkpoint_is_refused_in_one_line(tmp_path, small_corpus):
    model_config = TINY_MODEL.__class__(block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.0)
    config = TrainConfig(batch_size=4, max_iters=4, eval_interval=2, eval_iters=1, sample_tokens=0)
    out = tmp_path / "run"
    train(model_config, config, out, data=small_corpus, progress=False, log=lambda m: None)
    state = out / read_manifest(out)["folder"] / "state.pt"
    state.write_bytes(state.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match="damaged: state.pt is missing or does not match its sha256"):
        checkpoint_step(out)

import dataclasses
import importlib
import itertools
import json
import math
import re

import pytest
import torch
from helpers import fails, quiet

from scratchgpt import (
    BigramConfig,
    BigramLanguageModel,
    GPTLanguageModel,
    ModelConfig,
    TrainConfig,
    load_model,
    preset,
    train,
)
from scratchgpt.data.corpus import prepare, split
from scratchgpt.errors import ScratchGPTError
from scratchgpt.rundir import load_checkpoint, read_config, read_manifest
from scratchgpt.training.evaluate import evaluate_split
from scratchgpt.training.optim import lr_at, make_optimizer

TINY_MODEL, TINY_TRAIN = preset("tiny")


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_learning_rate_warms_up_then_decays_to_the_floor_at_the_last_step():
    c = TrainConfig(lr=1e-3, schedule="cosine", warmup_iters=10, min_lr_ratio=0.1, max_iters=111)
    assert lr_at(0, c) == pytest.approx(1e-4)  # positive from the first step
    assert lr_at(9, c) == lr_at(10, c) == pytest.approx(1e-3)
    assert lr_at(60, c) == pytest.approx(0.55e-3)  # half way down the cosine
    assert lr_at(110, c) == pytest.approx(1e-4)  # the last step that runs is max_iters - 1
    assert lr_at(109, c) > 1e-4
    assert all(lr_at(s, c) >= lr_at(s + 1, c) for s in range(10, 110))


@pytest.mark.parametrize("schedule", ["cosine", "wsd"])
def test_the_last_step_of_a_run_trains_at_the_final_learning_rate(tmp_path, small_corpus, schedule):
    c = TrainConfig(
        **{
            **TINY_TRAIN.__dict__,
            "schedule": schedule,
            "max_iters": 20,
            "log_interval": 1,
            "min_lr_ratio": 0.1,
            "sample_tokens": 0,
        }
    )
    train(TINY_MODEL, c, tmp_path / "run", data=small_corpus, progress=False, log=quiet)
    lrs = [m["lr"] for m in metrics(tmp_path / "run") if m["kind"] == "train"]
    assert len(lrs) == 20
    assert lrs[-1] == pytest.approx(c.lr * c.min_lr_ratio) and lrs[-2] > lrs[-1]


def test_constant_schedule_is_constant():
    c = TrainConfig(lr=3e-4, schedule="constant", warmup_iters=0)
    assert {lr_at(s, c) for s in range(0, 5000, 250)} == {3e-4}


def test_every_parameter_is_in_exactly_one_weight_decay_group():
    model = GPTLanguageModel(ModelConfig(vocab_size=10, block_size=8, n_embd=16, n_head=2, n_layer=2))
    optimizer = make_optimizer(model, TrainConfig(weight_decay=0.1))
    ids = [id(p) for group in optimizer.param_groups for p in group["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    decayed = {id(p) for p in optimizer.param_groups[0]["params"]}
    assert id(model.lm_head.weight) in decayed and id(model.token_embedding_table.weight) in decayed
    assert id(model.lm_head.bias) not in decayed and id(model.ln_f.weight) not in decayed


@pytest.fixture
def trained_run(tmp_path, shakespeare):
    run_dir = tmp_path / "run"
    result = train(TINY_MODEL, TINY_TRAIN, run_dir, data=shakespeare, progress=False, log=quiet)
    return run_dir, result


def test_training_lowers_the_loss_and_writes_the_run_directory(trained_run):
    run_dir, result = trained_run
    for name in [
        "config.json",
        "tokenizer.json",
        "model.safetensors",
        "checkpoint.json",
        "checkpoints/step-00000060/model.safetensors",
        "checkpoints/step-00000060/state.pt",
        "metrics.jsonl",
        "samples.txt",
    ]:
        assert (run_dir / name).exists(), name
    assert [p.name for p in (run_dir / "checkpoints").iterdir()] == ["step-00000060"]  # older ones gone
    assert not list(run_dir.glob("*.tmp"))
    lines = metrics(run_dir)
    train_losses = [m["loss"] for m in lines if m["kind"] == "train"]
    assert train_losses[0] > 4.0 and train_losses[-1] < 3.7
    assert [m["step"] for m in lines if m["kind"] == "eval"] == [30, 60]
    assert lines[-1]["kind"] == "final" and lines[-1]["val_loss"] == pytest.approx(result.val_loss)
    assert result.val_bpc == pytest.approx(result.val_loss / math.log(2))
    assert len(result.sample) == TINY_TRAIN.sample_tokens
    assert (run_dir / "samples.txt").read_text(encoding="utf-8") == result.sample


def test_checkpoint_round_trip_reproduces_logits_exactly(trained_run):
    run_dir, _ = trained_run
    best, _, config, _ = load_model(run_dir)
    again, _, _, _ = load_model(run_dir)
    idx = torch.randint(0, 65, (2, 32))
    assert torch.equal(best(idx)[0], again(idx)[0])
    latest = GPTLanguageModel(config).eval()
    assert load_checkpoint(run_dir, latest)["step"] == 60
    assert torch.equal(latest(idx)[0], best(idx)[0])  # the last estimate was the best one
    readable, _, readable_config, _ = load_model(run_dir, attention="readable")
    assert readable_config.attention == "readable"
    assert (readable(idx)[0] - best(idx)[0]).abs().max() <= 1e-5


def test_resume_refuses_another_bpe_size_like_any_changed_setting(tmp_path, small_corpus, capsys):
    """The model's vocab_size comes from the data; the training one (--vocab-size, the BPE's size)
    is the user's, and was dropped silently on --resume."""
    run_dir = tmp_path / "run"
    train(
        TINY_MODEL,
        dataclasses.replace(TINY_TRAIN, tokenizer="bpe", bpe_vocab_size=300, max_iters=1, sample_tokens=0),
        run_dir,
        data=small_corpus,
        progress=False,
        log=quiet,
    )
    line = fails(capsys, "train", "--resume", "--out", run_dir, "--vocab-size", "400")
    assert "cannot resume" in line and "vocab_size: 300 -> 400" in line


def test_full_validation_loss_is_deterministic_and_independent_of_batch_size(trained_run, shakespeare):
    run_dir, result = trained_run
    model, _, config, _ = load_model(run_dir)
    _, val = split(prepare(shakespeare).tokens)
    a = evaluate_split(model, val, config.block_size, batch_size=64)
    b = evaluate_split(model, val, config.block_size, batch_size=64)
    c = evaluate_split(model, val, config.block_size, batch_size=7)
    assert a == b
    assert a[0] == pytest.approx(c[0], abs=1e-6)
    assert a[0] == pytest.approx(result.val_loss)


def test_same_seed_same_run(tmp_path, shakespeare):
    short = TrainConfig(**{**TINY_TRAIN.__dict__, "max_iters": 20, "sample_tokens": 0})
    for name in ("a", "b"):
        train(TINY_MODEL, short, tmp_path / name, data=shakespeare, progress=False, log=quiet)
    losses = [[m["loss"] for m in metrics(tmp_path / n) if m["kind"] == "train"] for n in ("a", "b")]
    assert losses[0] == losses[1]


def test_resume_continues_from_the_saved_step(tmp_path, shakespeare):
    run_dir = tmp_path / "run"
    first = TrainConfig(**{**TINY_TRAIN.__dict__, "max_iters": 30})
    train(TINY_MODEL, first, run_dir, data=shakespeare, progress=False, log=quiet)
    assert read_manifest(run_dir)["step"] == 30
    model_config, train_config, _ = read_config(run_dir)
    more = TrainConfig(**{**train_config.__dict__, "max_iters": 60})
    train(model_config, more, run_dir, resume=True, progress=False, log=quiet)
    steps = [m["step"] for m in metrics(run_dir) if m["kind"] == "train"]
    assert steps == list(range(5, 31, 5)) + list(range(35, 61, 5))  # no step repeated or skipped
    assert read_manifest(run_dir)["step"] == 60


def test_resume_with_more_steps_keeps_the_schedule_unless_extended(tmp_path, small_corpus):
    c = TrainConfig(
        **{
            **TINY_TRAIN.__dict__,
            "max_iters": 20,
            "log_interval": 1,
            "eval_interval": 10,
            "sample_tokens": 0,
            "schedule": "cosine",
            "warmup_iters": 0,
            "min_lr_ratio": 0.1,
        }
    )
    longer = TrainConfig(**{**c.__dict__, "max_iters": 30})
    floor = c.lr * c.min_lr_ratio
    for name, extend in (("kept", False), ("extended", True)):
        train(TINY_MODEL, c, tmp_path / name, data=small_corpus, progress=False, log=quiet)
        logs = []
        train(TINY_MODEL, longer, tmp_path / name, resume=True, extend=extend, progress=False, log=logs.append)
        records = metrics(tmp_path / name)
        lrs = {m["step"]: m["lr"] for m in records if m["kind"] == "train"}  # step s ran at lrs[s]
        assert sorted(lrs) == list(range(1, 31))
        assert [m["step"] for m in records if m["kind"] == "final"] == [30]  # the old one dropped
        assert records[-1]["kind"] == "final"
        if extend:
            assert any("re-planned over 30 steps from step 20" in line for line in logs)
            assert {"kind": "extend", "step": 20, "max_iters": 30, "max_time": 0.0} in records
            assert lrs[21] == pytest.approx(lr_at(20, longer)) and lrs[21] > 2 * floor
        else:
            assert any("keeps its plan of 20 steps" in line for line in logs)
            assert all(lrs[s] == pytest.approx(floor) for s in range(20, 31))
        assert lrs[30] == pytest.approx(floor)


def test_extend_needs_resume(tmp_path, small_corpus):
    with pytest.raises(ScratchGPTError, match="--extend re-plans the schedule of a resumed run"):
        train(TINY_MODEL, TINY_TRAIN, tmp_path / "run", data=small_corpus, extend=True, progress=False, log=quiet)


def test_a_bigram_model_trains_through_the_same_loop(tmp_path, shakespeare):
    model_config, train_config = preset("bigram")
    short = TrainConfig(
        **{**train_config.__dict__, "max_iters": 200, "eval_interval": 100, "eval_iters": 10, "sample_tokens": 50}
    )
    result = train(model_config, short, tmp_path / "run", data=shakespeare, progress=False, log=quiet)
    model, tokenizer, config, _ = load_model(tmp_path / "run")
    assert config == BigramConfig(vocab_size=65, block_size=8)
    assert isinstance(model, BigramLanguageModel)
    assert result.val_loss < math.log(65) - 0.5  # learned the bigram statistics, not uniform
    assert len(result.sample) == 50
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["kind"] == "bigram"


def test_resume_refuses_a_changed_model(tmp_path, shakespeare):
    run_dir = tmp_path / "run"
    short = TrainConfig(**{**TINY_TRAIN.__dict__, "max_iters": 5, "sample_tokens": 0})
    train(TINY_MODEL, short, run_dir, data=shakespeare, progress=False, log=quiet)
    wider = ModelConfig(**{**read_config(run_dir)[0].__dict__, "n_embd": 64})
    with pytest.raises(ScratchGPTError, match="n_embd: 32 -> 64"):
        train(wider, short, run_dir, resume=True, progress=False, log=quiet)


def test_training_into_an_existing_run_is_refused(trained_run, shakespeare):
    run_dir, _ = trained_run
    before = (run_dir / "model.safetensors").read_bytes()
    with pytest.raises(ScratchGPTError, match="already holds a run"):
        train(TINY_MODEL, TINY_TRAIN, run_dir, data=shakespeare, progress=False, log=quiet)
    assert (run_dir / "model.safetensors").read_bytes() == before


def test_without_a_terminal_progress_is_a_line_at_a_steady_interval(tmp_path, small_corpus, monkeypatch):
    """Output to a log file or a pipe has no progress bar: once a line per eval_interval only (one
    line in 16 minutes on a busy machine). Here every call of the loop's clock is 10 s later."""
    loop = importlib.import_module("scratchgpt.training.loop")
    ticks = itertools.count()
    monkeypatch.setattr(loop, "clock", lambda: next(ticks) * 10.0)
    config = dataclasses.replace(TINY_TRAIN, max_iters=12, eval_interval=12, log_interval=4, sample_tokens=0)
    lines = []
    train(TINY_MODEL, config, tmp_path / "run", data=small_corpus, progress=True, log=lines.append)
    progress = [line for line in lines if re.fullmatch(r"step \d+ of 12(, loss [\d.]+)?, [\d,]+ tokens/s", line)]
    steps = [int(line.split()[1]) for line in progress]
    assert len(steps) >= 4 and steps == sorted(set(steps))  # a step 10 s long: a line every 3 or so
    assert "loss" not in progress[0] and "loss" in progress[-1]  # the loss once the first is logged
    quiet_lines = []
    train(TINY_MODEL, config, tmp_path / "quiet", data=small_corpus, progress=False, log=quiet_lines.append)
    assert not any(line.startswith("step ") and " of 12" in line for line in quiet_lines)

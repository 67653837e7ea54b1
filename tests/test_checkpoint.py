"""Run directories that are damaged, from another version, or crafted: one-line errors, no code run."""

import importlib
import itertools
import json
import os
import shutil
import stat
from pathlib import Path

import pytest
import torch

from scratchgpt import GPTLanguageModel, ModelConfig, TrainConfig, load_model, train
from scratchgpt.data.corpus import prepare, split
from scratchgpt.data.tokenizer import CharTokenizer
from scratchgpt.errors import CheckpointError, ScratchGPTError, TrainingDiverged
from scratchgpt.inference.generate import sample_text
from scratchgpt.rundir import load_checkpoint, load_state, read_config, save_run_info, save_weights
from scratchgpt.training.evaluate import evaluate_split

CONFIG = ModelConfig(vocab_size=5, block_size=8, n_embd=16, n_head=2, n_layer=1)


@pytest.fixture
def run_dir(tmp_path):
    torch.manual_seed(0)
    save_run_info(tmp_path, CONFIG, TrainConfig(), CharTokenizer("abcde"), {"sha256": "x"})
    save_weights(tmp_path / "model.safetensors", GPTLanguageModel(CONFIG))
    return tmp_path


def test_a_saved_model_loads_with_its_tokenizer(run_dir):
    model, tokenizer, config, data = load_model(run_dir)
    assert config == CONFIG and tokenizer.chars == list("abcde") and data == {"sha256": "x"}
    assert not model.training


def test_truncated_weights(run_dir):
    path = run_dir / "model.safetensors"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_model(run_dir)


def test_weights_that_do_not_match_the_config(run_dir):
    save_weights(
        run_dir / "model.safetensors",
        GPTLanguageModel(ModelConfig(vocab_size=5, block_size=8, n_embd=32, n_head=2, n_layer=1)),
    )
    with pytest.raises(CheckpointError, match="does not match its config.json"):
        load_model(run_dir)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: {**d, "format_version": 99}, "incompatible version"),
        (lambda d: {**d, "model": {**d["model"], "rotary": True}}, "unknown settings rotary"),
        (lambda d: {**d, "model": {**d["model"], "n_head": 3}}, "divisible by n_head"),
        (lambda d: {k: v for k, v in d.items() if k != "train"}, "incomplete or malformed"),
    ],
)
def test_config_from_another_version_or_damaged(run_dir, edit, message):
    path = run_dir / "config.json"
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    with pytest.raises(CheckpointError, match=message):
        load_model(run_dir)


def test_config_that_is_not_json(run_dir):
    (run_dir / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model(run_dir)


class Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.makedirs, (self.marker,))


def test_a_state_file_crafted_to_run_code_is_refused_without_running_it(run_dir):
    marker = run_dir / "pwned"
    torch.save({"step": 1, "evil": Payload(str(marker))}, run_dir / "state.pt")
    with pytest.raises(CheckpointError, match="corrupt or not a scratchgpt state file"):
        load_state(run_dir / "state.pt")
    assert not marker.exists()


@pytest.mark.parametrize(
    "poison, message",
    [
        (
            "loss",
            "loss became nan at step 11; lower lr or enable grad_clip \\(the last good checkpoint, step 10, is kept\\)",
        ),
        ("weights", "the weights stopped being finite by step 15"),
    ],
)
def test_a_diverged_model_is_never_saved_even_between_log_lines(tmp_path, small_corpus, monkeypatch, poison, message):
    model_config = ModelConfig(block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.0)
    train_config = TrainConfig(
        batch_size=4, max_iters=10, eval_interval=5, eval_iters=1, log_interval=10, sample_tokens=0
    )  # checkpoints at 5 and 15, logs at 20
    run = tmp_path / "run"
    train(model_config, train_config, run, data=small_corpus, progress=False, log=lambda m: None)
    saved = {name: (run / name).read_bytes() for name in ("checkpoint.json", "model.safetensors")}
    loop = importlib.import_module("scratchgpt.training.loop")
    original, steps = loop.training_step, itertools.count(11)

    def diverging_step(forward, model, *args):
        step = next(steps)
        if poison == "loss" and step >= 11:
            loss = original(lambda x, y: (None, forward(x, y)[1] * float("nan")), model, *args)
        else:
            loss = original(forward, model, *args)
        if poison == "weights" and step == 15:
            with torch.no_grad():
                model.lm_head.weight[0, 0] = float("inf")  # after the step's (finite) loss
        return loss

    monkeypatch.setattr(loop, "training_step", diverging_step)
    more = TrainConfig(**{**train_config.__dict__, "max_iters": 20})
    with pytest.raises(TrainingDiverged, match=message):
        train(model_config, more, run, resume=True, progress=False, log=lambda m: None)
    assert {name: (run / name).read_bytes() for name in saved} == saved  # still step 10's


def test_nan_loss_stops_training_and_keeps_the_last_checkpoint(tmp_path, small_corpus, monkeypatch):
    model_config = ModelConfig(block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.0)
    train_config = TrainConfig(
        batch_size=4, max_iters=10, eval_interval=5, eval_iters=1, log_interval=1, sample_tokens=0
    )
    train(model_config, train_config, tmp_path / "run", data=small_corpus, progress=False, log=lambda m: None)
    saved = (tmp_path / "run" / "checkpoint.json").read_text()
    original = GPTLanguageModel.forward

    def poisoned(self, idx, targets=None):
        logits, loss = original(self, idx, targets)
        return logits, (loss * float("nan") if loss is not None and self.training else loss)

    monkeypatch.setattr(GPTLanguageModel, "forward", poisoned)
    more = TrainConfig(**{**train_config.__dict__, "max_iters": 20})
    with pytest.raises(ScratchGPTError, match="loss became nan at step 11"):
        train(model_config, more, tmp_path / "run", resume=True, progress=False, log=lambda m: None)
    assert (tmp_path / "run" / "checkpoint.json").read_text() == saved  # still step 10
    assert load_checkpoint(tmp_path / "run", GPTLanguageModel(read_config(tmp_path / "run")[0]))["step"] == 10


@pytest.fixture(params=[0o022, 0o002], ids=["umask022", "umask002"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def test_run_files_have_the_permissions_open_and_mkdir_give(tmp_path, small_corpus, umask):
    """Every run file is written through a mkstemp file (0600): each ends with what open() gives
    under the process umask, each folder with what mkdir gives."""
    model_config = ModelConfig(block_size=8, n_embd=16, n_head=2, n_layer=1, dropout=0.0)
    train_config = TrainConfig(batch_size=4, max_iters=4, eval_interval=2, eval_iters=1, sample_tokens=5)
    run = tmp_path / "run"
    train(model_config, train_config, run, data=small_corpus, progress=False, log=lambda m: None)
    (tmp_path / "opened").write_text("")
    (tmp_path / "made").mkdir()
    file_mode, dir_mode = (stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("opened", "made"))
    assert (file_mode, dir_mode) == (0o666 & ~umask, 0o777 & ~umask)
    paths = [run, *run.rglob("*")]
    assert {"model.safetensors", "checkpoint.json", "metrics.jsonl", "samples.txt"} <= {p.name for p in paths}
    assert {p.relative_to(tmp_path): stat.S_IMODE(p.stat().st_mode) for p in paths} == {
        p.relative_to(tmp_path): dir_mode if p.is_dir() else file_mode for p in paths
    }


FIXTURES = Path(__file__).resolve().parent / "fixtures"


def test_a_run_directory_written_before_the_restructure_loads_samples_and_resumes(tmp_path):
    """tests/fixtures/run-v1 was written by main at a01f0f6 (before model kinds, tasks and the
    schedule's saved horizon); expected.json holds what that code sampled and scored."""
    expected = json.loads((FIXTURES / "expected.json").read_text())
    run, corpus = tmp_path / "run", tmp_path / "corpus.txt"
    shutil.copytree(FIXTURES / "run-v1", run)
    shutil.copy(FIXTURES / "corpus.txt", corpus)
    model, tokenizer, config, _ = load_model(run)
    assert config.kind == "gpt" and config.tie_embeddings and config.qk_norm
    prompt, n, text = expected["greedy"]
    assert sample_text(model, tokenizer, prompt, max_new_tokens=n, temperature=0.0) == text
    prompt, n, seed, text = expected["seeded"]
    assert sample_text(model, tokenizer, prompt, max_new_tokens=n, seed=seed) == text
    _, val = split(prepare(corpus).tokens)
    assert evaluate_split(model, val, config.block_size)[0] == pytest.approx(expected["val_loss"], abs=1e-6)
    model_config, train_config, _ = read_config(run)
    more = TrainConfig(**{**train_config.__dict__, "max_iters": 44})
    result = train(model_config, more, run, data=corpus, resume=True, progress=False, log=lambda m: None)
    assert result.steps == 4 and load_checkpoint(run, GPTLanguageModel(model_config))["step"] == 44

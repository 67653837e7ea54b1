"""Gradient accumulation gives the step of the whole batch, for every kind of task: next tokens,
masked tokens (few targets, a different number in each micro-batch), a label per character, and
padded translation pairs. One SGD step is compared: its update is the gradient itself, a property
of the code, not of an optimiser that magnifies rounding."""

import dataclasses

import pytest
import torch

from scratchgpt import preset
from scratchgpt.models.registry import build_model
from scratchgpt.training import distributed
from scratchgpt.training.loop import training_step
from scratchgpt.training.tasks import build_task, fit_model_config

CPU = torch.device("cpu")
NO_AMP = torch.autocast("cpu", enabled=False)


@pytest.fixture
def pairs_file(tmp_path):
    """Pairs of very different lengths, so micro-batches hold different numbers of targets."""
    lines = [f"{i} {'ab' * (1 + i % 7)}\t{'xyz' * (1 + i % 5)} {i}" for i in range(300)]
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def task_and_model(name, data=None):
    presets = {"next-token": "tiny", "mlm": "tiny-encoder", "names": "finetune-tiny", "pairs": "tiny-seq2seq"}
    model_config, train_config = preset(presets[name])
    train_config = dataclasses.replace(train_config, task=name, batch_size=8, grad_clip=0.0)
    model_config = dataclasses.replace(model_config, dropout=0.0)  # dropout's masks follow the micro-batches
    task = build_task(model_config, train_config, data)
    model_config = fit_model_config(model_config, task)
    torch.manual_seed(0)
    return task, build_model(model_config), train_config


@pytest.mark.parametrize("name", ["next-token", "mlm", "names", "pairs"])
def test_any_grad_accum_takes_the_step_of_the_whole_batch(name, pairs_file):
    task, model, train_config = task_and_model(name, pairs_file if name == "pairs" else None)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    after, losses = {}, {}
    for grad_accum in (1, 4):
        model.load_state_dict(start)
        optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
        c = dataclasses.replace(train_config, grad_accum=grad_accum)
        generator = torch.Generator().manual_seed(1)
        loss, _ = training_step(model, model, optimizer, task, c, generator, CPU, NO_AMP)
        after[grad_accum] = {k: v.clone() for k, v in model.state_dict().items()}
        losses[grad_accum] = loss.item()
    for key, weights in after[1].items():
        moved = (weights - start[key]).abs().max().item()
        assert torch.allclose(after[4][key], weights, rtol=0, atol=1e-6 + 1e-5 * moved), key
    assert any(not torch.equal(after[1][k], start[k]) for k in start)  # the step did move the weights

    # the loss of the step is the whole batch's mean loss, not the last micro-batch's
    batch = task.batch("train", train_config.batch_size, torch.Generator().manual_seed(1), CPU)
    model.load_state_dict(start)
    with torch.no_grad():
        whole = task.loss(model.train(), batch).item()
    assert losses[1] == pytest.approx(whole, rel=1e-6) and losses[4] == pytest.approx(whole, rel=1e-5)


def test_the_micro_batches_of_a_masked_task_hold_different_numbers_of_targets():
    """What the weighting is for: a plain mean of the micro-batches' means would weight a masked
    token of a micro-batch with few targets more than one of a micro-batch with many."""
    task, _, train_config = task_and_model("mlm")
    batch = task.batch("train", train_config.batch_size, torch.Generator().manual_seed(1), CPU)
    parts = distributed.ALONE.parts(batch, 4)
    counts = [int(distributed.targets(part)) for part, _ in parts]
    assert len(set(counts)) > 1
    assert sum(float(weight) for _, weight in parts) == pytest.approx(1.0)
    assert [float(weight) for _, weight in parts] == pytest.approx([n / sum(counts) for n in counts])


@pytest.mark.parametrize("size", [2, 4])
def test_the_ranks_and_micro_batches_cut_every_row_of_the_batch_once(size):
    batch = (torch.arange(16)[:, None].expand(16, 3), torch.arange(16)[:, None].expand(16, 3))
    rows = []
    for rank in range(size):
        for part, weight in distributed.World(rank=rank, size=size).parts(batch, 2):
            rows += part[0][:, 0].tolist()
            assert float(weight) == pytest.approx(size * len(part[0]) / 16)
    assert sorted(rows) == list(range(16))

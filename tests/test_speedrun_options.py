"""The speedrun options of ModelConfig and TrainConfig: each one computes what it claims, on both
paths alike, and survives a checkpoint."""

import dataclasses
import importlib
import itertools
import json

import pytest
import torch

from scratchgpt import GPTLanguageModel, ModelConfig, TrainConfig, convert, load_model, preset, train
from scratchgpt import config as cfg
from scratchgpt.errors import ConfigError, ScratchGPTError, TrainingInterrupted
from scratchgpt.inference.generate import generate
from scratchgpt.models.registry import build_model
from scratchgpt.nn.attention import Block, DecoderBlock
from scratchgpt.nn.positional import apply_rotary, rotary_angles
from scratchgpt.rundir import load_weights, save_weights
from scratchgpt.training.optim import Muon, Optimizers, lr_at, make_optimizer, orthogonalize

train_module = importlib.import_module("scratchgpt.training.loop")

BASE = ModelConfig(vocab_size=65, block_size=16, n_embd=48, n_head=4, n_layer=2, dropout=0.0)
OPTIONS = {
    "rotary": {"position": "rotary"},
    "qk_norm": {"qk_norm": True},
    "relu2": {"activation": "relu2"},
    "gelu": {"activation": "gelu"},
    "tied": {"tie_embeddings": True},
    "all": {"position": "rotary", "qk_norm": True, "activation": "relu2", "tie_embeddings": True},
}


def make(attention="fast", seed=0, **options):
    torch.manual_seed(seed)
    return GPTLanguageModel(dataclasses.replace(BASE, attention=attention, **options)).eval()


def tokens(B=3, T=16, seed=1):
    return torch.randint(0, 65, (B, T), generator=torch.Generator().manual_seed(seed))


def quiet(*_):
    """Discard the training log."""


def metrics(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("name", OPTIONS)
def test_readable_and_fast_paths_agree_with_every_option(name):
    readable = make("readable", **OPTIONS[name])
    fast = convert(readable, "fast")
    idx = tokens()
    assert (readable(idx)[0] - fast(idx)[0]).abs().max() <= 1e-5
    back = convert(fast, "readable")
    assert (back(idx)[0] - fast(idx)[0]).abs().max() <= 1e-5


@pytest.mark.parametrize("attention", ["readable", "fast"])
def test_rotary_model_is_causal_and_has_no_position_table(attention):
    model = make(attention, position="rotary", qk_norm=True)
    assert model.position_embedding_table is None
    idx = tokens()
    logits, _ = model(idx)
    changed = idx.clone()
    changed[:, 9:] = (changed[:, 9:] + 5) % 65
    assert torch.allclose(model(changed)[0][:, :9], logits[:, :9], atol=1e-6)
    assert not torch.allclose(model(changed)[0][:, 9:], logits[:, 9:], atol=1e-3)


def test_rotary_scores_depend_only_on_the_distance_between_positions():
    q, k = torch.randn(2, 8)  # (2, hs): one query and one key vector
    hs = 8

    def score(m, n):
        cos, sin = rotary_angles(torch.tensor([m, n]), hs)  # (2, hs/2) each
        rotated_q = apply_rotary(q[None].expand(2, hs), cos, sin)[0]
        rotated_k = apply_rotary(k[None].expand(2, hs), cos, sin)[1]
        return (rotated_q @ rotated_k).item()

    assert score(5, 2) == pytest.approx(score(13, 10), abs=1e-5)
    assert score(5, 2) == pytest.approx(score(103, 100), abs=1e-4)
    assert score(5, 2) != pytest.approx(score(5, 4), abs=1e-3)
    cos, sin = rotary_angles(torch.arange(4), hs)
    x = torch.randn(4, hs)
    assert torch.allclose(apply_rotary(x, cos, sin).norm(dim=-1), x.norm(dim=-1), atol=1e-5)  # rotations
    assert torch.equal(apply_rotary(x, cos, sin)[0], x[0])  # position 0 does not move


def test_rotary_needs_an_even_head_size():
    with pytest.raises(ConfigError, match="even head size"):
        ModelConfig(n_embd=12, n_head=4, position="rotary")


def test_qk_norm_makes_attention_ignore_the_scale_of_queries_and_keys():
    model = make(qk_norm=True)
    idx = tokens()
    logits, _ = model(idx)
    with torch.no_grad():
        model.blocks[0].sa.qkv.weight[:96] *= 10.0  # queries and keys of layer 0, ten times larger
    assert torch.allclose(model(idx)[0], logits, atol=1e-4)


def test_relu_squared_feed_forward():
    model = make(activation="relu2")
    x = torch.tensor([-2.0, -0.5, 0.0, 0.5, 3.0], requires_grad=True)
    y = model.blocks[0].ffwd.net[1](x)
    assert torch.equal(y, torch.tensor([0.0, 0.0, 0.0, 0.25, 9.0]))
    y.backward(torch.ones(5))
    assert torch.equal(x.grad, torch.tensor([0.0, 0.0, 0.0, 1.0, 6.0]))  # d/dx relu(x)^2 = 2 relu(x)
    x64 = torch.randn(6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(model.blocks[0].ffwd.net[1], (x64,))


def test_zero_init_starts_every_block_as_the_identity():
    model = make(zero_init=True)
    for block in model.blocks:
        assert not block.sa.proj.weight.any() and not block.ffwd.net[2].weight.any()
        x = torch.randn(2, 5, 48)
        assert torch.allclose(block(x), x)  # both residual branches add zero (biases start at 0)


def test_tied_embeddings_share_one_matrix_through_a_checkpoint(tmp_path):
    model = make(tie_embeddings=True)
    assert model.lm_head.weight is model.token_embedding_table.weight
    untied = make()
    assert model.num_parameters() == untied.num_parameters() - 65 * 48
    save_weights(tmp_path / "model.safetensors", model)
    loaded = make(seed=5, tie_embeddings=True)
    load_weights(tmp_path / "model.safetensors", loaded)
    assert loaded.lm_head.weight is loaded.token_embedding_table.weight
    idx = tokens()
    assert torch.equal(loaded(idx)[0], model(idx)[0])


def test_orthogonalize_pushes_singular_values_towards_one():
    torch.manual_seed(0)
    for m, n in [(48, 144), (192, 48), (48, 48)]:
        k = min(m, n)
        U, _ = torch.linalg.qr(torch.randn(m, k))  # (m, k) orthonormal columns
        V, _ = torch.linalg.qr(torch.randn(n, k))  # (n, k)
        G = U @ torch.diag(torch.logspace(-1, 1, k)) @ V.T  # singular values from 0.1 to 10
        orthogonal = orthogonalize(G)
        s = torch.linalg.svdvals(orthogonal)
        assert s.min() > 0.5 and s.max() < 1.3, (m, n)  # the tuned quintic stops near, not at, 1
        rotated = U.T @ orthogonal @ V
        assert torch.allclose(rotated, torch.diag(torch.diagonal(rotated)), atol=1e-3)  # same U, V


def test_batched_orthogonalize_equals_one_matrix_at_a_time():
    G = torch.randn(3, 40, 24)
    batched = orthogonalize(G)
    assert batched.shape == (3, 40, 24)
    for g, o in zip(G, batched):
        assert torch.allclose(orthogonalize(g), o, atol=1e-5)


def test_muon_takes_the_block_matrices_and_adamw_the_rest():
    model = make()
    optimizer = make_optimizer(model, TrainConfig(optimizer="muon"))
    assert isinstance(optimizer, Optimizers)
    muon, adamw = optimizer.optimizers
    assert isinstance(muon, Muon) and isinstance(adamw, torch.optim.AdamW)
    muon_ids = {id(p) for g in muon.param_groups for p in g["params"]}
    adamw_ids = {id(p) for g in adamw.param_groups for p in g["params"]}
    assert muon_ids.isdisjoint(adamw_ids)
    assert muon_ids | adamw_ids == {id(p) for p in model.parameters()}
    assert {id(p) for p in model.blocks.parameters() if p.dim() == 2} == muon_ids
    assert id(model.token_embedding_table.weight) in adamw_ids and id(model.lm_head.weight) in adamw_ids


@pytest.mark.parametrize("kind", ["encoder", "seq2seq"])
def test_muon_takes_the_block_matrices_of_every_family(kind):
    """The encoder's and the encoder-decoder's blocks are not named `blocks.`: chosen by name, Muon
    got none of the encoder-decoder's matrices and it trained with AdamW alone."""
    model = build_model(cfg.preset({"encoder": "tiny-encoder", "seq2seq": "tiny-seq2seq"}[kind])[0])
    muon, adamw = make_optimizer(model, TrainConfig(optimizer="muon")).optimizers
    muon_ids = {id(p) for g in muon.param_groups for p in g["params"]}
    in_blocks = {
        id(p) for m in model.modules() if isinstance(m, (Block, DecoderBlock)) for p in m.parameters() if p.dim() == 2
    }
    assert muon_ids == in_blocks and len(in_blocks) >= 4 * model.config.n_layer  # qkv, proj, 2 feed-forward
    assert muon_ids.isdisjoint(id(p) for g in adamw.param_groups for p in g["params"])


def test_muon_is_refused_in_one_line_for_a_model_without_blocks(tmp_path):
    with pytest.raises(ConfigError, match="--optimizer muon .* bigram model has none"):
        train(*cfg.apply_overrides(*cfg.preset("bigram"), {"optimizer": "muon", "max_iters": 1}), tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before anything is written


def test_muon_lowers_the_loss_of_one_batch():
    model = make().train()
    optimizer = make_optimizer(model, TrainConfig(optimizer="muon", lr=3e-3, muon_lr=0.02))
    idx, targets = tokens(), tokens(seed=2)
    first = model(idx, targets)[1].item()
    for _ in range(30):
        optimizer.zero_grad()
        model(idx, targets)[1].backward()
        optimizer.step()
    assert model(idx, targets)[1].item() < first - 1.0


def test_wsd_schedule_holds_then_cools_down_linearly_to_the_last_step():
    c = TrainConfig(lr=1e-3, schedule="wsd", warmup_iters=0, max_iters=101, cooldown_frac=0.4, min_lr_ratio=0.0)
    assert lr_at(0, c) == lr_at(60, c) == pytest.approx(1e-3)
    assert lr_at(80, c) == pytest.approx(0.5e-3)
    assert lr_at(100, c) == pytest.approx(0.0)  # step 100 is the last that runs (0 .. max_iters-1)
    assert lr_at(99, c) > 0
    assert lr_at(50, c, peak=0.02) == pytest.approx(0.02)  # each group follows the curve at its peak


@pytest.mark.parametrize("schedule", ["wsd", "cosine"])
@pytest.mark.parametrize("cooldown_frac", [0.1, 0.2, 0.3, 0.4, 0.7])
def test_the_rate_never_goes_below_the_floor(schedule, cooldown_frac):
    # (1 - 0.7) / 0.3 is 1.0000000000000002 in floats: an unclamped cooldown gave -8.7e-19 at the end
    c = TrainConfig(
        lr=3e-3,
        schedule=schedule,
        warmup_iters=0,
        max_iters=50,
        cooldown_frac=cooldown_frac,
        min_lr_ratio=0.0,
        max_time=290.0,
    )
    rates = [lr_at(s, c, elapsed=e) for s in range(50) for e in (0.0, 145.0, 289.9, 290.0, 290.1)]
    assert min(rates) == 0.0 and lr_at(49, c) == 0.0


def test_with_a_time_budget_the_schedule_follows_the_clock():
    c = TrainConfig(lr=1e-3, schedule="cosine", warmup_iters=0, max_iters=10_000, max_time=10.0, min_lr_ratio=0.0)
    assert lr_at(10, c, elapsed=5.0) == pytest.approx(0.5e-3, rel=1e-2)  # half the time: half-way
    assert lr_at(10, c, elapsed=10.0) == pytest.approx(0.0, abs=1e-9)


def test_gradient_accumulation_equals_the_whole_batch(tmp_path, small_corpus):
    model, train_config = preset("tiny")
    model = dataclasses.replace(model, dropout=0.0)
    train_config = dataclasses.replace(train_config, batch_size=8, max_iters=6, eval_interval=6, sample_tokens=0)
    train(model, train_config, tmp_path / "whole", data=small_corpus, progress=False, log=quiet)
    train(
        model,
        dataclasses.replace(train_config, grad_accum=4),
        tmp_path / "micro",
        data=small_corpus,
        progress=False,
        log=quiet,
    )
    whole, _, _, _ = load_model(tmp_path / "whole")
    micro, _, _, _ = load_model(tmp_path / "micro")
    for (name, a), b in zip(whole.state_dict().items(), micro.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name
    assert any(
        not torch.equal(a, b) for a, b in zip(whole.state_dict().values(), micro.state_dict().values())
    )  # not one path


def test_grad_accum_must_divide_the_batch():
    with pytest.raises(ConfigError, match="divisible by grad_accum"):
        TrainConfig(batch_size=10, grad_accum=4)


def test_max_time_stops_training_early_and_the_last_step_uses_the_final_rate(tmp_path, small_corpus, monkeypatch):
    ticks = itertools.count()
    monkeypatch.setattr(train_module, "clock", lambda: next(ticks) * 0.125)  # every step: 0.125 s
    model, train_config = preset("tiny")
    train_config = dataclasses.replace(
        train_config,
        max_iters=100_000,
        max_time=1.0,
        log_interval=1,
        eval_interval=100_000,
        sample_tokens=0,
        schedule="cosine",
        warmup_iters=0,
        min_lr_ratio=0.1,
    )
    result = train(model, train_config, tmp_path / "run", data=small_corpus, progress=False, log=quiet)
    assert (result.steps, result.train_seconds) == (8, 1.0)
    lrs = [m["lr"] for m in metrics(tmp_path / "run") if m["kind"] == "train"]
    assert lrs[0] == train_config.lr and lrs[-1] == pytest.approx(train_config.lr * 0.1)
    with pytest.raises(ScratchGPTError, match="already trained 1.0 s of its max_time 1 s; pass a larger"):
        train(model, train_config, tmp_path / "run", data=small_corpus, resume=True, progress=False, log=quiet)
    longer = train(
        model,
        dataclasses.replace(train_config, max_time=2.0),
        tmp_path / "run",
        data=small_corpus,
        resume=True,
        progress=False,
        log=quiet,
    )
    assert (longer.steps, longer.train_seconds) == (8, 2.0)


def test_a_speedrun_model_trains_resumes_and_samples(tmp_path, small_corpus, interrupt_at):
    model, train_config = preset("tiny")
    model = dataclasses.replace(
        model, position="rotary", qk_norm=True, activation="relu2", zero_init=True, tie_embeddings=True
    )
    train_config = dataclasses.replace(
        train_config, optimizer="muon", schedule="wsd", max_iters=20, eval_interval=10, sample_tokens=20
    )
    straight = train(model, train_config, tmp_path / "straight", data=small_corpus, progress=False, log=quiet)
    interrupt_at(10)
    with pytest.raises(TrainingInterrupted, match="stopped by SIGINT at step 10"):
        train(model, train_config, tmp_path / "split", data=small_corpus, progress=False, log=quiet)
    resumed = train(model, train_config, tmp_path / "split", data=small_corpus, resume=True, progress=False, log=quiet)
    assert resumed.val_loss == straight.val_loss  # Muon's momentum survives the checkpoint
    loaded, _, config, _ = load_model(tmp_path / "straight")
    assert config.position == "rotary" and loaded.lm_head.weight is loaded.token_embedding_table.weight
    start = torch.zeros((1, 1), dtype=torch.long)
    assert torch.cat(list(generate(loaded, start, max_new_tokens=40)), dim=1).shape == (1, 40)
    cached = list(generate(loaded, start, max_new_tokens=30, temperature=0.0))  # within block_size
    uncached = list(generate(loaded, start, max_new_tokens=30, temperature=0.0, cache="none"))
    assert torch.equal(torch.cat(cached, dim=1), torch.cat(uncached, dim=1))


@pytest.mark.parametrize("options", [{}, {"tie_embeddings": True}, {"n_layer": 1, "vocab_size": 7}])
def test_flops_per_token_match_the_matmuls_torch_counts(options):
    """bench's FLOP formula against torch's own count of every matmul of a forward and backward pass
    of the readable path (whose attention is plain matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    from scratchgpt.training.bench import flops_per_token

    config = dataclasses.replace(BASE, attention="readable", **options)
    torch.manual_seed(0)
    model = GPTLanguageModel(config)
    idx = torch.randint(0, config.vocab_size, (3, config.block_size))
    with FlopCounterMode(display=False) as counter:
        model(idx, idx)[1].backward()
    assert flops_per_token(config) * 3 * config.block_size == counter.get_total_flops()

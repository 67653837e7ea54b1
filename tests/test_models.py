import math

import pytest
import safetensors.torch
import torch
from torch.nn import functional as F

from scratchgpt import (
    BigramConfig,
    BigramLanguageModel,
    FusedMultiHeadAttention,
    GPTLanguageModel,
    ModelConfig,
    MultiHeadAttention,
    convert,
)
from scratchgpt.inference.generate import generate
from scratchgpt.models.convert import to_fast_state, to_readable_state
from scratchgpt.rundir import save_weights

CONFIG = ModelConfig(vocab_size=65, block_size=16, n_embd=48, n_head=4, n_layer=2, dropout=0.0)


def make(attention, config=CONFIG, seed=0):
    torch.manual_seed(seed)
    return GPTLanguageModel(ModelConfig(**{**config.__dict__, "attention": attention})).eval()


def tokens(B=3, T=16, V=65, seed=1):
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def test_state_dict_has_the_lecture_names():
    keys = set(make("readable").state_dict())
    for key in [
        "token_embedding_table.weight",
        "position_embedding_table.weight",
        "blocks.0.sa.heads.0.key.weight",
        "blocks.0.sa.heads.3.query.weight",
        "blocks.1.sa.heads.2.value.weight",
        "blocks.0.sa.heads.0.tril",
        "blocks.0.sa.proj.weight",
        "blocks.0.sa.proj.bias",
        "blocks.0.ffwd.net.0.weight",
        "blocks.0.ffwd.net.2.weight",
        "blocks.0.ln1.weight",
        "blocks.0.ln2.bias",
        "ln_f.weight",
        "lm_head.weight",
        "lm_head.bias",
    ]:
        assert key in keys
    assert not any(k.endswith("key.bias") or k.endswith("query.bias") for k in keys)  # no bias on k, q, v


@pytest.mark.parametrize("attention", ["readable", "fast"])
def test_forward_shapes_and_contract(attention):
    model = make(attention)
    logits, loss = model(tokens())
    assert logits.shape == (3, 16, 65) and loss is None
    logits, loss = model(tokens(T=5), tokens(T=5, seed=2))
    assert logits.shape == (3, 5, 65) and loss.shape == ()


@pytest.mark.parametrize("attention", ["readable", "fast"])
def test_causality_later_tokens_never_change_earlier_logits(attention):
    model = make(attention)
    idx = tokens()
    logits, _ = model(idx)
    for t in range(0, 16, 3):
        changed = idx.clone()
        changed[:, t + 1 :] = (changed[:, t + 1 :] + 7) % 65
        new_logits, _ = model(changed)
        assert torch.allclose(new_logits[:, : t + 1], logits[:, : t + 1], atol=1e-6)
        if t + 1 < 16:
            assert not torch.allclose(new_logits[:, t + 1 :], logits[:, t + 1 :], atol=1e-3)


def test_readable_and_fast_paths_compute_the_same_function_both_ways():
    readable = make("readable")
    fast = convert(readable, "fast")
    assert fast.config.attention == "fast"
    assert isinstance(fast.blocks[0].sa, FusedMultiHeadAttention)
    idx = tokens()
    assert (readable(idx)[0] - fast(idx)[0]).abs().max() <= 1e-5
    fast = make("fast", seed=3)
    readable = convert(fast, "readable")
    assert isinstance(readable.blocks[0].sa, MultiHeadAttention)
    assert (readable(idx)[0] - fast(idx)[0]).abs().max() <= 1e-5


def test_conversion_round_trip_is_exact():
    fast = make("fast")
    state = fast.state_dict()
    back = to_fast_state(to_readable_state(state, CONFIG), CONFIG)
    assert state.keys() == back.keys()
    assert all(torch.equal(state[k], back[k]) for k in state)


def test_each_head_of_the_fast_path_is_a_readable_head():
    """Head h of the fused qkv weight is rows h*hs..(h+1)*hs of each of the q, k, v parts."""
    readable = make("readable")
    fast = convert(readable, "fast")
    C, hs = CONFIG.n_embd, CONFIG.n_embd // CONFIG.n_head
    qkv = fast.blocks[0].sa.qkv.weight
    head2 = readable.blocks[0].sa.heads[2]
    assert torch.equal(qkv[2 * hs : 3 * hs], head2.query.weight)
    assert torch.equal(qkv[C + 2 * hs : C + 3 * hs], head2.key.weight)
    assert torch.equal(qkv[2 * C + 2 * hs : 2 * C + 3 * hs], head2.value.weight)


def test_bidirectional_attention_also_agrees():
    torch.manual_seed(0)
    readable = MultiHeadAttention(32, 4, block_size=10, dropout=0.0, causal=False).eval()
    fast = FusedMultiHeadAttention(32, 4, dropout=0.0, causal=False).eval()
    sa = to_fast_state(
        {f"blocks.0.sa.{k}": v for k, v in readable.state_dict().items()},
        ModelConfig(vocab_size=2, block_size=10, n_embd=32, n_head=4, n_layer=1),
    )
    fast.load_state_dict({k.removeprefix("blocks.0.sa."): v for k, v in sa.items()})
    x = torch.randn(2, 10, 32)
    assert (readable(x) - fast(x)).abs().max() <= 1e-5
    # without the mask the first token sees the last one
    y = x.clone()
    y[:, -1] += 1.0
    assert not torch.allclose(fast(x)[:, 0], fast(y)[:, 0])


def test_attention_scale_is_one_over_sqrt_head_size():
    torch.manual_seed(0)
    head = MultiHeadAttention(64, 4, block_size=8, dropout=0.0).heads[0]  # hs = 16
    x = torch.randn(1, 8, 64)
    q, k = head.query(x), head.key(x)
    expected = torch.softmax(
        (q @ k.transpose(-2, -1) / 4.0).masked_fill(torch.ones(8, 8).triu(1).bool(), -math.inf), -1
    )
    assert torch.allclose(head(x), expected @ head.value(x), atol=1e-6)


def test_initial_loss_is_about_ln_vocab_size():
    model = make("fast", ModelConfig(vocab_size=65, block_size=64, n_embd=64, n_head=4, n_layer=2))
    _, loss = model(tokens(8, 64), tokens(8, 64, seed=5))
    assert abs(loss.item() - math.log(65)) < 0.05  # 4.17


def test_weights_are_initialised_normal_0_02():
    model = make("fast", ModelConfig(vocab_size=65, block_size=64, n_embd=256, n_head=4, n_layer=2))
    w = model.blocks[0].ffwd.net[0].weight
    assert abs(w.std().item() - 0.02) < 0.001 and abs(w.mean().item()) < 0.001
    assert torch.count_nonzero(model.blocks[0].ffwd.net[0].bias) == 0


def test_dropout_is_off_in_eval_mode():
    model = make("fast", ModelConfig(vocab_size=65, block_size=16, n_embd=32, n_head=2, n_layer=2, dropout=0.5))
    idx = tokens()
    assert torch.equal(model(idx)[0], model(idx)[0])
    model.train()
    assert not torch.equal(model(idx)[0], model(idx)[0])


@pytest.mark.parametrize("attention", ["readable", "fast"])
def test_overfits_one_batch(attention):
    model = make(attention).train()
    x, y = tokens(4, 16), tokens(4, 16, seed=9)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_longer_than_block_size_is_refused():
    with pytest.raises(ValueError, match="longer than block_size"):
        make("fast")(tokens(T=17))


def test_bigram_model():
    torch.manual_seed(0)
    model = BigramLanguageModel(BigramConfig(vocab_size=65))
    logits, loss = model(tokens(), tokens(seed=4))
    assert logits.shape == (3, 16, 65)
    assert 4.0 < loss.item() < 6.0  # N(0, 1) logits: near ln 65 plus the spread of the table
    x = tokens(1, 1)
    assert torch.equal(model(x)[0][0, 0], model.token_embedding_table.weight[x[0, 0]])


def lecture_logits(state, idx, n_layer, n_head):
    """The lecture's GPT forward as plain tensor operations on its state-dict keys: an oracle
    written apart from the modules (pre-norm blocks, per-head causal attention, ReLU MLP)."""

    def linear(x, name, bias=True):
        return x @ state[name + ".weight"].T + (state[name + ".bias"] if bias else 0)

    def norm(x, name):
        return F.layer_norm(x, x.shape[-1:], state[name + ".weight"], state[name + ".bias"])

    T = idx.shape[1]
    x = state["token_embedding_table.weight"][idx] + state["position_embedding_table.weight"][:T]
    for layer in range(n_layer):
        p = f"blocks.{layer}."
        h = norm(x, p + "ln1")
        heads = []
        for i in range(n_head):
            q, k, v = (linear(h, f"{p}sa.heads.{i}.{n}", bias=False) for n in ("query", "key", "value"))
            wei = q @ k.transpose(-2, -1) * k.shape[-1] ** -0.5
            wei = wei.masked_fill(state[f"{p}sa.heads.{i}.tril"][:T, :T] == 0, float("-inf"))
            heads.append(F.softmax(wei, dim=-1) @ v)
        x = x + linear(torch.cat(heads, dim=-1), p + "sa.proj")
        x = x + linear(F.relu(linear(norm(x, p + "ln2"), p + "ffwd.net.0")), p + "ffwd.net.2")
    return linear(norm(x, "ln_f"), "lm_head")


def test_saved_weights_in_the_lecture_layout_give_the_lecture_models_greedy_text(tmp_path):
    torch.manual_seed(0)
    model = make("fast")
    with torch.no_grad():  # larger weights than the 0.02 init, so that the greedy text varies
        for p in model.parameters():
            p.mul_(20 if p.dim() == 2 else 1)
    save_weights(tmp_path / "model.safetensors", model)
    state = to_readable_state(safetensors.torch.load_file(tmp_path / "model.safetensors"), CONFIG)
    idx = tokens(1, 3)
    for _ in range(30):  # the lecture's generate, greedy: crop to block_size, take the argmax
        logits = lecture_logits(state, idx[:, -CONFIG.block_size :], CONFIG.n_layer, CONFIG.n_head)
        idx = torch.cat([idx, logits[:, -1].argmax(-1, keepdim=True)], dim=1)
    ours = torch.cat(list(generate(model, tokens(1, 3), 30, temperature=0.0, cache="exact")), dim=1)
    assert torch.equal(ours, idx[:, 3:])
    assert len(set(idx[0, 3:].tolist())) > 3  # a text, not one repeated token

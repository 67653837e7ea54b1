"""One attention, two faces, three uses: causal, padded and cross-attention, readable == fast."""

import pytest
import torch

from scratchgpt.nn.attention import MultiHeadAttention
from scratchgpt.nn.fused import FusedMultiHeadAttention, fuse_heads, split_heads
from scratchgpt.nn.kv_cache import KVCache
from scratchgpt.nn.modes import evaluating

C, NH, BLOCK = 32, 4, 12


def pair(causal, qk_norm=False, seed=0):
    """A readable module and a fast one holding the same weights."""
    torch.manual_seed(seed)
    readable = MultiHeadAttention(C, NH, BLOCK, dropout=0.0, causal=causal, qk_norm=qk_norm).eval()
    fast = FusedMultiHeadAttention(C, NH, dropout=0.0, causal=causal, qk_norm=qk_norm).eval()
    state = dict(readable.state_dict())
    fuse_heads(state, "", NH)
    fast.load_state_dict(state)
    return readable, fast


def inputs(B=3, T=10, seed=1):
    return torch.randn(B, T, C, generator=torch.Generator().manual_seed(seed))


def padding(lengths, T):
    """key_mask (B, T): True on the first `length` tokens of each row, the real ones."""
    return torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]


@pytest.mark.parametrize("qk_norm", [False, True])
@pytest.mark.parametrize("case", ["causal", "padded", "cross"])
def test_readable_and_fast_faces_agree(case, qk_norm):
    readable, fast = pair(causal=case == "causal", qk_norm=qk_norm)
    x = inputs()
    kwargs = {}
    if case == "padded":
        kwargs = {"key_mask": padding([10, 7, 1], 10)}
    if case == "cross":
        kwargs = {"context": inputs(T=6, seed=2), "key_mask": padding([6, 4, 2], 6)}
    with torch.no_grad():
        assert (readable(x, **kwargs) - fast(x, **kwargs)).abs().max() <= 1e-5


def test_split_heads_undoes_fuse_heads_and_the_faces_still_agree():
    readable, fast = pair(causal=True)
    state = dict(fast.state_dict())
    split_heads(state, "", NH, readable.heads[0].tril)
    assert state.keys() == readable.state_dict().keys()
    assert all(torch.equal(state[k], v) for k, v in readable.state_dict().items())


@pytest.mark.parametrize("face", [0, 1])
def test_padding_changes_no_real_positions_output(face):
    """Appending pad tokens (whatever their content) leaves every real token's output unchanged."""
    module = pair(causal=False)[face]
    x = inputs(B=2, T=6)
    padded = torch.cat([x, 100 * inputs(B=2, T=4, seed=5)], dim=1)  # (2, 10, C): 4 pads per row
    with torch.no_grad():
        plain = module(x)
        masked = module(padded, key_mask=padding([6, 6], 10))
    assert torch.allclose(masked[:, :6], plain, atol=1e-5)
    with torch.no_grad():
        unmasked = module(padded)
    assert not torch.allclose(unmasked[:, :6], plain, atol=1e-3)  # without the mask the pads leak in


@pytest.mark.parametrize("face", [0, 1])
def test_causal_attention_never_looks_ahead(face):
    module = pair(causal=True)[face]
    x = inputs()
    changed = x.clone()
    changed[:, 6:] += torch.randn(3, 4, C)
    with torch.no_grad():
        assert torch.allclose(module(x)[:, :6], module(changed)[:, :6], atol=1e-6)
        assert not torch.allclose(module(x)[:, 6:], module(changed)[:, 6:], atol=1e-3)


@pytest.mark.parametrize("face", [0, 1])
def test_cross_attention_ignores_padded_source_positions(face):
    module = pair(causal=False)[face]
    x, context = inputs(), inputs(T=6, seed=2)
    mask = padding([6, 4, 2], 6)
    other = context.clone()
    other[1, 4:] = 50.0  # change only row 1's padded source positions
    other[2, 2:] = -50.0
    with torch.no_grad():
        assert torch.allclose(module(x, other, mask), module(x, context, mask), atol=1e-6)
        changed = context.clone()
        changed[1, 3] += 1.0  # a real source position does matter
        assert not torch.allclose(module(x, changed, mask)[1], module(x, context, mask)[1], atol=1e-4)


def test_the_readable_weights_are_distributions_that_respect_both_masks():
    readable, _ = pair(causal=True)
    weights = readable.weights(inputs(T=5), key_mask=padding([5, 3, 1], 5))  # (B, nh, T, T)
    assert weights.shape == (3, NH, 5, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(3, NH, 5))
    assert torch.count_nonzero(weights.triu(1)) == 0  # no future
    assert torch.count_nonzero(weights[1, :, :, 3:]) == 0 and torch.count_nonzero(weights[2, :, :, 1:]) == 0


class Config:
    n_embd, n_head, block_size, n_layer = C, NH, BLOCK, 1


def test_cached_cross_attention_equals_uncached_and_reads_the_source_once():
    _, fast = pair(causal=False)
    x, context, mask = inputs(), inputs(T=6, seed=2), padding([6, 4, 2], 6)
    with torch.no_grad():
        whole = fast(x, context, mask)  # all 10 queries at once, no cache
        kv = KVCache(Config, 3, "cpu")
        steps = [fast(x[:, :1], context, mask, cache=kv)]
        garbage = torch.full_like(context, float("nan"))  # never read again: the cache holds its keys
        steps += [fast(x[:, t : t + 1], garbage, mask, cache=kv) for t in range(1, 10)]
    assert torch.allclose(torch.cat(steps, dim=1), whole, atol=1e-5)


def test_cached_causal_self_attention_equals_uncached():
    _, fast = pair(causal=True)
    x = inputs()
    with torch.no_grad():
        whole = fast(x)
        kv = KVCache(Config, 3, "cpu")
        first = fast(x[:, :4], cache=kv)  # a prompt of 4 tokens ...
        kv.advance(4)
        rest = []
        for t in range(4, 10):  # ... then one token at a time
            rest.append(fast(x[:, t : t + 1], cache=kv))
            kv.advance(1)
    assert torch.allclose(torch.cat([first, *rest], dim=1), whole, atol=1e-5)


def test_the_readable_face_refuses_a_cache():
    readable, _ = pair(causal=True)
    with pytest.raises(ValueError, match="keeps no key/value cache"):
        readable(inputs(), cache=KVCache(Config, 3, "cpu"))


def test_evaluating_borrows_eval_mode_and_gives_the_callers_mode_back():
    torch.manual_seed(0)
    module = MultiHeadAttention(C, NH, BLOCK, dropout=0.5, causal=True)  # train mode: dropout on
    x = inputs()
    assert not torch.equal(module(x), module(x))  # dropout draws differ in train mode
    with evaluating(module):
        assert not module.training and not any(m.training for m in module.modules())
        assert torch.equal(module(x), module(x))  # no dropout inside
    assert module.training and all(m.training for m in module.modules())
    with pytest.raises(RuntimeError, match="inside"):
        with evaluating(module):
            raise RuntimeError("inside")
    assert module.training and all(m.training for m in module.modules())
    module.eval()
    with evaluating(module):
        assert not module.training
    assert not module.training and not any(m.training for m in module.modules())  # eval stays eval

"""Dropout's cheaper masks: the same distribution as torch's, and the two attention faces equal in
training mode when they share their masks."""

import contextlib
import math
import warnings

import pytest
import torch
from torch.nn import functional as F

from scratchgpt.nn.attention import MultiHeadAttention
from scratchgpt.nn.attention_dropout import AttentionDropout, _dropout_attention
from scratchgpt.nn.dropout import Dropout, drawing_masks, keep_mask, kept_fraction
from scratchgpt.nn.fused import FusedMultiHeadAttention, fuse_heads

N = 4_000_000


@contextlib.contextmanager
def recording_masks(model):
    """Inside, every mask the dropouts of `model` draw is appended to the list this yields."""
    masks = []

    def record(shape, p, device):
        masks.append(keep_mask(shape, p, device))
        return masks[-1]

    with drawing_masks(model, record):
        yield masks


def replaying_masks(model, masks):
    """Inside, the dropouts of `model` take `masks` in order instead of drawing (each of the shape asked for)."""
    masks = list(masks)

    def replay(shape, p, device):
        mask = masks.pop(0)
        if mask.shape != torch.Size(shape):
            raise RuntimeError(f"replayed dropout mask has shape {tuple(mask.shape)}, wanted {tuple(shape)}")
        return mask

    return drawing_masks(model, replay)


def within(observed, expected, n, sigmas=5):
    """`observed`, a frequency over n Bernoulli trials, is within `sigmas` standard errors of `expected`."""
    return abs(observed - expected) <= sigmas * math.sqrt(expected * (1 - expected) / n)


@pytest.mark.parametrize("p", [0.1, 0.2, 0.5, 0.9])
def test_keep_mask_keeps_each_element_with_probability_one_minus_p_independently(p):
    torch.manual_seed(0)
    keep = keep_mask((N,), p, torch.device("cpu"))
    assert keep.dtype == torch.bool
    assert within(keep.float().mean().item(), 1 - p, N)
    both = (keep[:-1] & keep[1:]).float().mean().item()  # neighbours: independent draws
    assert within(both, (1 - p) ** 2, N - 1)
    torch_keep = F.dropout(torch.ones(N), p) != 0  # torch's own mask, for comparison
    assert within(torch_keep.float().mean().item(), 1 - p, N)


def test_kept_fraction_is_one_minus_p_to_within_two_to_the_minus_31():
    for p in (0.0, 0.1, 0.2, 1 / 3, 0.5):
        assert abs(kept_fraction(p) - (1 - p)) <= 2**-32


def test_dropout_keeps_the_mean_and_zeroes_the_rest():
    torch.manual_seed(1)
    x = torch.full((N,), 3.0)
    y = Dropout(0.2)(x)
    kept = y != 0
    assert torch.allclose(y[kept], torch.tensor(3.0 / kept_fraction(0.2)))
    assert within(kept.float().mean().item(), 0.8, N)
    assert abs(y.mean().item() - 3.0) <= 5 * 3.0 * math.sqrt(0.2 / 0.8 / N)  # E[y] = x
    assert torch.equal(Dropout(0.2).eval()(x), x) and torch.equal(Dropout(0.0)(x), x)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_in_low_precision_the_kept_are_scaled_by_the_exact_inverse_then_rounded_once(dtype):
    """Under bf16 autocast x is bf16: a scale built in bf16 is 1.109375 for p = 0.1, not 1/0.9, and
    shrinks every kept element's mean by 0.16%."""
    torch.manual_seed(2)
    x = torch.randn(100_000).to(dtype)
    module = Dropout(0.1)
    with recording_masks(module) as masks:
        y = module(x)
    exact = (x.float() * masks[0] * (1 / kept_fraction(0.1))).to(dtype)  # rounded once, from float32
    assert y.dtype == dtype and torch.equal(y, exact)
    kept = masks[0]
    assert abs((y[kept].float() / x[kept].float()).mean().item() * 0.9 - 1) < 1e-4


def test_masks_come_from_the_default_generator_so_a_seed_repeats_them():
    torch.manual_seed(5)
    a = keep_mask((1000,), 0.3, torch.device("cpu"))
    torch.manual_seed(5)
    b = keep_mask((1000,), 0.3, torch.device("cpu"))
    assert torch.equal(a, b) and not torch.equal(a, keep_mask((1000,), 0.3, torch.device("cpu")))


def test_dropout_module_is_a_no_op_in_eval_mode_and_passes_gradients_through_the_kept():
    module = Dropout(0.5)
    x = torch.randn(64, 32, requires_grad=True)
    with recording_masks(module) as masks:
        module(x).sum().backward()
    assert torch.equal(x.grad, masks[0].float() * 2.0)
    assert torch.equal(module.eval()(x), x)


def test_attention_with_dropout_drops_weights_at_rate_p_and_never_looks_ahead():
    """With q = k = 0 every visible key gets weight 1/(t+1), and v = identity makes the output the
    dropped weights themselves (B, nh, T, T): both causal halves, masks and statistics, visible."""
    torch.manual_seed(2)
    B, nh, T, p = 32, 4, 64, 0.25
    q = k = torch.zeros(B, nh, T, T)
    v = torch.eye(T).expand(B, nh, T, T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a compiler-less machine runs it eagerly, with a warning
        weights = AttentionDropout(p)(q, k, v, None, True)  # (B, nh, T, T)
    visible = torch.ones(T, T, dtype=torch.bool).tril()
    assert torch.all(weights[..., ~visible] == 0)  # the future, in both halves
    full = (1 / torch.arange(1, T + 1, dtype=torch.float))[:, None].expand(T, T) / kept_fraction(p)  # (T, T)
    kept = weights != 0
    assert torch.allclose(weights[kept], full.expand_as(weights)[kept])
    n = B * nh * int(visible.sum())
    assert within(kept[..., visible].float().mean().item(), 1 - p, n)


def pair(causal, p):
    """A readable and a fast attention with the same weights, in training mode."""
    torch.manual_seed(0)
    readable = MultiHeadAttention(32, 4, 16, dropout=p, causal=causal).train()
    fast = FusedMultiHeadAttention(32, 4, dropout=p, causal=causal).train()
    state = dict(readable.state_dict())
    fuse_heads(state, "", 4)
    fast.load_state_dict(state)
    return readable, fast


def as_readable(masks, nh, T):
    """The fast face's masks, in the order and shapes the readable face draws them: per head a
    (B, T, S) mask for its weights, then the output projection's mask."""
    *weights, projection = masks
    if len(weights) == 2:  # causal halves: (B, nh, T/2, T/2) and (B, nh, T/2, T)
        top, bottom = weights
        h = T // 2
        full = torch.zeros(top.size(0), nh, T, T, dtype=torch.bool)
        full[:, :, :h, :h], full[:, :, h:] = top, bottom  # top right: never visible, never read
        weights = [full]
    return [weights[0][:, h] for h in range(nh)] + [projection]


@pytest.mark.parametrize("case, T", [("causal", 10), ("causal", 9), ("padded", 10), ("cross", 10)])
def test_readable_and_fast_faces_agree_in_training_mode_with_shared_masks(case, T):
    """Causal attention over an even T runs in halves, over an odd T whole."""
    readable, fast = pair(causal=case == "causal", p=0.3)
    x = torch.randn(3, T, 32, requires_grad=True)
    kwargs = {}
    if case == "padded":
        kwargs = {"key_mask": torch.arange(T)[None, :] < torch.tensor([T, 6, 1])[:, None]}
    if case == "cross":
        kwargs = {
            "context": torch.randn(3, 7, 32),
            "key_mask": torch.arange(7)[None, :] < torch.tensor([7, 3, 5])[:, None],
        }
    with recording_masks(fast) as masks, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        y_fast = fast(x, **kwargs)
    (grad_fast,) = torch.autograd.grad(y_fast.square().sum(), x)
    assert len(masks) == (3 if case == "causal" and T % 2 == 0 else 2)
    with replaying_masks(readable, as_readable(masks, 4, T)):
        y_readable = readable(x, **kwargs)
    (grad_readable,) = torch.autograd.grad(y_readable.square().sum(), x)
    assert (y_fast == 0).sum() < y_fast.numel()  # not everything dropped
    assert torch.allclose(y_fast, y_readable, atol=1e-5)
    assert torch.allclose(grad_fast, grad_readable, atol=1e-4)
    with replaying_masks(readable, [~m for m in as_readable(masks, 4, T)]):  # other masks, other output
        assert not torch.allclose(readable(x, **kwargs), y_fast, atol=1e-3)


def test_a_failed_compile_runs_the_same_steps_eagerly_with_a_warning(monkeypatch):
    def broken(fn, **_):
        def run(*args):
            raise RuntimeError("no C++ compiler")

        return run

    monkeypatch.setattr(torch, "compile", broken)
    module = AttentionDropout(0.5)
    q, k, v = torch.randn(3, 2, 2, 8, 16).unbind(0)
    torch.manual_seed(3)
    with pytest.warns(UserWarning, match="running it eagerly"):
        y = module(q, k, v, None, True)
    torch.manual_seed(3)
    keeps = [keep_mask((2, 2, 4, 4), 0.5, q.device), keep_mask((2, 2, 4, 8), 0.5, q.device)]
    assert torch.equal(y, _dropout_attention(q, k, v, None, True, keeps, 2.0))
    assert module.kernel is _dropout_attention

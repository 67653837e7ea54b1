"""The functions behind the lessons: each by-hand form equals the library's form."""

import math

import pytest
import torch

from scratchgpt import GPTLanguageModel, Head, ModelConfig, convert
from scratchgpt.errors import ScratchGPTError
from scratchgpt.lessons.attention_maps import attention_weights, check_selection, plot_attention
from scratchgpt.lessons.by_hand import (
    average_loop,
    average_matmul,
    average_softmax,
    column_self_attention,
    self_attention,
)
from scratchgpt.nn.positional import sinusoidal_encoding


def test_the_three_averaging_forms_are_equal():
    torch.manual_seed(0)
    x = torch.randn(4, 8, 2)
    loop = average_loop(x)
    assert torch.allclose(loop[:, 3], x[:, :4].mean(dim=1))
    assert torch.allclose(average_matmul(x), loop, atol=1e-6)
    assert torch.allclose(average_softmax(x), loop, atol=1e-6)


def test_by_hand_self_attention_is_the_head_module():
    torch.manual_seed(0)
    head = Head(n_embd=32, head_size=16, block_size=8, dropout=0.0).eval()
    x = torch.randn(2, 8, 32)
    out, wei = self_attention(x, head.query.weight.T, head.key.weight.T, head.value.weight.T)
    assert torch.allclose(out, head(x), atol=1e-6)
    assert torch.allclose(wei.sum(-1), torch.ones(2, 8))
    assert torch.count_nonzero(wei.triu(1)) == 0


def test_the_column_convention_agrees_with_the_channel_last_code():
    torch.manual_seed(0)
    head = Head(n_embd=12, head_size=4, block_size=5, dropout=0.0)
    x = torch.randn(1, 5, 12)
    rows, _ = self_attention(x, head.query.weight.T, head.key.weight.T, head.value.weight.T, causal=False)
    columns = column_self_attention(x[0].T, head.query.weight, head.key.weight, head.value.weight)
    assert torch.allclose(columns, rows[0].T, atol=1e-6)


def test_sinusoidal_encoding_follows_the_paper():
    pe = sinusoidal_encoding(50, 16)
    assert pe.shape == (50, 16) and pe.dtype == torch.float32
    pos, i = 7, 3
    assert pe[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 16)), abs=1e-6)
    assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 16)), abs=1e-6)
    assert sinusoidal_encoding(3, 5).shape == (3, 5)  # odd widths too


def test_sinusoidal_encoding_stays_float32_under_another_default_dtype():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        assert sinusoidal_encoding(4, 6).dtype == torch.float32
    finally:
        torch.set_default_dtype(previous)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPTLanguageModel(ModelConfig(vocab_size=10, block_size=12, n_embd=24, n_head=3, n_layer=2)).eval()


@pytest.mark.parametrize("attention", ["fast", "readable"])
def test_attention_maps_are_causal_distributions_that_match_the_model(model, attention):
    m = model if attention == "fast" else convert(model, "readable").eval()
    idx = torch.randint(0, 10, (1, 12), generator=torch.Generator().manual_seed(1))
    weights = attention_weights(m, idx)
    assert weights.shape == (2, 3, 12, 12)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 12), atol=1e-6)  # each row sums to 1
    assert torch.count_nonzero(weights.triu(1)) == 0  # nothing above the diagonal
    # layer 0 head 1, recomputed from the readable model's own Head
    readable = convert(model, "readable").eval()
    x = readable.token_embedding_table(idx) + readable.position_embedding_table(torch.arange(12))
    head = readable.blocks[0].sa.heads[1]
    _, wei = self_attention(readable.blocks[0].ln1(x), head.query.weight.T, head.key.weight.T, head.value.weight.T)
    assert torch.allclose(weights[0, 1], wei[0], atol=1e-5)


def test_attention_picture_is_written(model, tmp_path):
    idx = torch.tensor([[1, 2, 3, 4]])
    plot_attention(attention_weights(model, idx), "ab c", tmp_path / "a.png")
    plot_attention(attention_weights(model, idx), "ab c", tmp_path / "b.png", layer=1, head=2)
    for name in ("a.png", "b.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000


def test_layer_and_head_out_of_range(model):
    with pytest.raises(ScratchGPTError, match="layer 2 is out of range"):
        check_selection(model.config, 2, None)
    with pytest.raises(ScratchGPTError, match="head -1 is out of range"):
        check_selection(model.config, 0, -1)

"""Fewer bytes per token (inference/weights.py): a GPT's Linears in bf16 or int8 give logits close
to float32's, generate eagerly and compiled (the same tokens both ways), leave the model they came
from untouched, and anything else is refused in one line."""

import dataclasses
import subprocess
import sys

import pytest
import torch
from helpers import fails, save_run
from torch import nn
from torch.nn import functional as F

from scratchgpt import GPTLanguageModel
from scratchgpt.cli import main
from scratchgpt.config import BigramConfig, EncoderConfig, ModelConfig
from scratchgpt.errors import ConfigError
from scratchgpt.inference.generate import generate
from scratchgpt.inference.weights import BF16Linear, Int8Linear, linear_bytes, with_weights
from scratchgpt.models.encoder import EncoderModel
from scratchgpt.models.gpt import BigramLanguageModel

CONFIG = ModelConfig(vocab_size=65, block_size=32, n_embd=32, n_head=2, n_layer=2, dropout=0.0)
CHARS = "\n" + "".join(chr(c) for c in range(32, 96))  # 65 characters


def seeded(config=CONFIG, std=0.1, seed=0):
    """A random GPT with weights large enough that its logits spread (std 0.1, not the init's 0.02)."""
    torch.manual_seed(seed)
    model = GPTLanguageModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, std)
    return model


def logits(model, idx):
    with torch.no_grad():
        return model(idx)[0]  # (B, T, V)


# Stated tolerances, relative to the largest float32 logit: bf16 keeps 8 bits of mantissa (weights,
# inputs and outputs of each product rounded), int8 rounds each weight to half a step of its row's
# max|w| / 127. Measured on this model: 0.27% and 0.54%.
TOLERANCE = {"bf16": 0.02, "int8": 0.02}


@pytest.mark.parametrize("weights", ["bf16", "int8"])
def test_quantised_logits_stay_close_to_float32(weights):
    model = seeded()
    idx = torch.randint(0, 65, (4, 32), generator=torch.Generator().manual_seed(1))
    expected = logits(model, idx)
    got = logits(with_weights(model, weights), idx)
    assert got.dtype == torch.float32 and got.shape == expected.shape
    error = (got - expected).abs().max() / expected.abs().max()
    assert 0 < error < TOLERANCE[weights], error  # rounded (not zero), but close
    assert (got.argmax(-1) == expected.argmax(-1)).float().mean() > 0.9


def test_int8_is_its_dequantised_twin():
    """The kernel's product is x times the int8 weights times the row scales; each weight is
    within half a step of its row's scale of the float32 one."""
    torch.manual_seed(2)
    linear = nn.Linear(48, 24)
    q = Int8Linear(linear)
    dequantised = q.weight.float() * q.scales[:, None]  # (out, in)
    assert q.weight.dtype == torch.int8 and q.weight.abs().max() == 127
    assert ((dequantised - linear.weight).abs() <= q.scales[:, None] / 2 + 1e-7).all()
    x = torch.randn(3, 5, 48)  # (B, T, in)
    torch.testing.assert_close(q(x), F.linear(x, dequantised, linear.bias), atol=1e-5, rtol=1e-5)


def test_every_linear_is_converted_and_the_original_is_untouched():
    model = seeded()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    linears = sum(isinstance(m, nn.Linear) for m in model.modules())
    for weights, kind, ratio in (("bf16", BF16Linear, 1.9), ("int8", Int8Linear, 3.0)):
        quantised = with_weights(model, weights)
        assert quantised is not model
        assert sum(isinstance(m, kind) for m in quantised.modules()) == linears
        assert not any(isinstance(m, nn.Linear) for m in quantised.modules())
        assert linear_bytes(model) / linear_bytes(quantised) > ratio  # fewer bytes (the biases stay float32)
    assert with_weights(model, "f32") is model
    assert all(isinstance(m, nn.Linear) for m in (model.lm_head, model.blocks[0].sa.qkv))
    for k, v in model.state_dict().items():
        assert v.dtype == torch.float32 and torch.equal(v, before[k]), k


@pytest.mark.parametrize("weights", ["bf16", "int8"])
def test_a_quantised_model_generates_the_same_tokens_eager_and_compiled(weights):
    """Past block_size (the window slides), greedy and sampled with one seeded generator."""
    model = with_weights(seeded(), weights)
    idx = torch.randint(0, 65, (1, 7), generator=torch.Generator().manual_seed(2))

    def run(temperature, **compile):
        g = torch.Generator().manual_seed(3)
        return torch.cat(list(generate(model, idx, 80, temperature=temperature, generator=g, **compile)), dim=1)

    for temperature in (1.0, 0):
        eager = run(temperature)
        assert eager.shape == (1, 80)
        assert torch.equal(run(temperature, compile=True), eager), temperature


def test_only_a_gpt_is_quantised():
    bigram = BigramLanguageModel(BigramConfig(vocab_size=65, block_size=8))
    encoder = EncoderModel(EncoderConfig(vocab_size=65, block_size=16, n_embd=32, n_head=2, n_layer=1))
    assert with_weights(bigram, "f32") is bigram
    with pytest.raises(ConfigError, match="not a bigram model's"):
        with_weights(bigram, "int8")
    with pytest.raises(ConfigError, match="not an encoder model's"):
        with_weights(encoder, "bf16")
    with pytest.raises(ConfigError, match="unknown weights 'int4'; choose from f32, bf16, int8"):
        with_weights(seeded(), "int4")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    bigram = BigramConfig(vocab_size=65, block_size=8)
    tied = dataclasses.replace(CONFIG, tie_embeddings=True)
    return {
        "gpt": save_run(root / "gpt", seeded(), CONFIG, CHARS),
        "tied": save_run(root / "tied", seeded(tied), tied, CHARS),
        "bigram": save_run(root / "bigram", BigramLanguageModel(bigram), bigram, CHARS),
    }


def test_sample_weights_prints_text(runs, capsys):
    args = ["sample", "--prompt", "TO BE", "--max-new-tokens", "60", "--temperature", "0"]
    for run in ("gpt", "tied"):
        for weights in ("f32", "bf16", "int8"):
            assert main(args + ["--run", str(runs[run]), "--weights", weights]) == 0
            out = capsys.readouterr().out
            assert out.startswith("TO BE") and len(out) > 60


def test_sample_refuses_bad_weights_in_one_line(runs, capsys):
    bad = subprocess.run(
        [sys.executable, "-m", "scratchgpt", "sample", "--run", str(runs["gpt"]), "--weights", "int4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == (
        "scratchgpt sample: error: argument --weights: invalid choice: 'int4' (choose from 'f32', 'bf16', 'int8') "
        "(see scratchgpt sample --help)"
    )
    line = fails(capsys, "sample", "--run", runs["bigram"], "--weights", "int8")
    assert "--weights int8 shrinks a GPT's Linear weights for decoding, not a bigram model's" in line
    assert main(["sample", "--run", str(runs["bigram"]), "--max-new-tokens", "5"]) == 0  # f32: the default


def test_serve_decodes_with_the_weights_asked_for(runs):
    """The playground's streams decode with the int8 copy (the text of sample --weights int8),
    while the attention maps still read the model as trained."""
    pytest.importorskip("uvicorn")
    import httpx
    from serving import ThreadServer

    from scratchgpt.inference.generate import sample_text
    from scratchgpt.rundir import load_model
    from scratchgpt.serve.app import create_app
    from scratchgpt.serve.runs import Runs

    model, tokenizer, _, _ = load_model(runs["gpt"])
    app = create_app(Runs([runs["gpt"]], weights="int8"))
    live = ThreadServer(app)
    try:
        body = {"prompt": "TO BE", "max_new_tokens": 60, "temperature": 0.8, "seed": 3, "stream": False}
        text = httpx.post(live.url + "/api/generate", json=body, timeout=60).json()["text"]
        loaded = app.state.runs.model("gpt")
        assert isinstance(loaded.batcher.model.lm_head, Int8Linear) and isinstance(loaded.model.lm_head, nn.Linear)
    finally:
        live.stop()
    int8 = with_weights(model, "int8")
    expected = sample_text(int8, tokenizer, "TO BE", max_new_tokens=60, temperature=0.8, seed=3)
    assert "TO BE" + text == expected


def test_serve_refuses_bad_weights_in_one_line(runs, capsys):
    pytest.importorskip("uvicorn")
    line = fails(capsys, "serve", "--run", runs["bigram"], "--weights", "int8", "--port", "0")
    assert "--weights int8 shrinks a GPT's Linear weights for decoding, not a bigram model's" in line
    bad = subprocess.run(
        [sys.executable, "-m", "scratchgpt", "serve", "--run", str(runs["gpt"]), "--weights", "fp4"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "scratchgpt serve: error: argument --weights: invalid choice: 'fp4' (choose from 'f32', 'bf16', 'int8') "
        "(see scratchgpt serve --help)"
    ]

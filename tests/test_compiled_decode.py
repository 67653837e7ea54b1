"""The compiled decode step (inference/compiled.py): the same tokens as the eager cached path, one
compiled graph for every position, and every combination with nothing to compile refused in one line.

Every compiled test uses the same model shape at batch 1, so the file compiles one graph (a few
seconds on two cores): torch.compile reuses it for every model of that shape.
"""

import concurrent.futures
import dataclasses

import httpx
import pytest
import torch
from helpers import fails, save_run
from serving import ThreadServer
from torch._dynamo.utils import counters

from scratchgpt import GPTLanguageModel
from scratchgpt.cli import main
from scratchgpt.config import BigramConfig, ModelConfig
from scratchgpt.errors import ConfigError
from scratchgpt.inference.compiled import Decoder
from scratchgpt.inference.generate import generate, sample_text
from scratchgpt.inference.sampling import Sampling
from scratchgpt.models.gpt import BigramLanguageModel
from scratchgpt.nn.kv_cache import KVCache, StaticKVCache
from scratchgpt.serve.app import create_app
from scratchgpt.serve.limits import Limits
from scratchgpt.serve.runs import Runs

CONFIG = ModelConfig(vocab_size=65, block_size=32, n_embd=32, n_head=2, n_layer=2, dropout=0.0)
CHARS = "\n" + "".join(chr(c) for c in range(32, 96))  # 65 characters: a newline, space .. '_'


def peaked(config, seed=0):
    """A random GPT with large weights: confident logits, so a greedy choice is never a near-tie
    that a different order of float additions could flip."""
    torch.manual_seed(seed)
    model = GPTLanguageModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    return model


def tokens(stream):
    return torch.cat(list(stream), dim=1)  # (B, new tokens)


@pytest.mark.parametrize("options", [{}, {"position": "rotary", "qk_norm": True}])
def test_the_static_cache_decodes_like_the_growing_one(options):
    """Eagerly, token by token and across a window's reset: the whole-buffer attention with its
    mask, and the tensor position, give the logits of the cache that grows."""
    config = dataclasses.replace(CONFIG, **options)
    model = peaked(config)
    idx = torch.randint(0, 65, (3, 40), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        growing, static = KVCache(config, 3, "cpu"), StaticKVCache(config, 3, "cpu")
        for span in ((0, 5), (5, 6), (6, 7), (7, 20), (20, 21), "reset", (24, 30), (30, 31)):
            if span == "reset":  # the window slides: a new context from position 0
                growing.reset()
                static.reset()
                continue
            chunk = idx[:, span[0] : span[1]]
            expected, _ = model(chunk, cache=growing)
            got, _ = model(chunk, cache=static)
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
            assert static.length.item() == growing.length
        whole, _ = model(idx[:, 24:31])  # from scratch at positions 0..6
        torch.testing.assert_close(got[:, -1], whole[:, -1], atol=1e-5, rtol=1e-5)


def test_compiled_decoding_gives_the_eager_tokens_with_one_graph():
    """300 tokens through block_size 32 (the window slides again and again), with the window and
    the exact policies, sampled (one seeded generator: the same probabilities give the same draws)
    and greedy: the compiled step's tokens are the eager path's, and every position ran the one
    graph compiled for it (a position compiled in as a constant would recompile at each token)."""
    model = peaked(CONFIG)
    decoder = Decoder(model)
    idx = torch.randint(0, 65, (1, 7), generator=torch.Generator().manual_seed(2))
    graphs = counters["stats"]["unique_graphs"]

    def run(cache, temperature, **compile):
        g = torch.Generator().manual_seed(3)
        return tokens(generate(model, idx, 300, temperature=temperature, generator=g, cache=cache, **compile))

    for cache in ("window", "exact"):
        for temperature in (1.0, 0):
            eager = run(cache, temperature)
            assert torch.equal(run(cache, temperature, compile=True, decoder=decoder), eager), (cache, temperature)
            if temperature:
                assert len(set(eager[0].tolist())) > 20  # a varied text, not one token repeated
    assert counters["stats"]["unique_graphs"] - graphs <= 1


def test_compile_needs_a_cache_policy_and_a_model_with_a_cache():
    with pytest.raises(ConfigError, match="compile needs the key/value cache"):
        Sampling(cache="none", compile=True)
    idx = torch.zeros(1, 1, dtype=torch.long)
    readable = GPTLanguageModel(dataclasses.replace(CONFIG, attention="readable"))
    bigram = BigramLanguageModel(BigramConfig(vocab_size=65, block_size=8))
    for model, what in ((readable, "a GPT with the readable attention"), (bigram, "a bigram model")):
        with pytest.raises(ConfigError, match=f"{what} has none"):
            next(generate(model, idx, 5, compile=True))
        with pytest.raises(ConfigError, match=f"{what} has none"):
            Decoder(model)


def test_a_failed_compile_is_one_line(monkeypatch):
    """No C++ compiler, an op the compiler cannot take: one line naming the reason, no traceback."""
    decoder = Decoder(peaked(CONFIG))

    def broken(*args):
        raise torch._dynamo.exc.InternalTorchDynamoError(
            "InvalidCxxCompiler: No working C++ compiler found\nSet TORCHDYNAMO_VERBOSE=1 for the internal stack trace"
        )

    monkeypatch.setattr(decoder, "step", broken)
    with pytest.raises(ConfigError) as raised:
        decoder.warm_up(1)
    assert str(raised.value) == (
        "--compile: compiling the decode step failed (InvalidCxxCompiler: No working C++ compiler found)"
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compiled")
    readable = dataclasses.replace(CONFIG, attention="readable")
    bigram = BigramConfig(vocab_size=65, block_size=8)
    return {
        "gpt": save_run(root / "gpt", peaked(CONFIG), CONFIG, CHARS),
        "readable": save_run(root / "readable", GPTLanguageModel(readable), readable, CHARS),
        "bigram": save_run(root / "bigram", BigramLanguageModel(bigram), bigram, CHARS),
    }


def test_sample_compile_prints_the_eager_text(runs, capsys):
    args = ["sample", "--run", str(runs["gpt"]), "--prompt", "TO BE", "--max-new-tokens", "120", "--temperature", "0"]
    assert main(args) == 0
    eager = capsys.readouterr().out
    assert main(args + ["--compile"]) == 0
    out, err = capsys.readouterr()
    assert out == eager and len(out) > 100
    assert "decode step compiled in" in err


def test_sample_compile_refuses_what_it_cannot_compile(runs, capsys):
    gpt = ["sample", "--run", runs["gpt"], "--compile"]
    assert "cache none is the lecture's uncached method" in fails(capsys, *gpt, "--cache", "none")
    assert "cache none is the lecture's uncached method" in fails(capsys, *gpt, "--no-cache")
    assert "a bigram model has none" in fails(capsys, "sample", "--run", runs["bigram"], "--compile")
    assert "a GPT with the readable attention has none" in fails(
        capsys, "sample", "--run", runs["readable"], "--compile"
    )


def test_serve_compile_refuses_runs_with_nothing_to_compile(runs, capsys):
    pytest.importorskip("uvicorn")
    assert "a bigram model has none" in fails(capsys, "serve", "--run", runs["bigram"], "--compile", "--port", "0")


def test_serve_compile_answers_concurrent_requests_with_the_eager_text(runs):
    """Concurrent requests decode together through the compiled batched step."""
    app = create_app(Runs([runs["gpt"], runs["bigram"]], compile=True), Limits(workers=2, queue=4))
    live = ThreadServer(app)
    try:
        prompts = ["TO BE", "OR NOT", "THAT IS", "THE QUESTION"]
        with httpx.Client(base_url=live.url, timeout=120) as client:

            def ask(prompt, run="gpt", cache="window"):
                response = client.post(
                    "/api/generate",
                    json={
                        "run": run,
                        "prompt": prompt,
                        "max_new_tokens": 80,
                        "temperature": 0,
                        "cache": cache,
                        "stream": False,
                    },
                )
                assert response.status_code == 200, response.text
                return response.json()["text"]

            ask("A")  # the first generation compiles
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                texts = list(pool.map(ask, prompts))
            assert len(ask("A", cache="none")) == 80  # no decode step to compile: the lecture's method
            assert len(ask("A", run="bigram")) == 80  # a model without a cache: generated eagerly
        loaded = app.state.runs.model("gpt")
        assert loaded.batcher.decoder is not None and app.state.runs.model("bigram").batcher.decoder is None
        assert loaded.batcher.widest >= 2  # the requests were decoded together
        for prompt, text in zip(prompts, texts):
            assert (
                text
                == sample_text(loaded.model, loaded.tokenizer, prompt, max_new_tokens=80, temperature=0)[len(prompt) :]
            )
    finally:
        live.stop()

"""Generation: the key/value cache against the lecture's method, sampling controls, streaming."""

import pytest
import torch

from scratchgpt import GPTLanguageModel, KVCache, ModelConfig, convert
from scratchgpt.data.tokenizer import CharTokenizer
from scratchgpt.errors import ScratchGPTError
from scratchgpt.inference.generate import generate, sample_next, sample_texts, stream_text

CONFIG = ModelConfig(vocab_size=20, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.0)
TOKENIZER = CharTokenizer("\nabcdefghijklmnopqr ")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GPTLanguageModel(CONFIG).eval()
    with torch.no_grad():  # larger weights than the 0.02 init, so that logits differ clearly
        for p in m.parameters():
            p.mul_(25 if p.dim() == 2 else 1)
    return m


def prompt(T=5, B=1, seed=1):
    return torch.randint(0, 20, (B, T), generator=torch.Generator().manual_seed(seed))


def tokens(model, idx, n, cache, temperature=0.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.cat(list(generate(model, idx, n, temperature=temperature, generator=g, cache=cache)), dim=1)


def test_cached_logits_match_uncached_logits_at_every_step(model):
    idx = prompt(T=3, B=2)
    kv = KVCache(CONFIG, 2, "cpu")
    with torch.no_grad():
        logits, _ = model(idx, cache=kv)
        for _ in range(CONFIG.block_size - 3):
            full, _ = model(idx)  # (B, T, V) without a cache
            assert (logits[:, -1] - full[:, -1]).abs().max() <= 1e-4
            next_token = full[:, -1].argmax(-1, keepdim=True)
            idx = torch.cat((idx, next_token), dim=1)
            logits, _ = model(next_token, cache=kv)
    assert kv.length == CONFIG.block_size


def test_prefill_after_cached_tokens_uses_the_right_mask(model):
    idx = prompt(T=10)
    kv = KVCache(CONFIG, 1, "cpu")
    with torch.no_grad():
        model(idx[:, :4], cache=kv)
        logits, _ = model(idx[:, 4:], cache=kv)  # 6 new tokens after 4 cached ones
        full, _ = model(idx)
    assert (logits - full[:, 4:]).abs().max() <= 1e-4


@pytest.mark.parametrize("cache", ["window", "exact"])
def test_greedy_tokens_within_block_size_equal_the_lecture_method(model, cache):
    idx = prompt(T=4)
    assert torch.equal(tokens(model, idx, 12, cache), tokens(model, idx, 12, "none"))


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_exact_policy_gives_the_lecture_methods_tokens_past_block_size(model, temperature):
    idx = prompt(T=20)  # a prompt longer than block_size is cropped too
    lecture = tokens(model, idx, 50, "none", temperature, seed=3)
    assert torch.equal(tokens(model, idx, 50, "exact", temperature, seed=3), lecture)


def test_window_policy_keeps_going_past_block_size_with_a_bounded_cache(model, monkeypatch):
    lengths, caches = [], []
    original_advance = KVCache.advance

    def advance(self, n):
        original_advance(self, n)
        lengths.append(self.length)
        caches.append(self)

    monkeypatch.setattr(KVCache, "advance", advance)
    out = tokens(model, prompt(T=4), 200, "window")
    assert out.shape == (1, 200)
    assert max(lengths) == CONFIG.block_size  # never more than block_size cached
    for kv in caches:
        assert all(k.shape == (1, 4, CONFIG.block_size, 8) for k in kv.keys + kv.values)
    within = CONFIG.block_size - 4  # until the window first fills, the same as the lecture
    assert torch.equal(out[:, :within], tokens(model, prompt(T=4), within, "none"))


def test_readable_models_generate_the_same_tokens_without_a_cache(model):
    readable = convert(model, "readable").eval()
    idx = prompt(T=4)
    assert torch.equal(tokens(readable, idx, 30, "window"), tokens(model, idx, 30, "none"))


def test_temperature_zero_is_greedy_and_top_k_one_is_too():
    logits = torch.tensor([[0.1, 2.0, 0.3], [3.0, 0.0, -1.0]])
    assert sample_next(logits, temperature=0).tolist() == [[1], [0]]
    g = torch.Generator().manual_seed(0)
    assert all(sample_next(logits, top_k=1, generator=g).tolist() == [[1], [0]] for _ in range(20))
    assert sample_next(logits, top_k=100, generator=g).shape == (2, 1)  # top_k clamped to V


def test_top_p_samples_only_from_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    g = torch.Generator().manual_seed(0)
    seen = {sample_next(logits, top_p=0.8, generator=g).item() for _ in range(300)}
    assert seen == {0, 1}  # 0.5 + 0.3 reaches 0.8: the rest is cut
    seen = {sample_next(logits, top_p=0.81, generator=g).item() for _ in range(300)}
    assert seen == {0, 1, 2}
    assert {sample_next(logits, top_p=1e-6, generator=g).item() for _ in range(50)} == {0}  # keeps one
    assert len({sample_next(logits, top_p=1.0, generator=g).item() for _ in range(300)}) == 4


def test_several_samples_at_once_are_reproducible_with_one_seed(model):
    a = sample_texts(model, TOKENIZER, "ab", max_new_tokens=30, num_samples=3, seed=7)
    b = sample_texts(model, TOKENIZER, "ab", max_new_tokens=30, num_samples=3, seed=7)
    assert a == b and len(a) == 3 and len(set(a)) == 3
    assert all(len(t) == 30 for t in a)
    assert sample_texts(model, TOKENIZER, "ab", max_new_tokens=30, num_samples=3, seed=8) != a


def test_streamed_pieces_add_up_to_the_one_shot_text(model):
    pieces = list(stream_text(model, TOKENIZER, "abc", max_new_tokens=40, seed=1))
    assert len(pieces) == 40
    assert "".join(pieces) == sample_texts(model, TOKENIZER, "abc", max_new_tokens=40, seed=1)[0]


def test_stop_strings_end_the_text_before_them(model):
    full = sample_texts(model, TOKENIZER, "a", max_new_tokens=60, seed=2)[0]
    stop = full[20:22]
    expected = full[: full.find(stop)]
    assert "".join(stream_text(model, TOKENIZER, "a", max_new_tokens=60, seed=2, stop=[stop])) == expected
    assert sample_texts(model, TOKENIZER, "a", max_new_tokens=60, seed=2, stop=[stop, "qq"])[0] == expected


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"top_p": 0.0}, "top_p must be in"),
        ({"top_p": 1.5}, "top_p must be in"),
        ({"top_k": 0}, "top_k must be at least 1"),
        ({"temperature": -0.1}, "temperature must be at least 0"),
        ({"max_new_tokens": -1}, "max_new_tokens must be at least 0"),
        ({"stop": ["Z!"]}, "stop string 'Z!' cannot be encoded"),
        ({"stop": [""]}, "must not be empty"),
        ({"num_samples": 0}, "num_samples must be at least 1"),
        ({"cache": "lru"}, "cache must be one of"),
    ],
)
def test_bad_sampling_settings_are_refused(model, kwargs, message):
    with pytest.raises(ScratchGPTError, match=message):
        sample_texts(model, TOKENIZER, "a", **{"max_new_tokens": 5, **kwargs})


def test_sampling_without_a_seed_leaves_the_callers_random_state_alone(model):
    torch.manual_seed(123)
    before = torch.get_rng_state()
    sample_texts(model, TOKENIZER, "a", max_new_tokens=5)
    list(stream_text(model, TOKENIZER, "a", max_new_tokens=5))
    assert torch.equal(torch.get_rng_state(), before)


def test_sampling_is_done_in_eval_mode_and_the_callers_mode_is_restored():
    torch.manual_seed(0)
    config = ModelConfig(vocab_size=20, block_size=16, n_embd=32, n_head=4, n_layer=2, dropout=0.5)
    model = GPTLanguageModel(config)
    expected = sample_texts(model.eval(), TOKENIZER, "ab", max_new_tokens=12, seed=5)  # within block_size
    model.train()
    for cache in ("window", "none"):
        assert sample_texts(model, TOKENIZER, "ab", max_new_tokens=12, seed=5, cache=cache) == expected
        assert model.training  # training mode again, as the caller left it
    pieces = stream_text(model, TOKENIZER, "ab", max_new_tokens=30, seed=5)
    next(pieces)
    assert not model.training  # while sampling
    pieces.close()  # a caller who stops early gets its mode back too
    assert model.training

"""Continuous batching (inference/batching.py): streams join and leave one decode loop, each with its
own settings and seeded generator, and each gets the text `sample_text` gives it alone.

A row's arithmetic never reads its neighbours' values, but the batch size changes how matrix
products are blocked, so its logits differ from batch 1's in the last bits (checked below within
1e-5; measured around 1e-7). A token can then differ only where that flips a near-tie; on these
trained runs none does over hundreds of tokens, which the texts compared here check exactly.
"""

import threading

import pytest
import torch

from scratchgpt import GPTLanguageModel
from scratchgpt.cli import main
from scratchgpt.config import ModelConfig
from scratchgpt.inference.batching import Batcher, Cancelled, QueueFull
from scratchgpt.inference.generate import sample_text
from scratchgpt.inference.sampling import Sampling
from scratchgpt.models.convert import convert
from scratchgpt.nn.kv_cache import KVCache, SlotKVCache
from scratchgpt.rundir import load_model


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny GPT trained for 300 steps (block 32, so 300 tokens slide the window many times)."""
    out = tmp_path_factory.mktemp("batching") / "gpt"
    assert main(["train", "--preset", "tiny", "--max-iters", "300", "--out", str(out), "--quiet"]) == 0
    model, tokenizer, _, _ = load_model(out)
    return model, tokenizer


class Collected:
    """A submitted stream and what it has emitted."""

    def __init__(self, batcher, prompt, sampling):
        self.pieces, self.error, self._ended = [], None, threading.Event()
        self.stream = batcher.submit(prompt, sampling, self.pieces.append, self._end)

    def _end(self, error):
        self.error = error
        self._ended.set()

    def text(self):
        assert self._ended.wait(120), "the stream never ended"
        assert self.error is None, self.error
        return "".join(self.pieces)

    def wait_for_pieces(self, n):
        while len(self.pieces) < n:
            assert not self._ended.is_set(), "the stream ended early"
            self._ended.wait(0.01)


@pytest.mark.parametrize("options", [{}, {"position": "rotary", "qk_norm": True}])
def test_each_row_decodes_its_own_sequence_at_its_own_position(options):
    """Three sequences of different lengths in rows of one slot cache, stepped together token by
    token: each row's logits are those of its sequence run alone through the model."""
    config = ModelConfig(vocab_size=65, block_size=32, n_embd=32, n_head=2, n_layer=2, dropout=0.0, **options)
    torch.manual_seed(0)
    model = GPTLanguageModel(config).eval()
    ids = torch.randint(0, 65, (3, 30), generator=torch.Generator().manual_seed(1))
    starts = [3, 11, 20]  # each row's prompt length
    slots = SlotKVCache(config, 4, "cpu")
    with torch.no_grad():
        whole, _ = model(ids)  # (3, 30, V)
        for row, start in enumerate(starts):
            one = KVCache(config, 1, "cpu")
            model(ids[row : row + 1, :start], cache=one)
            slots.load(row, one, start)
        for t in range(30 - max(starts)):
            view = slots.rows(3)
            view.span = int(view.length.max()) + 1
            idx = torch.stack([ids[row, start + t] for row, start in enumerate(starts)])[:, None]  # (3, 1)
            logits, _ = model(idx, cache=view)  # (3, 1, V)
            for row, start in enumerate(starts):
                torch.testing.assert_close(logits[row, 0], whole[row, start + t], atol=1e-5, rtol=0)
    assert slots.length[:3].tolist() == [s + 30 - max(starts) for s in starts]


SETTINGS = [  # (prompt, Sampling): every policy, past block_size, with every sampling setting
    ("ROMEO:", Sampling(120, 0, cache="window")),
    ("JULIET:", Sampling(90, 0.8, top_k=5, seed=1, cache="window")),
    ("", Sampling(70, 1.0, top_p=0.9, seed=2, cache="exact")),
    ("KING", Sampling(60, 0.7, seed=3, cache="none")),
    ("First", Sampling(200, 0.9, stop=("\n\n",), seed=4)),
    ("A", Sampling(5, 1.2, seed=5)),
    ("B", Sampling(40, 0.9, top_k=1, seed=6, cache="exact")),
]


def test_concurrent_streams_each_get_the_text_of_their_own_settings(trained):
    model, tokenizer = trained
    batcher = Batcher(model, tokenizer, streams=4, queue=8)  # three of them wait for a slot
    try:
        streams = [Collected(batcher, prompt, s) for prompt, s in SETTINGS]
        texts = [c.text() for c in streams]
    finally:
        batcher.close()
    for (prompt, s), text in zip(SETTINGS, texts):
        assert prompt + text == sample_text(model, tokenizer, prompt, s)
    assert batcher.widest == 4  # they did decode together
    assert texts[4].find("\n\n") == -1 and len(texts[5]) == 5


@pytest.mark.parametrize("sampling", [Sampling(300, 0), Sampling(300, 0.9, top_k=20, seed=11)])
def test_a_stream_does_not_depend_on_its_neighbours(trained, sampling):
    """The same request alone and among 49 others that join before it, beside it and after it,
    and leave at other times: the same 300 tokens."""
    model, tokenizer = trained
    batcher = Batcher(model, tokenizer, streams=64)
    try:
        alone = Collected(batcher, "ROMEO:", sampling).text()
        crowd = [Collected(batcher, "KING:", Sampling(50 + 10 * i, 0.8, seed=i)) for i in range(25)]
        target = Collected(batcher, "ROMEO:", sampling)
        crowd += [Collected(batcher, "", Sampling(150 + 10 * i, 1.0, seed=100 + i)) for i in range(24)]
        among = target.text()
        for other in crowd:
            other.text()
    finally:
        batcher.close()
    assert batcher.widest == 50
    assert among == alone
    assert "ROMEO:" + alone == sample_text(model, tokenizer, "ROMEO:", sampling)


def test_a_stream_joins_and_leaves_while_another_decodes(trained):
    model, tokenizer = trained
    batcher = Batcher(model, tokenizer, streams=4)
    try:
        first = Collected(batcher, "ROMEO:", Sampling(400, 0.8, seed=1))
        first.wait_for_pieces(20)
        second = Collected(batcher, "JULIET:", Sampling(30, 0.8, seed=2))
        second_text = second.text()
        assert not first._ended.is_set()  # the second joined and left while the first went on
        first_text = first.text()
    finally:
        batcher.close()
    assert batcher.widest == 2
    assert "ROMEO:" + first_text == sample_text(model, tokenizer, "ROMEO:", Sampling(400, 0.8, seed=1))
    assert "JULIET:" + second_text == sample_text(model, tokenizer, "JULIET:", Sampling(30, 0.8, seed=2))


def test_cancelling_frees_the_slot_for_the_next_in_the_queue(trained):
    model, tokenizer = trained
    batcher = Batcher(model, tokenizer, streams=1, queue=1)
    try:
        running = Collected(batcher, "A", Sampling(10**9, 1.0, seed=1))
        running.wait_for_pieces(3)
        waiting = Collected(batcher, "B", Sampling(20, 1.0, seed=2))
        assert batcher.counts() == {"decoding": 1, "waiting": 1}
        with pytest.raises(QueueFull, match=r"the server is busy \(1 streams decoding, 1 waiting\)"):
            Collected(batcher, "C", Sampling(20))
        running.stream.cancel()
        assert "B" + waiting.text() == sample_text(model, tokenizer, "B", max_new_tokens=20, seed=2)
        assert isinstance(running.error, Cancelled) and running.stream.tokens < 10**9
        assert (running.stream.tokens, True) in batcher.finished
    finally:
        batcher.close()


def test_a_stream_cancelled_in_the_queue_never_starts_and_close_cancels_the_rest(trained):
    model, tokenizer = trained
    batcher = Batcher(model, tokenizer, streams=1, queue=2)
    running = Collected(batcher, "A", Sampling(10**9, 1.0, seed=1))
    running.wait_for_pieces(1)
    gone, left = Collected(batcher, "B", Sampling(20)), Collected(batcher, "C", Sampling(20))
    gone.stream.cancel()
    gone._ended.wait(60)
    assert isinstance(gone.error, Cancelled) and gone.stream.tokens == 0 and gone.stream.joined is None
    batcher.close()
    for c in (running, left):
        assert c._ended.wait(60) and isinstance(c.error, Cancelled)
    batcher._thread.join(60)
    assert not batcher._thread.is_alive()
    with pytest.raises(QueueFull, match="decode loop has stopped"):
        Collected(batcher, "D", Sampling(5))


def test_an_error_in_a_step_ends_the_streams_it_held_and_the_loop_goes_on(trained, monkeypatch):
    model, tokenizer = trained
    batcher = Batcher(model, tokenizer, streams=4)
    real_step, failed = batcher._step, []

    def step_once_broken():
        if not failed:
            failed.append(True)
            raise RuntimeError("out of memory")
        real_step()

    monkeypatch.setattr(batcher, "_step", step_once_broken)
    try:
        broken = Collected(batcher, "A", Sampling(50, seed=1))
        broken._ended.wait(60)
        assert isinstance(broken.error, RuntimeError) and batcher.counts() == {"decoding": 0, "waiting": 0}
        after = Collected(batcher, "A", Sampling(50, seed=1)).text()
    finally:
        batcher.close()
    assert "A" + after == sample_text(model, tokenizer, "A", max_new_tokens=50, seed=1)


def test_a_model_without_a_cache_decodes_every_stream_alone(trained):
    model, tokenizer = trained
    readable = convert(model, "readable").eval()
    batcher = Batcher(readable, tokenizer, streams=4)
    try:
        texts = [c.text() for c in [Collected(batcher, "AB", Sampling(20, 0.9, seed=s)) for s in range(2)]]
    finally:
        batcher.close()
    assert batcher.steps == 0  # no batched step: nothing to cache
    for seed, text in enumerate(texts):
        assert "AB" + text == sample_text(readable, tokenizer, "AB", max_new_tokens=20, temperature=0.9, seed=seed)


def test_bad_settings_are_refused_at_submit(trained):
    model, tokenizer = trained
    batcher = Batcher(model, tokenizer)
    try:
        with pytest.raises(Exception, match="outside the vocabulary"):
            Collected(batcher, "Café", Sampling(5))
        with pytest.raises(Exception, match="a stream is one sample"):
            Collected(batcher, "A", Sampling(5, num_samples=2))
        assert batcher.counts() == {"decoding": 0, "waiting": 0}
    finally:
        batcher.close()
